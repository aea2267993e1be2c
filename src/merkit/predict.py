"""Micro-expression recognition on new videos: a trained checkpoint, a video of a face, a typed answer.

Practitioners do not run LOSO. They hold a trained model and a video, and ask: is there a micro-expression here,
when, and which? :class:`Predictor` answers that with the checkpoint that :func:`merkit.api.train` writes:

* :meth:`Predictor.predict` (one clip, onset and apex given or spotted) -> :class:`Prediction`;
* :meth:`Predictor.spot` (a long video: sliding windows, candidate intervals from peaks of motion relative to a
  local onset, each interval recognised) -> :class:`SpotResult`, the spot-then-recognise setting of the MEGC
  challenges.

Inputs are rebuilt exactly as in training. The checkpoint's ``preprocessing`` record (:class:`merkit.preprocessing.Preprocessing`, the
single definition of that record's schema: a :class:`~merkit.face.clip.FaceConfig` and a
:class:`~merkit.motion.stage.MotionConfig`) fixes the face stage (detect and fit the 68 landmarks on the onset frame,
one alignment and crop for every frame of the clip, :func:`merkit.face.clip.align_frames`) and the motion stage
(the representations the model consumes, :class:`merkit.motion.stage.MotionStage`). A record the current code
cannot reproduce (unknown or missing settings, another major merkit version) is refused with
:class:`CheckpointError`.

Robustness: a frame without a face where a face is needed (an onset, a window's local onset) is skipped with a
counted warning (:class:`merkit.errors.Diagnostics`); several faces use the largest, with a warning; a missing,
unreadable, empty or too short input raises :class:`merkit.errors.DataError` with a hint.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from merkit import __version__
from merkit.errors import CheckpointError, DataError, Diagnostics, Where
from merkit.motion.stage import INPUT_KEYS
from merkit.preprocessing import COMPOSITE_FLOW, Preprocessing, major_version

DATASET = "video"


@dataclass
class VideoFrames:
    """Frames of a video or a frame folder, in temporal order.

    Attributes:
        frames: T frames, (H, W, 3) RGB uint8.
        numbers: T frame numbers (0-based index in a video file; the number in the file name in a folder).
        fps: frames per second of the frame numbers (from the video container; ``None`` for a folder unless
            given).
        source: what was read (a path, or ``"<arrays>"``).
    """

    frames: list[np.ndarray]
    numbers: list[int]
    fps: float | None = None
    source: str = "<arrays>"

    def __len__(self) -> int:
        return len(self.frames)

    def position(self, number: int, what: str) -> int:
        """Index of frame ``number``.

        Raises:
            DataError: no frame carries that number.
        """
        if number not in self.numbers:
            raise DataError(f"{what} frame {number} is not among the input's frames "
                            f"{self.numbers[0]}..{self.numbers[-1]}", Where(DATASET, sample=self.source,
                                                                          frame=number),
                            hint="frame numbers are 0-based indices in a video file, the file names' numbers in "
                                 "a frame folder")
        return self.numbers.index(number)


def _where(source: str, frame: int | None = None) -> Where:
    return Where(DATASET, sample=source, frame=frame)


def read_video(source: str | Path, first: int | None = None, last: int | None = None, step: int = 1,
               fps: float | None = None) -> VideoFrames:
    """Read a video file (OpenCV/FFmpeg) or a folder of frames (sorted by the number in their names).

    Args:
        source: a video file or a folder of image frames (``img46.jpg``, ``006_05562.jpg``, ...).
        first, last: keep frames whose number lies in ``[first, last]`` (inclusive; video frames are numbered
            from 0).
        step: keep every ``step``-th of those frames (subsampling a long video).
        fps: frames per second of a frame folder (a video file's own rate is read from the container). It stays
            the rate of the frame numbers when ``step`` > 1.

    Returns:
        :class:`VideoFrames` with RGB uint8 frames.

    Raises:
        DataError: the input does not exist, cannot be opened or decoded, or holds no frame in the range.
    """
    import cv2

    from merkit.datasets.frames import frame_number, list_frames

    path = Path(source)
    where = _where(str(path))
    if step < 1:
        raise DataError(f"step must be >= 1, got {step}", where)
    lo, hi = (first if first is not None else 0), (last if last is not None else np.inf)
    if not path.exists():
        raise DataError(f"input not found: {path}", where, hint="give a video file or a folder of frames")
    frames, numbers = [], []
    if path.is_dir():
        kept = [p for p in list_frames(path, where) if lo <= frame_number(p) <= hi][::step]
        for p in kept:
            image = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if image is None:
                raise DataError("cannot read frame", _where(str(path), frame_number(p)),
                                hint=f"check that {p} is an image file")
            frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
            numbers.append(frame_number(p))
        rate = fps
    else:
        capture = cv2.VideoCapture(str(path))
        try:
            if not capture.isOpened():
                raise DataError(f"cannot open {path} as a video", where,
                                hint="give a video file FFmpeg can decode (mp4, avi, ...) or a folder of frames")
            rate = fps or (capture.get(cv2.CAP_PROP_FPS) or None)
            index = -1
            if lo > 0 and capture.set(cv2.CAP_PROP_POS_FRAMES, lo):
                # FFmpeg seeks to the keyframe before ``lo`` and decodes forward, so the frame index stays exact
                # and a clip late in a long video is not decoded from the start.
                index = int(capture.get(cv2.CAP_PROP_POS_FRAMES)) - 1
            while index < hi:
                ok, image = capture.read()
                if not ok:
                    break
                index += 1
                if index >= lo and (index - lo) % step == 0:
                    frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
                    numbers.append(index)
        finally:
            capture.release()
        if index < 0:
            raise DataError(f"no frame could be decoded from {path}", where,
                            hint="the file is empty, truncated or not a video")
    if not frames:
        raise DataError(f"no frame of {path} lies in [{first}, {last}]", where,
                        hint="check --first/--last (or onset/offset) against the input's frame numbers")
    return VideoFrames(frames, numbers, rate, str(path))


def as_video(video: "str | Path | VideoFrames | Sequence[np.ndarray]", first: int | None = None,
             last: int | None = None, step: int = 1, fps: float | None = None) -> VideoFrames:
    """``video`` as :class:`VideoFrames`: read a path (:func:`read_video`), or wrap arrays (RGB uint8, numbered
    0..T-1), keeping the frames numbered in ``[first, last]``."""
    if isinstance(video, (str, Path)):
        return read_video(video, first, last, step, fps)
    if not isinstance(video, VideoFrames):
        frames = [np.asarray(f) for f in video]
        video = VideoFrames(frames, list(range(len(frames))), fps)
    lo, hi = (first if first is not None else -np.inf), (last if last is not None else np.inf)
    keep = [i for i, n in enumerate(video.numbers) if lo <= n <= hi][::step]
    if not keep:
        raise DataError(f"no frame lies in [{first}, {last}]", _where(video.source))
    return VideoFrames([video.frames[i] for i in keep], [video.numbers[i] for i in keep], video.fps, video.source)


@dataclass
class Timing:
    """Seconds spent per stage: reading frames, face (detection, landmarks, warping), motion (apex spotting,
    representations), model (forward pass)."""

    read: float = 0.0
    face: float = 0.0
    motion: float = 0.0
    model: float = 0.0

    @property
    def total(self) -> float:
        return self.read + self.face + self.motion + self.model

    def to_dict(self) -> dict[str, float]:
        return {**{k: round(v, 4) for k, v in dataclasses.asdict(self).items()}, "total": round(self.total, 4)}


@dataclass
class Prediction:
    """The answer of :meth:`Predictor.predict` for one clip.

    Attributes:
        label: the predicted class name.
        probabilities: class name -> softmax probability (they sum to 1).
        onset, apex, offset: frame numbers used (video frames count from 0).
        apex_source: ``given`` or ``spotted``.
        face_box: (left, top, right, bottom) of the face on the onset frame, source pixels.
        n_faces: faces found on the onset frame (the largest is used).
        timing: seconds per stage.
        skipped_frames: frame numbers skipped because they showed no face.
        warnings: counted warnings by kind (``no-face``, ``several-faces``, ...).
        fps: frames per second of the input, when known.
        source: the input that was read.
        crops: the aligned onset and apex crops, (S, S) or (S, S, 3) uint8 (for the figure).
        inputs: the model inputs, name -> float32 array without the batch dimension.
        feature_map: ``model.forward_features`` of the clip when it is spatial, (C, h, w) float32, else ``None``.
    """

    label: str
    probabilities: dict[str, float]
    onset: int
    apex: int
    offset: int
    apex_source: str
    face_box: tuple[int, int, int, int]
    n_faces: int
    timing: Timing
    skipped_frames: list[int] = field(default_factory=list)
    warnings: dict[str, int] = field(default_factory=dict)
    fps: float | None = None
    source: str = ""
    crops: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    inputs: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    feature_map: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON record: everything but the arrays."""
        seconds = (lambda n: None if not self.fps else round(n / self.fps, 4))
        return {"source": self.source, "label": self.label,
                "probabilities": {k: float(v) for k, v in self.probabilities.items()},
                "onset": self.onset, "apex": self.apex, "offset": self.offset, "apex_source": self.apex_source,
                "onset_s": seconds(self.onset), "apex_s": seconds(self.apex), "fps": self.fps,
                "face_box": list(self.face_box), "n_faces": self.n_faces, "timing": self.timing.to_dict(),
                "skipped_frames": list(self.skipped_frames), "warnings": dict(self.warnings),
                "merkit_version": __version__}

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text)
        return text

    def save_figure(self, path: str | Path) -> Path:
        """Onset and apex crops, the motion map, the model's feature map (where spatial) and probability bars."""
        return prediction_figure(self, path)


@dataclass
class SpotResult:
    """The answer of :meth:`Predictor.spot` for a long video.

    Attributes:
        intervals: one row per candidate interval: ``onset, apex, offset`` (frame numbers), ``onset_s, apex_s,
            offset_s`` (seconds, when the frame rate is known), ``score`` (peak motion relative to the local onset,
            pixels), ``label`` and ``prob_<class>``.
        curve: one row per window: ``onset`` (frame number of the local onset), ``peak`` (frame number of its
            strongest motion), ``offset`` (its last frame), ``score`` and ``interior`` (the peak lies before the last
            frame); windows skipped for want of a face are absent.
        threshold: the score threshold (pixels) a window needed to become a candidate.
        predictions: the :class:`Prediction` of each interval.
        frame_numbers: all frame numbers scanned.
    """

    intervals: pd.DataFrame
    curve: pd.DataFrame
    threshold: float
    predictions: list[Prediction]
    frame_numbers: list[int]
    classes: tuple[str, ...]
    timing: Timing
    skipped_frames: list[int] = field(default_factory=list)
    warnings: dict[str, int] = field(default_factory=dict)
    fps: float | None = None
    source: str = ""

    def to_csv(self, path: str | Path) -> Path:
        self.intervals.to_csv(path, index=False)
        return Path(path)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "fps": self.fps, "frames": len(self.frame_numbers),
                "first": self.frame_numbers[0], "last": self.frame_numbers[-1], "threshold": self.threshold,
                "windows": len(self.curve), "intervals": self.intervals.to_dict("records"),
                "timing": self.timing.to_dict(), "skipped_frames": list(self.skipped_frames),
                "warnings": dict(self.warnings), "merkit_version": __version__}

    def save_timeline(self, path: str | Path) -> Path:
        """Motion score over time, the threshold, and the intervals coloured by predicted class."""
        return timeline_figure(self, path)


@dataclass(frozen=True)
class SpotConfig:
    """Sliding-window spotting of :meth:`Predictor.spot`.

    Each window starts at a local onset; the face is fitted on it, the window's frames are warped with that one
    transform, and every frame is scored by its motion relative to the local onset
    (:func:`merkit.motion.spotting.motion_curve`: flow magnitude with the global affine (head) motion removed).
    A window whose smoothed peak exceeds ``mean + p (max - mean)`` of all windows' peaks (the relative threshold
    of Moilanen, Zhao and Pietikainen, "Spotting rapid facial movements from videos using appearance-based feature
    difference analysis", ICPR 2014, which the MEGC spotting baselines reuse) becomes a candidate interval [local
    onset, window end] with its apex at the peak;
    overlapping candidates keep the strongest. With ``interior_peak`` a window whose motion is still rising at its
    last frame is no candidate: a micro-expression (under 0.5 s) rises and falls within the window, while a head
    turn or a macro-expression keeps growing past it.

    Attributes:
        window_s: window length, seconds (a micro-expression lasts under 0.5 s).
        hop_s: step between window starts, seconds.
        p: threshold fraction in [0, 1]; higher keeps fewer intervals.
        min_score: absolute floor of the threshold, pixels of flow on the aligned crop.
        measure, method: the spotting measure and flow backend (:func:`~merkit.motion.spotting.motion_curve`).
        smooth: moving-average window (frames, odd) over each window's curve.
        interior_peak: only windows whose peak lies before their last frame become candidates.
        default_fps: frame rate assumed for a frame folder given without one.
    """

    window_s: float = 0.5
    hop_s: float = 0.25
    p: float = 0.5
    min_score: float = 0.0
    measure: str = "flow"
    method: str = "farneback"
    smooth: int = 3
    interior_peak: bool = True
    default_fps: float = 30.0

    def frames(self, fps: float | None) -> tuple[int, int]:
        """(window, hop) in frames at ``fps`` (at least 3 and 1 frames)."""
        rate = fps or self.default_fps
        return max(3, int(round(self.window_s * rate))), max(1, int(round(self.hop_s * rate)))


class Predictor:
    """A trained model and the preprocessing that built its inputs, ready for new videos.

    Build it with :meth:`from_checkpoint`; then :meth:`predict` one clip or :meth:`spot` a long video.
    """

    def __init__(self, model, classes: Sequence[str], preprocessing: Preprocessing, meta: Mapping[str, Any]
                 | None = None, notes: Sequence[str] = ()):
        self.model = model.eval()
        self.classes = tuple(classes)
        self.preprocessing = preprocessing
        self.meta = dict(meta or {})
        self.notes = list(notes)
        missing = [k for k in model.input_keys if k not in preprocessing.input_keys]
        if missing:
            raise CheckpointError(f"the model needs inputs {missing}, which preprocessing "
                                  f"{list(preprocessing.motion.representations)} does not build (it builds "
                                  f"{list(preprocessing.input_keys)})")

    @classmethod
    def from_checkpoint(cls, path: str | Path, preprocessing: Preprocessing | Mapping | None = None
                        ) -> "Predictor":
        """Load a checkpoint folder written by :func:`merkit.api.train`.

        Args:
            path: the folder holding ``checkpoint.json``, ``model.safetensors`` and ``config.yaml``.
            preprocessing: override the checkpoint's record (a :class:`Preprocessing` or its dict), for a
                checkpoint that has none; you then vouch that it matches how the training inputs were made.

        Raises:
            CheckpointError: missing files, another major merkit version, weights that do not fit the model, or a
                preprocessing record the current code cannot reproduce (see :meth:`Preprocessing.from_dict`). A
                checkpoint without a record is accepted only when its inputs are the MEGC2019 composite's flow
                images (:data:`COMPOSITE_FLOW`); otherwise the message says what is missing.
        """
        from safetensors.torch import load_file

        from merkit.models import build_model

        folder = Path(path)
        source = str(folder)
        for name in ("checkpoint.json", "model.safetensors"):
            if not (folder / name).is_file():
                raise CheckpointError(f"{folder / name} not found: is {folder} a checkpoint folder written by "
                                      "merkit train?")
        try:
            meta = json.loads((folder / "checkpoint.json").read_text())
        except json.JSONDecodeError as error:
            raise CheckpointError(f"{source}: checkpoint.json is not valid JSON ({error})") from error
        missing = [k for k in ("model", "classes", "merkit_version") if k not in meta]
        if missing:
            raise CheckpointError(f"{source}: checkpoint.json lacks {missing}")
        if major_version(meta["merkit_version"]) != major_version(__version__):
            raise CheckpointError(f"{source}: written by merkit {meta['merkit_version']}, this is merkit "
                                  f"{__version__}; load it with merkit {major_version(meta['merkit_version'])}.x")
        notes = []
        if preprocessing is not None:
            prep = (preprocessing if isinstance(preprocessing, Preprocessing)
                    else Preprocessing.from_dict(preprocessing, "preprocessing argument"))
            notes.append("preprocessing given by the caller, not read from the checkpoint")
        elif meta.get("preprocessing") is not None:
            prep = Preprocessing.from_dict(meta["preprocessing"], source)
        else:
            prep = _without_record(folder, meta)
            notes.append("the checkpoint records no preprocessing; its inputs are taken to be MEGC2019 composite "
                         "flow images (28x28 min-max u, v, strain from TV-L1 on a 224 px aligned grey face)")
        try:
            model = build_model(meta["model"], len(meta["classes"]), meta.get("preset"),
                                **(meta.get("params") or {}))
            state = load_file(str(folder / "model.safetensors"))
            model.load_state_dict(state, strict=True)
        except (KeyError, RuntimeError, ValueError, TypeError) as error:
            raise CheckpointError(f"{source}: cannot rebuild model {meta['model']!r}: {error}") from error
        predictor = cls(model, meta["classes"], prep, meta, notes)
        predictor.load_face_models()
        return predictor

    def load_face_models(self) -> None:
        """Load dlib's detector and 68-point model now (about 1-2 s, once per process), so that the first clip's
        ``timing.face`` measures the face stage rather than reading a 100 MB model file."""
        from merkit.face.landmarks import detect_faces, landmarks_in_box

        blank = np.zeros((16, 16), np.uint8)
        detect_faces(blank, self.preprocessing.face.detector, 0)
        landmarks_in_box(blank, (0, 0, 15, 15))

    # ------------------------------------------------------------------ one clip

    def predict(self, video: "str | Path | VideoFrames | Sequence[np.ndarray]", onset: int | None = None,
                apex: int | None = None, offset: int | None = None, fps: float | None = None) -> Prediction:
        """Recognise the micro-expression of one clip.

        The clip runs from ``onset`` to ``offset`` (frame numbers; default the input's first and last frame, or
        ``apex`` when only the apex is given). The face is fitted on the onset frame and that one transform warps
        every frame, as in training. Without ``apex`` the apex is spotted within the clip
        (:func:`merkit.motion.spotting.spot_apex` with the checkpoint's ``spot_measure``). An onset frame without
        a face is skipped (counted warning) and the next frame becomes the onset.

        Args:
            video: a video file, a folder of frames, :class:`VideoFrames`, or a sequence of RGB uint8 arrays.
            onset, apex, offset: frame numbers (0-based in a video file; the file names' numbers in a folder).
            fps: frame rate of a frame folder (for the times in the output).

        Returns:
            :class:`Prediction`.

        Raises:
            DataError: unreadable, empty or too short input, onset/apex/offset out of order or not among the
                frames, or no face on any frame before the apex.
        """
        given = _where(str(video) if isinstance(video, (str, Path)) else getattr(video, "source", "<arrays>"))
        if onset is not None and apex is not None and apex <= onset:
            raise DataError(f"the apex ({apex}) must come after the onset ({onset})", given)
        if offset is not None and apex is not None and offset < apex:
            raise DataError(f"the offset ({offset}) comes before the apex ({apex})", given)
        timing = Timing()
        start = time.perf_counter()
        last = offset if offset is not None else apex
        frames = as_video(video, onset, last, fps=fps)
        timing.read = time.perf_counter() - start
        if len(frames) < 2:
            raise DataError(f"the clip has {len(frames)} frame; recognition needs an onset and a later apex",
                            _where(frames.source), hint="give at least two frames (check --onset/--apex/--offset)")
        apex_pos = frames.position(apex, "apex") if apex is not None else None
        diagnostics = Diagnostics()
        clip, skipped = self._align(frames, 0, len(frames), diagnostics, timing,
                                    stop=apex_pos if apex_pos is not None else len(frames) - 1)
        return self._recognise(clip, frames, apex, diagnostics, timing, skipped)

    def _align(self, frames: VideoFrames, begin: int, end: int, diagnostics: Diagnostics, timing: Timing,
               stop: int):
        """Align ``frames[begin:end]`` on the first of them that shows a face (tried up to position ``stop``,
        exclusive); frames without a face before it are skipped and counted.

        Returns:
            ``(AlignedClip, skipped frame numbers)``.
        """
        from merkit.face.clip import align_frames
        from merkit.face.landmarks import FaceNotFoundError

        face = self.preprocessing.face
        skipped: list[int] = []
        t0 = time.perf_counter()
        try:
            for ref in range(begin, max(stop, begin + 1)):
                number = frames.numbers[ref]
                where = _where(frames.source, number)
                try:
                    clip = align_frames(frames.frames[ref:end], face, 0, where,
                                        sample_id=f"{DATASET}/input/{number}",
                                        frame_numbers=frames.numbers[ref:end])
                except FaceNotFoundError:
                    diagnostics.warn("no-face", "no face on the frame; skipped", where)
                    skipped.append(number)
                    continue
                if clip.n_faces > 1:
                    diagnostics.warn("several-faces", f"{clip.n_faces} faces on the reference frame; the largest "
                                     f"{clip.face_box} is used", where)
                return clip, skipped
        finally:
            timing.face += time.perf_counter() - t0
        first, last = frames.numbers[begin], frames.numbers[max(stop, begin + 1) - 1]
        raise FaceNotFoundError(f"no face found on frames {first}..{last}", _where(frames.source),
                        hint=f"the face must be visible and frontal at the onset; the checkpoint's detector is "
                             f"{face.detector!r} with upsample={face.upsample} (small faces need a higher upsample)")

    def _recognise(self, clip, frames: VideoFrames, apex: int | None, diagnostics: Diagnostics, timing: Timing,
                   skipped: list[int]) -> Prediction:
        """Spot the apex if needed, compute the motion representations and run the model on an aligned clip."""
        import torch

        from merkit.motion.representations import face_crop
        from merkit.motion.spotting import spot_apex
        from merkit.motion.stage import MotionStage

        motion = self.preprocessing.motion
        numbers = list(clip.frame_numbers)
        offset_pos = len(numbers) - 1
        t0 = time.perf_counter()
        if apex is None:
            if offset_pos < 1:
                raise DataError("the clip has a single frame after the onset with a face; no apex to spot",
                                _where(frames.source, numbers[0]), hint="give a longer clip")
            found = spot_apex(clip.frames, 0, offset_pos, motion.spot_measure)
            # The onset scores zero against itself; a still clip could still put the argmax there.
            apex_pos = found.apex if found.apex > 0 else 1 + int(np.argmax(found.smoothed[1:]))
            apex_source = "spotted"
        else:
            if apex not in numbers:
                raise DataError(f"apex frame {apex} comes before the first frame with a face", _where(
                    frames.source, apex), hint="choose a later apex or a clip where the face is visible")
            apex_pos, apex_source = numbers.index(apex), "given"
        onset_n, apex_n, offset_n = numbers[0], numbers[apex_pos], numbers[offset_pos]
        stage = MotionStage(dataclasses.replace(motion, apex="annotated"),
                            {clip.sample_id: (onset_n, apex_n, offset_n)})
        arrays, _ = stage.compute(clip)
        inputs = {INPUT_KEYS[name]: a for name, a in arrays.items()}
        for key, pos in (("onset", 0), ("apex", apex_pos)):
            if key not in inputs:  # the motion stage's onset_apex_frames are resized as in training
                inputs[key] = face_crop(clip.frames[pos])
        timing.motion += time.perf_counter() - t0

        t0 = time.perf_counter()
        batch = {k: torch.from_numpy(np.ascontiguousarray(inputs[k]))[None] for k in self.model.input_keys}
        with torch.no_grad():
            features = self.model.forward_features(batch)
            logits = self.model(batch).logits if _custom_forward(self.model) else self.model.forward_head(features)
            probs = torch.softmax(logits.float(), dim=1)[0].numpy().astype(np.float64)
        timing.model += time.perf_counter() - t0
        feature_map = features[0].float().numpy() if features.ndim == 4 else None
        return Prediction(
            label=self.classes[int(np.argmax(probs))],
            probabilities={c: float(p) for c, p in zip(self.classes, probs)},
            onset=int(onset_n), apex=int(apex_n), offset=int(offset_n), apex_source=apex_source,
            face_box=tuple(int(v) for v in clip.face_box), n_faces=int(clip.n_faces), timing=timing,
            skipped_frames=list(skipped), warnings=diagnostics.summary(), fps=frames.fps, source=frames.source,
            crops={"onset": clip.frames[0], "apex": clip.frames[apex_pos]},
            inputs={k: inputs[k] for k in self.model.input_keys}, feature_map=feature_map)

    # ------------------------------------------------------------------ long videos

    def spot(self, video: "str | Path | VideoFrames | Sequence[np.ndarray]", config: SpotConfig = SpotConfig(),
             first: int | None = None, last: int | None = None, step: int = 1, fps: float | None = None
             ) -> SpotResult:
        """Find candidate micro-expression intervals in a long video and recognise each (see :class:`SpotConfig`).

        Args:
            video: a video file, a folder of frames, :class:`VideoFrames` or a sequence of RGB uint8 arrays.
            config: window, hop and threshold.
            first, last: scan only frames numbered in ``[first, last]``.
            step: keep every ``step``-th frame (subsampling; the window and hop stay in seconds, so they span fewer
                kept frames).
            fps: frame rate of a frame folder (default ``config.default_fps``).

        Returns:
            :class:`SpotResult`; its intervals may be empty (no window passes the threshold with an interior
            peak).

        Raises:
            DataError: unreadable, empty or too short input (fewer frames than one window), or no face anywhere.
        """
        from merkit.face.landmarks import FaceNotFoundError
        from merkit.motion.spotting import motion_curve, smooth_curve

        timing = Timing()
        t0 = time.perf_counter()
        frames = as_video(video, first, last, step, fps)
        timing.read = time.perf_counter() - t0
        # Frame numbers keep the source's rate; subsampling (step) spreads them, so windows count kept frames.
        spacing = float(np.median(np.diff(frames.numbers))) if len(frames) > 1 else 1.0
        window, hop = config.frames(frames.fps / spacing if frames.fps else None)
        where = _where(frames.source)
        if len(frames) < window:
            raise DataError(f"the input has {len(frames)} frames, fewer than one spotting window ({window})",
                            where, hint="give a longer video, a smaller window_s, or use predict on a short clip")
        diagnostics = Diagnostics()
        rows, clips, skipped = [], {}, []
        for begin in range(0, len(frames) - window + 1, hop):
            end = begin + window
            try:
                clip, _ = self._align(frames, begin, end, diagnostics, timing, stop=begin + 1)
            except FaceNotFoundError:  # already warned about and counted by _align
                skipped.append(frames.numbers[begin])
                continue
            t1 = time.perf_counter()
            curve = smooth_curve(motion_curve(clip.frames, 0, None, config.measure, config.method), config.smooth)
            timing.motion += time.perf_counter() - t1
            peak = int(np.argmax(curve[1:])) + 1
            rows.append({"onset": frames.numbers[begin], "peak": clip.frame_numbers[peak],
                         "offset": frames.numbers[end - 1], "score": float(curve[peak]),
                         "interior": peak < len(curve) - 1})
            clips[begin] = clip
        if not rows:
            raise DataError("no window had a face on its first frame", where,
                            hint="the face must be visible and frontal; check the detector settings")
        curve_df = pd.DataFrame(rows)
        scores = curve_df["score"].to_numpy()
        threshold = max(config.min_score, float(scores.mean() + config.p * (scores.max() - scores.mean())))
        chosen: list[int] = []
        for i in np.argsort(-scores, kind="stable"):
            if scores[i] < threshold:
                break
            r = curve_df.iloc[i]
            if config.interior_peak and not r.interior:
                continue
            if all(r.offset < curve_df.onset[j] or r.onset > curve_df.offset[j] for j in chosen):
                chosen.append(int(i))
        predictions, records = [], []
        for i in sorted(chosen, key=lambda j: curve_df.onset[j]):
            r = curve_df.iloc[i]
            begin = frames.numbers.index(int(r.onset))
            pred = self._recognise(clips[begin], frames, int(r.peak), Diagnostics(), Timing(), [])
            for stage in ("face", "motion", "model"):
                setattr(timing, stage, getattr(timing, stage) + getattr(pred.timing, stage))
            predictions.append(pred)
            to_s = (lambda n: None if not frames.fps else round(n / frames.fps, 4))
            records.append({"onset": pred.onset, "apex": pred.apex, "offset": pred.offset,
                            "onset_s": to_s(pred.onset), "apex_s": to_s(pred.apex), "offset_s": to_s(pred.offset),
                            "score": round(float(r.score), 4), "label": pred.label,
                            **{f"prob_{c}": round(p, 4) for c, p in pred.probabilities.items()}})
        columns = ["onset", "apex", "offset", "onset_s", "apex_s", "offset_s", "score", "label"] + [
            f"prob_{c}" for c in self.classes]
        return SpotResult(pd.DataFrame(records, columns=columns), curve_df, threshold, predictions,
                          list(frames.numbers), self.classes, timing, skipped, diagnostics.summary(), frames.fps,
                          frames.source)


def _custom_forward(model) -> bool:
    """True when the model overrides ``forward`` (e.g. to add auxiliary outputs), so that logits must come from it
    rather than from ``forward_head(forward_features(...))``."""
    from merkit.models.base import MerModel

    return type(model).forward is not MerModel.forward


def _without_record(folder: Path, meta: Mapping[str, Any]) -> Preprocessing:
    """The preprocessing of a checkpoint that records none, when its inputs are known to be reproducible.

    Reproducible: a model on ``flow`` alone, trained on a flow folder whose channels are u, v, strain in that order
    and whose side is known from the model (``input_size``): the MEGC2019 composite's images, rebuilt by
    :data:`COMPOSITE_FLOW`.

    Raises:
        CheckpointError: anything else; the message says what is missing.
    """
    from merkit.config import load_config

    what = (f"{folder}: the checkpoint records no preprocessing (it was trained on precomputed inputs), so merkit "
            "cannot rebuild its inputs from a video")
    keys = list(meta.get("input_keys") or [])
    config_path = folder / "config.yaml"
    data = load_config(config_path).data if config_path.is_file() else None
    size = (meta.get("params") or {}).get("input_size", 28 if meta.get("model") == "ststnet" else None)
    problems = []
    if keys != ["flow"]:
        problems.append(f"its inputs are {keys}, and only a model on 'flow' alone can be matched to the composite "
                        "recipe")
    if data is None or data.kind != "flow_folder":
        problems.append(f"its data kind is {getattr(data, 'kind', None)!r}, not 'flow_folder'")
    elif list(data.channels) != ["u", "v", "strain"] or list(data.file_channels) != ["u", "v", "strain"]:
        problems.append(f"its flow channels are {list(data.channels)} (files {list(data.file_channels)}), not u, v, "
                        "strain")
    if size is None:
        problems.append("the flow images' side is unknown (the model has no input_size parameter)")
    if problems:
        raise CheckpointError(what + ": " + "; ".join(problems) + ". Missing: the face settings (detector, "
                              "alignment, crop, size, colour) and the motion settings (representation, flow method "
                              "and parameters, output size, normalisation). Retrain from raw clips "
                              "(merkit.pipeline records them) or pass preprocessing=Preprocessing(...)")
    return dataclasses.replace(COMPOSITE_FLOW, motion=dataclasses.replace(COMPOSITE_FLOW.motion, size=int(size)))


# ---------------------------------------------------------------------- figures

def _motion_image(inputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, str]:
    """A displayable (H, W[, 3]) image of the first motion input, and its caption."""
    for key in ("flow", "apex_minus_onset", "dynamic_image", "long_term_flow"):
        if key in inputs:
            a = np.asarray(inputs[key], dtype=np.float32)
            if key == "long_term_flow":
                a = a[len(a) // 2]
            if key == "apex_minus_onset":
                a = 0.5 + 0.5 * a / max(float(np.abs(a).max()), 1e-6)
            image = a[0] if a.shape[0] == 1 else a[:3].transpose(1, 2, 0)
            caption = "flow (R u, G v, B strain)" if key == "flow" else key.replace("_", " ")
            return np.clip(image, 0, 1), caption
    return np.zeros((8, 8)), "no motion input"


def prediction_figure(prediction: Prediction, path: str | Path) -> Path:
    """Write the figure of one :class:`Prediction`: onset and apex crops, the motion map, the model's feature map
    (channel-mean of |features|, upsampled over the apex crop) where the model has a spatial one, and the class
    probabilities."""
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    has_map = prediction.feature_map is not None
    panels = 4 + int(has_map)
    fig, axes = plt.subplots(1, panels, figsize=(2.6 * panels, 2.9),
                             gridspec_kw={"width_ratios": [1] * (panels - 1) + [1.3]})
    grey = {"cmap": "gray", "vmin": 0, "vmax": 255}
    for ax, key in zip(axes, ("onset", "apex")):
        number = prediction.onset if key == "onset" else prediction.apex
        ax.imshow(prediction.crops[key], **(grey if prediction.crops[key].ndim == 2 else {}))
        ax.set_title(f"{key} (frame {number})", fontsize=9)
    motion, caption = _motion_image(prediction.inputs)
    axes[2].imshow(motion, cmap="gray" if motion.ndim == 2 else None, interpolation="nearest")
    axes[2].set_title(caption, fontsize=9)
    if has_map:
        apex = prediction.crops["apex"]
        heat = np.abs(prediction.feature_map).mean(axis=0)
        heat = cv2.resize(heat.astype(np.float32), apex.shape[1::-1], interpolation=cv2.INTER_CUBIC)
        axes[3].imshow(apex, **(grey if apex.ndim == 2 else {}))
        axes[3].imshow(heat, cmap="inferno", alpha=0.55)
        axes[3].set_title("model feature map", fontsize=9)
    for ax in axes[:-1]:
        ax.set_xticks([])
        ax.set_yticks([])
    bars = axes[-1]
    names = list(prediction.probabilities)
    values = [prediction.probabilities[n] for n in names]
    colours = ["tab:orange" if n == prediction.label else "tab:grey" for n in names]
    bars.barh(names, values, color=colours)
    bars.set_xlim(0, 1)
    bars.invert_yaxis()
    bars.set_title(f"prediction: {prediction.label}", fontsize=9)
    bars.tick_params(labelsize=8)
    for y, v in enumerate(values):
        bars.text(min(v + 0.02, 0.8), y, f"{v:.2f}", va="center", fontsize=8)
    t = prediction.timing
    fig.suptitle(f"{Path(prediction.source).name}: onset {prediction.onset}, apex {prediction.apex} "
                 f"({prediction.apex_source}); face {t.face:.2f} s, motion {t.motion:.2f} s, model {t.model:.3f} s",
                 fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def timeline_figure(result: SpotResult, path: str | Path) -> Path:
    """Write the timeline of a :class:`SpotResult`: each window's peak motion score at its peak frame, the
    threshold, and the candidate intervals shaded and labelled with their predicted class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scale = (1.0 / result.fps) if result.fps else 1.0
    unit = "s" if result.fps else "frame"
    fig, ax = plt.subplots(figsize=(10, 2.8))
    curve = result.curve
    ax.plot(curve["peak"] * scale, curve["score"], "o-", ms=3, lw=1, color="tab:blue",
            label="peak motion vs local onset")
    ax.axhline(result.threshold, color="tab:red", ls="--", lw=1, label=f"threshold {result.threshold:.2f} px")
    rising = curve[(curve["score"] >= result.threshold) & ~curve["interior"].astype(bool)]
    ax.plot(rising["peak"] * scale, rising["score"], "x", ms=6, color="black",
            label="still rising at window end (not a candidate)")
    colours = dict(zip(result.classes, plt.rcParams["axes.prop_cycle"].by_key()["color"][1:]))
    top = float(curve["score"].max()) if len(curve) else 1.0
    for k, row in enumerate(result.intervals.itertuples(index=False)):
        ax.axvspan(row.onset * scale, row.offset * scale, color=colours.get(row.label, "tab:grey"), alpha=0.3)
        # Neighbouring intervals can be a fraction of a second apart: stagger their labels.
        ax.text(row.apex * scale, top * (1.03 + 0.1 * (k % 2)), row.label, ha="center", va="bottom", fontsize=7)
    for skipped in result.skipped_frames:
        ax.axvline(skipped * scale, color="black", alpha=0.15, lw=0.8)
    ax.set_xlim(result.frame_numbers[0] * scale, result.frame_numbers[-1] * scale)
    ax.set_ylim(0, top * 1.25 if top > 0 else 1)
    ax.set_xlabel(unit)
    ax.set_ylabel("motion (px)")
    ax.set_title(f"{Path(result.source).name}: {len(result.intervals)} candidate interval(s) from "
                 f"{len(curve)} windows", fontsize=9)
    from matplotlib.patches import Patch

    handles = ax.get_legend_handles_labels()[0] + [Patch(color=colours[c], alpha=0.3, label=c)
                                                   for c in result.classes if c in colours]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
