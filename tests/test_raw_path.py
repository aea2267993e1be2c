"""``data.kind: raw``: a release on disk -> face stage -> motion stage -> LOSO, and checkpoints that keep the
preprocessing record, through the same API as precomputed flow folders."""

import json

import pytest

from merkit.api import evaluate, load_features, train
from merkit.config import load_config
from merkit.errors import ConfigError
from merkit.inputs import Preprocessing


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    from merkit.synthetic import generate

    root = tmp_path_factory.mktemp("synthetic")
    generate(root, subjects=3, clips_per_class=2, seed=5, duration=(6, 9))
    return root


def raw_config(release, cache, *extra):
    return load_config(None, [
        "data.kind=raw", "data.dataset=synthetic", f"data.path={release}", f"data.cache={cache}",
        "data.face={size: 64, color: grey, upsample: 0}",
        "data.motion={representations: [onset_apex_flow], method: dis, size: 28}",
        "training.epochs=3", "training.batch_size=8", "protocol.save_checkpoints=false", *extra])


def test_raw_release_runs_through_face_motion_and_loso(release, tmp_path):
    cfg = raw_config(release, tmp_path / "cache")
    features = load_features(cfg)
    assert features.inputs["flow"].shape == (18, 3, 28, 28)
    assert features.table["subject_id"].nunique() == 3
    assert Preprocessing.from_dict(features.meta["preprocessing"]).motion.method == "dis"
    result = evaluate(cfg, tmp_path / "run", features=features, progress=False)
    assert len(result.predictions) == 18 and result.predictions["fold"].nunique() == 3
    assert "synthetic release" in result.report_path.read_text()
    saved = json.loads((tmp_path / "run" / "preprocessing.json").read_text())
    assert Preprocessing.from_dict(saved) == cfg.data.preprocessing
    # the second load reuses the cache: same inputs, bit for bit
    again = load_features(cfg)
    assert again.meta["clips"]["cached"] == 18 and (again.inputs["flow"] == features.inputs["flow"]).all()


def test_checkpoint_trained_on_raw_clips_keeps_a_reproducible_preprocessing_record(release, tmp_path):
    folder = train(raw_config(release, tmp_path / "cache"), tmp_path / "ckpt")
    record = json.loads((folder / "checkpoint.json").read_text())["preprocessing"]
    prep = Preprocessing.from_dict(record)
    assert prep.face.size == 64 and prep.motion.representations == ("onset_apex_flow",)


def test_raw_config_needs_a_dataset_name_and_known_settings(release, tmp_path):
    with pytest.raises(ConfigError, match="data.dataset"):
        load_features(load_config(None, ["data.kind=raw", f"data.path={release}"]))
    with pytest.raises(ConfigError, match=r"data.face.sharpen"):  # caught when the config loads, before any work
        raw_config(release, tmp_path, "data.face={sharpen: 3}")
    with pytest.raises(ConfigError, match="data.face.size must be int"):
        raw_config(release, tmp_path, "data.face.size=big")


def test_each_release_gets_its_own_default_preprocessing_cache(tmp_path, monkeypatch):
    from merkit.inputs import release_cache_dir

    monkeypatch.setenv("MERKIT_CACHE", str(tmp_path / "cache"))
    first, second = release_cache_dir(tmp_path / "a" / "synth"), release_cache_dir(tmp_path / "b" / "synth")
    assert first != second and first.parent == second.parent == tmp_path / "cache" / "preprocess"
    assert first.name.startswith("synth-") and release_cache_dir(tmp_path / "a" / ".." / "a" / "synth") == first
