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
Loading is :func:`merkit.datasets.loader.load` over :data:`SPEC`.
"""

from __future__ import annotations

from functools import partial

from merkit.datasets import loader
from merkit.datasets.fixes import Fix
from merkit.datasets.loader import DatasetSpec, SheetSpec
from merkit.errors import DataError, Where

DATASET = "casme2"
EMOTIONS: frozenset[str] = frozenset(
    {"happiness", "surprise", "disgust", "repression", "fear", "sadness", "others"})
# No fix is needed for the 20190701 sheet: its one defect, an apex of "/", is handled by missing_apex.
FIXES: tuple[Fix, ...] = ()


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


SPEC = DatasetSpec(
    name=DATASET,
    title="CASME II",
    emotions=EMOTIONS,
    sheet=SheetSpec(
        columns={"Subject": "subject", "Filename": "sample", "OnsetFrame": "onset", "ApexFrame": "apex",
                 "OffsetFrame": "offset", "Action Units": "action_units", "Estimated Emotion": "emotion"},
        # Only a row empty in both Subject and Filename is blank; a half-filled row is kept, never silently dropped.
        blank_if="all",
        # Cleaned copies (e.g. SLSTT's csv) rename columns; accept them so the same reader serves both.
        aliases={"Aus": "Action Units", "Emotion": "Estimated Emotion", "Objective Class": "Objective Classes"},
        optional={"Objective Classes": "objective_class"},
        subject_name=subject_name,
    ),
    sheet_patterns=("CASME2-coding-*.xlsx", "CASME2-coding-*.xls", "CASME2-coding-*.csv"),
    folder_pattern=r"sub\d+",
    containers=("Cropped", "CASME2_RAW_selected", "CASME2-RAW", "CASME2_RAW", "CASME2_Cropped"),
    fixes=FIXES,
    schemes=("casme2-5class", "casme2-4class", "casme2-3class", "megc2019-3class"),
)

read_sheet = partial(loader.read_sheet, SPEC)
load = partial(loader.load, SPEC)
