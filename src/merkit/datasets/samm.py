"""SAMM (Davison et al., "SAMM: A spontaneous micro-facial movement dataset", IEEE Trans. Affective Computing
9(1), 2018): 159 micro-expressions from 29 of its 32 participants, 200 fps, grey frames.

Release layout: ``006/006_1_2/006_05562.jpg``. The frame number is padded to 4 **or** 5 digits within the
dataset, so frames are sorted by the integer (:func:`~merkit.datasets.frames.frame_number`), never by name.
A cropped release (``SAMM_CROP/``, ``SAMM_Cropped/``) is accepted too.

Sheet ``SAMM_Micro_FACS_Codes_v2.xlsx``: free-text rows, then the header (spreadsheet row 14 in v2)::

    Subject | Filename | Inducement Code | Onset Frame | Apex Frame | Offset Frame | Duration | Type |
    Action Units | Estimated Emotion | Objective Classes | Notes

The reader finds the header row by its content rather than by its number; a cleaned .csv (OnsetFrame,
ApexFrame, OffsetFrame; perhaps no Action Units) is read too. Subjects are written ``6``; the table uses the
folder name, ``006``. Two apex values lie outside [onset, offset]; :data:`FIXES` corrects them. Loading is
:func:`merkit.datasets.loader.load` over :data:`SPEC`.
"""

from __future__ import annotations

from functools import partial

from merkit.datasets import loader
from merkit.datasets.fixes import Fix
from merkit.datasets.loader import DatasetSpec, SheetSpec
from merkit.errors import DataError, Where

DATASET = "samm"
EMOTIONS: frozenset[str] = frozenset(
    {"anger", "contempt", "happiness", "surprise", "other", "disgust", "fear", "sadness"})

FIXES: tuple[Fix, ...] = (
    Fix("028", "028_4_1",
        "apex 1143 is after offset 1134 (Duration 64 confirms the offset); set to the offset, as SLSTT's sheet does",
        expect={"onset": 1071, "apex": 1143, "offset": 1134}, set={"apex": 1134}),
    Fix("032", "032_3_1",
        "apex 1930 is before onset 4896: a typo for 4930 (as in SLSTT's cleaned sheet)",
        expect={"onset": 4896, "apex": 1930, "offset": 4970}, set={"apex": 4930}),
)


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


SPEC = DatasetSpec(
    name=DATASET,
    title="SAMM",
    emotions=EMOTIONS,
    sheet=SheetSpec(
        columns={"Subject": "subject", "Filename": "sample", "Onset Frame": "onset", "Apex Frame": "apex",
                 "Offset Frame": "offset", "Action Units": "action_units", "Estimated Emotion": "emotion"},
        aliases={"OnsetFrame": "Onset Frame", "ApexFrame": "Apex Frame", "OffsetFrame": "Offset Frame",
                 "Emotion": "Estimated Emotion", "Aus": "Action Units"},
        defaults={"Action Units": ""},
        optional={"Objective Classes": "objective_class", "Inducement Code": "inducement_code", "Notes": "notes"},
        subject_name=subject_name,
        header_cells=("Subject", "Filename"),
    ),
    sheet_patterns=("SAMM_Micro_FACS_Codes*.xlsx", "SAMM_Micro_FACS_Codes*.xls"),
    folder_pattern=r"\d{3}",
    containers=("SAMM", "SAMM_CROP", "SAMM_Cropped", "SAMM_cropped"),
    fixes=FIXES,
    schemes=("samm-5class", "megc2019-3class"),
)

read_sheet = partial(loader.read_sheet, SPEC)
load = partial(loader.load, SPEC)
