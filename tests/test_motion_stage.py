"""Every motion representation through the inputs stage, as named model inputs, and the apex rule on a table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from merkit.face.clip import FaceConfig
from merkit.inputs import Preprocessing, build_inputs
from merkit.inputs.build import InputsCache
from merkit.motion.representations import REPRESENTATIONS
from merkit.motion.stage import MotionConfig

FACE = FaceConfig(size=64, color="grey", span="onset-offset")
ALL = MotionConfig(representations=REPRESENTATIONS, method="farneback", size=16, long_term_frames=5,
                   resample_length=6)
SCHEME = "casme2-5class"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> pd.DataFrame:
    from merkit.synthetic import generate

    return generate(tmp_path_factory.mktemp("synthetic"), subjects=2, clips_per_class=1, duration=(15, 20), seed=5)


def test_every_representation_becomes_a_named_input(synthetic, tmp_path):
    features = build_inputs(synthetic, Preprocessing(FACE, ALL), SCHEME, tmp_path)
    n = len(synthetic)
    assert features.meta["clips"]["failed"] == 0
    assert features.inputs["flow"].shape == (n, 3, 16, 16)
    assert features.inputs["apex_minus_onset"].shape == (n, 1, 16, 16)
    assert features.inputs["long_term_flow"].shape == (n, 5, 3, 16, 16)
    assert features.inputs["dynamic_image"].shape == (n, 1, 16, 16)
    assert features.inputs["clip"].shape == (n, 6, 16, 16)
    assert features.inputs["onset_window"].shape == (n, 5, 1, 16, 16)
    assert features.inputs["au_boxes"].shape == (n, 9, 4) and features.inputs["ss_onset"].shape == (n, 4, 1, 16, 16)
    assert set(features.inputs) == set(Preprocessing(FACE, ALL).input_keys)
    assert features.meta["flow_channels"] == ["u", "v", "strain"]
    assert list(features.table["sample_id"]) == list(synthetic["sample_id"])


def test_another_motion_config_gives_other_inputs(synthetic, tmp_path):
    small = synthetic.head(2)
    a = build_inputs(small, Preprocessing(FACE, MotionConfig(method="farneback", size=16)), SCHEME, tmp_path)
    b = build_inputs(small, Preprocessing(FACE, MotionConfig(method="dis", size=16)), SCHEME, tmp_path)
    assert b.meta["clips"]["computed"] == 2
    assert not np.array_equal(a.inputs["flow"].numpy(), b.inputs["flow"].numpy())


def test_an_unannotated_apex_is_spotted_and_recorded(synthetic, tmp_path):
    small = synthetic.head(2).copy()
    small["apex"] = pd.array([None, None], dtype="Int64")
    record = Preprocessing(FACE, MotionConfig(method="farneback", size=16))
    build_inputs(small, record, SCHEME, tmp_path)
    for row in small.itertuples():
        meta = json.loads((InputsCache(tmp_path, record).folder(row.sample_id) / "meta.json").read_text())
        assert meta["apex_source"] == "spotted" and row.onset < meta["apex_frame"] <= row.offset
