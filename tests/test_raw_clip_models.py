"""MMNet / CVA+FPF / FRL-DGT inputs through the raw-clip path: release -> face -> motion -> FeatureSet -> LOSO."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from merkit.api import evaluate, load_features
from merkit.config import load_config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    from merkit.synthetic import generate

    root = tmp_path_factory.mktemp("synthetic")
    generate(root, subjects=3, clips_per_class=1, seed=7, duration=(8, 10))
    return root


def raw_config(release, cache, motion: str, *extra):
    return load_config(None, [
        "data.kind=raw", "data.dataset=synthetic", f"data.path={release}", f"data.cache={cache}",
        "data.face={size: 64, color: grey, upsample: 0}", f"data.motion={motion}",
        "protocol.save_checkpoints=false", *extra])


def test_mmnet_runs_loso_on_raw_clips_with_temporal_jitter(release, tmp_path):
    cfg = raw_config(release, tmp_path / "cache", "{representations: [apex_minus_onset, onset_apex_frames], "
                     "size: 28, jitter: 1}", "model.name=mmnet", "model.preset=cpu", "training.epochs=2",
                     "training.batch_size=4", "training.augment=[temporal_jitter, hflip]")
    features = load_features(cfg)
    n = len(features)
    assert features.inputs["onset_window"].shape == (n, 3, 1, 28, 28)
    assert features.inputs["jitter_bounds"].dtype == torch.int64
    assert features.inputs["jitter_bounds"].tolist() == [[0, 2, 0, 2]] * n  # symmetric, the default
    assert (features.inputs["apex_minus_onset"] == features.inputs["apex"] - features.inputs["onset"]).all()
    result = evaluate(cfg, tmp_path / "run", features=features, progress=False)
    assert len(result.predictions) == n == 9 and result.predictions["fold"].nunique() == 3
    assert np.isfinite(result.predictions.filter(like="prob_").to_numpy()).all()
    assert "temporal jitter" in result.report_path.read_text()


def test_the_inward_jitter_mode_reaches_the_feature_set_and_the_report(release, tmp_path):
    cfg = raw_config(release, tmp_path / "cache", "{representations: [apex_minus_onset, onset_apex_frames], "
                     "size: 28, jitter: 1, jitter_mode: inward}", "model.name=mmnet", "model.preset=cpu",
                     "training.epochs=1", "training.batch_size=4", "training.augment=[temporal_jitter]")
    features = load_features(cfg)
    assert features.meta["preprocessing"]["motion"]["jitter_mode"] == "inward"
    spans = features.table["apex"] - features.table["onset"]
    expected = [[1, 1 + min(1, int(0.15 * s / 4)), 1 - min(1, int(0.15 * s / 4)), 1] for s in spans]
    assert features.inputs["jitter_bounds"].tolist() == expected
    result = evaluate(cfg, tmp_path / "run", features=features, progress=False)
    assert "jitter mode inward" in result.report_path.read_text()


def test_face_stage_au_boxes_and_ss_pairs_reach_the_feature_set(release, tmp_path):
    from merkit.datasets.registry import load_dataset
    from merkit.face.regions import au_regions
    from merkit.inputs import row_inputs

    cfg = raw_config(release, tmp_path / "cache", "{representations: [onset_apex_frames, au_boxes, ss_pairs], "
                     "size: 32, ss_pairs: 3}")
    features = load_features(cfg)
    boxes = features.inputs["au_boxes"]
    assert boxes.shape == (9, 9, 4) and (boxes >= 0).all() and (boxes <= 1).all()
    row = load_dataset("synthetic", release).set_index("sample_id", drop=False).loc[features.table["sample_id"][4]]
    clip = row_inputs(row.to_dict(), cfg.data.preprocessing).clip  # the onset's landmarks in the 64 px crop
    expected = np.array(list(au_regions(clip.landmarks, 64).values())) / 64
    np.testing.assert_allclose(boxes[4].numpy(), expected, atol=1e-6)
    assert features.inputs["ss_onset"].shape == features.inputs["ss_apex"].shape == (9, 3, 1, 32, 32)
    again = load_features(raw_config(release, tmp_path / "other-cache", "{representations: [onset_apex_frames, "
                                     "au_boxes, ss_pairs], size: 32, ss_pairs: 3}"))
    assert (again.inputs["ss_apex"] == features.inputs["ss_apex"]).all()  # fixed by the sample id
