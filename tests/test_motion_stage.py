"""Motion features cached and parallel through the face cache's stage seam (merkit.motion.stage)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from merkit.errors import DataError
from merkit.face.clip import FaceConfig
from merkit.motion.representations import REPRESENTATIONS
from merkit.motion.stage import MotionConfig, load_motion_features, preprocess_motion

FACE = FaceConfig(size=64, color="grey", span="onset-offset")
ALL = MotionConfig(representations=REPRESENTATIONS, method="farneback", size=16, long_term_frames=5,
                   resample_length=6)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> pd.DataFrame:
    from merkit.datasets.synthetic import generate

    return generate(tmp_path_factory.mktemp("synthetic"), subjects=2, clips_per_class=1, duration=(15, 20), seed=5)


def test_preprocess_computes_every_representation_and_loads_them_as_named_inputs(synthetic, tmp_path):
    report = preprocess_motion(synthetic, tmp_path, ALL, FACE)
    assert report.count("failed") == 0 and all(r.stages_run == ["motion"] for r in report.results)
    features = load_motion_features(synthetic, tmp_path, ALL, FACE)
    n = len(synthetic)
    assert features.inputs["flow"].shape == (n, 3, 16, 16)
    assert features.inputs["apex_minus_onset"].shape == (n, 1, 16, 16)
    assert features.inputs["long_term_flow"].shape == (n, 5, 3, 16, 16)
    assert features.inputs["dynamic_image"].shape == (n, 1, 16, 16)
    assert features.inputs["clip"].shape == (n, 6, 16, 16)
    assert features.meta["flow_channels"] == ["u", "v", "strain"]
    assert list(features.table["sample_id"]) == list(synthetic["sample_id"])


def test_rerun_is_cached_and_a_new_motion_config_recomputes_motion_but_not_alignment(synthetic, tmp_path):
    small = synthetic.head(2)
    preprocess_motion(small, tmp_path, MotionConfig(method="farneback", size=16), FACE)
    again = preprocess_motion(small, tmp_path, MotionConfig(method="farneback", size=16), FACE)
    assert [r.status for r in again.results] == ["cached", "cached"]
    assert all(r.stages_run == [] for r in again.results)
    other = preprocess_motion(small, tmp_path, MotionConfig(method="dis", size=16), FACE)
    assert [r.status for r in other.results] == ["cached", "cached"]
    assert all(r.stages_run == ["motion"] for r in other.results)
    a = load_motion_features(small, tmp_path, MotionConfig(method="farneback", size=16), FACE).inputs["flow"]
    b = load_motion_features(small, tmp_path, MotionConfig(method="dis", size=16), FACE).inputs["flow"]
    assert not np.array_equal(a.numpy(), b.numpy())


def test_missing_or_stale_features_are_errors_naming_the_sample(synthetic, tmp_path):
    small = synthetic.head(1)
    config = MotionConfig(method="farneback", size=16)
    with pytest.raises(DataError, match=small["sample"].iloc[0]):
        load_motion_features(small, tmp_path, config, FACE)
    preprocess_motion(small, tmp_path, config, FACE)
    moved = small.copy()
    moved["apex"] = pd.array([int(small["apex"].iloc[0]) + 1], dtype="Int64")
    with pytest.raises(DataError, match="stale cache"):
        load_motion_features(moved, tmp_path, config, FACE)


def test_unannotated_apex_is_spotted_in_the_stage(synthetic, tmp_path):
    small = synthetic.head(2).copy()
    small["apex"] = pd.array([None, None], dtype="Int64")
    preprocess_motion(small, tmp_path, MotionConfig(method="farneback", size=16), FACE)
    import json

    from merkit.face.cache import clip_dir

    for row in small.itertuples():
        folder = next(clip_dir(tmp_path, FACE, row.sample_id).glob("motion-*"))
        meta = json.loads((folder / "motion.json").read_text())
        assert meta["apex_source"] == "spotted" and row.onset <= meta["apex_frame"] <= row.offset


def test_two_workers_compute_the_same_features_as_one(synthetic, tmp_path):
    small = synthetic.head(3)
    config = MotionConfig(method="farneback", size=16)
    preprocess_motion(small, tmp_path / "one", config, FACE)
    preprocess_motion(small, tmp_path / "two", config, FACE, workers=2)
    one = load_motion_features(small, tmp_path / "one", config, FACE).inputs["flow"]
    two = load_motion_features(small, tmp_path / "two", config, FACE).inputs["flow"]
    np.testing.assert_array_equal(one.numpy(), two.numpy())
