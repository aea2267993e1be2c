"""Predictions a practitioner can trust (issue 34): domain warnings, calibrated probabilities fitted on
out-of-fold predictions only, abstention, and micro versus macro."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from merkit.cli import app
from merkit.errors import ConfigError

runner = CliRunner()

# The packaged model's domain record as `merkit calibrate --annotations` writes it (the composite's sheets), kept
# here so that the tests need no shared data.
COMPOSITE_LIKE = {"onset_apex_s": {"p1": 0.052, "p50": 0.16, "p99": 0.363, "source": "test"},
                  "onset_offset_s": {"p1": 0.15, "p50": 0.35, "p99": 0.562, "source": "test"}}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny STSTNet checkpoint and one synthetic clip's frames (RGB uint8)."""
    from tests.helpers import tiny_checkpoint_and_clip

    folder, _, frames = tiny_checkpoint_and_clip(tmp_path_factory.mktemp("trust"))
    return folder, frames


# ------------------------------------------------------------------------------------------------ domain warnings

@pytest.mark.parametrize("onset, apex, offset, fps, expected", [
    (0, 10, 60, 30.0, {"clip-longer-than-micro-expression", "clip-duration"}),  # 2 s: a macro-expression's length
    (0, 1, 40, 200.0, {"onset-apex-duration"}),  # apex 5 ms after the onset: faster than 98% of the training clips
    (0, 90, 100, 200.0, {"onset-apex-duration"}),  # apex 0.45 s after the onset: slower than 98%
    (0, 20, 25, 200.0, {"clip-duration"}),  # 0.125 s in all: shorter than 98%
    (0, 40, 110, 200.0, {"clip-longer-than-micro-expression"}),  # 0.55 s: over the definition, inside the data
])
def test_each_domain_warning_fires_on_an_input_built_to_trip_it(onset, apex, offset, fps, expected):
    from merkit.predict.trust import domain_findings

    found = domain_findings(onset, apex, offset, fps, COMPOSITE_LIKE)
    assert {f.name for f in found} == expected
    assert all(f.basis in ("training data", "field definition") and "\n" not in f.message for f in found)


def test_domain_checks_stay_quiet_on_composite_like_clips():
    from merkit.predict.trust import domain_findings

    # the composite's median CASME II clip (200 fps), a SMIC-HS one (100 fps), and a 0.4 s clip at 30 fps
    for onset, apex, offset, fps in [(46, 78, 116, 200.0), (0, 16, 33, 100.0), (0, 4, 12, 30.0)]:
        assert domain_findings(onset, apex, offset, fps, COMPOSITE_LIKE) == []
    assert domain_findings(0, 10, 60, None, COMPOSITE_LIKE) == []  # no frame rate: nothing to time


def test_predict_carries_the_named_domain_warning_in_json_cli_and_figure(tiny, tmp_path):
    """A clip that lasts longer than a micro-expression gets the field's warning; the same frames timed as a short
    clip get none. The warning is in the Prediction, its JSON and the CLI line."""
    from merkit.checkpoint import Checkpoint
    from merkit.predict import Predictor

    folder, frames = tiny
    Checkpoint.update_record(folder, domain=COMPOSITE_LIKE)
    model = Predictor.from_checkpoint(folder)
    slow = model.predict(frames, color="rgb", fps=5.0)  # 8-10 frames at 5 fps: about 2 s
    assert "clip-longer-than-micro-expression" in {f.name for f in slow.domain_warnings}
    record = json.loads(slow.to_json())
    assert "clip-longer-than-micro-expression" in {w["name"] for w in record["domain_warnings"]}
    slow.save_figure(tmp_path / "slow.png")
    assert (tmp_path / "slow.png").stat().st_size > 0
    quick = model.predict(frames, onset=0, apex=4, offset=len(frames) - 1, color="rgb", fps=30.0)
    assert quick.domain_warnings == []
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(frames_dir / f"img{i}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    result = runner.invoke(app, ["predict", str(frames_dir), "--checkpoint", str(folder), "--fps", "5",
                                 "--out", str(tmp_path / "o"), "--no-figure"])
    assert result.exit_code == 0, result.output
    assert "domain warning clip-longer-than-micro-expression (field definition)" in result.output
    assert "--spot" in result.output


# ------------------------------------------------------------------------------------------------ abstention

def test_min_confidence_abstains_in_the_api_and_the_cli(tiny, tmp_path):
    from merkit.predict import Predictor

    folder, frames = tiny
    model = Predictor.from_checkpoint(folder)
    sure = model.predict(frames, color="rgb", min_confidence=0.0)
    assert sure.label == sure.top_class and not sure.uncertain
    unsure = model.predict(frames, color="rgb", min_confidence=1.0)
    assert unsure.label == "uncertain" and unsure.uncertain and unsure.top_class == sure.top_class
    assert json.loads(unsure.to_json())["uncertain"] is True
    with pytest.raises(ConfigError, match="min_confidence"):
        model.predict(frames, color="rgb", min_confidence=1.5)
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(frames_dir / f"img{i}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    result = runner.invoke(app, ["predict", str(frames_dir), "--checkpoint", str(folder), "--min-confidence", "1",
                                 "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1].startswith("uncertain (top ")
    assert json.loads((tmp_path / "o" / "prediction.json").read_text())["label"] == "uncertain"
    assert (tmp_path / "o" / "prediction.png").is_file()


# ------------------------------------------------------------------------------------------------ calibration

def _loso_run(root: Path, rng, selection="last", split="loso", in_sample=False, n_subjects=12) -> Path:
    """A run folder of an overconfident 3-class model: config.yaml and predictions.csv only."""
    root.mkdir(parents=True)
    (root / "config.yaml").write_text(yaml.safe_dump({"protocol": {"split": split, "selection": selection}}))
    rows = []
    for s in range(n_subjects):
        for k in range(20):
            label = int(rng.integers(3))
            right = rng.random() < 0.6
            guess = label if right else int((label + 1 + rng.integers(2)) % 3)
            logits = rng.normal(0, 1, 3)
            logits[guess] += 6.0  # very sure, right only 60% of the time
            p = np.exp(logits) / np.exp(logits).sum()
            subject = f"d/s{s}"
            fold = f"d/s{(s + 1) % n_subjects}" if in_sample and k == 0 else subject
            rows.append({"sample_id": f"{subject}/{k}", "dataset": "d", "subject": f"s{s}", "subject_id": subject,
                         "sample": str(k), "fold": fold, "seed": 0, "epoch": 10, "label": label,
                         "prediction": guess, "prob_negative": p[0], "prob_positive": p[1], "prob_surprise": p[2]})
    pd.DataFrame(rows).to_csv(root / "predictions.csv", index=False)
    return root


def test_the_temperature_is_fitted_on_out_of_fold_predictions_and_lowers_the_calibration_error(tmp_path):
    from merkit.evaluation.calibration import calibrate_run

    record, oof = calibrate_run(_loso_run(tmp_path / "run", np.random.default_rng(0)))
    assert record["temperature"] > 1.5  # an overconfident model is softened
    assert record["ece_after"] < record["ece_before"] and record["nll_after"] < record["nll_before"]
    assert record["fitted_on"]["rows"] == 240 and record["fitted_on"]["subjects"] == 12


@pytest.mark.parametrize("change, message", [
    ({"selection": "paper"}, "chose its epochs on the test subjects"),
    ({"split": "lodo"}, "leave-one-subject-out predictions only"),
    ({"in_sample": True}, "not out-of-fold predictions"),
])
def test_calibration_refuses_a_run_that_is_not_honest_loso(tmp_path, change, message):
    from merkit.evaluation.calibration import calibrate_run

    with pytest.raises(ConfigError, match=message) as error:
        calibrate_run(_loso_run(tmp_path / "run", np.random.default_rng(0), **change))
    assert "\n" not in str(error.value)


def test_calibration_refuses_a_folder_without_predictions(tmp_path):
    from merkit.evaluation.calibration import calibrate_run

    (tmp_path / "run").mkdir()
    with pytest.raises(ConfigError, match="finished LOSO run folder"):
        calibrate_run(tmp_path / "run")


def test_calibrating_a_checkpoint_keeps_its_weights_and_its_uncalibrated_probabilities(tiny, tmp_path):
    from merkit.predict import Predictor

    folder, frames = tiny
    weights = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    before = Predictor.from_checkpoint(folder).predict(frames, color="rgb")
    assert before.temperature == 1.0 and before.probabilities == before.probabilities_uncalibrated
    run = _loso_run(tmp_path / "run", np.random.default_rng(1))
    result = runner.invoke(app, ["calibrate", str(run), "--checkpoint", str(folder)])
    assert result.exit_code == 0, result.output
    assert hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest() == weights
    assert (folder / "calibration.png").is_file()
    after = Predictor.from_checkpoint(folder).predict(frames, color="rgb")
    assert after.temperature > 1.5 and after.probabilities_uncalibrated == before.probabilities
    assert after.top_class == before.top_class and max(after.probabilities.values()) < max(
        before.probabilities.values())


# ------------------------------------------------------------------------------------------------ micro or macro

@pytest.mark.parametrize("seconds, kind", [(0.2, "micro"), (0.45, "micro"), (1.0, "macro"), (3.0, "macro")])
def test_an_expression_is_timed_from_its_apex_and_called_micro_up_to_half_a_second(seconds, kind):
    """For a raised-cosine rise and fall (the synthetic expressions' time course) the dip of the motion relative to
    the apex gives the onset-to-offset duration; MEGC calls at most 0.5 s micro."""
    from merkit.motion.spotting import dip_duration
    from merkit.predict.trust import expression_kind

    fps, reach = 100.0, 75
    n = int(round(seconds * fps))
    t = np.arange(n + 1)
    intensity = 0.5 * (1 - np.cos(2 * np.pi * t / n))  # onset 0, apex n/2, offset n
    padded = np.concatenate([np.zeros(reach), intensity, np.zeros(reach)])
    apex = reach + n // 2
    motion = np.abs(padded - padded[apex])
    forward, backward = motion[apex:apex + reach + 1], motion[apex - reach:apex + 1][::-1]
    duration = dip_duration(forward, backward) / fps
    if seconds <= 1.5:  # the dip lies within the horizon: the duration is exact
        assert duration == pytest.approx(seconds, abs=0.02)
    assert expression_kind(duration) == kind


def _seen_from_apex(rise: int, fall: int, reach: int, drift: float = 0.0, amplitude: float = 1.0):
    """The motion relative to the apex of a raised-cosine expression rising over ``rise`` frames and falling over
    ``fall``, with the face drifting away by ``drift`` per frame apart: the forward and backward curves."""
    k = np.arange(reach + 1, dtype=np.float64)
    dip = lambda h: amplitude * 0.5 * (1 - np.cos(np.pi * np.minimum(k / h, 1.0)))  # noqa: E731
    return dip(fall) + drift * k, dip(rise) + drift * k


@settings(max_examples=60)
@given(st.integers(2, 20), st.integers(2, 20), st.floats(0.0, 0.05), st.floats(0.3, 5.0))
def test_the_dip_fit_times_an_expression_to_half_a_frame_under_any_drift(rise, fall, drift, amplitude):
    """Issue 34: the half-depth rule read a drift away from the apex frame (head motion, light) as depth and timed
    short expressions long, enough to call 0.43-0.47 s ones macro; the fit has the drift as a term of its own."""
    from merkit.motion.spotting import dip_duration

    reach = 22
    assert abs(dip_duration(*_seen_from_apex(rise, fall, reach, drift * amplitude, amplitude)) - (rise + fall)) <= 0.5


def test_the_dip_fit_on_one_side_or_none():
    from merkit.motion.spotting import dip_duration

    forward, backward = _seen_from_apex(6, 9, 22)
    assert dip_duration(forward, backward[:1]) == pytest.approx(2 * 9)  # the side seen stands for both
    assert dip_duration(np.zeros(10), np.zeros(10)) == 0.0
    assert dip_duration(forward[:1], backward[:1]) == 0.0


# ------------------------------------------------------------------------------------------------ the packaged model

def test_the_pexels_smile_carries_the_macro_warning(shared_data):
    """Issue 34: a clip inside the Pexels video's smile (near 0:14) came out "negative 0.62" without a word."""
    from merkit.predict import Predictor

    video = shared_data / "faces" / "WolfgangLanger_Pexels.mp4"
    result = Predictor.from_pretrained().predict(video, onset=324, offset=348)
    names = {f.name for f in result.domain_warnings}
    assert "clip-longer-than-micro-expression" in names
    assert {w["name"] for w in json.loads(result.to_json())["domain_warnings"]} == names


def test_the_packaged_domain_record_is_the_composites_sheets(shared_data):
    """The packaged checkpoint's duration statistics are what `merkit calibrate --annotations` computes from the
    official sheets, and its weights are those the card's command trains (the record only gained entries)."""
    from merkit.evaluation.domain import composite_domain
    from merkit.pretrained import packaged_model

    if not (shared_data / "annotations" / "megc2019").is_dir():
        pytest.skip("the official sheets are not available")
    meta = packaged_model("megc2019-ststnet").meta
    if "domain" not in meta:
        pytest.fail("the packaged checkpoint has no domain record")
    domain = composite_domain(shared_data / "annotations")
    assert domain["onset_offset_s"]["n"] == domain["onset_apex_s"]["n"] == 442
    for key in ("onset_apex_s", "onset_offset_s"):
        assert {k: v for k, v in meta["domain"][key].items() if k != "source"} == {
            k: v for k, v in domain[key].items() if k != "source"}
    assert meta["calibration"]["fitted_on"]["split"] == "loso" and meta["calibration"]["temperature"] > 0


def test_training_records_the_clips_durations_where_the_annotations_allow():
    """A raw run's table (onset, apex, offset of datasets whose frame rate is known) gives the checkpoint's domain
    statistics; a table without frame annotations, or of an unknown frame rate, gives none."""
    from merkit.evaluation.domain import table_domain

    rng = np.random.default_rng(0)
    onset = rng.integers(0, 100, 200)
    table = pd.DataFrame({"dataset": ["casme2"] * 100 + ["smic"] * 100, "onset": onset, "apex": onset + 20,
                          "offset": onset + 60})
    domain = table_domain(table)
    assert domain["onset_apex_s"]["p1"] == pytest.approx(0.1) and domain["onset_apex_s"]["p99"] == pytest.approx(0.2)
    assert domain["onset_offset_s"]["min"] == pytest.approx(0.3) and domain["onset_offset_s"]["max"] == pytest.approx(
        0.6) and domain["onset_offset_s"]["n"] == 200
    assert table_domain(table.drop(columns=["offset"])) == {}
    assert table_domain(table.assign(dataset="synthetic")) == {}


def test_a_face_that_moved_too_far_points_to_spot():
    """Issue 34: `merkit predict VIDEO` on a whole long video failed with "the face moved ... choose a shorter
    clip", and did not say that --spot scans a long video."""
    from merkit.face.landmarks import MAX_FACE_SHIFT, FaceLostError, raise_if_lost

    with pytest.raises(FaceLostError, match="choose a shorter clip, or scan a long video with `merkit predict --spot`"):
        raise_if_lost(MAX_FACE_SHIFT + 0.04)


def test_spot_reports_progress_and_a_kind_for_every_interval(tmp_path):
    """--spot's progress bar is fed one call per window, ending at the total; every interval has a kind and a
    duration, and without a model none is labelled."""
    from merkit.media import read_video
    from merkit.predict.scan import spot_video
    from merkit.synthetic import generate_long_videos

    generate_long_videos(tmp_path / "long", videos=1, seconds=3.0, fps=20.0, seed=1, micro=2, macro=0,
                         size=(320, 240), face_width=120.0)
    calls = []
    result = spot_video(read_video(tmp_path / "long" / "vid01", fps=20.0), progress=lambda d, t: calls.append((d, t)))
    total = calls[-1][1]
    assert calls[0] == (0, total) and calls[-1] == (total, total) and total >= len(result.curve)
    assert len(result.intervals) >= 1 and set(result.intervals["kind"]) <= {"micro", "macro"}
    assert result.intervals["duration_s"].notna().all() and "label" not in result.intervals


def test_macro_intervals_get_no_label_unless_label_macro(tmp_path, monkeypatch):
    """A micro-expression model has nothing to say about a macro-expression: such intervals are not recognised
    (empty label, no probabilities) unless label_macro asks for it; micro ones are."""
    import types

    from merkit.media import read_video
    from merkit.predict import scan
    from merkit.predict.results import Timing
    from merkit.synthetic import generate_long_videos

    generate_long_videos(tmp_path / "long", videos=1, seconds=3.0, fps=20.0, seed=1, micro=2, macro=0,
                         size=(320, 240), face_width=120.0)
    video = read_video(tmp_path / "long" / "vid01", fps=20.0)
    seen = []

    def recognise(frames, begin, end, apex):
        seen.append(apex)
        return types.SimpleNamespace(label="negative", probabilities={"negative": 0.9, "positive": 0.1},
                                     timing=Timing(), domain_warnings=[])

    for seconds, label_macro, labelled in [(0.3, False, True), (1.2, False, False), (1.2, True, True)]:
        monkeypatch.setattr(scan, "event_duration", lambda *a, **k: seconds)
        seen.clear()
        result = scan.spot_video(video, recognise=recognise, classes=("negative", "positive"),
                                 label_macro=label_macro)
        assert len(result.intervals) >= 1
        assert set(result.intervals["kind"]) == {"micro" if seconds <= 0.5 else "macro"}
        assert (result.intervals["label"] == "negative").all() == labelled
        assert len(seen) == (len(result.intervals) if labelled else 0)
        if not labelled:
            assert result.intervals["prob_negative"].isna().all() and (result.intervals["label"] == "").all()
