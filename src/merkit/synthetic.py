"""Synthetic micro-expressions made from real face photos, with known ground truth (``merkit synth``).

A licensed micro-expression dataset cannot ship with merkit, yet a newcomer must see the pipeline work end to end
and a method developer must be able to check a pipeline on known ground truth. This module animates real face
photos (by default the public-domain ``skimage.data.astronaut()``) with action-unit-like displacement fields placed
by the face's 68 dlib landmarks, and writes the result in the **CASME II release layout**.

Model of one clip (all displacements in pixels on a face about 224 px wide, the scale of CASME II's raw frames):

* **Expression.** Each action unit (AU) is a smooth displacement field: Gaussian bumps (sigma a few percent of the
  face width) centred on landmarks or on points built from them, each pushing in a face-relative direction (up =
  perpendicular to the eye line). The AUs of a class are

  ======================  =================  ==========================================================
  class (3-class scheme)  emotion written    action units
  ======================  =================  ==========================================================
  positive                happiness          AU6 + AU12 (cheek raiser, lip-corner puller)
  surprise                surprise           AU1 + AU2 (inner, outer brow raiser), optionally AU5 or AU26
  negative                disgust            AU4 + AU15 or AU4 + AU17 (brow lowerer with lip-corner
                                             depressor or chin raiser)
  negative                repression         AU14 (dimpler)
  ======================  =================  ==========================================================

  The peak displacement of the clip is drawn uniformly from 0.5-3 px (``amplitude_px``), times
  ``amplitude_scale``; each AU gets a random share of 60-100 % of it.
* **Time course.** Frames run from onset to offset, 15-80 frames (75-400 ms at CASME II's 200 fps); the apex lies
  at a random 20-80 % of the clip. The intensity rises with a raised cosine from onset to apex and falls with one
  towards offset, to a random residual of 0-30 % (micro-expressions often do not fully relax within the clip).
* **Nuisances**, all independent of the label: Gaussian luminance noise (1-2.5 grey levels), a global illumination
  flicker (sinusoid plus jitter, about 1 %), a rigid head drift (up to about 1 px translation and 0.3 degrees
  rotation over the clip), blinks (AU45, in 30 % of the clips, at a random time) and JPEG compression.
* **Identity.** Each pseudo-subject gets its own source face (cycling through ``faces``) and its own geometric
  (scale, aspect, rotation, mirror, a smooth elastic warp) and photometric (gamma, contrast, brightness, colour
  balance) transform, after which its landmarks are detected afresh.

Warping uses backward mapping, ``frame(x) = face(R^-1 (x - c - t) + c - D(x))`` with the expression field ``D``, the
head rotation ``R`` about the face centre ``c`` and translation ``t``; for displacements of a few pixels, sampling
``D`` at ``x`` instead of at the rotated point is accurate to well below 0.1 px.

Output of :func:`generate` (``OUT``)::

    OUT/sub01/EP01_03/img57.jpg ...      frames, CASME II naming, numbered from the onset frame
    OUT/CASME2-coding-synthetic.xlsx     coding sheet in the official CASME II column layout
    OUT/samples.csv                      merkit's sample table plus ground truth (amplitude_px, blink, face)

The same arguments give byte-identical files: every random draw comes from a generator seeded by
``(seed, subject, clip)``, OpenCV's JPEG encoder is deterministic, and the workbook's timestamps are fixed.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
import pandas as pd

from merkit.boundary import Count, Int, NonNegativeFloat, NonNegativeInt, PositiveFloat, check
from merkit.datasets.table import new_sample_table
from merkit.errors import ConfigError, DataError, Where
from merkit.media import encode_jpeg, read_image

DATASET = "synthetic"
# Bumped whenever the same arguments would give different files, so that caches keyed by it are renewed.
GENERATOR_VERSION = 1
SHEET_NAME = "CASME2-coding-synthetic.xlsx"
TABLE_NAME = "samples.csv"
SHEET_COLUMNS: tuple[str | None, ...] = ("Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame",
                                         None, "Action Units", "Estimated Emotion")
FACE_WIDTH = 224.0
FRAME_SIZE = (280, 340)  # (width, height), the size of CASME II's cropped frames
FPS = 200

# Per class: (emotion written in the sheet, action units), one drawn at random per clip.
RECIPES: dict[str, tuple[tuple[str, tuple[int, ...]], ...]] = {
    "negative": (("disgust", (4, 15)), ("disgust", (4, 17)), ("repression", (14,))),
    "positive": (("happiness", (6, 12)),),
    "surprise": (("surprise", (1, 2)), ("surprise", (1, 2, 5)), ("surprise", (1, 2, 26))),
}
CLASSES: tuple[str, ...] = tuple(RECIPES)

_FIXED_TIME = datetime(2020, 1, 1)
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


# --------------------------------------------------------------------------------------------------------------
# Action units as displacement fields


@dataclass(frozen=True)
class FaceFrame:
    """Face-relative axes from 68 landmarks: ``right`` along the eye line (image left eye -> image right eye),
    ``down`` perpendicular to it, ``centre`` the landmarks' mean and ``width`` the jaw width (points 0-16), px."""

    landmarks: np.ndarray
    right: np.ndarray
    down: np.ndarray
    centre: np.ndarray
    width: float

    @classmethod
    def from_landmarks(cls, landmarks: np.ndarray) -> "FaceFrame":
        lm = np.asarray(landmarks, dtype=np.float64)
        right = lm[42:48].mean(0) - lm[36:42].mean(0)
        right /= np.linalg.norm(right)
        down = np.array([-right[1], right[0]])
        return cls(lm, right, down, lm.mean(0), float(np.linalg.norm(lm[16] - lm[0])))

    def outward(self, point: np.ndarray) -> np.ndarray:
        """The face-horizontal unit vector pointing away from the face's midline at ``point``."""
        return self.right * np.sign((point - self.centre) @ self.right or 1.0)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _au_points(au: int, f: FaceFrame) -> tuple[list[tuple[np.ndarray, np.ndarray, float]], float]:
    """Control points ``(position, unit direction, weight)`` of one AU and the bump width (fraction of the face
    width). Directions follow the FACS descriptions of the appearance changes (Ekman, Friesen and Hager 2002)."""
    lm, up, down = f.landmarks, -f.down, f.down
    pts: list[tuple[np.ndarray, np.ndarray, float]] = []
    if au == 1:  # inner brow raiser
        pts = [(lm[i], up, w) for i, w in ((20, 0.6), (21, 1.0), (22, 1.0), (23, 0.6))]
        return pts, 0.06
    if au == 2:  # outer brow raiser
        pts = [(lm[i], up, w) for i, w in ((17, 0.8), (18, 1.0), (19, 0.6), (24, 0.6), (25, 1.0), (26, 0.8))]
        return pts, 0.06
    if au == 4:  # brow lowerer: brows down and drawn together
        for i, w in ((19, 0.5), (20, 0.8), (21, 1.0), (22, 1.0), (23, 0.8), (24, 0.5)):
            pts.append((lm[i], _unit(down - 0.6 * f.outward(lm[i])), w))
        return pts, 0.06
    if au == 5:  # upper lid raiser
        return [(lm[i], up, 1.0) for i in (37, 38, 43, 44)], 0.03
    if au == 6:  # cheek raiser: cheeks and lower lids move up
        for eye, corner in ((slice(40, 42), 48), (slice(46, 48), 54)):
            lid = lm[eye].mean(0)
            cheek = lid + 0.45 * (lm[corner] - lid)
            cheek = cheek + 0.05 * f.width * f.outward(cheek)
            pts += [(cheek, up, 1.0), (lid, up, 0.5)]
        return pts, 0.08
    if au == 12:  # lip-corner puller: corners up and out
        for corner, near in ((48, (49, 59)), (54, (53, 55))):
            d = _unit(f.outward(lm[corner]) + 0.8 * up)
            pts += [(lm[corner], d, 1.0)] + [(lm[i], d, 0.5) for i in near]
        return pts, 0.05
    if au == 14:  # dimpler: corners tightened, pulled outwards
        return [(lm[i], f.outward(lm[i]), 1.0) for i in (48, 54)], 0.04
    if au == 15:  # lip-corner depressor
        return [(lm[i], down, w) for i, w in ((48, 1.0), (54, 1.0), (59, 0.5), (55, 0.5))], 0.05
    if au == 17:  # chin raiser: chin boss and lower lip up
        return [(lm[i], up, w) for i, w in ((7, 0.8), (8, 1.0), (9, 0.8), (56, 0.7), (57, 0.7), (58, 0.7))], 0.07
    if au == 26:  # jaw drop
        return [(lm[i], down, w) for i, w in ((6, 0.6), (7, 0.8), (8, 1.0), (9, 0.8), (10, 0.6), (57, 0.8),
                                                (66, 0.8))], 0.08
    if au == 45:  # blink: upper lids close, lower lids rise a little
        return [(lm[i], down, 1.0) for i in (37, 38, 43, 44)] + [(lm[i], up, 0.3) for i in (40, 41, 46, 47)], 0.025
    raise ValueError(f"no displacement model for AU{au}")


def au_field(au: int, landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The displacement field of one action unit at unit intensity.

    Args:
        au: FACS action unit number (1, 2, 4, 5, 6, 12, 14, 15, 17, 26 or 45).
        landmarks: (68, 2) iBUG landmarks, (x, y) pixels.
        shape: (height, width) of the image.

    Returns:
        float32 (H, W, 2) field (dx, dy) in pixels, scaled so that its largest displacement is 1 px.

    Raises:
        ValueError: an AU without a displacement model.
    """
    f = FaceFrame.from_landmarks(landmarks)
    points, width = _au_points(au, f)
    sigma = width * f.width
    field = np.zeros((*shape, 2), np.float32)
    reach = 4 * sigma  # beyond 4 sigma a bump is below 0.04 % of its peak
    for pos, direction, weight in points:
        x0, x1 = max(int(pos[0] - reach), 0), min(int(pos[0] + reach) + 1, shape[1])
        y0, y1 = max(int(pos[1] - reach), 0), min(int(pos[1] + reach) + 1, shape[0])
        if x0 >= x1 or y0 >= y1:
            continue
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        bump = weight * np.exp(-((xs - pos[0]) ** 2 + (ys - pos[1]) ** 2) / (2 * sigma**2))
        field[y0:y1, x0:x1] += bump[..., None].astype(np.float32) * direction.astype(np.float32)
    return field / max(float(np.linalg.norm(field, axis=-1).max()), 1e-9)


def intensity_profile(n_frames: int, apex_index: int, residual: float = 0.0) -> np.ndarray:
    """Expression intensity per frame, 0 at the onset (index 0), 1 at ``apex_index``, ``residual`` at the last
    frame; raised-cosine rise and fall. Returns float64 (n_frames,)."""
    t = np.arange(n_frames, dtype=np.float64)
    rise = 0.5 * (1 - np.cos(np.pi * t / max(apex_index, 1)))
    fall_t = (t - apex_index) / max(n_frames - 1 - apex_index, 1)
    fall = residual + (1 - residual) * 0.5 * (1 + np.cos(np.pi * fall_t))
    return np.where(t <= apex_index, rise, fall)


# --------------------------------------------------------------------------------------------------------------
# Faces and pseudo-subjects


def default_face() -> np.ndarray:
    """``skimage.data.astronaut()``: (512, 512, 3) uint8 RGB, a public-domain photo shipped with scikit-image."""
    from skimage import data

    return data.astronaut()


def face_paths(faces: Sequence[str | Path]) -> list[Path]:
    """Expand image files and folders (their image files, sorted by name) into a list of image paths.

    Raises:
        DataError: a path does not exist, or a folder holds no image.
    """
    out: list[Path] = []
    for item in faces:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in _IMAGE_SUFFIXES)
            if not found:
                raise DataError(f"no face images ({', '.join(_IMAGE_SUFFIXES)}) in folder {p}")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise DataError(f"face image not found: {p}")
    return out


def _read_rgb(path: Path) -> np.ndarray:
    return read_image(path, what="face image")


@dataclass
class Subject:
    """A pseudo-subject: its neutral face (H, W, 3) uint8 RGB, landmarks (68, 2) and the source face's name."""

    name: str
    face: np.ndarray
    landmarks: np.ndarray
    source: str


def make_subject(name: str, source: np.ndarray, source_name: str, rng: np.random.Generator,
                 size: tuple[int, int] = FRAME_SIZE, tries: int = 5, face_width: float = FACE_WIDTH) -> Subject:
    """Give a source face a new identity: geometric and photometric transforms, then fresh landmarks.

    The face is placed in a ``size`` (width, height) frame and scaled to a jaw width of ``face_width`` px +- 8 %,
    mirrored with probability 1/2, rotated by up to 4 degrees,
    stretched by up to 6 % in one axis, warped by a smooth random field (about 2 % of the face width), and its
    gamma, contrast, brightness and colour balance are changed. A draw in which dlib no longer finds the face is
    redrawn (at most ``tries`` times).

    Raises:
        FaceNotFoundError: no face in ``source``, or in any of the ``tries`` transformed faces.
    """
    from merkit.face.landmarks import FaceNotFoundError, detect_landmarks

    lm0, _, _ = detect_landmarks(source, where=Where(DATASET, name, frame=source_name))
    f0 = FaceFrame.from_landmarks(lm0)
    width, height = size
    for _ in range(tries):
        scale = face_width * rng.uniform(0.92, 1.08) / f0.width
        angle = np.degrees(np.arctan2(f0.right[1], f0.right[0])) + rng.uniform(-4, 4)
        aspect = rng.uniform(0.94, 1.06)
        mirror = rng.random() < 0.5
        m = cv2.getRotationMatrix2D((float(f0.centre[0]), float(f0.centre[1])), float(angle), float(scale))
        a = np.vstack([m, [0, 0, 1]])
        a = np.diag([(-1 if mirror else 1) * aspect, 1 / aspect, 1]) @ a
        centre = a @ np.append(f0.centre, 1)
        a[:2, 2] += np.array([width / 2, height * 0.52]) - centre[:2]
        face = cv2.warpAffine(source, a[:2], (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        # a smooth elastic warp changes the face's proportions (eye spacing, mouth width) a little
        coarse = rng.normal(0, 0.02 * face_width, size=(4, 4, 2)).astype(np.float32)
        warp = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
        xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
        face = cv2.remap(face, xs + warp[..., 0], ys + warp[..., 1], cv2.INTER_CUBIC,
                         borderMode=cv2.BORDER_REFLECT).astype(np.float32) / 255.0
        face = face ** rng.uniform(0.8, 1.25)
        face = (face - 0.5) * rng.uniform(0.85, 1.15) + 0.5 + rng.uniform(-0.06, 0.06)
        face = face * rng.uniform(0.9, 1.1, size=3)
        face = np.clip(face * 255.0 + 0.5, 0, 255).astype(np.uint8)
        try:
            lm, _, _ = detect_landmarks(face, where=Where(DATASET, name, frame=source_name))
        except FaceNotFoundError:
            continue
        return Subject(name, face, lm, source_name)
    raise FaceNotFoundError(f"no face found after {tries} identity transforms of {source_name}",
                            Where(DATASET, name), hint="use a larger, frontal face image")


# --------------------------------------------------------------------------------------------------------------
# Clips


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


# --------------------------------------------------------------------------------------------------------------
# Writing a dataset


def _write_jpeg(path: Path, rgb: np.ndarray, quality: int) -> None:
    path.write_bytes(encode_jpeg(rgb, quality, str(path)))


def write_coding_sheet(rows: pd.DataFrame, path: str | Path) -> None:
    """Write a CASME II coding sheet (.xlsx) with the official nine columns, reproducibly.

    Columns (two unnamed, as in the release): ``Subject | Filename | | OnsetFrame | ApexFrame | OffsetFrame | |
    Action Units | Estimated Emotion``. As in CASME2-coding-20190701.xlsx, Subject is text (``"01"``) and a single
    action unit is a number (``14``), a combination text (``"6+12"``).
    The workbook's created/modified times and the zip members' timestamps are fixed, so equal rows give equal bytes.
    """
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws.append(list(SHEET_COLUMNS))
    for r in rows.itertuples(index=False):
        # the release stores a single AU as a number and combinations as text ("4+7")
        aus = int(r.action_units) if r.action_units.isdigit() else r.action_units
        ws.append([r.subject.removeprefix("sub"), r.sample, None, int(r.onset), int(r.apex), int(r.offset), None,
                   aus, r.emotion])
    for cell in ws["A"][1:]:
        cell.number_format = "@"
    wb.properties.creator = "merkit"
    wb.properties.created = _FIXED_TIME
    wb.properties.modified = _FIXED_TIME
    buf = io.BytesIO()
    wb.save(buf)
    _fix_zip_times(buf.getvalue(), Path(path))


def _fix_zip_times(data: bytes, path: Path) -> None:
    """Rewrite a zip (an .xlsx) with fixed member timestamps and a fixed modified time in docProps/core.xml."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            content = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                # openpyxl stamps the save time into dcterms:modified whatever the property says
                content = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(<)", rb"\g<1>2020-01-01T00:00:00Z\g<2>", content)
            member = zipfile.ZipInfo(info.filename, date_time=_ZIP_TIME)
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o600 << 16
            dst.writestr(member, content)
    path.write_bytes(out.getvalue())


class _FaceSource:
    """The face photos a generator cycles over (``faces``: images or folders; default skimage's astronaut), each
    decoded once, when first used."""

    def __init__(self, faces: Sequence[str | Path] | None):
        self.sources = [(p.name, p) for p in face_paths(faces)] if faces else [("skimage.data.astronaut", None)]
        self.loaded: dict[str, np.ndarray] = {}

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.sources]

    def __call__(self, i: int) -> tuple[str, np.ndarray]:
        """The name and RGB image of the ``i``-th subject's (or video's) face, cycling over the sources."""
        name, path = self.sources[i % len(self.sources)]
        if name not in self.loaded:
            self.loaded[name] = default_face() if path is None else _read_rgb(path)
        return name, self.loaded[name]


def generate(
    out_dir: str | Path,
    subjects: int = 5,
    clips_per_class: int = 4,
    seed: int = 0,
    faces: Sequence[str | Path] | None = None,
    amplitude_scale: float = 1.0,
    duration: tuple[int, int] = (15, 80),
    jpeg_quality: int = 90,
) -> pd.DataFrame:
    """Write a synthetic micro-expression dataset in the CASME II release layout; return its sample table.

    Args:
        out_dir: output folder (created; existing files of the same names are overwritten).
        subjects: number of pseudo-subjects (``sub01`` ...).
        clips_per_class: clips of each of the three classes per subject.
        seed: random seed; equal arguments give byte-identical files.
        faces: face images or folders of them, cycled over the subjects; default ``skimage.data.astronaut()``.
        amplitude_scale: multiplies every clip's peak expression displacement (0 gives clips whose label is
            carried by nothing: the control condition).
        duration: inclusive range of the clip length in frames, onset to offset (200 fps).
        jpeg_quality: OpenCV JPEG quality of the frames.

    Returns:
        The sample table (:mod:`merkit.datasets.table`; dataset ``"synthetic"``, frame paths absolute) with the
        ground-truth columns ``label_class``, ``amplitude_px``, ``blink`` and ``face``. It is also written to
        ``out_dir/samples.csv`` (frame paths relative, ``;``-separated). Load the release back with
        ``merkit.datasets.registry.load_dataset("synthetic", out_dir)``, which reads it as the CASME II release it
        imitates and adds that ground truth.

    Raises:
        ConfigError (a ValueError): a count, duration, quality or amplitude out of range (NaN and inf included).
        DataError: a face image is missing or unreadable; FaceNotFoundError: dlib finds no face in one.
    """
    check("synthetic.generate", subjects=(Count, subjects), clips_per_class=(Count, clips_per_class),
          seed=(NonNegativeInt, seed), amplitude_scale=(NonNegativeFloat, amplitude_scale),
          duration=(tuple[Int, Int], duration), jpeg_quality=(NonNegativeInt, jpeg_quality))
    if not 3 <= duration[0] <= duration[1]:
        raise ConfigError(f"synthetic.generate: duration must be (min, max) frames with 3 <= min <= max, got "
                          f"{duration}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    face_of = _FaceSource(faces)
    rows = []
    for s in range(subjects):
        name = f"sub{s + 1:02d}"
        source_name, image = face_of(s)
        subject = make_subject(name, image, source_name, np.random.default_rng([seed, s, 0]))
        # shuffle the class order so that a clip's name (EPyy) says nothing about its class
        order = np.random.default_rng([seed, s, 1]).permutation(len(CLASSES) * clips_per_class)
        for j, slot in enumerate(order):
            label_class = CLASSES[slot % len(CLASSES)]
            rng = np.random.default_rng([seed, s, 2, j])
            spec = draw_clip(rng, label_class, f"EP{j + 1:02d}_{int(rng.integers(1, 10)):02d}", amplitude_scale,
                             duration)
            frames = _write_clip(out / name / spec.sample, subject, spec, rng, jpeg_quality)
            rows.append(dict(dataset=DATASET, subject=name, sample=spec.sample, emotion=spec.emotion,
                             onset=spec.onset, apex=spec.apex, offset=spec.offset,
                             action_units="+".join(str(a) for a in spec.aus), frames=frames,
                             label_class=spec.label_class, amplitude_px=round(spec.amplitude_px, 4),
                             blink=spec.blink is not None, face=source_name))
    table = new_sample_table(rows)
    settings = {"generator": "merkit.synthetic", "version": GENERATOR_VERSION, "subjects": subjects,
                "clips_per_class": clips_per_class, "seed": seed, "faces": face_of.names,
                "amplitude_scale": amplitude_scale, "duration": list(duration), "jpeg_quality": jpeg_quality}
    _write_release_tables(out, table, settings)
    return table


def _write_clip(clip_dir: Path, subject, spec, rng: np.random.Generator, jpeg_quality: int) -> list[str]:
    """Render one clip into ``clip_dir`` as ``img<frame number>.jpg`` files; their absolute paths."""
    clip_dir.mkdir(parents=True, exist_ok=True)
    frames = []
    for k, frame in enumerate(render_clip(subject, spec, rng)):
        path = clip_dir / f"img{spec.onset + k}.jpg"
        _write_jpeg(path, frame, jpeg_quality)
        frames.append(str(path.resolve()))
    return frames


def _write_release_tables(out: Path, table: pd.DataFrame, settings: dict) -> None:
    """The release's coding sheet (as CASME II's), ``samples.csv`` (frame paths relative to ``out``) and
    ``generator.json`` (the settings)."""
    write_coding_sheet(table, out / SHEET_NAME)
    saved = table.copy()
    saved["frames"] = [";".join(Path(p).relative_to(out.resolve()).as_posix() for p in fr) for fr in table["frames"]]
    saved.to_csv(out / TABLE_NAME, index=False)
    (out / "generator.json").write_text(json.dumps(settings, indent=2))


# --------------------------------------------------------------------------------------------------------------
# Long videos: micro-expressions at known intervals among distractors, for measuring spotting


LONG_FRAME_SIZE = (640, 360)  # (width, height)
LONG_FACE_WIDTH = 160.0  # jaw width, px: a webcam framing of one face
LONG_FPS = 30.0  # CAS(ME)^2's long videos are 30 fps
MICRO_SECONDS = (0.2, 0.5)  # onset to offset; MEGC counts an expression of at most 0.5 s as micro
MACRO_SECONDS = (1.0, 3.0)
MACRO_AMPLITUDE_PX = (4.0, 12.0)  # peak displacement on a 224-px face, against 0.5-3 px for a micro-expression
EXPRESSION_GAP_SECONDS = 0.5  # between two expressions, and between an expression and the video's ends
BLINK_GAP_SECONDS = (2.0, 6.0)  # between blink onsets: 10-30 blinks a minute, as at rest
BLINK_SECONDS = (0.1, 0.3)
BLINK_AMOUNT = (0.5, 0.9)  # fraction of the eye opening closed
HEAD_MOVES_PER_MINUTE = 6.0
HEAD_SECONDS = (0.3, 1.0)
HEAD_SHIFT_PX = 8.0  # a head movement goes to a new pose within +-8 px and +-2 degrees of the start
HEAD_TURN_DEG = 2.0
SWAY_PX, SWAY_DEG = 1.0, 0.3  # slow sway (two sinusoids of 0.05-0.4 Hz per axis), peak amplitude per sinusoid
VIDEOS_NAME = "videos.csv"
INTERVALS_NAME = "intervals.csv"
INTERVAL_KINDS: tuple[str, ...] = ("micro", "macro", "blink", "head")


@dataclass(frozen=True)
class VideoEvent:
    """One event of a long video, frame numbers counted from 0 (inclusive ``offset``).

    ``kind`` is ``micro`` or ``macro`` (an expression: ``label_class``, ``emotion``, ``action_units`` and
    ``amplitude_px`` set), ``blink`` or ``head`` (a rigid head movement; its ``apex`` is the middle of the move).
    """

    kind: str
    onset: int
    apex: int
    offset: int
    label_class: str = ""
    emotion: str = ""
    action_units: str = ""
    amplitude_px: float = 0.0


@dataclass
class LongVideoPlan:
    """Everything random about one long video, drawn by :func:`draw_long_video`.

    Attributes:
        n_frames: frames in the video.
        fps: frames per second.
        events: expressions, blinks and head movements, in onset order.
        expressions: per ``micro``/``macro`` event, in the order of ``events``: the :class:`ClipSpec` that gives
            its AUs, their shares, its amplitude and the position of its apex (its onset and nuisance fields are
            unused: a long video has its own nuisances).
        blinks: per blink, ``(centre frame, duration in frames, amount)``.
        pose: float64 (n_frames, 3) head translation (px) and rotation (degrees) per frame.
        noise_sigma: luminance noise, grey levels.
        flicker: amplitude, frequency (Hz), phase of the illumination gain.
    """

    n_frames: int
    fps: float
    events: list[VideoEvent]
    expressions: list[ClipSpec]
    blinks: list[tuple[int, int, float]]
    pose: np.ndarray
    noise_sigma: float
    flicker: tuple[float, float, float]


def _place(rng: np.random.Generator, length: int, n_frames: int, taken: list[tuple[int, int]], gap: int) -> int:
    """A random onset for an event of ``length`` frames that keeps ``gap`` frames from the ends and from every
    span in ``taken``; ValueError when 1000 draws find none."""
    for _ in range(1000):
        onset = int(rng.integers(gap, max(n_frames - gap - length, gap) + 1))
        offset = onset + length - 1
        if offset < n_frames - gap and all(offset + gap < a or onset > b + gap for a, b in taken):
            return onset
    raise ConfigError(f"cannot place an expression of {length} frames in a video of {n_frames} frames with "
                     f"{gap} frames between expressions; give longer videos or fewer expressions")


def draw_long_video(rng: np.random.Generator, seconds: float, fps: float = LONG_FPS, micro: int = 2, macro: int = 1,
                    amplitude_scale: float = 1.0) -> LongVideoPlan:
    """Draw one long video's events and nuisances.

    ``micro`` micro-expressions (0.2-0.5 s, 0.5-3 px times ``amplitude_scale``, classes drawn uniformly) and
    ``macro`` macro-expressions (1-3 s, 4-12 px) are placed at random, at least 0.5 s apart and from the ends; each
    returns fully to neutral at its offset. Blinks (0.1-0.3 s, every 2-6 s), head movements (a move to a new pose
    within +-8 px and +-2 degrees over 0.3-1 s, about 6 a minute) and a slow sway are independent of them and may
    overlap them. Each expression's AUs, shares, amplitude and apex position come from :func:`draw_clip`, the draw
    of the clip generator.

    Raises:
        ConfigError (a ValueError): the expressions do not fit in the video.
    """
    n = int(round(seconds * fps))
    gap = int(round(EXPRESSION_GAP_SECONDS * fps))
    frames = lambda s: max(3, int(round(s * fps)))  # noqa: E731
    kinds = ["macro"] * macro + ["micro"] * micro  # the long ones first, while there is room
    taken: list[tuple[int, int]] = []
    placed = []
    for j, kind in enumerate(kinds):
        label_class = CLASSES[int(rng.integers(len(CLASSES)))]
        if kind == "micro":
            spec = draw_clip(rng, label_class, f"micro{j}", amplitude_scale,
                             (frames(MICRO_SECONDS[0]), frames(MICRO_SECONDS[1])))
        else:
            spec = draw_clip(rng, label_class, f"macro{j}", 1.0, (frames(MACRO_SECONDS[0]), frames(MACRO_SECONDS[1])))
            spec = replace(spec, amplitude_px=float(rng.uniform(*MACRO_AMPLITUDE_PX)))
        onset = _place(rng, spec.n_frames, n, taken, gap)
        taken.append((onset, onset + spec.n_frames - 1))
        placed.append((kind, replace(spec, onset=onset, residual=0.0)))
    placed.sort(key=lambda item: item[1].onset)
    events = [VideoEvent(kind, s.onset, s.apex, s.offset, s.label_class, s.emotion, "+".join(map(str, s.aus)),
                         round(s.amplitude_px, 4)) for kind, s in placed]

    blinks = []
    t = float(rng.uniform(0.3, BLINK_GAP_SECONDS[1]))
    while t < seconds:
        duration = frames(rng.uniform(*BLINK_SECONDS))
        centre = int(round(t * fps))
        blinks.append((centre, duration, float(rng.uniform(*BLINK_AMOUNT))))
        events.append(VideoEvent("blink", max(0, centre - duration // 2), min(centre, n - 1),
                                 min(centre + duration // 2, n - 1)))
        t += float(rng.uniform(*BLINK_GAP_SECONDS))

    k = np.arange(n, dtype=np.float64)
    pose = np.zeros((n, 3))
    for axis, amplitude in enumerate((SWAY_PX, SWAY_PX, SWAY_DEG)):
        for _ in range(2):
            pose[:, axis] += amplitude * rng.uniform(0.3, 1.0) * np.sin(
                2 * np.pi * rng.uniform(0.05, 0.4) * k / fps + rng.uniform(0, 2 * np.pi))
    moves = int(rng.poisson(HEAD_MOVES_PER_MINUTE * seconds / 60))
    current = np.zeros(3)
    for onset in sorted(int(x) for x in rng.integers(0, max(n - 1, 1), size=moves)):
        length = frames(rng.uniform(*HEAD_SECONDS))
        target = np.array([rng.uniform(-HEAD_SHIFT_PX, HEAD_SHIFT_PX), rng.uniform(-HEAD_SHIFT_PX, HEAD_SHIFT_PX),
                           rng.uniform(-HEAD_TURN_DEG, HEAD_TURN_DEG)])
        step = 0.5 * (1 - np.cos(np.pi * np.clip((k - onset) / (length - 1), 0, 1)))
        pose += np.outer(step, target - current)
        current = target
        events.append(VideoEvent("head", onset, min(onset + length // 2, n - 1), min(onset + length - 1, n - 1)))
    events.sort(key=lambda e: (e.onset, INTERVAL_KINDS.index(e.kind)))
    flicker = (float(rng.uniform(0.003, 0.01)), float(rng.uniform(0.5, 5.0)), float(rng.uniform(0, 2 * np.pi)))
    expressions = [s for _, s in sorted(placed, key=lambda item: item[1].onset)]
    return LongVideoPlan(n, fps, events, expressions, blinks, pose, float(rng.uniform(1.0, 2.5)), flicker)


def render_long_video(subject: Subject, plan: LongVideoPlan, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """The frames of a long video, one at a time ((H, W, 3) uint8 RGB), by :func:`render_frames`."""
    shape = subject.face.shape[:2]
    layers = []
    for spec in plan.expressions:
        weights = np.zeros(plan.n_frames)
        span = slice(spec.onset, spec.onset + spec.n_frames)
        weights[span] = intensity_profile(spec.n_frames, spec.apex_index, spec.residual)[: plan.n_frames - spec.onset]
        layers.append((expression_field(subject, spec.aus, spec.au_share, spec.amplitude_px, shape), weights))
    if plan.blinks:
        t = np.arange(plan.n_frames)
        weights = np.zeros(plan.n_frames)
        for centre, duration, amount in plan.blinks:
            bump = 0.5 * (1 + np.cos(2 * np.pi * (t - centre) / duration))
            weights += amount * np.where(np.abs(t - centre) < duration / 2, bump, 0)
        layers.append((blink_field(subject, 1.0, shape), weights))
    yield from render_frames(subject, layers, plan.pose, plan.noise_sigma, plan.flicker, plan.fps, rng)


def _write_long_video(folder: Path, subject, plan, rng: np.random.Generator, jpeg_quality: int) -> None:
    """Render one long video into ``folder`` as ``img<5-digit frame number>.jpg`` files, each written atomically."""
    from merkit.files import write_atomic

    folder.mkdir(parents=True, exist_ok=True)
    for k, frame in enumerate(render_long_video(subject, plan, rng)):
        data = encode_jpeg(frame, jpeg_quality, f"frame {k} of {folder}")
        write_atomic(folder / f"img{k:05d}.jpg", lambda p, data=data: p.write_bytes(data))


def _interval_rows(video: str, plan, fps: float) -> list[dict]:
    """The ground-truth rows of ``intervals.csv`` for one video's planned events (frames and seconds)."""
    return [dict(video=video, kind=e.kind, onset=e.onset, apex=e.apex, offset=e.offset,
                 onset_s=round(e.onset / fps, 4), apex_s=round(e.apex / fps, 4), offset_s=round(e.offset / fps, 4),
                 label_class=e.label_class, emotion=e.emotion, action_units=e.action_units,
                 amplitude_px=e.amplitude_px) for e in plan.events]


def generate_long_videos(
    out_dir: str | Path,
    videos: int = 10,
    seconds: float = 20.0,
    seed: int = 0,
    fps: float = LONG_FPS,
    micro: int = 3,
    macro: int = 1,
    faces: Sequence[str | Path] | None = None,
    amplitude_scale: float = 1.0,
    size: tuple[int, int] = LONG_FRAME_SIZE,
    face_width: float = LONG_FACE_WIDTH,
    jpeg_quality: int = 90,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write long videos with micro-expressions at known intervals among distractors; return their two tables.

    Each video shows one pseudo-subject (its own identity, :func:`make_subject`, cycling through ``faces``) in a
    ``size`` frame, its face ``face_width`` px wide, for ``seconds`` at ``fps``: ``micro`` micro-expressions and
    ``macro`` macro-expressions (the distractors: longer, larger, slower), blinks, head movements, a slow sway,
    an illumination flicker, luminance noise and JPEG compression (:func:`draw_long_video`).

    Output (``OUT``)::

        OUT/vid01/img00000.jpg ...   frames numbered from 0, as in a video file (merkit.media.read_video reads it)
        OUT/videos.csv               video, path (relative), fps, frames, seconds, width, height, face, noise_sigma
        OUT/intervals.csv            video, kind (micro|macro|blink|head), onset, apex, offset (frame numbers,
                                     inclusive), onset_s, apex_s, offset_s, label_class, emotion, action_units,
                                     amplitude_px (peak displacement on a 224-px face)
        OUT/generator.json           the arguments

    Every file is written atomically. The same arguments give byte-identical files: each video draws from
    generators seeded by ``(seed, video)``.

    Args:
        out_dir: output folder (created; files of the same names are overwritten).
        videos: number of videos (``vid01`` ...).
        seconds: length of each video, seconds.
        seed: random seed.
        fps: frames per second.
        micro, macro: micro- and macro-expressions per video.
        faces: face images or folders, cycled over the videos; default ``skimage.data.astronaut()``.
        amplitude_scale: multiplies the micro-expressions' amplitude (0: none is visible).
        size: (width, height) of the frames, px.
        face_width: jaw width of the face, px (+- 8 % per video).
        jpeg_quality: OpenCV JPEG quality of the frames.

    Returns:
        ``(videos, intervals)``: the two tables as written (``path`` absolute in the returned ``videos``).

    Raises:
        ConfigError (a ValueError): a count, length, rate or size out of range, or expressions that do not fit in
            a video.
        DataError: a face image is missing or unreadable; FaceNotFoundError: dlib finds no face in one.
    """
    settings = {"generator": "merkit.synthetic.generate_long_videos", "version": GENERATOR_VERSION, "videos": videos,
                "seconds": seconds, "seed": seed, "fps": fps, "micro": micro, "macro": macro,
                "faces": None, "amplitude_scale": amplitude_scale, "size": list(size),
                "face_width": face_width, "jpeg_quality": jpeg_quality}
    _check_long_settings(videos, seconds, seed, fps, micro, macro, amplitude_scale, size, face_width, jpeg_quality)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    face_of = _FaceSource(faces)
    video_rows, interval_rows = [], []
    for v in range(videos):
        name = f"vid{v + 1:02d}"
        source_name, image = face_of(v)
        # seeds (seed, video, 10..12) keep the videos apart from the clip generator's (seed, subject, 0..2) streams
        subject = make_subject(name, image, source_name, np.random.default_rng([seed, v, 10]), size=size,
                               face_width=face_width)
        plan = draw_long_video(np.random.default_rng([seed, v, 11]), seconds, fps, micro, macro, amplitude_scale)
        _write_long_video(out / name, subject, plan, np.random.default_rng([seed, v, 12]), jpeg_quality)
        video_rows.append(dict(video=name, path=name, fps=fps, frames=plan.n_frames,
                               seconds=round(plan.n_frames / fps, 4), width=size[0], height=size[1],
                               face=source_name, noise_sigma=round(plan.noise_sigma, 4)))
        interval_rows += _interval_rows(name, plan, fps)
    settings["faces"] = face_of.names
    return _write_long_video_tables(out, video_rows, interval_rows, settings)


def _check_long_settings(videos, seconds, seed, fps, micro, macro, amplitude_scale, size, face_width,
                         jpeg_quality) -> None:
    """Raise :class:`ConfigError` for a setting of :func:`generate_long_videos` out of range."""
    check("synthetic.generate_long_videos", videos=(Count, videos), seconds=(PositiveFloat, seconds),
          seed=(NonNegativeInt, seed), fps=(PositiveFloat, fps), micro=(NonNegativeInt, micro),
          macro=(NonNegativeInt, macro), amplitude_scale=(NonNegativeFloat, amplitude_scale),
          size=(tuple[Int, Int], size), face_width=(PositiveFloat, face_width),
          jpeg_quality=(NonNegativeInt, jpeg_quality))
    if min(size) < 64 or face_width < 40 or face_width > 0.8 * min(size):
        raise ConfigError(f"need frames of at least 64 px and a face of 40 px to 80 % of the frame, got size {size}, "
                          f"face_width {face_width}")


def _write_long_video_tables(out: Path, video_rows: list[dict], interval_rows: list[dict],
                             settings: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write ``videos.csv``, ``intervals.csv`` and ``generator.json`` atomically; the two tables, with the video
    paths made absolute in the returned ``videos``."""
    from merkit.files import write_atomic, write_json

    video_table = pd.DataFrame(video_rows)
    interval_table = pd.DataFrame(interval_rows, columns=["video", "kind", "onset", "apex", "offset", "onset_s",
                                                          "apex_s", "offset_s", "label_class", "emotion",
                                                          "action_units", "amplitude_px"])
    write_atomic(out / VIDEOS_NAME, lambda p: video_table.to_csv(p, index=False))
    write_atomic(out / INTERVALS_NAME, lambda p: interval_table.to_csv(p, index=False))
    write_json(out / "generator.json", settings)
    video_table["path"] = [str((out / p).resolve()) for p in video_table["path"]]
    return video_table, interval_table
