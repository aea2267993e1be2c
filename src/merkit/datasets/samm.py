"""SAMM (Davison et al., "SAMM: A spontaneous micro-facial movement dataset", IEEE Trans. Affective Computing
9(1), 2018): 159 micro-expressions from 29 of its 32 participants, 200 fps, grey frames.

Release layout: ``006/006_1_2/006_05562.jpg``. The frame number is padded to 4 **or** 5 digits within the
dataset, so frames are sorted by the integer (:func:`~merkit.datasets.frames.frame_number`), never by name.
A cropped release (``SAMM_CROP/``, ``SAMM_Cropped/``) is accepted too.

Sheet ``SAMM_Micro_FACS_Codes_v2.xlsx``: free-text rows, then the header (spreadsheet row 14 in v2)::

    Subject | Filename | Inducement Code | Onset Frame | Apex Frame | Offset Frame | Duration | Type |
    Action Units | Estimated Emotion | Objective Classes | Notes

The reader finds the header row by its content rather than by its number. Subjects are written ``6``; the table
uses the folder name, ``006``. Two apex values lie outside [onset, offset]; :data:`FIXES` corrects them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from merkit.datasets.fixes import Fix, Invalid, MissingApex, prepare
from merkit.datasets.frames import LayoutChoice, Missing, attach_frames, find_release, find_sheet, sample_table
from merkit.errors import DataError, Diagnostics, Where

DATASET = "samm"
EMOTIONS: frozenset[str] = frozenset(
    {"anger", "contempt", "happiness", "surprise", "other", "disgust", "fear", "sadness"})
SUBJECT_PATTERN = r"\d{3}"
CONTAINERS: tuple[str, ...] = ("SAMM", "SAMM_CROP", "SAMM_Cropped", "SAMM_cropped")
SHEET_PATTERNS: tuple[str, ...] = ("SAMM_Micro_FACS_Codes*.xlsx", "SAMM_Micro_FACS_Codes*.xls")

FIXES: tuple[Fix, ...] = (
    Fix("028", "028_4_1",
        "apex 1143 is after offset 1134 (Duration 64 confirms the offset); set to the offset, as SLSTT's sheet does",
        expect={"onset": 1071, "apex": 1143, "offset": 1134}, set={"apex": 1134}),
    Fix("032", "032_3_1",
        "apex 1930 is before onset 4896: a typo for 4930 (as in SLSTT's cleaned sheet)",
        expect={"onset": 4896, "apex": 1930, "offset": 4970}, set={"apex": 4930}),
)

_COLUMNS = {"Subject": "subject", "Filename": "sample", "Onset Frame": "onset", "Apex Frame": "apex",
            "Offset Frame": "offset", "Action Units": "action_units", "Estimated Emotion": "emotion"}
_ALIASES = {"OnsetFrame": "Onset Frame", "ApexFrame": "Apex Frame", "OffsetFrame": "Offset Frame",
            "Emotion": "Estimated Emotion", "Aus": "Action Units"}
_OPTIONAL = {"Objective Classes": "objective_class", "Inducement Code": "inducement_code", "Notes": "notes"}


def subject_name(value: object) -> str:
    """``6``, ``"6"`` or ``"006"`` -> ``"006"``.

    Raises:
        DataError: the value is not a subject number.
    """
    text = str(value).strip()
    if text.endswith(".0"):
        text = text[:-2]
    if not text.isdigit():
        raise DataError(f"SAMM subject {value!r} is not a number", Where(DATASET))
    return f"{int(text):03d}"


def _read_table(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype=object)
    grid = pd.read_excel(path, header=None, dtype=object)
    header = [i for i in range(min(len(grid), 60))
              if str(grid.iat[i, 0]).strip() == "Subject" and str(grid.iat[i, 1]).strip() == "Filename"]
    if not header:
        raise DataError(f"{path.name}: no header row starting 'Subject | Filename' in the first 60 rows",
                        Where(DATASET))
    table = grid.iloc[header[0] + 1:].copy()
    table.columns = [str(c).strip() for c in grid.iloc[header[0]]]
    return table


def read_sheet(path: str | Path) -> pd.DataFrame:
    """Read the SAMM FACS-code sheet (or a cleaned .csv with OnsetFrame/ApexFrame/OffsetFrame columns).

    Returns:
        One row per micro-expression with ``subject, sample, emotion, onset, apex, offset, action_units`` and,
        where present, ``objective_class, inducement_code, notes``. Frame cells are as in the sheet.

    Raises:
        DataError: the file is missing, has no header row, or lacks one of the official columns.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"SAMM sheet not found: {path}", Where(DATASET))
    raw = _read_table(path)
    raw = raw.rename(columns={c: _ALIASES.get(str(c).strip(), str(c).strip()) for c in raw.columns})
    if "Action Units" not in raw.columns:
        raw["Action Units"] = ""
    absent = [c for c in _COLUMNS if c not in raw.columns]
    if absent:
        raise DataError(f"{path.name} lacks the SAMM columns {absent}", Where(DATASET))
    raw = raw.dropna(subset=["Subject", "Filename"], how="any")
    rows = raw[list(_COLUMNS)].rename(columns=_COLUMNS)
    rows["subject"] = [subject_name(s) for s in rows["subject"]]
    rows["sample"] = rows["sample"].astype(str).str.strip()
    rows["emotion"] = rows["emotion"].astype(str).str.strip().str.lower()
    rows["action_units"] = rows["action_units"].fillna("").astype(str).str.strip()
    for column, name in _OPTIONAL.items():
        if column in raw.columns:
            rows[name] = raw[column].fillna("").astype(str).str.strip()
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
    """Load SAMM as a sample table (frames of each sample folder, sorted by their integer frame number).

    Args:
        root: the folder holding ``006/``... or its parent (holding ``SAMM/`` or ``SAMM_CROP/``).
        sheet: the FACS-code sheet; by default the one ``SAMM_Micro_FACS_Codes*.xlsx`` under ``root``.
        diagnostics, layout, fixes, missing_apex, invalid, missing: as in :func:`merkit.datasets.casme2.load`;
            ``fixes=None`` applies :data:`FIXES`.

    Returns:
        The sample table; ``attrs["layout"]`` is ``"raw"`` or ``"cropped"``.

    Raises:
        DataError: no release or sheet is found, a fix no longer matches, or a sample is invalid or lacks
            frames (under the default policies).
    """
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    release = find_release(root, DATASET, SUBJECT_PATTERN, CONTAINERS, layout)
    rows = read_sheet(sheet if sheet is not None else find_sheet(root, SHEET_PATTERNS, DATASET))
    rows = prepare(rows, DATASET, FIXES if fixes is None else fixes, missing_apex=missing_apex, invalid=invalid,
                   diagnostics=diagnostics)
    rows = attach_frames(rows, DATASET, lambda r: release.base / r["subject"] / r["sample"], missing=missing,
                         diagnostics=diagnostics)
    return sample_table(rows, DATASET, release)
