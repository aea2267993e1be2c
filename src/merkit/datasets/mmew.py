"""MMEW (Ben et al., "Video-based facial micro-expression analysis: A survey of datasets, features and
algorithms", IEEE TPAMI 44(9), 2022): micro- and macro-expressions at 90 fps; this loader reads the
micro-expressions.

Release layout: ``Micro_Expression/<emotion>/<Filename>/<N>.jpg`` (``Micro_Expression/happiness/S01-01-001/15.jpg``).
The emotion folder is found by looking the ``Filename`` up across all emotion folders, so a differently cased
folder (``Happiness``) does not break loading.

Sheet ``MMEW_Micro_Exp.xlsx``: ``Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame, Action Units,
Estimated Emotion, remarks``. Subjects are written ``1``; the table uses ``S01``, the prefix of the file names.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from merkit.datasets.fixes import Fix, Invalid, MissingApex, prepare
from merkit.datasets.frames import LayoutChoice, Missing, attach_frames, find_release, find_sheet, sample_table
from merkit.errors import DataError, Diagnostics, Where

DATASET = "mmew"
EMOTIONS: frozenset[str] = frozenset({"happiness", "surprise", "disgust", "fear", "sadness", "anger", "others"})
# Under the release folder the subject level is replaced by the emotion level.
EMOTION_FOLDER_PATTERN = r"(?i)(happiness|surprise|disgust|fear|sadness|anger|others?)"
CONTAINERS: tuple[str, ...] = ("Micro_Expression", "MMEW/Micro_Expression", "MMEW_Final/Micro_Expression")
SHEET_PATTERNS: tuple[str, ...] = ("MMEW_Micro_Exp*.xlsx", "MMEW_Micro_Exp*.xls")
FIXES: tuple[Fix, ...] = ()

_COLUMNS = {"Subject": "subject", "Filename": "sample", "OnsetFrame": "onset", "ApexFrame": "apex",
            "OffsetFrame": "offset", "Action Units": "action_units", "Estimated Emotion": "emotion"}


def subject_name(value: object) -> str:
    """``1``, ``"1"``, ``"S01"`` -> ``"S01"``.

    Raises:
        DataError: the value is not a subject number.
    """
    text = str(value).strip().upper().removeprefix("S").removesuffix(".0")
    if not text.isdigit():
        raise DataError(f"MMEW subject {value!r} is not a number", Where(DATASET))
    return f"S{int(text):02d}"


def read_sheet(path: str | Path) -> pd.DataFrame:
    """Read the MMEW micro-expression sheet (.xlsx, or a .csv with the same columns).

    Returns:
        ``subject, sample, emotion, onset, apex, offset, action_units`` and ``remarks`` where present.

    Raises:
        DataError: the file is missing or lacks one of the official columns.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"MMEW sheet not found: {path}", Where(DATASET))
    raw = pd.read_csv(path, dtype=object) if path.suffix == ".csv" else pd.read_excel(path, dtype=object)
    raw.columns = [str(c).strip() for c in raw.columns]
    absent = [c for c in _COLUMNS if c not in raw.columns]
    if absent:
        raise DataError(f"{path.name} lacks the MMEW columns {absent}", Where(DATASET))
    raw = raw.dropna(subset=["Subject", "Filename"], how="any")
    rows = raw[list(_COLUMNS)].rename(columns=_COLUMNS)
    rows["subject"] = [subject_name(s) for s in rows["subject"]]
    rows["sample"] = rows["sample"].astype(str).str.strip()
    rows["emotion"] = rows["emotion"].astype(str).str.strip().str.lower()
    rows["action_units"] = rows["action_units"].fillna("").astype(str).str.strip()
    if "remarks" in raw.columns:
        rows["remarks"] = raw["remarks"].fillna("").astype(str).str.strip()
    return rows.reset_index(drop=True)


def load(
    root: str | Path,
    sheet: str | Path | None = None,
    *,
    diagnostics: Diagnostics | None = None,
    layout: LayoutChoice = "auto",
    fixes: tuple[Fix, ...] | None = None,
    missing_apex: MissingApex = "midpoint",
    invalid: Invalid = "error",
    missing: Missing = "error",
) -> pd.DataFrame:
    """Load MMEW's micro-expressions as a sample table (frames of each sample folder, sorted by number).

    Args:
        root: the ``Micro_Expression`` folder or a parent holding it.
        diagnostics, layout, fixes, missing_apex, invalid, missing: as in :func:`merkit.datasets.casme2.load`.

    Raises:
        DataError: no release or sheet is found, a sample folder occurs under two emotion folders, or a sample
            is invalid or lacks frames (under the default policies).
    """
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    release = find_release(root, DATASET, EMOTION_FOLDER_PATTERN, CONTAINERS, layout)
    rows = read_sheet(sheet if sheet is not None else find_sheet(root, SHEET_PATTERNS, DATASET))
    rows = prepare(rows, DATASET, FIXES if fixes is None else fixes, missing_apex=missing_apex, invalid=invalid,
                   diagnostics=diagnostics)
    folders: dict[str, Path] = {}
    for emotion_dir in (p for p in release.base.iterdir() if p.is_dir()):
        for sample_dir in (p for p in emotion_dir.iterdir() if p.is_dir()):
            if sample_dir.name in folders:
                raise DataError(f"{sample_dir.name} occurs in {folders[sample_dir.name].parent.name} and "
                                f"{emotion_dir.name}", Where(DATASET, sample=sample_dir.name))
            folders[sample_dir.name] = sample_dir

    def folder_of(row: dict) -> Path:
        return folders.get(row["sample"], release.base / row["emotion"] / row["sample"])

    rows = attach_frames(rows, DATASET, folder_of, missing=missing, diagnostics=diagnostics)
    return sample_table(rows, DATASET, release)
