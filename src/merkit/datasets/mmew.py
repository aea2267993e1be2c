"""MMEW (Ben et al., "Video-based facial micro-expression analysis: A survey of datasets, features and
algorithms", IEEE TPAMI 44(9), 2022): micro- and macro-expressions at 90 fps; this loader reads the
micro-expressions.

Release layout: ``Micro_Expression/<emotion>/<Filename>/<N>.jpg`` (``Micro_Expression/happiness/S01-01-001/15.jpg``).
The emotion folder is found by looking the ``Filename`` up across all emotion folders, so a differently cased
folder (``Happiness``) does not break loading; a ``Filename`` under two emotion folders is an error.

Sheet ``MMEW_Micro_Exp.xlsx``: ``Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame, Action Units,
Estimated Emotion, remarks``. Subjects are written ``1``; the table uses ``S01``, the prefix of the file names.
Loading is :func:`merkit.datasets.loader.load` over :data:`SPEC`.
"""

from __future__ import annotations

from functools import partial

from merkit.datasets import loader
from merkit.datasets.fixes import Fix
from merkit.datasets.loader import DatasetSpec, FrameLayout, SheetSpec
from merkit.errors import DataError, Where

DATASET = "mmew"
EMOTIONS: frozenset[str] = frozenset({"happiness", "surprise", "disgust", "fear", "sadness", "anger", "others"})
FIXES: tuple[Fix, ...] = ()


def subject_name(value: object) -> str:
    """``1``, ``"1"``, ``"S01"`` -> ``"S01"``.

    Raises:
        DataError: the value is not a subject number.
    """
    text = str(value).strip().upper().removeprefix("S").removesuffix(".0")
    if not text.isdigit():
        raise DataError(f"MMEW subject {value!r} is not a number", Where(DATASET))
    return f"S{int(text):02d}"


SPEC = DatasetSpec(
    name=DATASET,
    title="MMEW",
    emotions=EMOTIONS,
    sheet=SheetSpec(
        columns={"Subject": "subject", "Filename": "sample", "OnsetFrame": "onset", "ApexFrame": "apex",
                 "OffsetFrame": "offset", "Action Units": "action_units", "Estimated Emotion": "emotion"},
        optional={"remarks": "remarks"},
        subject_name=subject_name,
    ),
    sheet_patterns=("MMEW_Micro_Exp*.xlsx", "MMEW_Micro_Exp*.xls"),
    # Under the release folder the subject level is replaced by the emotion level.
    folder_pattern=r"(?i)(happiness|surprise|disgust|fear|sadness|anger|others?)",
    containers=("Micro_Expression", "MMEW/Micro_Expression", "MMEW_Final/Micro_Expression"),
    frames=FrameLayout(folder="{emotion}/{sample}", by_name=True),
    fixes=FIXES,
    schemes=("mmew-4class",),
)

read_sheet = partial(loader.read_sheet, SPEC)
load = partial(loader.load, SPEC)
