"""Checkpoints (merkit.checkpoint) and their preprocessing record: what predict can reproduce, and the errors for what
it cannot."""

from __future__ import annotations

import json

import pytest

from merkit import api
from merkit.checkpoint import Checkpoint
from merkit.config import DataConfig, ModelConfig, ProtocolConfig, RunConfig, TrainConfig
from merkit.errors import CheckpointError
from merkit.face.clip import FaceConfig
from merkit.inputs import Preprocessing
from merkit.motion.stage import MotionConfig
from merkit.predict import Predictor
from tests.helpers import toy_flow_features

FACE = FaceConfig(size=96, upsample=0)


def _train(tmp_path, record: Preprocessing = Preprocessing(), name="ck"):
    config = RunConfig(name="toy", data=DataConfig(face=record.face, motion=record.motion),
                       model=ModelConfig(name="ststnet", preset="cpu"),
                       training=TrainConfig(epochs=1, batch_size=16), protocol=ProtocolConfig(seeds=[0]))
    return api.train(config, tmp_path / name, features=toy_flow_features(subjects=2, per_class=2))


def _edit(folder, change):
    path = folder / "checkpoint.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))
    return folder


def test_the_record_round_trips_through_the_checkpoint(tmp_path):
    record = Preprocessing(FACE, MotionConfig(flow_params={"nscales": 3}))
    folder = _train(tmp_path, record)
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.json", "config.yaml", "model.safetensors"]
    predictor = Predictor.from_checkpoint(folder)
    assert predictor.preprocessing == record and predictor.preprocessing.motion.flow_params == {"nscales": 3}
    assert predictor.classes == ("negative", "positive", "surprise") and not predictor.notes
    checkpoint, model = Checkpoint.load(folder)
    assert checkpoint.config.data.preprocessing == record and checkpoint.input_keys == ("flow",)
    assert checkpoint.training_data["samples"] == 12 and not model.training


def test_a_model_trained_on_a_flow_folder_records_the_composite_recipe_by_default(tmp_path):
    predictor = Predictor.from_checkpoint(_train(tmp_path))
    assert predictor.preprocessing == Preprocessing()
    assert (predictor.preprocessing.motion.size, predictor.preprocessing.motion.method) == (28, "tvl1")
    assert (predictor.preprocessing.face.size, predictor.preprocessing.face.color) == (224, "grey")


def test_an_unknown_representation_is_refused_with_its_name(tmp_path):
    folder = _edit(_train(tmp_path), lambda m: m["preprocessing"]["motion"].update(representations=["magic_flow"]))
    with pytest.raises(CheckpointError, match="magic_flow"):
        Predictor.from_checkpoint(folder)


def test_missing_or_unknown_settings_are_refused_naming_the_keys(tmp_path):
    folder = _edit(_train(tmp_path), lambda m: m["preprocessing"]["face"].pop("crop"))
    with pytest.raises(CheckpointError, match=r"missing keys \['crop'\]"):
        Predictor.from_checkpoint(folder)
    folder = _edit(_train(tmp_path, name="ck2"), lambda m: m["preprocessing"]["motion"].update(denoise=True))
    with pytest.raises(CheckpointError, match=r"unknown keys \['denoise'\]"):
        Predictor.from_checkpoint(folder)


def test_another_major_version_is_refused(tmp_path):
    folder = _edit(_train(tmp_path), lambda m: m["preprocessing"].update(merkit_version="7.0.0"))
    with pytest.raises(CheckpointError, match="merkit 7.0.0"):
        Predictor.from_checkpoint(folder)
    _edit(folder, lambda m: m.update(merkit_version="7.0.0"))
    with pytest.raises(CheckpointError, match="merkit 7.0.0"):
        Predictor.from_checkpoint(folder)


def test_preprocessing_that_does_not_build_the_model_inputs_is_refused(tmp_path):
    folder = _train(tmp_path)
    with pytest.raises(CheckpointError, match=r"needs inputs \['flow'\]"):
        Predictor.from_checkpoint(folder, Preprocessing(FACE, MotionConfig(representations=("apex_minus_onset",))))
    override = Predictor.from_checkpoint(folder, Preprocessing(FACE))
    assert override.preprocessing.face == FACE and override.notes


def test_a_damaged_file_of_any_kind_is_a_checkpoint_error_naming_it(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint.json not found"):
        Predictor.from_checkpoint(tmp_path)
    for name, damage in (("checkpoint.json", b'{"model": "ststnet", "clas'), ("model.safetensors", b"\x00" * 40),
                         ("config.yaml", b"training: [unclosed"), ("checkpoint.json", b"\xff\xfe")):
        folder = _train(tmp_path, name=f"bad-{name}")
        (folder / name).write_bytes(damage)
        with pytest.raises(CheckpointError, match=name.replace(".", r"\.")):
            Predictor.from_checkpoint(folder)
    folder = _train(tmp_path, name="other-model")
    _edit(folder, lambda m: m.update(params={"dropout": 0.5, "widths": [1, 2, 3]}))
    with pytest.raises(CheckpointError, match="model.safetensors does not fit|cannot rebuild"):
        Predictor.from_checkpoint(folder)


def test_a_checkpoint_records_its_model_config_and_refuses_a_preset_that_now_builds_another_network(tmp_path):
    """Issue 33 changed what each `paper` preset builds (same weight shapes, other outputs); a checkpoint records
    every field its model was trained with, and loading refuses one that its preset no longer reproduces."""
    folder = _train(tmp_path)
    meta = json.loads((folder / "checkpoint.json").read_text())
    assert meta["model_config"]["padding"] == 1 and meta["model_config"]["bgr"] is False
    Checkpoint.load(folder)  # as trained: loads
    _edit(folder, lambda m: m["model_config"].update(padding=2))
    with pytest.raises(CheckpointError, match=r"now builds padding=1, the weights were trained with padding=2") as e:
        Checkpoint.load(folder)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("preset, loads", [("paper", False), ("cpu", True)])
def test_an_old_checkpoint_of_a_preset_whose_meaning_changed_is_refused_naming_the_old_one(tmp_path, preset, loads):
    folder = _edit(_train(tmp_path), lambda m: (m.pop("model_config"), m.update(preset=preset)))
    if loads:
        Checkpoint.load(folder)
        return
    with pytest.raises(CheckpointError, match="set its preset to cpu"):
        Checkpoint.load(folder)


def test_the_packaged_model_records_the_config_it_was_trained_with():
    from merkit.checkpoint import resolved_model_config
    from merkit.pretrained import resolve_checkpoint

    meta = Checkpoint.read_record(resolve_checkpoint("megc2019-ststnet")[0])
    assert meta["model_config"] == resolved_model_config(meta["model"], meta["preset"], meta["params"])
