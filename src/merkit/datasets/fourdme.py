"""4DME (Li et al., "4DME: A spontaneous 4D micro-expression dataset with multimodalities", IEEE Trans.
Affective Computing 14(4), 2023): micro-expressions with 2D grey/colour video, depth and 4D meshes.

Sheet ``4DME_Labelling_Micro_release v1.xlsx``: ``sub_ID, fold_name, Emotion, Onset, Apex, Offset, AUs``.

**Assumed frame layout, not verified against a release** (no frames or sheet of 4DME were available when this
loader was written): ``<root>/<sub_ID>/<fold_name>/<N>.<jpg|png|bmp>``, frames sorted by number. If your copy is
arranged differently, pass ``folder_template`` (a :meth:`str.format` pattern over ``subject`` and ``sample``,
relative to ``root``), for example ``"{subject}/{sample}/gray"``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from merkit.datasets.fixes import Fix, Invalid, MissingApex, prepare
from merkit.datasets.frames import LayoutChoice, Missing, attach_frames, find_release, find_sheet, sample_table
from merkit.errors import DataError, Diagnostics, Where

DATASET = "4dme"
# 4DME codes several emotions per sample ("negative+surprise"); the single ones are listed here.
EMOTIONS: frozenset[str] = frozenset({"positive", "negative", "surprise", "repression", "others"})
SUBJECT_PATTERN = r"[A-Za-z_]*\d+"
CONTAINERS: tuple[str, ...] = ("4DME", "2D", "frames")
SHEET_PATTERNS: tuple[str, ...] = ("4DME_Labelling_Micro*.xlsx", "4DME_Labelling_Micro*.xls")
FIXES: tuple[Fix, ...] = ()

_COLUMNS = {"sub_ID": "subject", "fold_name": "sample", "Emotion": "emotion", "Onset": "onset", "Apex": "apex",
            "Offset": "offset", "AUs": "action_units"}


def read_sheet(path: str | Path) -> pd.DataFrame:
    """Read the 4DME micro-expression labelling sheet (.xlsx, or a .csv with the same columns).

    Returns:
        ``subject, sample, emotion, onset, apex, offset, action_units`` (emotions lower case, spaces removed
        around ``+``).

    Raises:
        DataError: the file is missing or lacks one of the columns.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"4DME sheet not found: {path}", Where(DATASET))
    raw = pd.read_csv(path, dtype=object) if path.suffix == ".csv" else pd.read_excel(path, dtype=object)
    raw.columns = [str(c).strip() for c in raw.columns]
    absent = [c for c in _COLUMNS if c not in raw.columns]
    if absent:
        raise DataError(f"{path.name} lacks the 4DME columns {absent}", Where(DATASET))
    raw = raw.dropna(subset=["sub_ID", "fold_name"], how="any")
    rows = raw[list(_COLUMNS)].rename(columns=_COLUMNS)
    rows["subject"] = rows["subject"].astype(str).str.strip().str.removesuffix(".0")
    rows["sample"] = rows["sample"].astype(str).str.strip()
    rows["emotion"] = rows["emotion"].astype(str).str.strip().str.lower().str.replace(r"\s*\+\s*", "+",
                                                                                      regex=True)
    rows["action_units"] = rows["action_units"].fillna("").astype(str).str.strip()
    return rows.reset_index(drop=True)


def load(
    root: str | Path,
    sheet: str | Path | None = None,
    *,
    diagnostics: Diagnostics | None = None,
    folder_template: str = "{subject}/{sample}",
    layout: LayoutChoice = "auto",
    fixes: tuple[Fix, ...] | None = None,
    missing_apex: MissingApex = "midpoint",
    invalid: Invalid = "error",
    missing: Missing = "error",
) -> pd.DataFrame:
    """Load 4DME's micro-expressions as a sample table.

    Args:
        root: the folder holding the subject folders (see the module docstring for the assumed layout).
        folder_template: a sample's frame folder relative to the release folder.
        diagnostics, layout, fixes, missing_apex, invalid, missing: as in :func:`merkit.datasets.casme2.load`.

    Raises:
        DataError: no release or sheet is found, or a sample is invalid or lacks frames.
    """
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    release = find_release(root, DATASET, SUBJECT_PATTERN, CONTAINERS, layout)
    rows = read_sheet(sheet if sheet is not None else find_sheet(root, SHEET_PATTERNS, DATASET))
    rows = prepare(rows, DATASET, FIXES if fixes is None else fixes, missing_apex=missing_apex, invalid=invalid,
                   diagnostics=diagnostics)
    rows = attach_frames(rows, DATASET,
                         lambda r: release.base / folder_template.format(subject=r["subject"], sample=r["sample"]),
                         missing=missing, diagnostics=diagnostics)
    return sample_table(rows, DATASET, release)
