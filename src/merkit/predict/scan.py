"""Spotting without a model: slide windows over a long video, fit the face once per window, score every frame by
its motion relative to the window's first frame, and pick candidate intervals.

:meth:`merkit.predict.Predictor.spot` recognises what :func:`spot_video` finds; ``merkit evaluate-spotting``
scores it against ground truth (:mod:`merkit.evaluation.spotting`) with or without a model.

The face, per window (:func:`scan_windows`):

* **Reference.** The face on the window's first frame (the local onset) gives the one transform that warps the
  window's frames (``FaceConfig``'s alignment and crop, at ``SpotConfig.size``). The face is followed from window
  to window: the reference box is the face found near the previous window's box on that frame; the whole frame is
  searched (the checkpoint's detector and ``upsample``) only for the first window and after the face was lost.
  ``several-faces`` is therefore counted at those full searches only.
* **Check.** Every later frame of the window must show a face within
  :data:`merkit.face.landmarks.MAX_FACE_SHIFT` of the reference box, as
  :func:`merkit.face.landmarks.check_face` requires. The detection around the box
  (:func:`merkit.face.landmarks.faces_near`) runs once per frame and is reused by the overlapping windows;
  a window whose check fails is skipped (``face-lost``), one whose first frame has no face too (``no-face``).
* **Crops.** Frames are converted to grey once and warped once per window; the motion is measured on grey crops
  whatever ``FaceConfig.color`` says.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

import cv2
import numpy as np
import pandas as pd

from merkit.errors import DataError, Diagnostics
from merkit.face.clip import FaceConfig
from merkit.media import VideoFrames, as_video
from merkit.motion.spotting import SpotConfig, motion_curve, motion_extent, select_intervals, smooth_curve
from merkit.predict.results import Prediction, SpotResult, Timing


class _FaceTrack:
    """Faces found near a followed box, per frame, computed once per frame and track."""

    def __init__(self, frames: VideoFrames, detector: str):
        self.frames, self.detector = frames, detector
        self.track = 0
        self.found: dict[tuple[int, int], list] = {}

    def near(self, position: int, box) -> list:
        from merkit.face.landmarks import faces_near

        key = (self.track, position)
        if key not in self.found:
            self.found[key] = faces_near(self.frames.frames[position], box, self.detector)
        return self.found[key]

    def restart(self) -> None:
        """Start a new track (after a full-frame search): earlier searches looked around another box."""
        self.track += 1


def _reference_fit(frames: VideoFrames, track: _FaceTrack, box, begin: int, face: FaceConfig,
                   diagnostics: Diagnostics, where):
    """The landmark fit of a window's first frame: the face near the previous window's ``box`` while it is
    followed, else a full-frame search (which starts a new track; with several faces the largest, counted).

    Returns:
        ``(landmarks, box, number of faces)``, what :func:`merkit.face.clip.align_frames` takes as its reference.

    Raises:
        FaceNotFoundError: no face on the frame.
    """
    from merkit.face.landmarks import MAX_FACE_SHIFT, FaceNotFoundError, detect_faces, face_shift, landmarks_in_box

    if box is not None:
        near = track.near(begin, box)
        if face_shift(near, box) <= MAX_FACE_SHIFT:
            found = min(near, key=lambda b: face_shift([b], box))
            return landmarks_in_box(frames.frames[begin], found), found, 1
    track.restart()
    boxes = detect_faces(frames.frames[begin], face.detector, face.upsample)
    if not boxes:
        raise FaceNotFoundError("no face detected", where)
    if len(boxes) > 1:
        diagnostics.warn("several-faces", f"{len(boxes)} faces on the reference frame; the largest "
                         f"{tuple(int(v) for v in boxes[0])} is used", where)
    return landmarks_in_box(frames.frames[begin], boxes[0]), boxes[0], len(boxes)


def scan_windows(frames: VideoFrames, face: FaceConfig, config: SpotConfig, diagnostics: Diagnostics,
                 timing: Timing | None = None, progress: Progress | None = None) -> tuple[pd.DataFrame, list[int]]:
    """Score every window of a video by its peak motion relative to its first frame (see the module docstring).

    Args:
        frames: the video, RGB uint8 frames with their numbers.
        face: the face settings (detector, upsample, alignment, crop); the crop's side is ``config.size`` when set.
        config: window, hop (seconds, at the frames' rate), flow method, smoothing and the interval rule.
        diagnostics: receives the counted warnings (``no-face``, ``face-lost``, ``several-faces``).
        timing: ``face`` and ``motion`` seconds are added to it.
        progress: ``progress(done, total)`` after each window (``merkit predict --spot`` shows a bar with it).

    Returns:
        ``(windows, skipped)``: one row per scored window, ``onset`` (frame number of its first frame), ``peak``
        (frame of its strongest smoothed motion, never the first), ``offset`` (its last frame), ``score`` (the
        smoothed peak, pixels of flow on the crop), ``interior`` (the peak lies before the last frame), ``start``
        and ``end`` (frame numbers of the interval it reports under ``config.interval``); and the first frame
        numbers of the windows skipped for want of a face.
    """
    from merkit.face.clip import align_frames
    from merkit.face.landmarks import FaceLostError, FaceNotFoundError, face_shift, raise_if_lost

    timing = timing if timing is not None else Timing()
    spacing = float(np.median(np.diff(frames.numbers))) if len(frames) > 1 else 1.0
    window, hop = config.frames(frames.fps / spacing if frames.fps else None)
    scan_face = dataclasses.replace(face, size=config.size or face.size, color="grey")
    track = _FaceTrack(frames, face.detector)
    grey: dict[int, np.ndarray] = {}
    rows, skipped = [], []
    box = None  # the previous window's reference box, while the face is followed
    starts = range(0, len(frames) - window + 1, hop)
    for done, begin in enumerate(starts):
        if progress is not None:
            progress(done, len(starts))
        end = begin + window
        where = frames.where(frames.numbers[begin])
        t0 = time.perf_counter()
        try:
            fit = _reference_fit(frames, track, box, begin, face, diagnostics, where)
            reference = fit[1]
            for k in range(begin + 1, end):
                raise_if_lost(face_shift(track.near(k, reference), reference), frames.where(frames.numbers[k]))
            for k in range(begin, end):
                if k not in grey:
                    grey[k] = cv2.cvtColor(frames.frames[k], cv2.COLOR_RGB2GRAY)
            clip = align_frames([grey[k] for k in range(begin, end)], scan_face, 0, where,
                                frame_numbers=frames.numbers[begin:end], reference_fit=fit)
        except FaceLostError as error:
            diagnostics.warn("face-lost", f"window skipped: {str(error).split(' [')[0]}", where)
            skipped.append(frames.numbers[begin])
            box = None
            continue
        except FaceNotFoundError:
            diagnostics.warn("no-face", "no face on the frame; skipped", where)
            skipped.append(frames.numbers[begin])
            box = None
            continue
        finally:
            timing.face += time.perf_counter() - t0
            for k in [k for k in grey if k < begin + hop]:  # frames no later window uses
                del grey[k]
        box = reference
        t0 = time.perf_counter()
        curve = smooth_curve(motion_curve(clip.frames, 0, None, config.measure, config.method), config.smooth)
        timing.motion += time.perf_counter() - t0
        peak = int(np.argmax(curve[1:])) + 1
        start, stop = motion_extent(curve, peak) if config.interval == "extent" else (0, len(curve) - 1)
        rows.append({"onset": frames.numbers[begin], "peak": frames.numbers[begin + peak],
                     "offset": frames.numbers[end - 1], "score": float(curve[peak]),
                     "interior": peak < len(curve) - 1, "start": frames.numbers[begin + start],
                     "end": frames.numbers[begin + stop]})
    if progress is not None:
        progress(len(starts), len(starts))
    columns = ["onset", "peak", "offset", "score", "interior", "start", "end"]
    return pd.DataFrame(rows, columns=columns), skipped


Recognise = Callable[[VideoFrames, int, int, int], Prediction]
Progress = Callable[[int, int], None]

#: :func:`event_duration`: when the motion relative to a candidate apex on one side stays below this fraction of
#: the other side's, the face is at rest on that side, and the expression is timed from the other side's
#: most distant frame (chosen on merkit's synthetic long videos, seed 2).
LOPSIDED = 0.7


def event_duration(frames: VideoFrames, apex: int, face: FaceConfig, config: SpotConfig,
                   horizon_s: float = 0.75) -> float | None:
    """The duration, seconds, of the expression whose apex is at position ``apex``, measured beyond the spotting
    window: the frames within ``horizon_s`` on each side are warped with one transform fitted on the apex frame,
    scored by their local motion relative to it (the spotting flow method, global affine motion removed, the mean
    of the largest :data:`LOCAL_FRACTION` of the magnitudes), and the raised-cosine dip with a linear drift that
    fits the motion around the apex best gives the duration (:func:`merkit.motion.spotting.dip_duration`).
    ``horizon_s`` of 0.75 s suffices to tell an expression of at most 0.5 s from a longer one: a dip that has not
    ended within it lasts at least 1.5 s. When the face is at rest
    on one side of the frame (:func:`merkit.motion.spotting.dip_sides`, or the motion on that side stays below
    :data:`LOPSIDED` of the other's), the frame ends an expression rather than peaks it, and the expression is timed
    once more from the other side's frame most unlike it.

    Returns:
        Seconds, or ``None`` when the frame rate is unknown or the apex frame shows no face.
    """
    from merkit.motion.spotting import dip_duration, dip_sides

    if not frames.fps:
        return None
    spacing = float(np.median(np.diff(frames.numbers))) if len(frames) > 1 else 1.0
    rate = frames.fps / spacing
    reach = max(2, int(round(horizon_s * rate)))
    curves = _curves_from(frames, apex, reach, face, config)
    if curves is None:
        return None
    after, before = dip_sides(*curves)
    strong = [float(c.max()) for c in curves]
    if min(strong) < LOPSIDED * max(strong):  # at rest on the weaker side
        after, before = strong[0] > strong[1], strong[1] > strong[0]
    if after != before:
        # The face is at rest on one side of this frame, so it ends an expression rather than peaks it (a window
        # whose local onset fell inside the expression peaks when the face is back at neutral): time the
        # expression from the frame most unlike this one on the other side, its apex.
        side = curves[0] if after else curves[1]
        moved = apex + (1 if after else -1) * int(np.argmax(side))
        curves = _curves_from(frames, moved, reach, face, config) if moved != apex else curves
        if curves is None:
            return None
    return dip_duration(*curves) / rate


def _curves_from(frames: VideoFrames, apex: int, reach: int, face: FaceConfig,
                 config: SpotConfig) -> tuple[np.ndarray, np.ndarray] | None:
    """The smoothed motion relative to position ``apex`` of the ``reach`` frames after it and before it (each
    curve starting at the apex), on crops warped with one transform fitted on the apex frame; ``None`` when it
    shows no face."""
    from merkit.face.clip import align_frames
    from merkit.face.landmarks import FaceNotFoundError

    lo, hi = max(0, apex - reach), min(len(frames), apex + reach + 1)
    scan_face = dataclasses.replace(face, size=config.size or face.size, color="grey")
    try:
        clip = align_frames(frames.frames[lo:hi], scan_face, apex - lo, frames.where(frames.numbers[apex]),
                            frame_numbers=frames.numbers[lo:hi])
    except FaceNotFoundError:
        return None
    crops = list(clip.frames)
    parts = (crops[apex - lo:], crops[: apex - lo + 1][::-1])
    measure = _local_motion(config.method, crops[0].shape[:2])
    return tuple(motion_curve(part, 0, None, measure, config.method) if len(part) > 1 else np.zeros(1)
                 for part in parts)


#: :func:`event_duration` scores a frame by the mean of the largest this fraction of its flow magnitudes: an
#: expression moves part of the face, and the whole face's mean sinks it into the flow's noise floor.
LOCAL_FRACTION = 0.1


def _local_motion(method: str, shape: tuple[int, int], border: float = 0.1):
    """A :func:`merkit.motion.spotting.motion_curve` measure: the flow from the reference to a frame, its global
    affine part removed (over the crop without a ``border``), and the mean of its largest
    :data:`LOCAL_FRACTION` magnitudes there."""
    from merkit.motion.flow import compute_flow, flow_magnitude
    from merkit.motion.spotting import remove_affine

    inner = np.zeros(shape, dtype=bool)
    by, bx = int(round(border * shape[0])), int(round(border * shape[1]))
    inner[by:shape[0] - by, bx:shape[1] - bx] = True

    def measure(reference: np.ndarray, frame: np.ndarray) -> float:
        values = flow_magnitude(remove_affine(compute_flow(reference, frame, method), inner))[inner]
        top = max(1, int(LOCAL_FRACTION * values.size))
        return float(np.partition(values, values.size - top)[-top:].mean())

    return measure


def _interval_record(frames: VideoFrames, row, to_s, duration: float | None) -> dict:
    from merkit.predict.trust import expression_kind

    return {"onset": int(row.start), "apex": int(row.peak), "offset": int(row.end), "onset_s": to_s(int(row.start)),
            "apex_s": to_s(int(row.peak)), "offset_s": to_s(int(row.end)), "score": round(float(row.score), 4),
            "duration_s": None if duration is None else round(duration, 3), "kind": expression_kind(duration)}

#: The face settings of spotting without a model (``merkit evaluate-spotting`` without ``--checkpoint``, and
#: :func:`spot_video` by default): ``FaceConfig()`` with SLSTT's crop, the settings the spotting figures of
#: ``docs/predict.md`` were measured with. With a model, spotting uses the face settings of the model's record.
SPOT_FACE = FaceConfig(crop="slstt")


def spot_video(video, config: SpotConfig = SpotConfig(), face: FaceConfig = SPOT_FACE, first: int | None = None,
               last: int | None = None, step: int = 1, fps: float | None = None,
               recognise: Recognise | None = None, classes: tuple[str, ...] = (), label_macro: bool = False,
               progress: Progress | None = None) -> SpotResult:
    """Find candidate expression intervals in a long video, tell micro from macro, and recognise each micro one
    (and each macro one with ``label_macro``) when ``recognise`` is given.

    Micro or macro: each interval's expression is timed from its apex beyond the window (:func:`event_duration`)
    and called ``micro`` when it lasts at most 0.5 s, ``macro`` when longer, as the MEGC spotting challenges define
    them (:func:`merkit.predict.trust.expression_kind`). A micro-expression model has nothing to say about a
    macro-expression, so those get no label unless ``label_macro``.

    Args:
        video: a video file, a folder of frames, :class:`merkit.media.VideoFrames` or a sequence of RGB uint8
            arrays.
        config: window, hop, threshold, crop size and interval rule (:class:`merkit.motion.spotting.SpotConfig`).
        face: the face settings (:class:`merkit.face.clip.FaceConfig`; a checkpoint's record for
            :meth:`Predictor.spot`; default :data:`SPOT_FACE`).
        first, last: scan only frames numbered in ``[first, last]``.
        step: keep every ``step``-th frame (the window and hop stay in seconds, so they span fewer kept frames).
        fps: frame rate of a frame folder (default ``config.default_fps``).
        recognise: ``recognise(frames, begin, end, apex)`` -> :class:`Prediction` of the clip ``frames[begin:end]``
            with the apex frame number given; ``None`` leaves the intervals unlabelled.
        classes: the class names ``recognise`` answers with.
        label_macro: recognise macro intervals too (their label is empty otherwise).
        progress: ``progress(done, total)`` after each scanned window (:func:`scan_windows`).

    Returns:
        :class:`SpotResult`; its ``intervals`` (``onset, apex, offset`` frame numbers of the reported interval,
        the same in seconds, ``score``, ``duration_s`` (the expression's duration timed from its apex, seconds),
        ``kind`` (``micro`` or ``macro``), and with ``recognise`` also ``label`` (empty for an unlabelled macro
        interval), ``prob_<class>`` and ``domain_warnings``) may be empty.

    Raises:
        DataError: unreadable, empty or too short input (fewer frames than one window), or no window with a
            face.
    """
    timing = Timing()
    t0 = time.perf_counter()
    frames = as_video(video, first, last, step, fps)
    timing.read = time.perf_counter() - t0
    spacing = float(np.median(np.diff(frames.numbers))) if len(frames) > 1 else 1.0
    window, _ = config.frames(frames.fps / spacing if frames.fps else None)
    if len(frames) < window:
        raise DataError(f"the input has {len(frames)} frames, fewer than one spotting window ({window})",
                        frames.where(), hint="give a longer video, a smaller window_s, or use predict on a "
                                             "short clip")
    diagnostics = Diagnostics()
    if last is not None and last - frames.numbers[-1] >= step:  # the input ended before --last
        diagnostics.warn("clipped", f"--last {last} lies past the input's last frame {frames.numbers[-1]}; "
                         "scanned to the end", frames.where())
    windows, skipped = scan_windows(frames, face, config, diagnostics, timing, progress)
    if windows.empty:
        raise DataError("no window kept a face on all its frames", frames.where(),
                        hint="the face must be visible and frontal; check the detector settings")
    chosen, threshold = select_intervals(windows, config)
    predictions, records = [], []
    to_s = (lambda n: None if not frames.fps else round(n / frames.fps, 4))
    for i in chosen:
        row = windows.iloc[i]
        t0 = time.perf_counter()
        duration = event_duration(frames, frames.numbers.index(int(row.peak)), face, config)
        timing.motion += time.perf_counter() - t0
        record = _interval_record(frames, row, to_s, duration)
        if recognise is not None and (record["kind"] == "micro" or label_macro):
            begin = frames.numbers.index(int(row.onset))
            pred = recognise(frames, begin, begin + window, int(row.peak))
            for stage in ("face", "motion", "model"):
                setattr(timing, stage, getattr(timing, stage) + getattr(pred.timing, stage))
            predictions.append(pred)
            record.update({"label": pred.label, **{f"prob_{c}": round(p, 4) for c, p in pred.probabilities.items()},
                           "domain_warnings": ";".join(f.name for f in pred.domain_warnings)})
        elif recognise is not None:
            record.update({"label": "", "domain_warnings": "macro-expression"})
        records.append(record)
    columns = ["onset", "apex", "offset", "onset_s", "apex_s", "offset_s", "score", "duration_s", "kind"]
    if recognise is not None:
        columns += ["label"] + [f"prob_{c}" for c in classes] + ["domain_warnings"]
    return SpotResult(pd.DataFrame(records, columns=columns), windows, threshold, predictions, list(frames.numbers),
                      tuple(classes), timing, skipped, diagnostics.summary(), frames.fps, frames.source)
