"""CASME II (Yan et al., "CASME II: An improved spontaneous micro-expression database and the baseline
evaluation", PLoS ONE 9(1), 2014): 255 samples from 26 subjects, 200 fps, 640x480.

Release layout (frame number = the integer in the name; sorted by it):

* raw: ``[CASME2_RAW_selected/]sub01/EP02_01f/img46.jpg``
* cropped: ``Cropped/sub01/EP02_01f/reg_img46.jpg``

Coding sheet ``CASME2-coding-*.xlsx``, nine columns, two unnamed (the 20190701 version adds a tenth,
``Objective Classes``)::

    Subject | Filename | (unnamed) | OnsetFrame | ApexFrame | OffsetFrame | (unnamed) | Action Units | Estimated Emotion

``Subject`` is written ``1`` or ``01``; the table names subjects like the frame folders, ``sub01``. One apex
(sub04/EP12_01f) is ``/``: the ``missing_apex`` policy decides (midpoint by default, counted in diagnostics).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from merkit.datasets.fixes import Fix, Invalid, MissingApex, prepare
from merkit.datasets.frames import LayoutChoice, Missing, attach_frames, find_release, find_sheet, sample_table
from merkit.errors import DataError, Diagnostics, Where

DATASET = "casme2"
EMOTIONS: frozenset[str] = frozenset(
    {"happiness", "surprise", "disgust", "repression", "fear", "sadness", "others"})
SUBJECT_PATTERN = r"sub\d+"
CONTAINERS: tuple[str, ...] = ("Cropped", "CASME2_RAW_selected", "CASME2-RAW", "CASME2_RAW", "CASME2_Cropped")
SHEET_PATTERNS: tuple[str, ...] = ("CASME2-coding-*.xlsx", "CASME2-coding-*.xls", "CASME2-coding-*.csv")
# No fix is needed for the 20190701 sheet: its one defect, an apex of "/", is handled by missing_apex.
FIXES: tuple[Fix, ...] = ()

_COLUMNS = {"Subject": "subject", "Filename": "sample", "OnsetFrame": "onset", "ApexFrame": "apex",
            "OffsetFrame": "offset", "Action Units": "action_units", "Estimated Emotion": "emotion"}
# Cleaned copies (e.g. SLSTT's csv) rename two columns; accept them so the same reader serves both.
_ALIASES = {"Aus": "Action Units", "Emotion": "Estimated Emotion", "Objective Class": "Objective Classes"}


def subject_name(value: object) -> str:
    """``1``, ``"01"`` or ``"sub01"`` -> ``"sub01"``.

    Raises:
        DataError: the value is not a subject number.
    """
    text = str(value).strip()
    digits = text[3:] if text.lower().startswith("sub") else text
    if digits.endswith(".0"):
        digits = digits[:-2]
    if not digits.isdigit():
        raise DataError(f"CASME II subject {value!r} is not a number", Where(DATASET))
    return f"sub{int(digits):02d}"


def read_sheet(path: str | Path) -> pd.DataFrame:
    """Read a CASME II coding sheet (.xlsx or .csv) into annotation rows.

    Returns:
        One row per sample with ``subject, sample, emotion, onset, apex, offset, action_units`` (frame cells as
        in the sheet: ints or ``"/"``) and ``objective_class`` when the sheet has it.

    Raises:
        DataError: the file is missing or lacks one of the official columns.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"CASME II sheet not found: {path}", Where(DATASET))
    raw = pd.read_csv(path, dtype=object) if path.suffix == ".csv" else pd.read_excel(path, dtype=object)
    raw = raw.rename(columns={c: _ALIASES.get(str(c).strip(), str(c).strip()) for c in raw.columns})
    absent = [c for c in _COLUMNS if c not in raw.columns]
    if absent:
        raise DataError(f"{path.name} lacks the CASME II columns {absent}", Where(DATASET))
    raw = raw.dropna(subset=["Subject", "Filename"], how="all")
    rows = raw[list(_COLUMNS)].rename(columns=_COLUMNS)
    rows["subject"] = [subject_name(s) for s in rows["subject"]]
    rows["sample"] = rows["sample"].astype(str).str.strip()
    rows["emotion"] = rows["emotion"].astype(str).str.strip().str.lower()
    rows["action_units"] = rows["action_units"].fillna("").astype(str).str.strip()
    if "Objective Classes" in raw.columns:
        rows["objective_class"] = raw["Objective Classes"].astype(str).str.strip()
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
    """Load CASME II as a sample table (frames of each sample folder, sorted by frame number).

    Args:
        root: the release folder (holding ``sub01``...) or its parent (holding ``Cropped/`` or
            ``CASME2_RAW_selected/``).
        sheet: the coding sheet; by default the one ``CASME2-coding-*.xlsx`` found in ``root`` (2 levels deep).
        diagnostics: collects the counted warnings (fixes, filled apexes, dropped samples).
        layout: ``"auto"``, ``"raw"`` or ``"cropped"``; see :func:`~merkit.datasets.frames.find_release`.
        fixes: annotation fixes; ``None`` applies :data:`FIXES`.
        missing_apex: what to do with an apex of ``/`` (:func:`~merkit.datasets.fixes.fill_missing_apex`).
        invalid: ``"error"`` or ``"drop"`` for duplicate ids and out-of-order onset/apex/offset.
        missing: ``"error"``, ``"drop"`` or ``"keep"`` for samples without frames.

    Returns:
        The sample table; ``attrs["layout"]`` says whether the raw or the cropped release was read.

    Raises:
        DataError: no release or sheet is found, the sheet is malformed, or a sample is invalid or lacks frames
            (under the default policies). Messages name the subject and sample.
    """
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    release = find_release(root, DATASET, SUBJECT_PATTERN, CONTAINERS, layout)
    rows = read_sheet(sheet if sheet is not None else find_sheet(root, SHEET_PATTERNS, DATASET))
    rows = prepare(rows, DATASET, FIXES if fixes is None else fixes, missing_apex=missing_apex, invalid=invalid,
                   diagnostics=diagnostics)
    rows = attach_frames(rows, DATASET, lambda r: release.base / r["subject"] / r["sample"], missing=missing,
                         diagnostics=diagnostics)
    return sample_table(rows, DATASET, release)
