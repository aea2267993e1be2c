"""Checkpoints and their preprocessing record: what predict can reproduce, and the errors for what it cannot."""

from __future__ import annotations

import dataclasses
import json

import pytest

from merkit import api
from merkit.config import DataConfig, ModelConfig, ProtocolConfig, RunConfig, TrainConfig
from merkit.face.clip import FaceConfig
from merkit.motion.stage import MotionConfig
from merkit.errors import CheckpointError
from merkit.predict import Predictor
from merkit.preprocessing import COMPOSITE_FLOW, Preprocessing
from tests.helpers import toy_flow_features

FACE = FaceConfig(size=96, color="grey", upsample=0)


def _train(tmp_path, preprocessing=None, kind="flow_folder", name="ck"):
    config = RunConfig(name="toy", data=DataConfig(kind=kind), model=ModelConfig(name="ststnet", preset="cpu"),
                       training=TrainConfig(epochs=1, batch_size=16), protocol=ProtocolConfig(seeds=[0]))
    return api.train(config, tmp_path / name, features=toy_flow_features(subjects=2, per_class=2),
                     preprocessing=preprocessing)


def _edit(folder, change):
    path = folder / "checkpoint.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))
    return folder


def test_preprocessing_record_round_trips_through_the_checkpoint(tmp_path):
    prep = Preprocessing.onset_apex_flow(FACE, 28, nscales=3)
    predictor = Predictor.from_checkpoint(_train(tmp_path, prep.to_dict()))
    assert predictor.preprocessing == prep
    assert predictor.preprocessing.motion.flow_params == {"nscales": 3}
    assert predictor.classes == ("negative", "positive", "surprise") and not predictor.notes


def test_unknown_representation_is_refused_with_its_name(tmp_path):
    folder = _train(tmp_path, COMPOSITE_FLOW.to_dict())
    _edit(folder, lambda m: m["preprocessing"]["motion"].update(representations=["magic_flow"]))
    with pytest.raises(CheckpointError, match="magic_flow"):
        Predictor.from_checkpoint(folder)


def test_missing_or_unknown_settings_are_refused_naming_the_keys(tmp_path):
    folder = _train(tmp_path, COMPOSITE_FLOW.to_dict())
    _edit(folder, lambda m: m["preprocessing"]["face"].pop("crop"))
    with pytest.raises(CheckpointError, match=r"missing keys \['crop'\]"):
        Predictor.from_checkpoint(folder)
    folder = _train(tmp_path, COMPOSITE_FLOW.to_dict(), name="ck2")
    _edit(folder, lambda m: m["preprocessing"]["motion"].update(denoise=True))
    with pytest.raises(CheckpointError, match=r"unknown keys \['denoise'\]"):
        Predictor.from_checkpoint(folder)


def test_other_major_version_is_refused(tmp_path):
    folder = _train(tmp_path, COMPOSITE_FLOW.to_dict())
    _edit(folder, lambda m: m["preprocessing"].update(merkit_version="7.0.0"))
    with pytest.raises(CheckpointError, match="merkit 7.0.0"):
        Predictor.from_checkpoint(folder)
    _edit(folder, lambda m: m.update(merkit_version="7.0.0"))
    with pytest.raises(CheckpointError, match="merkit 7.0.0"):
        Predictor.from_checkpoint(folder)


def test_preprocessing_that_does_not_build_the_model_inputs_is_refused(tmp_path):
    prep = Preprocessing(FACE, MotionConfig(representations=("apex_minus_onset",)))
    with pytest.raises(CheckpointError, match=r"needs inputs \['flow'\]"):
        Predictor.from_checkpoint(_train(tmp_path, prep.to_dict()))


def test_composite_trained_checkpoint_without_record_uses_the_composite_recipe(tmp_path):
    predictor = Predictor.from_checkpoint(_train(tmp_path, None))
    assert predictor.preprocessing == COMPOSITE_FLOW
    assert predictor.preprocessing.motion.size == 28 and predictor.preprocessing.motion.method == "tvl1"
    assert any("records no preprocessing" in n for n in predictor.notes)


def test_checkpoint_without_record_on_other_inputs_says_what_is_missing(tmp_path):
    folder = _train(tmp_path, None, kind="synthetic")
    with pytest.raises(CheckpointError, match="records no preprocessing.*'synthetic'.*face settings"):
        Predictor.from_checkpoint(folder)
    override = Predictor.from_checkpoint(folder, preprocessing=dataclasses.replace(COMPOSITE_FLOW, face=FACE))
    assert override.preprocessing.face == FACE and override.notes


def test_folder_that_is_not_a_checkpoint_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint.json not found"):
        Predictor.from_checkpoint(tmp_path)
