"""``merkit preprocess`` and ``merkit show-face`` end to end, on real faces."""

from __future__ import annotations

import cv2
import numpy as np
import skimage.data
from PIL import Image
from typer.testing import CliRunner

from merkit.cli import app

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
                                 "--set", "data.face.crop=eyes"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "v.png").is_file()


def test_show_face_on_a_faceless_image_fails_with_the_clear_error(tmp_path):
    image = tmp_path / "coffee.png"
    cv2.imwrite(str(image), skimage.data.coffee()[:, :, ::-1])
    result = runner.invoke(app, ["show-face", str(image)])
    assert result.exit_code == 2
    assert "no face detected" in result.output and "sample=coffee.png" in result.output


def test_preprocess_command_caches_the_configs_inputs_and_evaluate_reuses_them(tmp_path):
    from merkit.config import load_config
    from merkit.inputs import load_inputs
    from merkit.synthetic import generate

    table = generate(tmp_path / "release", subjects=1, clips_per_class=1, duration=(3, 4))
    cache = tmp_path / "cache"
    args = ["preprocess", "synthetic", "--data", str(tmp_path / "release"), "--cache", str(cache),
            "--set", "data.face.size=64", "--set", "data.face.upsample=0",
            "--set", "data.motion.representations=[onset_apex_flow, apex_minus_onset]",
            "--set", "data.motion.method=dis", "--set", "data.motion.size=16"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"{len(table)} samples: {len(table)} computed, 0 from the cache, 0 failed" in result.output
    again = runner.invoke(app, args)
    assert f"0 computed, {len(table)} from the cache" in again.output
    overrides = args[7::2]  # the --set values
    config = load_config(None, ["data.kind=raw", "data.dataset=synthetic", f"data.path={tmp_path / 'release'}",
                                f"data.cache={cache}", *overrides])
    features = load_inputs(config.data)
    assert features.meta["clips"]["cached"] == len(table)
    assert features.inputs["flow"].shape == (len(table), 3, 16, 16)
    assert features.inputs["apex_minus_onset"].shape == (len(table), 1, 16, 16)


def test_preprocess_names_a_bad_setting_in_one_line(tmp_path):
    result = runner.invoke(app, ["preprocess", "casme2", "--data", str(tmp_path), "--set", "data.face.align=affine"])
    assert result.exit_code == 2
    assert result.output.startswith("error: data.face") and "align" in result.output
    bad = runner.invoke(app, ["preprocess", "casme2", "--data", str(tmp_path),
                              "--set", "data.motion.representations=[optical_magic]"])
    assert bad.exit_code == 2 and "optical_magic" in bad.output and len(bad.output.strip().splitlines()) == 1
