"""Face detection and the 68-point landmarks with dlib.

Models: dlib's HOG frontal face detector (default) or its CNN (mmod) detector, and the 68-point shape predictor
shipped by the ``face-recognition-models`` package (iBUG 300-W annotation: **non-commercial use only**).
The package is located with :func:`importlib.util.find_spec` because ``import face_recognition_models`` fails
under setuptools >= 82 (it uses ``pkg_resources``).

Landmark indexing is the iBUG 68-point scheme, 0-based: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47
(right eye of the subject 36-41, left 42-47), mouth 48-67.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from merkit.errors import DataError, Where


class FaceNotFoundError(DataError):
    """No face was detected in an image or frame."""


def model_path(name: str) -> Path:
    """Path of a model file of ``face-recognition-models`` (e.g. ``shape_predictor_68_face_landmarks.dat``).

    Raises:
        FileNotFoundError: the package or file is missing (``pip install face-recognition-models``).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package face-recognition-models is not installed: pip install face-recognition-models")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from face-recognition-models")
    return path


@lru_cache(maxsize=None)
def _detector(kind: str):
    import dlib

    if kind == "hog":
        return dlib.get_frontal_face_detector()
    if kind == "cnn":
        return dlib.cnn_face_detection_model_v1(str(model_path("mmod_human_face_detector.dat")))
    raise ValueError(f"detector must be 'hog' or 'cnn', got {kind!r}")


@lru_cache(maxsize=None)
def _predictor():
    import dlib

    return dlib.shape_predictor(str(model_path("shape_predictor_68_face_landmarks.dat")))


def _as_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8:
        image = np.clip(image * (255.0 if image.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


def detect_faces(image: np.ndarray, detector: str = "hog", upsample: int = 1) -> list[tuple[int, int, int, int]]:
    """Face boxes ``(left, top, right, bottom)`` in pixels, largest first.

    Args:
        image: (H, W) grey or (H, W, 3) RGB, uint8 (or float in [0, 1]).
        detector: ``hog`` (fast, frontal) or ``cnn`` (mmod; slower, more robust).
        upsample: times dlib upsamples the image before detecting (finds smaller faces).
    """
    img = _as_uint8(image)
    found = _detector(detector)(img, upsample)
    rects = [getattr(r, "rect", r) for r in found]
    boxes = [(r.left(), r.top(), r.right(), r.bottom()) for r in rects]
    return sorted(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)


def landmarks_in_box(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The 68 landmarks of the face in ``box``: float64 (68, 2) array of (x, y) pixels."""
    import dlib

    shape = _predictor()(_as_uint8(image), dlib.rectangle(*[int(v) for v in box]))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


def detect_landmarks(image: np.ndarray, detector: str = "hog", where: Where | None = None,
                     upsample: int = 1) -> tuple[np.ndarray, tuple[int, int, int, int], int]:
    """Detect the largest face and fit its 68 landmarks.

    Returns:
        ``(landmarks, box, n_faces)``: (68, 2) float64 (x, y) pixels, the face box (left, top, right, bottom) and
        how many faces were found (callers warn when it is more than one).

    Raises:
        FaceNotFoundError: no face; the message names ``where`` (dataset, subject, sample, frame).
    """
    boxes = detect_faces(image, detector, upsample)
    if not boxes:
        raise FaceNotFoundError("no face detected", where,
                                hint="check the frame, try detector='cnn' or a higher upsample")
    return landmarks_in_box(image, boxes[0]), boxes[0], len(boxes)


class FaceLostError(FaceNotFoundError):
    """A frame after the reference frame shows no face where the reference frame's face was, or the face moved
    further than :data:`MAX_FACE_SHIFT` from it."""


#: A face that moved by more than this fraction of its width from the reference frame is not the face the clip's
#: one transform was fitted on: the clip no longer shows a still head with a facial movement.
MAX_FACE_SHIFT = 0.25
#: The check looks for the face in the reference box grown by this fraction of its width on every side, scaled so
#: that the face is about CHECK_FACE_WIDTH pixels wide (dlib's HOG finds faces from about 80 px).
CHECK_MARGIN = 0.5
CHECK_FACE_WIDTH = 120


def faces_near(image: np.ndarray, box: tuple[int, int, int, int], detector: str = "hog"
               ) -> list[tuple[float, float, float, float]]:
    """The faces found in the region around ``box``: the detection step of :func:`check_face`.

    The detector (no upsampling) runs on ``box`` grown by :data:`CHECK_MARGIN` of its width on every side, rescaled
    so that a face of ``box``'s width is :data:`CHECK_FACE_WIDTH` pixels wide: a few milliseconds a frame, whatever
    the video's resolution.

    Returns:
        Face boxes (left, top, right, bottom) in source pixels (floats), largest first; empty when none is found.
    """
    import cv2

    left, top, right, bottom = (float(v) for v in box)
    width = max(right - left, 1.0)
    grow = CHECK_MARGIN * width
    height, full = image.shape[:2]
    x0, y0 = int(max(0, left - grow)), int(max(0, top - grow))
    x1, y1 = int(min(full, right + grow)), int(min(height, bottom + grow))
    scale = CHECK_FACE_WIDTH / width
    region = cv2.resize(_as_uint8(image[y0:y1, x0:x1]), None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return [(x0 + a / scale, y0 + b / scale, x0 + c / scale, y0 + d / scale)
            for a, b, c, d in detect_faces(region, detector, 0)]


def face_shift(found: Sequence[Sequence[float]], box: Sequence[float]) -> float:
    """How far the nearest of the ``found`` faces lies from ``box``: the distance between the boxes' centres over
    ``box``'s width (``inf`` when nothing was found)."""
    left, top, right, bottom = (float(v) for v in box)
    width = max(right - left, 1.0)
    centre = np.array([(left + right) / 2, (top + bottom) / 2])
    shifts = [float(np.linalg.norm(np.array([(a + c) / 2, (b + d) / 2]) - centre)) / width for a, b, c, d in found]
    return min(shifts, default=float("inf"))


def raise_if_lost(shift: float, where: Where | None = None) -> float:
    """``shift`` (from :func:`face_shift`) when the face is still there, else FaceLostError (see :func:`check_face`)."""
    if not np.isfinite(shift):
        raise FaceLostError("no face where the reference frame's face was", where,
                            hint="the face left the frame or turned away; choose frames where it is visible")
    if shift > MAX_FACE_SHIFT:
        raise FaceLostError(f"the face moved {shift:.2f} of its width from the reference frame (limit "
                            f"{MAX_FACE_SHIFT})", where, hint="one transform per clip needs a still head; choose a "
                                                             "shorter clip, or scan a long video with "
                                                             "`merkit predict --spot` (Predictor.spot)")
    return shift


def check_face(image: np.ndarray, box: tuple[int, int, int, int], detector: str = "hog",
               where: Where | None = None) -> float:
    """Check that ``image`` shows a face where ``box`` (the reference frame's face) was.

    The detector runs on the region around ``box`` only (:func:`faces_near`), rescaled so that the face is about
    :data:`CHECK_FACE_WIDTH` pixels wide: a few milliseconds a frame, whatever the video's resolution.

    Returns:
        How far the face moved: the distance between the two boxes' centres over the reference box's width.

    Raises:
        FaceLostError: no face in the region, or one that moved more than :data:`MAX_FACE_SHIFT` of its width;
            the message names ``where``.
    """
    return raise_if_lost(face_shift(faces_near(image, box, detector), box), where)
