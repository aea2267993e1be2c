"""Clips: a clip's drawn specification and its rendering, frame by frame.

Part of :mod:`merkit.synthetic` (its module docstring describes the generator).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import cv2
import numpy as np

from merkit.synthetic.faces import FACE_WIDTH, FPS, Subject
from merkit.synthetic.fields import FaceFrame, au_field, intensity_profile

# Per class: (emotion written in the sheet, action units), one drawn at random per clip.
RECIPES: dict[str, tuple[tuple[str, tuple[int, ...]], ...]] = {
    "negative": (("disgust", (4, 15)), ("disgust", (4, 17)), ("repression", (14,))),
    "positive": (("happiness", (6, 12)),),
    "surprise": (("surprise", (1, 2)), ("surprise", (1, 2, 5)), ("surprise", (1, 2, 26))),
}
CLASSES: tuple[str, ...] = tuple(RECIPES)


@dataclass
class ClipSpec:
    """Everything random about one clip, drawn by :func:`draw_clip`."""

    sample: str
    emotion: str
    label_class: str
    aus: tuple[int, ...]
    au_share: tuple[float, ...]
    amplitude_px: float
    onset: int
    n_frames: int
    apex_index: int
    residual: float
    noise_sigma: float
    flicker: tuple[float, float, float]  # amplitude, frequency (Hz), phase
    drift_px: tuple[float, float]
    drift_deg: float
    blink: tuple[int, int, float] | None  # centre index, duration (frames), amplitude (fraction of the eye opening)

    @property
    def apex(self) -> int:
        return self.onset + self.apex_index

    @property
    def offset(self) -> int:
        return self.onset + self.n_frames - 1


def draw_clip(rng: np.random.Generator, label_class: str, sample: str, amplitude_scale: float = 1.0,
              duration: tuple[int, int] = (15, 80)) -> ClipSpec:
    """Draw one clip's parameters; the draws do not depend on the class beyond its AUs, so no nuisance carries it."""
    recipes = RECIPES[label_class]
    emotion, aus = recipes[int(rng.integers(len(recipes)))]
    n = int(rng.integers(duration[0], duration[1] + 1))
    apex_index = int(np.clip(round(rng.uniform(0.2, 0.8) * (n - 1)), 1, n - 2))
    blink = None
    if rng.random() < 0.3:
        blink = (int(rng.integers(0, n)), int(rng.integers(20, 61)), float(rng.uniform(0.4, 0.8)))
    return ClipSpec(
        sample=sample, emotion=emotion, label_class=label_class, aus=aus,
        au_share=tuple(float(x) for x in rng.uniform(0.6, 1.0, size=len(aus))),
        amplitude_px=float(rng.uniform(0.5, 3.0)) * amplitude_scale,
        onset=int(rng.integers(1, 300)), n_frames=n, apex_index=apex_index,
        residual=float(rng.uniform(0.0, 0.3)), noise_sigma=float(rng.uniform(1.0, 2.5)),
        flicker=(float(rng.uniform(0.003, 0.01)), float(rng.uniform(2.0, 12.0)), float(rng.uniform(0, 2 * np.pi))),
        drift_px=(float(rng.normal(0, 0.4)), float(rng.normal(0, 0.4))), drift_deg=float(rng.normal(0, 0.12)),
        blink=blink,
    )


def expression_field(subject: Subject, aus: Sequence[int], shares: Sequence[float], amplitude_px: float,
                     shape: tuple[int, int]) -> np.ndarray:
    """The displacement field of an expression at its apex: the AUs' fields weighted by ``shares``, scaled so that
    the largest displacement is ``amplitude_px`` on a face :data:`FACE_WIDTH` wide (proportionally on the subject's
    own face width). Returns float32 (H, W, 2) (dx, dy) pixels for an image of ``shape`` (height, width)."""
    scale = FaceFrame.from_landmarks(subject.landmarks).width / FACE_WIDTH
    expression = sum(share * au_field(au, subject.landmarks, shape) for au, share in zip(aus, shares))
    peak = max(float(np.linalg.norm(expression, axis=-1).max()), 1e-9)
    return (expression * (amplitude_px * scale / peak)).astype(np.float32)


def blink_field(subject: Subject, amount: float, shape: tuple[int, int]) -> np.ndarray:
    """AU45 (blink) at ``amount`` (fraction of the eye opening closed): float32 (H, W, 2) pixels."""
    lm = subject.landmarks
    opening = float(np.mean(np.linalg.norm(lm[[37, 38, 43, 44]] - lm[[41, 40, 47, 46]], axis=1)))
    return au_field(45, lm, shape) * np.float32(amount * opening)


def render_frames(subject: Subject, layers: Sequence[tuple[np.ndarray, np.ndarray]], pose: Sequence[Sequence[float]],
                  noise_sigma: float, flicker: tuple[float, float, float], fps: float,
                  rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Render frames of a subject's face, one at a time: the one renderer of clips and long videos.

    Frame k shows the face displaced by ``sum_i weights_i[k] * field_i`` over ``layers`` (expressions, blinks),
    moved rigidly by ``pose[k]``, with an illumination gain and luminance noise.

    Args:
        subject: the pseudo-subject (its neutral face and landmarks).
        layers: ``(field, weights)`` pairs: a float32 (H, W, 2) displacement field (pixels) and its float (T,)
            weight per frame; a layer is skipped on frames where its weight is 0.
        pose: T rows ``(dx, dy, degrees)``: the head's translation (pixels) and rotation about the face centre.
        noise_sigma: standard deviation of the luminance noise, grey levels.
        flicker: ``(amplitude, frequency in Hz, phase)`` of the illumination gain, which also jitters by
            ``amplitude / 3`` per frame.
        fps: frames per second (for the flicker).
        rng: draws the gain jitter and the noise, frame by frame.

    Yields:
        T frames, (H, W, 3) uint8 RGB.
    """
    face = subject.face.astype(np.float32)
    h, w = face.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    split = [(np.ascontiguousarray(f[..., 0]), np.ascontiguousarray(f[..., 1]), weights) for f, weights in layers]
    cx, cy = FaceFrame.from_landmarks(subject.landmarks).centre
    amp, freq, phase = flicker
    for k, (dx, dy, degrees) in enumerate(pose):
        # inverse rigid motion: output pixel x samples the still face at R^-1 (x - c - t) + c, written as
        # cos*x - sin*y + const so that OpenCV does it in one pass per axis
        theta = -np.radians(degrees)
        cos, sin = np.cos(theta), np.sin(theta)
        tx, ty = cx + dx, cy + dy
        map_x = cv2.addWeighted(xs, cos, ys, -sin, cx - cos * tx + sin * ty)
        map_y = cv2.addWeighted(xs, sin, ys, cos, cy - sin * tx - cos * ty)
        for fx, fy, weights in split:
            if weights[k] != 0:
                map_x = cv2.scaleAdd(fx, -float(weights[k]), map_x)
                map_y = cv2.scaleAdd(fy, -float(weights[k]), map_y)
        frame = cv2.remap(face, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        gain = 1 + amp * np.sin(2 * np.pi * freq * k / fps + phase) + rng.normal(0, amp / 3)
        # luminance noise, shared by the colour channels: a third of the cost of independent channels, and the
        # flow sees grey frames anyway
        noise = rng.standard_normal((h, w, 1), dtype=np.float32)
        noise *= np.float32(noise_sigma)
        frame *= np.float32(gain)
        frame += noise
        frame += np.float32(0.5)
        yield np.clip(frame, 0, 255, out=frame).astype(np.uint8)


def render_clip(subject: Subject, spec: ClipSpec, rng: np.random.Generator) -> list[np.ndarray]:
    """The clip's frames, onset to offset: a list of (H, W, 3) uint8 RGB images."""
    shape = subject.face.shape[:2]
    expression = expression_field(subject, spec.aus, spec.au_share, spec.amplitude_px, shape)
    layers = [(expression, intensity_profile(spec.n_frames, spec.apex_index, spec.residual))]
    if spec.blink is not None:
        centre, duration, amount = spec.blink
        t = np.arange(spec.n_frames)
        bump = 0.5 * (1 + np.cos(2 * np.pi * (t - centre) / duration))
        layers.append((blink_field(subject, amount, shape), np.where(np.abs(t - centre) < duration / 2, bump, 0)))
    pose = []
    for k in range(spec.n_frames):
        progress = k / max(spec.n_frames - 1, 1)
        pose.append((spec.drift_px[0] * progress, spec.drift_px[1] * progress, spec.drift_deg * progress))
    return list(render_frames(subject, layers, pose, spec.noise_sigma, spec.flicker, FPS, rng))


