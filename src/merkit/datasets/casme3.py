"""CAS(ME)^3 part A (Li et al., "CAS(ME)^3: A third generation facial spontaneous micro-expression database with
depth information and high ecological validity", IEEE TPAMI 45(3), 2023): micro-expressions annotated in long
videos, 30 fps, colour and depth.

Release layout: ``spNO.1/b/color/175.jpg`` (``depth/`` beside ``color/``). One folder is a whole task video and
can hold several micro-expressions, so:

* each sample's ``frames`` are the video's frames in [onset, offset];
* the sample name is ``<Filename>_<onset>`` (``b_166``), unique where ``Filename`` alone is not; the table keeps
  the video letter in an extra ``clip`` column.

Sheet ``cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx``: ``Subject`` (``spNO.1``), ``Filename`` (a letter), ``Onset``,
``Apex``, ``Offset``, ``AU``, ``Objective class``, ``emotion``. The emotions are written both ``others`` and
``Others``; the table lower-cases them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from merkit.datasets.fixes import Fix, Invalid, MissingApex, prepare
from merkit.datasets.frames import LayoutChoice, Missing, attach_frames, find_release, find_sheet, sample_table
from merkit.errors import DataError, Diagnostics, Where

DATASET = "casme3"
EMOTIONS: frozenset[str] = frozenset({"happy", "sad", "disgust", "surprise", "fear", "anger", "others"})
SUBJECT_PATTERN = r"spNO\.\d+"
CONTAINERS: tuple[str, ...] = ("part_A", "data/part_A", "part_A/data/part_A", "Part_A", "CAS(ME)3_part_A")
SHEET_PATTERNS: tuple[str, ...] = ("cas(me)3_part_A_ME_label*.xlsx", "CAS(ME)3_part_A_ME_label*.xlsx")
FIXES: tuple[Fix, ...] = ()

_COLUMNS = {"Subject": "subject", "Filename": "clip", "Onset": "onset", "Apex": "apex", "Offset": "offset",
            "AU": "action_units", "emotion": "emotion"}


def read_sheet(path: str | Path) -> pd.DataFrame:
    """Read the CAS(ME)^3 part A micro-expression sheet (.xlsx, or a .csv with the same columns).

    Returns:
        ``subject, sample, clip, emotion, onset, apex, offset, action_units`` and ``objective_class``, with
        ``sample = f"{clip}_{onset}"``.

    Raises:
        DataError: the file is missing or lacks one of the official columns.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"CAS(ME)^3 sheet not found: {path}", Where(DATASET))
    raw = pd.read_csv(path, dtype=object) if path.suffix == ".csv" else pd.read_excel(path, dtype=object)
    raw.columns = [str(c).strip() for c in raw.columns]
    absent = [c for c in _COLUMNS if c not in raw.columns]
    if absent:
        raise DataError(f"{path.name} lacks the CAS(ME)^3 columns {absent}", Where(DATASET))
    raw = raw.dropna(subset=["Subject", "Filename"], how="any")
    rows = raw[list(_COLUMNS)].rename(columns=_COLUMNS)
    rows["subject"] = rows["subject"].astype(str).str.strip()
    rows["clip"] = rows["clip"].astype(str).str.strip()
    rows["sample"] = [f"{clip}_{str(onset).strip().removesuffix('.0')}"
                      for clip, onset in zip(rows["clip"], rows["onset"])]
    rows["emotion"] = rows["emotion"].astype(str).str.strip().str.lower()
    rows["action_units"] = rows["action_units"].fillna("").astype(str).str.strip()
    if "Objective class" in raw.columns:
        rows["objective_class"] = raw["Objective class"].fillna("").astype(str).str.strip()
    return rows.reset_index(drop=True)


def load(
    root: str | Path,
    sheet: str | Path | None = None,
    *,
    diagnostics: Diagnostics | None = None,
    modality: str = "color",
    layout: LayoutChoice = "auto",
    fixes: tuple[Fix, ...] | None = None,
    missing_apex: MissingApex = "midpoint",
    invalid: Invalid = "error",
    missing: Missing = "error",
) -> pd.DataFrame:
    """Load CAS(ME)^3 part A as a sample table; each sample's frames are its video's frames in [onset, offset].

    Args:
        root: the folder holding ``spNO.1/``... or a parent (``part_A/``, ``data/part_A/``).
        modality: ``"color"`` or ``"depth"``, the sub-folder of each video.
        diagnostics, layout, fixes, missing_apex, invalid, missing: as in :func:`merkit.datasets.casme2.load`.

    Raises:
        DataError: no release or sheet is found, or a sample is invalid or has no frame in [onset, offset].
    """
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    release = find_release(root, DATASET, SUBJECT_PATTERN, CONTAINERS, layout)
    rows = read_sheet(sheet if sheet is not None else find_sheet(root, SHEET_PATTERNS, DATASET))
    rows = prepare(rows, DATASET, FIXES if fixes is None else fixes, missing_apex=missing_apex, invalid=invalid,
                   diagnostics=diagnostics)
    rows = attach_frames(rows, DATASET, lambda r: release.base / r["subject"] / r["clip"] / modality,
                         missing=missing, window=True, diagnostics=diagnostics)
    return sample_table(rows, DATASET, release)
