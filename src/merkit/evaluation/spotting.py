"""Scoring spotted intervals against ground truth: the MEGC spotting protocol.

A spotted interval ``W`` hits a ground-truth interval ``G`` when their intersection over union, counted in frames,
reaches the threshold: ``|W ∩ G| / |W ∪ G| >= 0.5``. Intervals are inclusive, ``[onset, offset]`` covers
``offset - onset + 1`` frames. Each ground truth is matched at most once and each spotted interval at most once;
among the possible one-to-one matchings the one with the most hits is taken (ties: the largest total IoU). Then

* TP = hits, FP = spotted intervals that hit nothing, FN = ground truths that nothing hit;
* precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2 TP / (2 TP + FP + FN);

with TP, FP and FN summed over all videos of a set before the ratios are taken (pooled, not averaged per video).
Precision is undefined (``nan``) when nothing was spotted, recall when there is no ground truth.

Sources: Li, Soladie, Seguier, Wang and Yap, "Spotting micro-expressions on long videos sequences", FG 2019 (the
MEGC2019 spotting protocol, k = 0.5), kept by the MEGC2020-2022 spotting tasks (e.g. MEGC2022 on CAS(ME)^3).

The set of long videos read by :func:`load_spotting_set` is what ``merkit synth --long-videos`` writes
(:func:`merkit.synthetic.generate_long_videos`); any folder of the same two tables can be scored:

* ``videos.csv``: ``video`` (a name), ``path`` (a video file or a frame folder, relative to the folder or
  absolute), ``fps``;
* ``intervals.csv``: ``video``, ``onset``, ``apex``, ``offset`` (frame numbers of the video), and optionally
  ``kind`` (``micro``, ``macro``, ...; absent means ``micro``) and ``label_class``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from merkit.boundary import did_you_mean
from merkit.errors import ConfigError, DataError, Where

#: MEGC's hit threshold on the intersection over union of a spotted and a ground-truth interval.
IOU_THRESHOLD = 0.5

Interval = tuple[int, int]


def _check(interval: Sequence[int], what: str) -> Interval:
    onset, offset = int(interval[0]), int(interval[1])
    if offset < onset:
        raise ValueError(f"{what} interval ({onset}, {offset}) ends before it starts")
    return onset, offset


def interval_iou(a: Sequence[int], b: Sequence[int]) -> float:
    """Intersection over union of two inclusive frame intervals ``(onset, offset)``, counted in frames.

    ``(0, 9)`` and ``(10, 19)`` share no frame (IoU 0); ``(0, 10)`` and ``(10, 20)`` share frame 10 (IoU 1/21).

    Raises:
        ValueError: an interval whose offset comes before its onset.
    """
    (a0, a1), (b0, b1) = _check(a, "first"), _check(b, "second")
    inter = max(0, min(a1, b1) - max(a0, b0) + 1)
    return inter / ((a1 - a0 + 1) + (b1 - b0 + 1) - inter)


def match_intervals(spotted: Sequence[Sequence[int]], truth: Sequence[Sequence[int]],
                    threshold: float = IOU_THRESHOLD) -> list[tuple[int, int, float]]:
    """The one-to-one matching of spotted to ground-truth intervals with the most hits (IoU >= ``threshold``).

    Args:
        spotted, truth: inclusive ``(onset, offset)`` frame intervals of one video.
        threshold: the IoU a pair needs to count as a hit.

    Returns:
        ``(spotted index, truth index, IoU)`` per hit, ordered by truth index. Among matchings with equally many
        hits, the one with the largest total IoU.

    Raises:
        ValueError: an interval whose offset comes before its onset, or a threshold outside (0, 1].
    """
    from scipy.optimize import linear_sum_assignment

    if not 0 < threshold <= 1:
        raise ValueError(f"the IoU threshold must be in (0, 1], got {threshold}")
    spotted = [_check(s, "spotted") for s in spotted]
    truth = [_check(t, "ground-truth") for t in truth]
    if not spotted or not truth:
        return []
    iou = np.array([[interval_iou(s, t) for t in truth] for s in spotted])
    eligible = iou >= threshold
    # a weight above every possible sum of IoUs makes one more hit always worth more than any IoU gain
    bonus = min(len(spotted), len(truth)) + 1.0
    rows, cols = linear_sum_assignment(np.where(eligible, bonus + iou, 0.0), maximize=True)
    hits = [(int(r), int(c), float(iou[r, c])) for r, c in zip(rows, cols) if eligible[r, c]]
    return sorted(hits, key=lambda h: h[1])


@dataclass(frozen=True)
class SpottingScore:
    """True positives, false positives and false negatives, and the ratios taken from them."""

    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")

    @property
    def f1(self) -> float:
        total = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / total if total else float("nan")

    def __add__(self, other: "SpottingScore") -> "SpottingScore":
        return SpottingScore(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    def to_dict(self) -> dict[str, float]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": self.precision, "recall": self.recall,
                "f1": self.f1}


def score_video(spotted: Sequence[Sequence[int]], truth: Sequence[Sequence[int]],
                threshold: float = IOU_THRESHOLD) -> SpottingScore:
    """TP, FP and FN of one video's spotted intervals (see :func:`match_intervals`)."""
    hits = len(match_intervals(spotted, truth, threshold))
    return SpottingScore(hits, len(spotted) - hits, len(truth) - hits)


def pooled_score(scores: Iterable[SpottingScore]) -> SpottingScore:
    """The set's score: TP, FP and FN summed over its videos (MEGC pools them before taking the ratios)."""
    total = SpottingScore(0, 0, 0)
    for score in scores:
        total = total + score
    return total


def score_intervals(spotted: pd.DataFrame, truth: pd.DataFrame,
                    threshold: float = IOU_THRESHOLD) -> tuple[SpottingScore, pd.DataFrame]:
    """Score a set: spotted and ground-truth intervals of several videos.

    Args:
        spotted: one row per spotted interval: ``video``, ``onset``, ``offset`` (frame numbers).
        truth: one row per ground-truth interval to find: ``video``, ``onset``, ``offset``.
        threshold: the IoU of a hit.

    Returns:
        ``(pooled score, matches)``: ``matches`` has one row per spotted and per unmatched ground-truth interval:
        ``video``, ``spotted`` and ``truth`` (row labels in the two tables, or ``None``), ``iou`` and ``outcome``
        (``TP``, ``FP`` or ``FN``).

    Raises:
        ValueError: an interval whose offset comes before its onset.
    """
    rows, scores = [], []
    for video in sorted(set(spotted["video"]) | set(truth["video"])):
        s, t = spotted[spotted["video"] == video], truth[truth["video"] == video]
        hits = match_intervals(list(zip(s["onset"], s["offset"])), list(zip(t["onset"], t["offset"])), threshold)
        by_spotted = {i: (j, iou) for i, j, iou in hits}
        truths = list(zip(t["onset"], t["offset"]))
        for i, (label, interval) in enumerate(zip(s.index, zip(s["onset"], s["offset"]))):
            # a miss reports its best IoU with any ground truth, which tells a near miss from a stray interval
            j, iou = by_spotted.get(i, (None, max((interval_iou(interval, g) for g in truths), default=0.0)))
            rows.append({"video": video, "spotted": label, "truth": None if j is None else t.index[j],
                         "iou": round(float(iou), 4), "outcome": "FP" if j is None else "TP"})
        matched = {j for _, j, _ in hits}
        for j, label in enumerate(t.index):
            if j not in matched:
                rows.append({"video": video, "spotted": None, "truth": label, "iou": 0.0, "outcome": "FN"})
        scores.append(SpottingScore(len(hits), len(s) - len(hits), len(t) - len(hits)))
    matches = pd.DataFrame(rows, columns=["video", "spotted", "truth", "iou", "outcome"])
    for column in ("spotted", "truth"):  # row labels stay integers beside the missing ones
        if pd.api.types.is_numeric_dtype(matches[column]):
            matches[column] = matches[column].astype("Int64")
    return pooled_score(scores), matches


@dataclass
class SpottingSet:
    """A set of long videos with ground-truth intervals (:func:`load_spotting_set`).

    Attributes:
        root: the folder.
        videos: one row per video: ``video``, ``path`` (absolute), ``fps``.
        intervals: one row per ground-truth interval: ``video``, ``kind``, ``onset``, ``apex``, ``offset`` and any
            other columns of the file.
    """

    root: Path
    videos: pd.DataFrame
    intervals: pd.DataFrame

    def ground_truth(self, kinds: Sequence[str]) -> pd.DataFrame:
        """The intervals of ``kinds`` (``micro``, ``macro``, ...), the ones spotting must find.

        Raises:
            ConfigError: a kind the set holds no interval of (a typo would score zero ground truths); the message
                names the kinds present, with a "did you mean".
        """
        present = sorted(set(self.intervals["kind"].astype(str)))
        for kind in kinds:
            if kind not in present:
                raise ConfigError(f"{self.root / 'intervals.csv'} holds no interval of kind {kind!r}"
                                  f"{did_you_mean(kind, present)}; its kinds are {present}")
        return self.intervals[self.intervals["kind"].isin(list(kinds))].reset_index(drop=True)


def load_spotting_set(root: str | Path) -> SpottingSet:
    """Read ``videos.csv`` and ``intervals.csv`` of a set of long videos (see the module docstring).

    Raises:
        DataError: a missing or unreadable table, a missing column, a video path that does not exist, an interval
            out of order or of a video the set does not list; the message names the file.
    """
    root = Path(root)
    tables = {}
    for name, needed in (("videos.csv", ("video", "path", "fps")),
                         ("intervals.csv", ("video", "onset", "apex", "offset"))):
        path = root / name
        where = Where("spotting", sample=str(path))
        if not path.is_file():
            raise DataError(f"no {name} in {root}", where, hint="write a set with merkit synth OUT --long-videos N")
        try:
            table = pd.read_csv(path, keep_default_na=False)
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
            raise DataError(f"cannot read {path}: {error}", where) from None
        missing = [c for c in needed if c not in table.columns]
        if missing:
            raise DataError(f"{path} lacks the columns {missing}", where)
        tables[name] = table
    videos, intervals = tables["videos.csv"], tables["intervals.csv"]
    videos["video"] = videos["video"].astype(str)
    intervals["video"] = intervals["video"].astype(str)
    if videos["video"].duplicated().any():
        raise DataError(f"{root / 'videos.csv'} lists a video twice: "
                        f"{sorted(videos.loc[videos['video'].duplicated(), 'video'])}", Where("spotting"))
    videos["path"] = [str(p if Path(p).is_absolute() else (root / p).resolve()) for p in videos["path"]]
    for row in videos.itertuples(index=False):
        if not Path(row.path).exists():
            raise DataError(f"video {row.video} not found at {row.path}", Where("spotting", sample=row.video),
                            hint=f"check the path column of {root / 'videos.csv'}")
    try:
        videos["fps"] = videos["fps"].astype(float)
        for c in ("onset", "apex", "offset"):
            intervals[c] = intervals[c].astype(int)
    except ValueError as error:
        raise DataError(f"a frame number or frame rate is not a number in {root}: {error}", Where("spotting"))
    if "kind" not in intervals.columns:
        intervals["kind"] = "micro"
    bad = intervals[(intervals["onset"] > intervals["apex"]) | (intervals["apex"] > intervals["offset"])]
    if len(bad):
        row = bad.iloc[0]
        raise DataError(f"interval {row.onset}-{row.apex}-{row.offset} of video {row.video} is not in "
                        f"onset <= apex <= offset order", Where("spotting", sample=str(root / "intervals.csv")))
    unknown = sorted(set(intervals["video"]) - set(videos["video"]))
    if unknown:
        raise DataError(f"{root / 'intervals.csv'} names videos that videos.csv does not list: {unknown}",
                        Where("spotting"))
    return SpottingSet(root, videos, intervals)


#: Threshold fractions of the precision-recall sweep (:func:`sweep_threshold`).
P_GRID: tuple[float, ...] = tuple(round(p, 2) for p in np.linspace(0.0, 1.0, 21))


def select_spotted(windows: pd.DataFrame, config) -> pd.DataFrame:
    """The intervals a spotting config reports from the scored windows of several videos.

    Args:
        windows: :func:`merkit.predict.scan.scan_windows` rows with a ``video`` column.
        config: a :class:`merkit.motion.spotting.SpotConfig` (its ``p``, ``min_score`` and ``interior_peak``).

    Returns:
        One row per interval: ``video``, ``onset``, ``apex``, ``offset`` (frame numbers), ``score``.
    """
    from merkit.motion.spotting import select_intervals

    rows = []
    for video, group in windows.groupby("video", sort=True):
        group = group.reset_index(drop=True)
        chosen, _ = select_intervals(group, config)
        rows += [{"video": video, "onset": int(group.at[i, "start"]), "apex": int(group.at[i, "peak"]),
                  "offset": int(group.at[i, "end"]), "score": float(group.at[i, "score"])} for i in chosen]
    return pd.DataFrame(rows, columns=["video", "onset", "apex", "offset", "score"])


def sweep_threshold(windows: pd.DataFrame, truth: pd.DataFrame, config, grid: Sequence[float] = P_GRID,
                    threshold: float = IOU_THRESHOLD) -> pd.DataFrame:
    """Precision, recall and F1 for each threshold fraction ``p`` of ``grid``, the rest of ``config`` fixed.

    The windows are scored once; only the selection (:func:`select_spotted`) changes with ``p``.

    Returns:
        One row per ``p``: ``p``, ``tp``, ``fp``, ``fn``, ``precision``, ``recall``, ``f1``, ``spotted``.
    """
    import dataclasses

    rows = []
    for p in grid:
        spotted = select_spotted(windows, dataclasses.replace(config, p=float(p)))
        score, _ = score_intervals(spotted, truth, threshold)
        rows.append({"p": float(p), **score.to_dict(), "spotted": len(spotted)})
    return pd.DataFrame(rows)


def attribute_misses(spotted: pd.DataFrame, events: pd.DataFrame, by: str = "frames") -> list[str]:
    """What each spotted interval overlaps most among ``events`` (``video``, ``kind``, ``onset``, ``offset``): that
    event's ``kind``, or ``none`` when it overlaps none.

    ``by="frames"`` ranks the events by the frames shared with the interval (what a false positive fired on, the
    ``overlaps`` column); ``by="iou"`` by their intersection over union with it, the MEGC spotting measure (the
    ``iou_event`` column, what the interval times: a short interval on a blink inside a long macro-expression
    shares more frames with the macro-expression but is the blink's). Of tied events, the kind later in the
    alphabet is named.

    Raises:
        ValueError: an unknown ``by``.
    """
    if by not in ("frames", "iou"):
        raise ValueError(f"by must be 'frames' or 'iou', got {by!r}")
    out = []
    for row in spotted.itertuples(index=False):
        scores = []
        for e in events[events["video"] == row.video].itertuples(index=False):
            shared = max(0, min(row.offset, e.offset) - max(row.onset, e.onset) + 1)
            union = max(row.offset, e.offset) - min(row.onset, e.onset) + 1
            scores.append((shared / union if by == "iou" else shared, e.kind))
        best = max(scores, default=(0, "none"))
        out.append(best[1] if best[0] > 0 else "none")
    return out


# ------------------------------------------------------------------------------------------- a whole set

@dataclass
class SpottingRun:
    """A set of long videos spotted and scored (:func:`score_spotting_set`); :func:`merkit.api.evaluate_spotting`
    writes each table into its output folder.

    Attributes:
        out_dir: the output folder (``None`` until written).
        summary: the content of ``spotting.json``: the set, the settings, the pooled score at the config's ``p``,
            per-video scores, what the false positives overlapped, label accuracy on the hits (with a
            checkpoint), speed and warnings.
        spotted: ``spotted.csv``, one row per reported interval with its ``outcome`` (TP or FP), ``iou`` and
            ``overlaps`` (the kind of event it shares most frames with) and ``iou_event`` (the kind of event it has
            the highest IoU with, what :func:`kind_decision` scores its ``kind`` against).
        matches: ``matches.csv``, one row per reported interval and per missed ground truth.
        pr: ``pr.csv``, precision, recall and F1 for each ``p`` of :data:`P_GRID`.
        windows: ``windows.csv``, every scored window of every video.
    """

    out_dir: Path | None
    summary: dict
    spotted: pd.DataFrame
    matches: pd.DataFrame
    pr: pd.DataFrame
    windows: pd.DataFrame

    def summary_line(self) -> str:
        s = self.summary["score"]
        return (f"precision {s['precision']:.3f}  recall {s['recall']:.3f}  F1 {s['f1']:.3f}  (TP {s['tp']}, "
                f"FP {s['fp']}, FN {s['fn']}; IoU >= {self.summary['iou_threshold']}, p = "
                f"{self.summary['spot_config']['p']})")


@dataclass
class _Spotted:
    """What spotting every video of a set gave, before it is scored."""

    spotted: pd.DataFrame
    windows: pd.DataFrame
    per_video: dict
    warnings: dict
    timing: dict
    frames: int = 0
    seconds: float = 0.0
    wall: float = 0.0


def _spot_every_video(dataset: SpottingSet, truth: pd.DataFrame, spot, iou: float, log) -> _Spotted:
    """Run ``spot`` on each video of the set and score each video on its own (for the per-video table)."""
    import time

    spotted_parts, window_parts = [], []
    run = _Spotted(pd.DataFrame(), pd.DataFrame(), {}, {}, {"read": 0.0, "face": 0.0, "motion": 0.0, "model": 0.0})
    for video in dataset.videos.itertuples(index=False):
        t0 = time.perf_counter()
        result = spot(video)
        took = time.perf_counter() - t0
        span = (result.frame_numbers[-1] - result.frame_numbers[0] + 1) / video.fps
        run.wall, run.frames, run.seconds = run.wall + took, run.frames + len(result.frame_numbers), run.seconds + span
        for stage in run.timing:
            run.timing[stage] += getattr(result.timing, stage)
        for kind, count in result.warnings.items():
            run.warnings[kind] = run.warnings.get(kind, 0) + count
        part = result.intervals.assign(video=video.video)
        spotted_parts.append(part)
        window_parts.append(result.curve.assign(video=video.video))
        mine = truth[truth["video"] == video.video]
        score = score_video(list(zip(part["onset"], part["offset"])), list(zip(mine["onset"], mine["offset"])), iou)
        run.per_video[video.video] = {**score.to_dict(), "windows": len(result.curve), "seconds": round(took, 3),
                                      "skipped_windows": len(result.skipped_frames)}
        if log:
            log(f"{video.video}: {len(part)} interval(s), TP {score.tp} FP {score.fp} FN {score.fn} "
                f"({took:.1f} s for {span:.1f} s of video)")
    run.spotted = pd.concat(spotted_parts, ignore_index=True)
    run.windows = pd.concat(window_parts, ignore_index=True)
    return run


def _mark_outcomes(spotted: pd.DataFrame, truth: pd.DataFrame, events: pd.DataFrame,
                   iou: float) -> tuple[SpottingScore, pd.DataFrame]:
    """Score the pooled intervals; mark each spotted row TP or FP with its IoU and what it overlaps (in place);
    the matches table with the frame numbers of both sides."""
    score, matches = score_intervals(spotted, truth, iou)
    spotted["outcome"], spotted["iou"] = "FP", 0.0
    for row in matches.itertuples(index=False):
        if not pd.isna(row.spotted):
            spotted.loc[row.spotted, ["outcome", "iou"]] = [row.outcome, row.iou]
    spotted["overlaps"] = attribute_misses(spotted, events)
    spotted["iou_event"] = attribute_misses(spotted, events, by="iou")
    matches = matches.assign(
        spotted_onset=[None if pd.isna(i) else int(spotted.at[i, "onset"]) for i in matches["spotted"]],
        spotted_offset=[None if pd.isna(i) else int(spotted.at[i, "offset"]) for i in matches["spotted"]],
        truth_onset=[None if pd.isna(j) else int(truth.at[j, "onset"]) for j in matches["truth"]],
        truth_offset=[None if pd.isna(j) else int(truth.at[j, "offset"]) for j in matches["truth"]])
    return score, matches


def _label_accuracy(spotted: pd.DataFrame, truth: pd.DataFrame, matches: pd.DataFrame) -> dict:
    """How many hits got the ground truth's ``label_class``."""
    hits = matches[matches["outcome"] == "TP"]
    correct = sum(spotted.at[i, "label"] == truth.at[j, "label_class"] for i, j in zip(hits["spotted"], hits["truth"]))
    return {"hits": len(hits), "correct": int(correct), "accuracy": (int(correct) / len(hits)) if len(hits) else None}


def kind_decision(spotted: pd.DataFrame) -> dict | None:
    """How well the spotted intervals' ``kind`` (``micro`` or ``macro``, by the duration timed from the apex)
    matches the kind of the ground-truth event each has the highest IoU with (``iou_event``,
    :func:`attribute_misses` with ``by="iou"``).

    Only intervals whose event is a micro- or macro-expression count; those on blinks, head movements or nothing
    have no true kind and are counted apart (``other``). For each kind: precision (of the intervals called so,
    the share on that kind) and recall (of the intervals on that kind, the share called so).

    Returns:
        ``{"micro": {precision, recall, called, true, right}, "macro": {...}, "counted": n, "other": {kind:
        called micro/macro counts}}``, or ``None`` when the intervals carry no ``kind``.
    """
    if "kind" not in spotted.columns or "iou_event" not in spotted.columns:
        return None
    on = spotted[spotted["iou_event"].isin(["micro", "macro"])]
    out: dict = {"counted": int(len(on))}
    for kind in ("micro", "macro"):
        called, true = on["kind"] == kind, on["iou_event"] == kind
        right = int((called & true).sum())
        out[kind] = {"precision": right / int(called.sum()) if called.any() else None,
                     "recall": right / int(true.sum()) if true.any() else None,
                     "called": int(called.sum()), "true": int(true.sum()), "right": right}
    rest = spotted[~spotted["iou_event"].isin(["micro", "macro"])]
    out["other"] = {str(k): {str(c): int(n) for c, n in g["kind"].value_counts().items()}
                    for k, g in rest.groupby("iou_event")}
    return out


def _speed(run: _Spotted) -> dict:
    import os

    return {"frames": run.frames, "video_seconds": round(run.seconds, 3), "wall_seconds": round(run.wall, 3),
            "frames_per_second": round(run.frames / run.wall, 2) if run.wall else None,
            "realtime_ratio": round(run.seconds / run.wall, 3) if run.wall else None,
            "timing": {k: round(v, 3) for k, v in run.timing.items()}, "load_average": os.getloadavg()[0],
            "cpu_count": os.cpu_count()}


def score_spotting_set(dataset: SpottingSet, spot, config, kinds: Sequence[str] = ("micro",), iou: float = 0.5,
                       labelled: bool = False, settings: dict | None = None, log=None) -> SpottingRun:
    """Spot every long video of ``dataset`` with ``spot`` and score the intervals by the MEGC spotting protocol.

    The reported intervals are matched one-to-one to the ground truth of ``kinds``: a hit is an IoU >= ``iou``
    (MEGC2019-2022: 0.5), and precision, recall and F1 come from TP, FP and FN pooled over the videos. The threshold
    sweep (:func:`sweep_threshold`) reuses the scored windows, so it costs no second pass.

    Args:
        dataset: the set (:func:`load_spotting_set`).
        spot: ``spot(video)`` for a row of ``dataset.videos`` (``video``, ``path``, ``fps``) returns an object with
            ``intervals`` (``onset``, ``offset``[, ``label``]), ``curve`` (the scored windows), ``frame_numbers``,
            ``timing`` (``read``, ``face``, ``motion``, ``model`` seconds), ``warnings`` and ``skipped_frames``, as
            :class:`merkit.predict.results.SpotResult` has.
        config: the spotting settings (:class:`merkit.motion.spotting.SpotConfig`).
        kinds: the ground-truth kinds to find (the others, e.g. ``macro``, are distractors).
        labelled: ``spot`` labels each interval (``label``): report the label accuracy on the hits.
        settings: recorded in the summary as they are (e.g. the checkpoint, the face settings, the frame step).
        log: a callable that receives one line per video.

    Raises:
        DataError: from ``spot`` (the message names the video).
    """
    import dataclasses

    truth = dataset.ground_truth(kinds)
    run = _spot_every_video(dataset, truth, spot, iou, log)
    spotted = run.spotted
    score, matches = _mark_outcomes(spotted, truth, dataset.intervals, iou)
    pr = sweep_threshold(run.windows, truth, config, threshold=iou)
    false = spotted[spotted["outcome"] == "FP"]
    labels = _label_accuracy(spotted, truth, matches) if labelled and "label_class" in truth.columns else None
    summary = {
        "data": str(dataset.root), "videos": len(dataset.videos), "kinds": list(kinds),
        "ground_truth": len(truth), "iou_threshold": iou, **(settings or {}),
        "spot_config": dataclasses.asdict(config),
        "score": score.to_dict(), "per_video": run.per_video,
        "false_positives_overlap": {k: int(v) for k, v in false["overlaps"].value_counts().items()},
        "labels": labels, "kinds_decision": kind_decision(spotted), "speed": _speed(run), "warnings": run.warnings,
    }
    return SpottingRun(None, summary, spotted, matches, pr, run.windows)
