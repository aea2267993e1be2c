"""``model.init``: a run's folds start from a checkpoint's weights (issue 32, synthetic pretraining), and only from
one that has seen none of the data the run evaluates."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

from merkit import api
from merkit.config import ModelConfig, ProtocolConfig, RunConfig, TrainConfig
from merkit.errors import ConfigError, LeakageError
from merkit.features import FeatureSet

from helpers import toy_flow_features


def _renamed(features: FeatureSet, dataset: str) -> FeatureSet:
    table = features.table.copy()
    table["dataset"] = dataset
    table["sample_id"] = [f"{dataset}/{s}/{n}" for s, n in zip(table["subject"], table["sample"])]
    table["subject_id"] = [f"{dataset}/{s}" for s in table["subject"]]
    return FeatureSet(table, features.inputs, features.classes, meta=dict(features.meta))


def _config(init: str | None = None, epochs: int = 1) -> RunConfig:
    return RunConfig(name="init-test", model=ModelConfig(name="ststnet", preset="cpu", init=init),
                     training=TrainConfig(epochs=epochs, batch_size=16), protocol=ProtocolConfig(seeds=[0]))


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    """A tiny STSTNet checkpoint trained on toy data named ``synthetic`` (as merkit's synthetic data is)."""
    root = tmp_path_factory.mktemp("init")
    return api.train(_config(epochs=2), root / "pretrained", features=_renamed(toy_flow_features(3, 2, seed=5),
                                                                              "synthetic"))


def test_every_fold_starts_from_the_checkpoints_weights(pretrained):
    spec = _config(init=str(pretrained)).resolve().protocol.own.model
    model = spec.build(3)
    saved = load_file(str(pretrained / "model.safetensors"))
    assert saved and all(torch.equal(model.state_dict()[k], v) for k, v in saved.items())
    assert any("trained from" in note for note in spec.notes)
    fresh = _config().resolve().protocol.own.model.build(3)
    assert not all(torch.equal(fresh.state_dict()[k], v) for k, v in saved.items())


def test_a_run_from_synthetic_weights_evaluates_real_data_and_names_its_start(pretrained, tmp_path):
    features = _renamed(toy_flow_features(3, 2), "casme2")
    result = api.evaluate(_config(init=str(pretrained)), tmp_path / "run", features=features, progress=False)
    assert len(result.predictions) == len(features)
    assert f"init: {pretrained}" in (tmp_path / "run" / "config.yaml").read_text()
    plain = api.evaluate(_config(), tmp_path / "plain", features=features, progress=False)
    assert not np.allclose(result.predictions.filter(like="prob_").to_numpy(),
                           plain.predictions.filter(like="prob_").to_numpy())


def test_the_result_hash_holds_the_weights_not_the_path(pretrained, tmp_path):
    copy = Path(shutil.copytree(pretrained, tmp_path / "copy"))
    assert _config(init=str(copy)).result_hash() == _config(init=str(pretrained)).result_hash()
    assert _config(init=str(copy)).result_hash() != _config().result_hash()
    state = {k: v.clone() for k, v in load_file(str(copy / "model.safetensors")).items()}
    first = next(iter(state))
    state[first] = state[first] + 1.0
    save_file(state, str(copy / "model.safetensors"))
    assert _config(init=str(copy)).result_hash() != _config(init=str(pretrained)).result_hash()
    assert "init" not in _config().to_dict()["model"]  # a config without it keeps its hash (LATER_KEYS)


@pytest.mark.parametrize("datasets", [["casme2"], ["samm", "synthetic"]])
def test_a_start_trained_on_an_evaluated_dataset_is_refused_before_anything_is_written(tmp_path, datasets):
    """The guard holds for any overlap of the start's training datasets with the evaluated ones."""
    seen = toy_flow_features(3, 2, seed=7)
    parts = [_renamed(seen, name) for name in datasets]
    table = pd.concat([p.table for p in parts], ignore_index=True)
    training = FeatureSet(table, {"flow": torch.cat([p.inputs["flow"] for p in parts])}, seen.classes,
                          meta=dict(seen.meta))
    leaked = api.train(_config(), tmp_path / "leaked", features=training)
    evaluated = _renamed(toy_flow_features(3, 2), datasets[0])
    with pytest.raises(LeakageError, match=f"trained on {datasets[0]}, which this run evaluates") as error:
        api.evaluate(_config(init=str(leaked)), tmp_path / "run", features=evaluated, progress=False)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()


def test_a_start_of_another_model_or_other_classes_is_refused(pretrained, tmp_path):
    other = dataclasses.replace(_config(init=str(pretrained)), model=ModelConfig(name="ststnet", preset="paper",
                                                                               init=str(pretrained)))
    with pytest.raises(ConfigError, match="holds ststnet preset cpu"):
        other.resolve()
    with pytest.raises(ConfigError, match="not a readable merkit checkpoint"):
        _config(init=str(tmp_path / "nothing")).resolve()
    features = _renamed(toy_flow_features(3, 2), "casme2")
    swapped = FeatureSet(features.table, features.inputs, ("positive", "negative", "surprise"),
                         meta=dict(features.meta))
    with pytest.raises(ConfigError, match="has classes"):
        api.evaluate(_config(init=str(pretrained)), tmp_path / "run", features=swapped, progress=False)


def test_a_start_whose_preset_now_builds_another_network_is_refused(pretrained, tmp_path):
    """Same model, preset and params, but trained as another network (its record's ``model_config``): loading
    would fit the weight shapes and silently be another network, as ``Checkpoint.load`` refuses too."""
    import json

    copy = Path(shutil.copytree(pretrained, tmp_path / "drifted"))
    meta = json.loads((copy / "checkpoint.json").read_text())
    meta["model_config"]["padding"] = 2
    (copy / "checkpoint.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="now builds padding=1, the weights were trained with padding=2"):
        _config(init=str(copy)).resolve()
    meta.pop("model_config")
    meta["preset"] = None
    (copy / "checkpoint.json").write_text(json.dumps(meta))
    paper = dataclasses.replace(_config(init=str(copy)), model=ModelConfig(name="ststnet", init=str(copy)))
    with pytest.raises(ConfigError, match="set its preset to cpu"):
        paper.resolve()
