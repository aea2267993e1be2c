"""Spotting, measured: the MEGC interval scoring, the interval rules, the long-video generator and
``merkit evaluate-spotting`` on a few seconds of synthetic video."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from merkit.cli import app
from merkit.errors import DataError
from merkit.evaluation.spotting import (SpottingScore, interval_iou, load_spotting_set, match_intervals,
                                        pooled_score, score_intervals, score_video)
from merkit.motion.spotting import SpotConfig, motion_extent, select_intervals
from merkit.synthetic import generate_long_videos, intensity_profile

# ----------------------------------------------------------------------------------------- IoU and matching


def test_iou_counts_frames_of_inclusive_intervals():
    assert interval_iou((0, 9), (0, 9)) == 1.0
    assert interval_iou((0, 9), (10, 19)) == 0.0  # adjacent: no shared frame
    assert interval_iou((0, 10), (10, 20)) == pytest.approx(1 / 21)  # touching: one shared frame
    assert interval_iou((5, 5), (5, 5)) == 1.0  # a one-frame interval
    assert interval_iou((0, 19), (5, 14)) == 0.5  # nested, half the length: exactly the threshold
    assert interval_iou((0, 19), (5, 13)) == pytest.approx(9 / 20)
    with pytest.raises(ValueError, match="ends before it starts"):
        interval_iou((10, 9), (0, 5))


def test_a_nested_interval_at_exactly_half_is_a_hit_and_just_below_is_not():
    assert score_video([(0, 19)], [(5, 14)]) == SpottingScore(1, 0, 0)
    assert score_video([(0, 19)], [(5, 13)]) == SpottingScore(0, 1, 1)


def test_two_predictions_on_one_truth_give_one_hit_and_one_false_positive():
    hits = match_intervals([(0, 9), (1, 10)], [(0, 9)])
    assert hits == [(0, 0, 1.0)]  # the better one is the hit
    assert score_video([(0, 9), (1, 10)], [(0, 9)]) == SpottingScore(1, 1, 0)


def test_one_prediction_over_two_touching_truths_matches_one_of_them():
    # IoU exactly 0.5 with each: still only one ground truth is matched
    assert score_video([(0, 19)], [(0, 9), (10, 19)]) == SpottingScore(1, 0, 1)


def test_matching_finds_the_most_hits_where_greedy_by_iou_would_not():
    truth = [(0, 9), (2, 11)]
    spotted = [(0, 10), (0, 5)]  # (0, 10) hits both (0.91, 0.75); (0, 5) only the first (0.6)
    hits = match_intervals(spotted, truth)
    assert sorted((i, j) for i, j, _ in hits) == [(0, 1), (1, 0)]


def test_nothing_spotted_or_nothing_to_find():
    assert score_video([], [(0, 9)]) == SpottingScore(0, 0, 1)
    assert math.isnan(score_video([], [(0, 9)]).precision) and score_video([], [(0, 9)]).f1 == 0.0
    assert score_video([(0, 9)], []) == SpottingScore(0, 1, 0)
    assert math.isnan(SpottingScore(0, 0, 0).f1)
    with pytest.raises(ValueError, match="threshold"):
        match_intervals([(0, 1)], [(0, 1)], threshold=0)


def test_scores_are_pooled_over_videos_before_the_ratios():
    pooled = pooled_score([SpottingScore(1, 0, 0), SpottingScore(0, 3, 1)])
    assert (pooled.tp, pooled.fp, pooled.fn) == (1, 3, 1)
    assert pooled.precision == 0.25 and pooled.recall == 0.5 and pooled.f1 == pytest.approx(1 / 3)
    spotted = pd.DataFrame({"video": ["a", "a", "b"], "onset": [0, 30, 5], "offset": [9, 39, 8]})
    truth = pd.DataFrame({"video": ["a", "b", "c"], "onset": [0, 50, 3], "offset": [9, 60, 4]})
    score, matches = score_intervals(spotted, truth)
    assert score == SpottingScore(1, 2, 2)
    assert matches["outcome"].value_counts().to_dict() == {"FP": 2, "FN": 2, "TP": 1}
    assert set(matches.loc[matches["outcome"] == "FN", "video"]) == {"b", "c"}


# ----------------------------------------------------------------------------------------- interval rules


@pytest.mark.parametrize("length, apex_index", [(9, 2), (12, 8), (15, 7)])
def test_extent_recovers_a_raised_cosine_expression(length, apex_index):
    window = np.zeros(20)
    onset = 3
    window[onset:onset + length] = intensity_profile(length, apex_index)
    start, end = motion_extent(window, onset + apex_index)
    assert abs(start - onset) <= 1 and abs(end - (onset + length - 1)) <= 1


def test_extent_is_clipped_to_the_window_and_keeps_the_peak_inside():
    rising = np.linspace(0, 1, 10)
    rising[-1] = 0.95
    start, end = motion_extent(rising, 8)
    assert 0 <= start < 8 < end <= 9
    with pytest.raises(ValueError, match="peak"):
        motion_extent(rising, 0)


def test_selection_suppresses_overlapping_reported_intervals_not_windows():
    windows = pd.DataFrame({"onset": [0, 10, 20], "offset": [19, 29, 39], "score": [5.0, 4.0, 1.0],
                            "interior": [True, True, True], "start": [2, 12, 30], "end": [6, 16, 35]})
    chosen, threshold = select_intervals(windows, SpotConfig(p=0.0))
    # the windows overlap, their intervals do not: both strong ones are kept
    assert chosen == [0, 1] and threshold == pytest.approx(10 / 3)
    windows.loc[1, "start"] = 5
    assert select_intervals(windows, SpotConfig(p=0.0))[0] == [0]


def test_spot_config_refuses_bad_values():
    from merkit.errors import ConfigError

    for bad in ({"p": 1.5}, {"interval": "peak"}, {"size": 4}, {"hop_s": 0}):
        with pytest.raises(ConfigError):
            SpotConfig(**bad)


# ----------------------------------------------------------------------------------------- the generator

SMALL = dict(videos=1, seconds=2.0, fps=15.0, micro=1, macro=0, size=(320, 240), face_width=120.0)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small_long(tmp_path_factory) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    root = tmp_path_factory.mktemp("long") / "set"
    videos, intervals = generate_long_videos(root, seed=4, **SMALL)
    return root, videos, intervals


def test_long_videos_are_byte_identical_for_the_same_seed(small_long, tmp_path):
    root, _, _ = small_long
    generate_long_videos(tmp_path / "again", seed=4, **SMALL)
    first, second = _files(root), _files(tmp_path / "again")
    assert sorted(first) == sorted(second) and [k for k in first if first[k] != second[k]] == []
    generate_long_videos(tmp_path / "other", seed=5, **SMALL)
    assert _files(tmp_path / "other")["vid01/img00000.jpg"] != first["vid01/img00000.jpg"]
    assert not [p for p in root.rglob("*") if ".tmp" in p.name]  # atomic writes leave no temporary file


def test_long_video_truth_and_frames_agree(small_long):
    from merkit.media import read_video

    root, videos, intervals = small_long
    assert list(videos.columns[:3]) == ["video", "path", "fps"] and videos.fps[0] == 15.0
    assert videos.frames[0] == 30 and (videos.width[0], videos.height[0]) == (320, 240)
    video = read_video(root / "vid01", fps=15.0)
    assert len(video) == 30 and video.numbers == list(range(30)) and video.frames[0].shape == (240, 320, 3)
    micro = intervals[intervals["kind"] == "micro"]
    assert len(micro) == 1
    row = micro.iloc[0]
    assert 0 < row.onset < row.apex < row.offset < 30
    assert 3 <= row.offset - row.onset + 1 <= 8  # 0.2-0.5 s at 15 fps
    assert row.label_class in ("negative", "positive", "surprise") and 0.5 <= row.amplitude_px <= 3.0
    assert row.onset_s == pytest.approx(row.onset / 15, abs=1e-4)
    # the expression moves the face: the apex differs from the onset more than the neutral frames do from each
    # other, measured at the expression's pixels
    frames = np.stack([f.astype(np.float32) for f in video.frames]).mean(-1)
    apex_change = np.abs(frames[row.apex] - frames[row.onset])
    assert apex_change.max() > 20
    loaded = load_spotting_set(root)
    assert len(loaded.intervals) == len(intervals) and loaded.videos.path[0] == str((root / "vid01").resolve())


def test_expressions_that_do_not_fit_are_a_config_error(tmp_path):
    from merkit.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot place"):
        generate_long_videos(tmp_path / "x", videos=1, seconds=1.0, micro=3)


def test_cli_synth_writes_long_videos(tmp_path):
    out = tmp_path / "cli"
    res = CliRunner().invoke(app, ["synth", str(out), "--long-videos", "1", "--video-seconds", "2", "--fps", "15",
                                   "--micro", "1", "--macro", "0", "--seed", "2"])
    assert res.exit_code == 0, res.output
    assert "1 micro" in res.output
    assert (out / "videos.csv").is_file() and (out / "intervals.csv").is_file()
    assert len(list((out / "vid01").glob("img*.jpg"))) == 30


# ----------------------------------------------------------------------------------------- reading a set


def test_a_bad_set_is_a_data_error_naming_the_file(small_long, tmp_path):
    root, _, _ = small_long
    with pytest.raises(DataError, match="no videos.csv"):
        load_spotting_set(tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "videos.csv").write_text("video,path,fps\nvid01,missing,30\n")
    (bad / "intervals.csv").write_text("video,onset,apex,offset\nvid01,1,2,3\n")
    with pytest.raises(DataError, match="video vid01 not found"):
        load_spotting_set(bad)
    (bad / "videos.csv").write_text(f"video,path,fps\nvid01,{root / 'vid01'},30\n")
    (bad / "intervals.csv").write_text("video,onset,apex,offset\nvid02,1,2,3\n")
    with pytest.raises(DataError, match="names videos that videos.csv does not list"):
        load_spotting_set(bad)
    (bad / "intervals.csv").write_text("video,onset,apex,offset\nvid01,5,2,3\n")
    with pytest.raises(DataError, match="not in onset <= apex <= offset order"):
        load_spotting_set(bad)
    (bad / "intervals.csv").write_text("video,onset,offset\nvid01,1,3\n")
    with pytest.raises(DataError, match=r"intervals.csv lacks the columns \['apex'\]"):
        load_spotting_set(bad)


# ----------------------------------------------------------------------------------------- evaluate-spotting


@pytest.fixture(scope="module")
def short_set(tmp_path_factory) -> Path:
    """Two 3-second videos at 20 fps: 2 micro-expressions each, no macro-expression."""
    root = tmp_path_factory.mktemp("eval") / "set"
    generate_long_videos(root, videos=2, seconds=3.0, fps=20.0, seed=1, micro=2, macro=0, size=(320, 240),
                         face_width=120.0)
    return root


def test_evaluate_spotting_counts_are_consistent(short_set, tmp_path):
    out = tmp_path / "eval"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # windows skipped for want of a face are counted, not fatal
        res = CliRunner().invoke(app, ["evaluate-spotting", str(short_set), "--out", str(out)])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "spotting.json").read_text())
    spotted = pd.read_csv(out / "spotted.csv")
    matches = pd.read_csv(out / "matches.csv")
    truth = pd.read_csv(short_set / "intervals.csv")
    score = summary["score"]
    assert summary["ground_truth"] == 4 == (truth["kind"] == "micro").sum()
    assert score["tp"] + score["fn"] == 4
    assert score["tp"] + score["fp"] == len(spotted)
    assert (spotted["outcome"] == "TP").sum() == score["tp"] == (matches["outcome"] == "TP").sum()
    assert (matches["outcome"] == "FN").sum() == score["fn"]
    assert (spotted.loc[spotted["outcome"] == "TP", "iou"] >= 0.5).all()
    assert (spotted.loc[spotted["outcome"] == "FP", "iou"] < 0.5).all()
    assert sum(v["tp"] for v in summary["per_video"].values()) == score["tp"]
    assert sum(summary["false_positives_overlap"].values()) == score["fp"]
    pr = pd.read_csv(out / "pr.csv")
    at_default = pr[np.isclose(pr["p"], summary["spot_config"]["p"])].iloc[0]
    assert (at_default.tp, at_default.fp, at_default.fn) == (score["tp"], score["fp"], score["fn"])
    # the candidates at a higher threshold are a prefix of the strongest-first order: never more intervals
    assert pr["spotted"].is_monotonic_decreasing
    assert summary["speed"]["frames"] == 120 and summary["speed"]["realtime_ratio"] > 0
    assert summary["labels"] is None and "label" not in spotted.columns
    assert "precision" in res.output and "real time" in res.output


def test_evaluate_spotting_on_a_missing_set_is_one_line(tmp_path):
    res = CliRunner().invoke(app, ["evaluate-spotting", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and res.output.startswith("error: no videos.csv")


def test_cli_help_states_the_spot_config_defaults():
    config = SpotConfig()
    assert (config.window_s, config.hop_s, config.p, config.size, config.method, config.interval) == (
        0.5, 0.25, 0.05, 112, "dis", "extent")
    for command in ("predict", "evaluate-spotting"):
        text = "".join(CliRunner().invoke(app, [command, "--help"]).output.replace("│", " ").split())
        assert "(default0.05)" in text and "(default0.5)" in text and "(default0.25)" in text


def test_unlabelled_intervals_draw_a_timeline(short_set, tmp_path):
    from merkit.predict.scan import spot_video

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = spot_video(short_set / "vid01", fps=20.0)
    assert "label" not in result.intervals.columns and result.predictions == []
    assert (result.intervals["onset"] < result.intervals["apex"]).all()
    assert (result.intervals["apex"] < result.intervals["offset"]).all()
    assert result.save_timeline(tmp_path / "t.png").stat().st_size > 5_000


# ------------------------------------------------------------------------------------------ micro or macro, scored

def test_an_interval_on_a_blink_inside_a_macro_expression_is_the_blinks():
    """Issue 34: a short interval on a blink in the middle of a long macro-expression shares more frames with the
    macro-expression; by IoU, the MEGC measure, it is the blink's, and it has no true kind."""
    from merkit.evaluation.spotting import attribute_misses, kind_decision

    events = pd.DataFrame({"video": ["v"] * 2, "kind": ["macro", "blink"], "onset": [336, 410], "offset": [419, 416]})
    spotted = pd.DataFrame({"video": ["v"], "onset": [409], "offset": [418], "kind": ["micro"]})
    assert attribute_misses(spotted, events) == ["macro"]
    assert attribute_misses(spotted, events, by="iou") == ["blink"]
    decision = kind_decision(spotted.assign(iou_event=attribute_misses(spotted, events, by="iou")))
    assert decision["counted"] == 0 and decision["other"] == {"blink": {"micro": 1}}
    with pytest.raises(ValueError, match="by must be"):
        attribute_misses(spotted, events, by="overlap")


interval = st.tuples(st.integers(0, 60), st.integers(0, 30)).map(lambda p: (p[0], p[0] + p[1]))


@settings(max_examples=200)
@given(st.lists(st.tuples(interval, st.sampled_from(["micro", "macro", "blink", "head"])), min_size=0, max_size=5),
       interval)
def test_the_iou_event_has_the_highest_iou_and_the_frames_event_the_most_shared_frames(events, spot):
    from merkit.evaluation.spotting import attribute_misses

    table = pd.DataFrame({"video": ["v"] * len(events), "kind": [k for _, k in events],
                          "onset": [a for (a, _), _ in events], "offset": [b for (_, b), _ in events]},
                         columns=["video", "kind", "onset", "offset"])
    spotted = pd.DataFrame({"video": ["v"], "onset": [spot[0]], "offset": [spot[1]]})
    shared = [max(0, min(spot[1], b) - max(spot[0], a) + 1) for (a, b), _ in events]
    ious = [s / (max(spot[1], b) - min(spot[0], a) + 1) for s, ((a, b), _) in zip(shared, events)]
    for by, scores in (("frames", shared), ("iou", ious)):
        [kind] = attribute_misses(spotted, table, by=by)
        if not any(scores):
            assert kind == "none"
        else:
            best = max(scores)
            assert kind in {k for s, (_, k) in zip(scores, events) if s == best}


def test_kind_decision_counts_precision_and_recall_per_kind():
    from merkit.evaluation.spotting import kind_decision

    spotted = pd.DataFrame({"kind": ["micro", "micro", "macro", "macro", "macro", "micro"],
                            "iou_event": ["micro", "macro", "macro", "micro", "macro", "head"]})
    decision = kind_decision(spotted)
    assert decision["counted"] == 5
    assert decision["micro"] == {"precision": 0.5, "recall": 0.5, "called": 2, "true": 2, "right": 1}
    assert decision["macro"] == {"precision": 2 / 3, "recall": 2 / 3, "called": 3, "true": 3, "right": 2}
    assert decision["other"] == {"head": {"micro": 1}}
    assert kind_decision(spotted.drop(columns="kind")) is None
