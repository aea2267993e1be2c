"""``merkit preprocess`` and ``merkit show-face`` end to end, on real faces."""

from __future__ import annotations

import json

import cv2
import numpy as np
import skimage.data
from PIL import Image
from typer.testing import CliRunner

from merkit.cli import app
from merkit.face.cache import load_clip
from merkit.face.clip import FaceConfig

runner = CliRunner()


def test_show_face_draws_a_figure_of_an_image(tmp_path):
    image = tmp_path / "astronaut.png"
    cv2.imwrite(str(image), skimage.data.astronaut()[:, :, ::-1])
    result = runner.invoke(app, ["show-face", str(image), "--out", str(tmp_path / "fig.png")])
    assert result.exit_code == 0, result.output
    figure = np.asarray(Image.open(tmp_path / "fig.png").convert("RGB"))
    assert figure.shape[1] > 2 * figure.shape[0]  # three panels side by side
    assert figure.std() > 20  # a picture, not a blank canvas


def test_show_face_reads_a_video_frame(shared_data, tmp_path):
    video = shared_data / "faces" / "WolfgangLanger_Pexels.mp4"
    result = runner.invoke(app, ["show-face", str(video), "--frame", "100", "--out", str(tmp_path / "v.png"),
                                 "--crop", "eyes"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "v.png").is_file()


def test_show_face_on_a_faceless_image_fails_with_the_clear_error(tmp_path):
    image = tmp_path / "coffee.png"
    cv2.imwrite(str(image), skimage.data.coffee()[:, :, ::-1])
    result = runner.invoke(app, ["show-face", str(image)])
    assert result.exit_code == 2
    assert "no face detected" in result.output and "sample=coffee.png" in result.output


def test_preprocess_command_aligns_a_casme2_layout_dataset(tmp_path):
    from merkit.datasets.synthetic import generate

    table = generate(tmp_path / "casme2", subjects=1, clips_per_class=1, duration=(3, 4))
    out = tmp_path / "cache"
    args = ["preprocess", "casme2", "--root", str(tmp_path / "casme2"), "--out", str(out), "--size", "64",
            "--grey"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    config = FaceConfig(size=64, color="grey")
    summary = json.loads((out / f"face-{config.config_hash()}" / "summary.json").read_text())
    assert summary["aligned"] == len(table) and summary["failed"] == 0
    clip = load_clip(out, f"casme2/sub01/{table['sample'].iloc[0]}", config)
    assert clip.frames.ndim == 3 and clip.frames.shape[1:] == (64, 64)
    again = runner.invoke(app, args)
    assert f"{len(table)} from cache" in again.output
    stable = runner.invoke(app, args + ["--stabilise", "ecc", "--freeze-eyes"])
    assert stable.exit_code == 0, stable.output
    stable_config = FaceConfig(size=64, color="grey", stabilise="ecc", freeze_eyes=True)
    clip = load_clip(out, f"casme2/sub01/{table['sample'].iloc[0]}", stable_config)
    assert clip.stabilisation.shape == (len(clip.frames), 2, 3)


def test_preprocess_rejects_an_unknown_alignment(tmp_path):
    result = runner.invoke(app, ["preprocess", "casme2", "--root", str(tmp_path), "--out", str(tmp_path),
                                 "--align", "affine"])
    assert result.exit_code != 0
    assert "align" in result.output


def test_preprocess_with_motion_caches_the_requested_representations(tmp_path):
    from merkit.datasets.registry import load_dataset
    from merkit.datasets.synthetic import generate
    from merkit.motion.stage import MotionConfig, load_motion_features

    generate(tmp_path / "casme2", subjects=1, clips_per_class=1, duration=(3, 4))
    out = tmp_path / "cache"
    args = ["preprocess", "casme2", "--root", str(tmp_path / "casme2"), "--out", str(out), "--size", "64",
            "--grey", "--motion", "onset_apex_flow", "--motion", "apex_minus_onset", "--flow-method", "dis",
            "--motion-size", "16"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    table = load_dataset("casme2", tmp_path / "casme2")
    motion = MotionConfig(representations=("onset_apex_flow", "apex_minus_onset"), method="dis", size=16)
    features = load_motion_features(table, out, motion, FaceConfig(size=64, color="grey"), scheme="casme2-3class")
    assert features.inputs["flow"].shape == (len(table), 3, 16, 16)
    assert features.inputs["apex_minus_onset"].shape == (len(table), 1, 16, 16)
    bad = runner.invoke(app, args[:-4] + ["--motion", "optical_magic"])
    assert bad.exit_code == 2 and "optical_magic" in bad.output
