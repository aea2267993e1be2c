"""Faces and pseudo-subjects: the photos a set is animated from.

Part of :mod:`merkit.synthetic` (its module docstring describes the generator).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from merkit.errors import DataError, Where
from merkit.media import read_image
from merkit.synthetic.fields import FaceFrame

DATASET = "synthetic"

FACE_WIDTH = 224.0
FRAME_SIZE = (280, 340)  # (width, height), the size of CASME II's cropped frames
FPS = 200
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


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
