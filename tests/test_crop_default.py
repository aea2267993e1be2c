"""One face crop by default (issue 35): merkit's defaults, ``merkit export-flow``'s record and ``merkit show-face``
use the crop of the packaged model's record (the composite's, ``docs/predict.md``), and ``show-face --checkpoint``
draws the crop a checkpoint's record feeds its model."""

from __future__ import annotations

import json
import shutil

import cv2
import pytest
import skimage.data
from typer.testing import CliRunner

from merkit.cli import app
from merkit.face.clip import FaceConfig
from merkit.inputs.record import Preprocessing
from merkit.pretrained import DEFAULT_MODEL, packaged_model

runner = CliRunner()


def _packaged_record() -> dict:
    return json.loads((packaged_model(DEFAULT_MODEL).path / "checkpoint.json").read_text())["preprocessing"]


def test_merkits_default_record_is_the_packaged_models_record():
    packaged = Preprocessing.from_dict(_packaged_record())
    assert packaged == Preprocessing()
    assert (FaceConfig().crop, FaceConfig().margin) == ("landmarks", 0.0)


def test_export_flow_records_the_packaged_models_crop_by_default_and_the_folder_checks_clean(tmp_path):
    from merkit.synthetic import generate

    generate(tmp_path / "release", subjects=1, clips_per_class=1, duration=(3, 4))
    out = tmp_path / "export"
    result = runner.invoke(app, ["export-flow", "synthetic", "--data", str(tmp_path / "release"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    face = json.loads((out / "export.json").read_text())["preprocessing"]["face"]
    assert face == _packaged_record()["face"]
    check = runner.invoke(app, ["datasets", "check", "synthetic", "--root", str(out)])
    assert check.exit_code == 0 and check.output.rstrip().endswith("OK"), check.output


@pytest.fixture
def drawn(monkeypatch, tmp_path):
    """``merkit show-face`` on the astronaut with the drawing replaced by a recorder of the face settings."""
    import merkit.face.show

    faces = []
    monkeypatch.setattr(merkit.face.show, "show_face", lambda source, out, face, frame: faces.append(face) or out)
    image = tmp_path / "astronaut.png"
    cv2.imwrite(str(image), skimage.data.astronaut()[:, :, ::-1])

    def run(*args: str) -> FaceConfig:
        result = runner.invoke(app, ["show-face", str(image), *args])
        assert result.exit_code == 0, result.output
        return faces[-1]

    return run


def test_show_face_draws_the_packaged_models_crop_by_default_and_a_checkpoints_own_with_checkpoint(drawn, tmp_path):
    packaged = Preprocessing.from_dict(_packaged_record()).face
    assert drawn() == packaged
    assert drawn("--checkpoint", DEFAULT_MODEL) == packaged
    # a checkpoint whose record crops otherwise: show-face draws its record, not the defaults
    folder = tmp_path / "ckpt"
    shutil.copytree(packaged_model(DEFAULT_MODEL).path, folder)
    meta = json.loads((folder / "checkpoint.json").read_text())
    meta["preprocessing"]["face"].update(crop="eyes", size=112)
    (folder / "checkpoint.json").write_text(json.dumps(meta))
    face = drawn("--checkpoint", str(folder))
    assert (face.crop, face.size) == ("eyes", 112)
    assert drawn("--set", "data.face.crop=slstt").crop == "slstt"


def test_show_face_refuses_checkpoint_with_set_in_one_line(tmp_path):
    result = runner.invoke(app, ["show-face", str(tmp_path / "x.png"), "--checkpoint", DEFAULT_MODEL,
                                 "--set", "data.face.crop=eyes"])
    assert result.exit_code == 2
    assert result.output.startswith("error: --checkpoint draws the checkpoint's own face settings")
