"""merkit predict end to end: a small STSTNet checkpoint trained on synthetic clips, then recognition and spotting
on the real Pexels video, several faces, faceless frames and bad inputs."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from merkit.cli import app
from merkit.errors import DataError
from merkit.face.clip import FaceConfig
from merkit.inputs import Preprocessing, build_inputs, clip_inputs
from merkit.motion.stage import MotionConfig
from merkit.predict import Prediction, Predictor, VideoFrames

PEXELS = "faces/WolfgangLanger_Pexels.mp4"
# A 112 px grey crop and a fast TV-L1 keep the fixture at a few seconds; the settings travel in the checkpoint.
RECORD = Preprocessing(FaceConfig(size=112, upsample=0),
                       MotionConfig(flow_params={"nscales": 3, "warps": 2, "epsilon": 0.02}))


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    """A 3-class STSTNet checkpoint trained for a few epochs on 6 synthetic clips (built once per session)."""
    from merkit import api
    from merkit.config import DataConfig, ModelConfig, ProtocolConfig, RunConfig, TrainConfig
    from merkit.synthetic import generate

    root = tmp_path_factory.mktemp("predict")
    table = generate(root / "synthetic", subjects=1, clips_per_class=2, seed=3, duration=(15, 15))
    features = build_inputs(table, RECORD)
    config = RunConfig(name="predict-test", data=DataConfig(kind="raw", dataset="synthetic"),
                       model=ModelConfig(name="ststnet", preset="cpu"),
                       training=TrainConfig(epochs=3, batch_size=8), protocol=ProtocolConfig(seeds=[0]))
    return api.train(config, root / "ckpt", features=features)


@pytest.fixture(scope="session")
def predictor(checkpoint) -> Predictor:
    return Predictor.from_checkpoint(checkpoint)


@pytest.fixture(scope="session")
def pexels(shared_data):
    return shared_data / PEXELS


def test_cli_predict_on_real_video_writes_json_with_probabilities_and_figure(checkpoint, pexels, tmp_path):
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["predict", str(pexels), "--checkpoint", str(checkpoint), "--onset", "300",
                                   "--apex", "310", "--out", str(out)])
    assert res.exit_code == 0, res.output
    record = json.loads((out / "prediction.json").read_text())
    for key in ("label", "probabilities", "onset", "apex", "offset", "face_box", "timing", "skipped_frames",
                "warnings", "apex_source", "fps"):
        assert key in record
    assert set(record["probabilities"]) == {"negative", "positive", "surprise"}
    assert math.isclose(sum(record["probabilities"].values()), 1.0, abs_tol=1e-5)
    assert record["label"] == max(record["probabilities"], key=record["probabilities"].get)
    assert record["onset"] == 300 and record["apex"] == 310 and record["onset"] < record["apex"]
    left, top, right, bottom = record["face_box"]
    assert 0 <= left < right <= 640 and 0 <= top < bottom <= 360
    assert set(record["timing"]) >= {"face", "motion", "model", "total"}
    assert record["timing"]["face"] > 0 and record["timing"]["motion"] > 0 and record["timing"]["model"] > 0
    assert (out / "prediction.png").stat().st_size > 10_000


def test_apex_is_spotted_between_onset_and_offset_when_not_given(predictor, pexels):
    result = predictor.predict(pexels, onset=40, offset=52)
    assert isinstance(result, Prediction)
    assert result.apex_source == "spotted" and 40 < result.apex <= 52 and result.offset == 52
    assert result.inputs["flow"].shape == (3, 28, 28)
    assert result.feature_map is not None and result.feature_map.ndim == 3


def test_prediction_uses_the_checkpoints_record_and_the_training_inputs_function(predictor, pexels):
    """The flow fed to the model is what the inputs stage makes of the same onset and apex frames with the record
    the checkpoint was trained with."""
    assert predictor.preprocessing == RECORD
    result = predictor.predict(pexels, onset=300, apex=310)
    video = cv2.VideoCapture(str(pexels))
    video.set(cv2.CAP_PROP_POS_FRAMES, 300)
    frames = [cv2.cvtColor(video.read()[1], cv2.COLOR_BGR2RGB) for _ in range(11)]
    expected = clip_inputs([frames[0], frames[10]], [300, 310], RECORD, onset=300, apex=310).inputs["flow"]
    np.testing.assert_array_equal(result.inputs["flow"], expected)


def test_cli_spot_on_real_video_yields_intervals_csv_and_timeline(checkpoint, pexels, tmp_path):
    out = tmp_path / "spot"
    res = CliRunner().invoke(app, ["predict", str(pexels), "--checkpoint", str(checkpoint), "--spot", "--first",
                                   "0", "--last", "119", "--step", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    intervals = pd.read_csv(out / "intervals.csv")
    assert len(intervals) >= 1
    assert (intervals["onset"] < intervals["apex"]).all() and (intervals["apex"] <= intervals["offset"]).all()
    micro = intervals[intervals["kind"] == "micro"]  # a macro interval gets no label without --label-macro
    assert set(intervals["kind"]) <= {"micro", "macro"} and intervals["label"].isna().sum() == len(intervals) - len(micro)
    assert intervals["offset"].max() <= 119 and set(micro["label"]) <= {"negative", "positive", "surprise"}
    probs = micro[["prob_negative", "prob_positive", "prob_surprise"]].sum(axis=1)
    assert np.allclose(probs, 1.0, atol=1e-3)
    # candidate intervals never overlap
    ordered = intervals.sort_values("onset")
    assert (ordered["onset"].to_numpy()[1:] > ordered["offset"].to_numpy()[:-1]).all()
    assert (out / "timeline.png").stat().st_size > 10_000
    summary = json.loads((out / "spot.json").read_text())
    assert summary["windows"] >= len(intervals) and summary["last"] <= 119
    # candidates pass the threshold and peak inside their window (motion still rising at its end is no candidate)
    assert (intervals["score"] >= summary["threshold"] - 1e-3).all()
    assert (intervals["apex"] < intervals["offset"]).all()


def _shifted_frames(image: np.ndarray, count: int) -> list[np.ndarray]:
    """``count`` frames of one photo, each a pixel further right: a clip with a little motion."""
    return [np.roll(image, k, axis=1) for k in range(count)]


def test_several_faces_use_the_largest_with_a_counted_warning(predictor, shared_data, tmp_path):
    from merkit.face.landmarks import detect_faces

    image = cv2.cvtColor(cv2.imread(str(shared_data / "faces" / "multi_face.jpg")), cv2.COLOR_BGR2RGB)
    folder = tmp_path / "multi"
    folder.mkdir()
    for k, frame in enumerate(_shifted_frames(image, 4)):
        cv2.imwrite(str(folder / f"img{k + 10}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    with pytest.warns(UserWarning, match="several-faces"):
        result = predictor.predict(folder, onset=10, apex=13)
    largest = detect_faces(image, "hog", predictor.preprocessing.face.upsample)[0]
    assert result.n_faces > 1 and result.warnings == {"several-faces": 1}
    assert result.face_box == tuple(largest)
    assert (result.onset, result.apex) == (10, 13)


def test_frames_without_a_face_are_skipped_and_counted(predictor, pexels):
    from merkit.predict import read_video

    video = read_video(pexels, 300, 308)
    blank = np.full_like(video.frames[0], 127)
    frames = VideoFrames([blank, blank] + video.frames, [298, 299] + video.numbers, video.fps, "with-blanks")
    with pytest.warns(UserWarning, match="no-face"):
        result = predictor.predict(frames, apex=308)
    assert result.skipped_frames == [298, 299] and result.warnings == {"no-face": 2}
    assert result.onset == 300 and result.apex == 308


def test_missing_empty_unreadable_and_short_inputs_are_clear_errors(predictor, tmp_path):
    with pytest.raises(DataError, match="input not found"):
        predictor.predict(tmp_path / "nope.mp4")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no image frames"):
        predictor.predict(empty)
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    with pytest.raises(DataError, match="cannot open|no frame could be decoded"):
        predictor.predict(fake)
    single = tmp_path / "single"
    single.mkdir()
    cv2.imwrite(str(single / "img1.png"), np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(DataError, match="needs an onset and a later apex"):
        predictor.predict(single)
    with pytest.raises(DataError, match="fewer than one spotting window"):
        predictor.spot(single)


def test_onset_and_apex_out_of_order_or_out_of_range_are_errors(predictor, pexels):
    with pytest.raises(DataError, match="must come after the onset"):
        predictor.predict(pexels, onset=20, apex=20)
    with pytest.raises(DataError, match="no frame"):
        predictor.predict(pexels, onset=1000, apex=1005)


def test_cli_reports_bad_input_without_traceback(checkpoint, tmp_path):
    res = CliRunner().invoke(app, ["predict", str(tmp_path / "missing.mp4"), "--checkpoint", str(checkpoint),
                                   "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "input not found" in res.output and "Traceback" not in res.output


def test_evaluate_spotting_with_a_checkpoint_labels_every_interval(checkpoint, tmp_path):
    """With a checkpoint, its face settings are used and every micro interval is labelled; without one, none is."""
    from merkit.synthetic import generate_long_videos

    data = tmp_path / "long"
    generate_long_videos(data, videos=1, seconds=3.0, fps=20.0, seed=1, micro=2, macro=0, size=(320, 240),
                         face_width=120.0)
    outs = {}
    for name, extra in (("model", ["--checkpoint", str(checkpoint)]), ("none", [])):
        outs[name] = tmp_path / name
        res = CliRunner().invoke(app, ["evaluate-spotting", str(data), "--out", str(outs[name]), *extra])
        assert res.exit_code == 0, res.output
    with_model = json.loads((outs["model"] / "spotting.json").read_text())
    without = json.loads((outs["none"] / "spotting.json").read_text())
    assert with_model["ground_truth"] == without["ground_truth"] == 2 and without["labels"] is None
    assert with_model["score"]["tp"] + with_model["score"]["fp"] == len(pd.read_csv(outs["model"] / "spotted.csv"))
    spotted = pd.read_csv(outs["model"] / "spotted.csv")
    micro = spotted[spotted["kind"] == "micro"]  # macro intervals are unlabelled without --label-macro
    assert len(micro) >= 1 and set(micro["label"]) <= {"negative", "positive", "surprise"}
    assert np.allclose(micro[["prob_negative", "prob_positive", "prob_surprise"]].sum(axis=1), 1.0, atol=1e-3)
    labels = with_model["labels"]
    assert labels["hits"] == with_model["score"]["tp"] and 0 <= labels["correct"] <= labels["hits"]
    assert with_model["face"] == json.loads((checkpoint / "checkpoint.json").read_text())["preprocessing"]["face"]
