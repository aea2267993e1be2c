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
``Others``; the table lower-cases them. Loading is :func:`merkit.datasets.loader.load` over :data:`SPEC`, with the
option ``modality`` (``"color"`` or ``"depth"``, the sub-folder of each video).
"""

from __future__ import annotations

from functools import partial

import pandas as pd

from merkit.datasets import loader
from merkit.datasets.fixes import Fix
from merkit.datasets.loader import DatasetSpec, FrameLayout, SheetSpec

DATASET = "casme3"
EMOTIONS: frozenset[str] = frozenset({"happy", "sad", "disgust", "surprise", "fear", "anger", "others"})
FIXES: tuple[Fix, ...] = ()


def sample_per_onset(rows: pd.DataFrame) -> pd.DataFrame:
    """Name each sample ``<clip>_<onset>`` (``b_166``): one video (clip) can hold several micro-expressions."""
    clip = rows["clip"].astype(str).str.strip()
    sample = [f"{c}_{str(onset).strip().removesuffix('.0')}" for c, onset in zip(clip, rows["onset"])]
    return rows.assign(clip=clip, sample=sample)


SPEC = DatasetSpec(
    name=DATASET,
    title="CAS(ME)^3 part A",
    label="CAS(ME)^3",
    emotions=EMOTIONS,
    sheet=SheetSpec(
        columns={"Subject": "subject", "Filename": "clip", "Onset": "onset", "Apex": "apex", "Offset": "offset",
                 "AU": "action_units", "emotion": "emotion"},
        optional={"Objective class": "objective_class"},
        name_samples=sample_per_onset,
    ),
    sheet_patterns=("cas(me)3_part_A_ME_label*.xlsx", "CAS(ME)3_part_A_ME_label*.xlsx"),
    folder_pattern=r"spNO\.\d+",
    containers=("part_A", "data/part_A", "part_A/data/part_A", "Part_A", "CAS(ME)3_part_A"),
    frames=FrameLayout(folder="{subject}/{clip}/{modality}", window=True),
    fixes=FIXES,
    schemes=("casme3-4class", "casme3-7class"),
    options={"modality": "color"},
)

read_sheet = partial(loader.read_sheet, SPEC)
load = partial(loader.load, SPEC)
