"""4DME (Li et al., "4DME: A spontaneous 4D micro-expression dataset with multimodalities", IEEE Trans.
Affective Computing 14(4), 2023): micro-expressions with 2D grey/colour video, depth and 4D meshes.

Sheet ``4DME_Labelling_Micro_release v1.xlsx``: ``sub_ID, fold_name, Emotion, Onset, Apex, Offset, AUs``. Several
emotions may be coded per sample (``Negative + Surprise``); the table writes them ``negative+surprise``.

**Assumed frame layout, not verified against a release** (no frames or sheet of 4DME were available when this
loader was written): ``<root>/<sub_ID>/<fold_name>/<N>.<jpg|png|bmp>``, frames sorted by number. If your copy is
arranged differently, pass ``folder_template`` (a :meth:`str.format` pattern over ``subject`` and ``sample``,
relative to ``root``), for example ``"{subject}/{sample}/gray"``. Loading is :func:`merkit.datasets.loader.load`
over :data:`SPEC`.
"""

from __future__ import annotations

from functools import partial

import pandas as pd

from merkit.datasets import loader
from merkit.datasets.fixes import Fix
from merkit.datasets.loader import DatasetSpec, SheetSpec

DATASET = "4dme"
# 4DME codes several emotions per sample ("negative+surprise"); the single ones are listed here.
EMOTIONS: frozenset[str] = frozenset({"positive", "negative", "surprise", "repression", "others"})
FIXES: tuple[Fix, ...] = ()


def subject_name(value: object) -> str:
    """The ``sub_ID`` cell as written, without a spreadsheet's ``.0`` (``"S01"`` -> ``"S01"``, ``1.0`` -> ``"1"``)."""
    return str(value).strip().removesuffix(".0")


def combined_emotions(emotions: pd.Series) -> pd.Series:
    """``"negative + surprise"`` -> ``"negative+surprise"``."""
    return emotions.str.replace(r"\s*\+\s*", "+", regex=True)


SPEC = DatasetSpec(
    name=DATASET,
    title="4DME",
    emotions=EMOTIONS,
    sheet=SheetSpec(
        columns={"sub_ID": "subject", "fold_name": "sample", "Emotion": "emotion", "Onset": "onset", "Apex": "apex",
                 "Offset": "offset", "AUs": "action_units"},
        keys=("sub_ID", "fold_name"),
        subject_name=subject_name,
        emotion_names=combined_emotions,
    ),
    sheet_patterns=("4DME_Labelling_Micro*.xlsx", "4DME_Labelling_Micro*.xls"),
    folder_pattern=r"[A-Za-z_]*\d+",
    containers=("4DME", "2D", "frames"),
    fixes=FIXES,
    options={"folder_template": "{subject}/{sample}"},
)

read_sheet = partial(loader.read_sheet, SPEC)
load = partial(loader.load, SPEC)
