"""What :class:`merkit.predict.Predictor` answers: :class:`Prediction` for one clip, :class:`SpotResult` for a long
video, with the time spent per stage (:class:`Timing`)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from merkit import __version__
from merkit.files import write_atomic, write_text
from merkit.predict.figures import prediction_figure, timeline_figure

if TYPE_CHECKING:  # for the annotations only: importing pandas takes about 0.5 s
    import numpy as np
    import pandas as pd


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
        label: the answer: the predicted class name, or ``"uncertain"`` when the top probability is below
            ``min_confidence``.
        probabilities: class name -> probability (they sum to 1), calibrated with ``temperature``.
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
        top_class: the class of highest probability, whether or not the answer abstained.
        min_confidence: the abstention threshold given, or ``None``.
        temperature: the checkpoint's calibration temperature (1.0: none).
        probabilities_uncalibrated: the model's own softmax probabilities (temperature 1).
        domain_warnings: the named findings of the domain checks (:class:`merkit.predict.trust.DomainFinding`).
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
    top_class: str = ""
    min_confidence: float | None = None
    temperature: float = 1.0
    probabilities_uncalibrated: dict[str, float] = field(default_factory=dict)
    domain_warnings: list = field(default_factory=list)

    @property
    def uncertain(self) -> bool:
        """The answer abstained: the top probability is below ``min_confidence``."""
        return self.min_confidence is not None and max(self.probabilities.values()) < self.min_confidence

    def __repr__(self) -> str:
        top = max(self.probabilities.values(), default=float("nan"))
        return (f"Prediction(label={self.label!r}, p={top:.3f}, onset={self.onset}, apex={self.apex} "
                f"({self.apex_source}), offset={self.offset}, source={self.source!r})")

    def to_dict(self) -> dict[str, Any]:
        """The JSON record: everything but the arrays."""
        seconds = (lambda n: None if not self.fps else round(n / self.fps, 4))
        return {"source": self.source, "label": self.label,
                "probabilities": {k: float(v) for k, v in self.probabilities.items()},
                "onset": self.onset, "apex": self.apex, "offset": self.offset, "apex_source": self.apex_source,
                "onset_s": seconds(self.onset), "apex_s": seconds(self.apex), "fps": self.fps,
                "face_box": list(self.face_box), "n_faces": self.n_faces, "timing": self.timing.to_dict(),
                "skipped_frames": list(self.skipped_frames), "warnings": dict(self.warnings),
                "top_class": self.top_class or self.label, "uncertain": self.uncertain,
                "min_confidence": self.min_confidence, "temperature": self.temperature,
                "probabilities_uncalibrated": {k: float(v) for k, v in self.probabilities_uncalibrated.items()},
                "domain_warnings": [f.to_dict() for f in self.domain_warnings],
                "merkit_version": __version__}

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            write_text(path, text)
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
            pixels), ``duration_s`` and ``kind`` (``micro`` or ``macro``, :func:`merkit.predict.scan.event_duration`),
            ``label``, ``prob_<class>`` and ``domain_warnings`` (empty for a macro interval unless it was asked
            for).
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

    def __repr__(self) -> str:
        return (f"SpotResult({len(self.intervals)} interval(s) in {len(self.frame_numbers)} frames, "
                f"{len(self.curve)} windows, threshold {self.threshold:.2f} px, source={self.source!r})")

    def to_csv(self, path: str | Path) -> Path:
        return write_atomic(path, lambda p: self.intervals.to_csv(p, index=False))

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "fps": self.fps, "frames": len(self.frame_numbers),
                "first": self.frame_numbers[0], "last": self.frame_numbers[-1], "threshold": self.threshold,
                "windows": len(self.curve),
                # an unlabelled macro interval has no probabilities: null in JSON, not NaN
                "intervals": self.intervals.astype(object).where(self.intervals.notna(), None).to_dict("records"),
                "timing": self.timing.to_dict(), "skipped_frames": list(self.skipped_frames),
                "warnings": dict(self.warnings), "merkit_version": __version__}

    def save_timeline(self, path: str | Path) -> Path:
        """Motion score over time, the threshold, and the intervals coloured by predicted class."""
        return timeline_figure(self, path)
