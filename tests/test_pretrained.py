"""Packaged models: the shipped megc2019-ststnet checkpoint, its model card, where its weights come from, and
``Predictor.from_pretrained`` by packaged name, local folder and (mocked) Hugging Face Hub id."""

from __future__ import annotations

import dataclasses
import glob
import re
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from merkit.checkpoint import Checkpoint
from merkit.cli import app
from merkit.config import load_config
from merkit.errors import CheckpointError
from merkit.inputs import Preprocessing
from merkit.predict import Predictor
from merkit.pretrained import CARD_NAME, DEFAULT_MODEL, PACKAGED_ROOT, packaged_model, packaged_models, read_card

REPO = Path(__file__).resolve().parents[1]
SHIPPED_CONFIG = REPO / "configs" / "megc2019" / "ststnet.yaml"
PARTS = ("full", "casme2", "samm", "smic")


@pytest.fixture(scope="module")
def packaged():
    return packaged_model(DEFAULT_MODEL)


def test_the_default_model_is_packaged_with_weights_config_record_and_card(packaged):
    assert [m.name for m in packaged_models()] == [DEFAULT_MODEL]
    for name in ("model.safetensors", "checkpoint.json", "config.yaml", CARD_NAME):
        assert (packaged.path / name).is_file(), name
    assert (packaged.path / "model.safetensors").stat().st_size < 64_000


def test_from_pretrained_loads_the_packaged_model_offline_with_the_composite_recipe(packaged, monkeypatch):
    import huggingface_hub

    def no_network(*args, **kwargs):
        raise AssertionError("a packaged model must not touch the Hub")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_network)
    predictor = Predictor.from_pretrained(DEFAULT_MODEL)
    assert predictor.source == f"{DEFAULT_MODEL} (packaged)"
    assert predictor.classes == ("negative", "positive", "surprise")
    # the record that rebuilds composite-like images from raw video: merkit's defaults but for the tighter crop
    # that frames faces like the composite's apex crops (docs/predict.md)
    face = dataclasses.replace(Preprocessing().face, crop="landmarks", margin=0.0)
    assert predictor.preprocessing == dataclasses.replace(Preprocessing(), face=face)
    assert Predictor.from_pretrained().source == predictor.source  # None is the default model
    probs, _ = predictor.forward({"flow": np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)})
    assert probs.shape == (3,) and abs(probs.sum() - 1) < 1e-6


def test_the_packaged_weights_come_from_the_shipped_config_and_its_first_seed(packaged):
    checkpoint, _ = Checkpoint.load(packaged.path)
    shipped = load_config(SHIPPED_CONFIG)
    assert checkpoint.config.result_hash() == shipped.result_hash()
    assert checkpoint.seed == shipped.protocol.seeds[0]
    assert checkpoint.preprocessing == shipped.data.preprocessing
    assert checkpoint.training_data["samples"] == 442 and checkpoint.training_data["subjects"] == 68
    assert checkpoint.environment  # the machine that trained it, for the retraining test below


def test_the_model_card_states_licence_data_figures_commands_and_limits(packaged):
    front, body = read_card(packaged.path / CARD_NAME)
    assert front["license"] == "other" and "research" in front["license_name"]
    assert {"tags", "datasets", "metrics", "model-index", "library_name"} <= set(front)
    figures = packaged.figures
    assert set(figures) == set(PARTS)
    for part in PARTS:
        assert {"uf1", "uf1_std", "uar", "uar_std"} <= set(figures[part])
    # the prose repeats the front matter's figures, not other ones
    for part in PARTS:
        for metric in ("uf1", "uar"):
            assert f"{figures[part][metric]:.4f} ± {figures[part][metric + '_std']:.4f}" in body, (part, metric)
    for needed in ("merkit evaluate --config configs/megc2019/ststnet.yaml", "merkit train --config "
                   "configs/megc2019/ststnet.yaml", "research use only", "442", "onset", "apex", "28×28",
                   "negative", "positive", "surprise", "Lab recordings", "elicited, not posed"):
        assert needed in body, needed
    for key, value in Preprocessing().to_dict()["face"].items():  # the record, field by field
        assert re.search(rf"\b{key}\b", body), key


def test_retraining_with_the_card_command_gives_the_packaged_predictions(packaged, composite_dir, tmp_path):
    """The card's command, run again here, rebuilds the shipped model: identical predictions on all 442 composite
    images. Skipped on another machine kind (another CPU or package versions round differently;
    docs/results.md)."""
    import torch

    from merkit.api import load_features
    from merkit.training.engine import describe_environment

    shipped, shipped_model = Checkpoint.load(packaged.path)
    if shipped.environment != describe_environment():
        pytest.skip(f"weights trained on {shipped.environment!r}; this machine is {describe_environment()!r}")
    out = tmp_path / "retrained"
    res = CliRunner().invoke(app, ["train", "--config", str(SHIPPED_CONFIG), "--data", str(composite_dir),
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    _, retrained = Checkpoint.load(out)
    flow = torch.as_tensor(load_features(load_config(SHIPPED_CONFIG, [f"data.path={composite_dir}"]))
                           .inputs["flow"])
    with torch.no_grad():
        expected = torch.softmax(shipped_model({"flow": flow}).logits, 1).numpy()
        got = torch.softmax(retrained({"flow": flow}).logits, 1).numpy()
    assert len(expected) == 442
    np.testing.assert_array_equal(got.argmax(1), expected.argmax(1))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_from_pretrained_takes_a_local_checkpoint_folder(packaged, tmp_path):
    folder = shutil.copytree(packaged.path, tmp_path / "my-checkpoint")
    predictor = Predictor.from_pretrained(folder)
    assert predictor.source == str(folder) and predictor.classes == ("negative", "positive", "surprise")


def test_from_pretrained_downloads_a_hub_repository(packaged, tmp_path, monkeypatch):
    import huggingface_hub

    calls = []

    def fake_snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        target = tmp_path / "hub" / repo_id.replace("/", "--")
        shutil.copytree(packaged.path, target, dirs_exist_ok=True)
        return str(target)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    predictor = Predictor.from_pretrained("someone/merkit-ststnet", revision="v1")
    assert predictor.source == "someone/merkit-ststnet (Hugging Face Hub, v1)"
    repo_id, kwargs = calls[0]
    assert repo_id == "someone/merkit-ststnet" and kwargs["revision"] == "v1"
    assert {"model.safetensors", "checkpoint.json", "config.yaml"} <= set(kwargs["allow_patterns"])


def test_a_hub_id_offline_and_not_cached_is_a_checkpoint_error(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(CheckpointError, match="offline.*someone/not-downloaded|someone/not-downloaded.*offline"):
        Predictor.from_pretrained("someone/not-downloaded", cache_dir=tmp_path / "hub")


def test_an_unknown_hub_repository_is_a_checkpoint_error(monkeypatch):
    import huggingface_hub
    from huggingface_hub import errors

    class Response:  # what the Hub's HTTP error reads of a response
        headers: dict = {}
        request = None
        status_code = 404

    def missing(repo_id, **kwargs):
        raise errors.RepositoryNotFoundError(f"404 Client Error: repository {repo_id} not found", response=Response())

    monkeypatch.setattr(huggingface_hub, "snapshot_download", missing)
    with pytest.raises(CheckpointError, match="no such repository"):
        Predictor.from_pretrained("someone/does-not-exist")


def test_an_unknown_name_is_a_checkpoint_error_listing_the_packaged_models():
    with pytest.raises(CheckpointError, match=f"not a checkpoint folder, a packaged model \\({DEFAULT_MODEL}"):
        Predictor.from_pretrained("no-such-model")


def test_merkit_models_lists_the_packaged_models_with_their_card_figures(packaged):
    res = CliRunner().invoke(app, ["models"])
    assert res.exit_code == 0, res.output
    full = packaged.figures["full"]
    assert f"{DEFAULT_MODEL} (default)" in res.output
    assert re.search(rf"full +UF1 {full['uf1']:.4f} ± {full['uf1_std']:.4f} +UAR {full['uar']:.4f}", res.output)
    assert all(re.search(rf"^ +{part} +UF1", res.output, re.M) for part in PARTS)
    assert "442 samples, 68 subjects" in res.output and "research" in res.output


def test_predict_without_a_checkpoint_uses_and_names_the_packaged_model(shared_data, tmp_path):
    out = tmp_path / "clip"
    res = CliRunner().invoke(app, ["predict", str(shared_data / "faces" / "WolfgangLanger_Pexels.mp4"), "--onset",
                                   "300", "--apex", "306", "--out", str(out), "--no-figure"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith(f"model: {DEFAULT_MODEL} (packaged, the default): ststnet trained on 442 samples")
    assert (out / "prediction.json").is_file()


def test_a_wheel_carries_the_packaged_models():
    """pyproject's package-data globs match every file of every packaged model folder."""
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["merkit"]
    package = PACKAGED_ROOT.parents[1]
    carried = {Path(p) for pattern in patterns for p in glob.glob(pattern, root_dir=package, recursive=True)}
    files = {p.relative_to(package) for p in PACKAGED_ROOT.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert files and files <= carried, sorted(files - carried)
