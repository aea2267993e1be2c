"""The nine action-unit (AU) regions of FRL-DGT, defined once, from the 68 landmarks.

FRL-DGT (Zhai et al., "Feature Representation Learning with Adaptive Displacement Generation and Transformer
Fusion for Micro-Expression Recognition", CVPR 2023) cuts nine square patches around the facial areas where
micro-expression action units act, and uses 90 x 90 pixel boxes. The paper describes the areas in words only;
merkit fixes each box's centre as a weighted mean of landmarks (table below), so that the boxes follow the face:

======  =======================================  ===============================================================
region  area (AUs acting there)                   centre (iBUG 68-point indices, 0-based)
======  =======================================  ===============================================================
R1L/R   brow, above the eye (AU1, AU2, AU4)       mean of the brow (17-21 / 22-26) and upper lid (37, 38 / 43, 44)
R2      between the brows (AU4)                   mean of the inner brow ends 21, 22 and the nose root 27
R3L/R   lower eyelid and under the eye (AU6, AU7) lower lid (40, 41 / 46, 47) pulled towards the cheek (1 / 15)
                                                  and the nostril (31 / 35)
R4      nose (AU9)                                mean of the nose 29, 30, 31, 33, 35
R5L/R   mouth corner and cheek (AU12, AU14, AU15) mouth corner (48 / 54) pulled towards the cheek (3 / 13)
R6      mouth and chin (AU17, AU23, AU24)         lower lip 57, upper lip 51 and chin 8
======  =======================================  ===============================================================

L and R are the image's left and right (the subject's right and left). A box's side is ``90 / 224`` of the image
side (90 pixels on merkit's default 224 crop); a box that would leave the image is shifted back inside, so every
region is a full square.

The module also gives HTNet's five face points (:func:`face_points`): the eye centres, the nose tip and the mouth
corners, the points MTCNN (Zhang et al., IEEE SPL 2016) detects, here taken from the 68 landmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from merkit.face.align import MIRROR_68

PAPER_BOX = 90
PAPER_IMAGE = 224


@dataclass(frozen=True)
class AURegion:
    """One region: its name, the facial area and its centre as ``{landmark index: weight}`` (weights sum to 1)."""

    name: str
    area: str
    weights: tuple[tuple[int, float], ...]

    def centre(self, landmarks: np.ndarray) -> np.ndarray:
        """(2,) float64 centre (x, y) of the region on a face with (68, 2) ``landmarks``."""
        index, weight = zip(*self.weights)
        return np.asarray(weight) @ np.asarray(landmarks, np.float64)[list(index)]


def _mirrored(region: AURegion, name: str) -> AURegion:
    return AURegion(name, region.area, tuple((int(MIRROR_68[i]), w) for i, w in region.weights))


def _mean(*indices: int) -> tuple[tuple[int, float], ...]:
    return tuple((i, 1.0 / len(indices)) for i in indices)


_R1L = AURegion("R1L", "brow, above the eye",
                tuple((i, 0.1) for i in range(17, 22)) + ((37, 0.25), (38, 0.25)))
_R3L = AURegion("R3L", "lower eyelid and under the eye", ((40, 0.3), (41, 0.3), (1, 0.2), (31, 0.2)))
_R5L = AURegion("R5L", "mouth corner and cheek", ((48, 0.6), (3, 0.4)))

AU_REGIONS: tuple[AURegion, ...] = (
    _R1L,
    _mirrored(_R1L, "R1R"),
    AURegion("R2", "between the brows", _mean(21, 22, 27)),
    _R3L,
    _mirrored(_R3L, "R3R"),
    AURegion("R4", "nose", _mean(29, 30, 31, 33, 35)),
    _R5L,
    _mirrored(_R5L, "R5R"),
    AURegion("R6", "mouth and chin", ((51, 0.25), (57, 0.45), (8, 0.3))),
)
AU_REGION_NAMES: tuple[str, ...] = tuple(r.name for r in AU_REGIONS)


def region_side(image_size: int) -> int:
    """The box side in pixels for a square image of side ``image_size``: 90 at the paper's 224."""
    return int(round(PAPER_BOX * image_size / PAPER_IMAGE))


def au_regions(landmarks: np.ndarray, image_size: int, side: int | None = None) -> dict[str, tuple[int, int, int, int]]:
    """The nine region boxes ``(left, top, right, bottom)`` in pixels (right and bottom exclusive).

    Args:
        landmarks: (68, 2) landmarks of the face in the image, usually the aligned crop.
        image_size: side of the square image in pixels.
        side: box side in pixels; default :func:`region_side` (90 at 224).

    Raises:
        ValueError: the box is larger than the image.
    """
    side = region_side(image_size) if side is None else int(side)
    if not 0 < side <= image_size:
        raise ValueError(f"AU region side {side} does not fit a {image_size} px image")
    boxes = {}
    for region in AU_REGIONS:
        cx, cy = region.centre(landmarks)
        left = int(np.clip(round(cx - side / 2), 0, image_size - side))
        top = int(np.clip(round(cy - side / 2), 0, image_size - side))
        boxes[region.name] = (left, top, left + side, top + side)
    return boxes


def au_boxes(landmarks: np.ndarray, image_size: int) -> np.ndarray:
    """The nine :func:`au_regions` boxes at the paper's side, in units of the image side: FRL-DGT's ``au_boxes``.

    Args:
        landmarks: (68, 2) landmarks in pixels of a square image, or (N, 68, 2) for N faces.
        image_size: side of that image in pixels.

    Returns:
        float32 (9, 4) ``(left, top, right, bottom) / image_size`` in :data:`AU_REGION_NAMES` order, or (N, 9, 4).
        Being relative, the boxes do not depend on the size a model later resizes the image to.
    """
    landmarks = np.asarray(landmarks, np.float64)
    if landmarks.ndim == 3:
        return np.stack([au_boxes(lm, image_size) for lm in landmarks]) if len(landmarks) else \
            np.zeros((0, len(AU_REGIONS), 4), np.float32)
    boxes = np.asarray(list(au_regions(landmarks, image_size).values()), dtype=np.float32)
    return boxes / np.float32(image_size)


def crop_landmarks(image: np.ndarray, where=None, diagnostics=None) -> np.ndarray:
    """dlib's 68 landmarks of a square face crop (e.g. the MEGC2019 composite's apex crops), (68, 2) pixels.

    The landmarks are fitted in the largest detected face. dlib's HOG detector misses some tight crops (29 of the
    composite's 442 apex crops); the image then is the face box, and a counted ``face-not-detected`` warning says so.
    On 57 composite crops where the detector did find the face, fitting in the whole crop instead moved the
    landmarks by 1.5 px on average and the AU boxes by 0.5 px (224 px crops; measured 2026-11-21).

    Args:
        image: (S, S) grey or (S, S, 3) RGB uint8 face crop.
        where: the sample, named in the warning.
        diagnostics: a :class:`merkit.errors.Diagnostics` that counts the warning (it is emitted as a
            :class:`UserWarning` either way).

    Raises:
        DataError: the image is not square.
    """
    from merkit.errors import DataError, Diagnostics
    from merkit.face.landmarks import detect_faces, landmarks_in_box

    size = image.shape[0]
    if image.shape[1] != size:
        raise DataError(f"face regions need a square face crop, got {image.shape[1]}x{size}", where)
    faces = detect_faces(image, "hog", 1)
    if not faces:
        (diagnostics if diagnostics is not None else Diagnostics()).warn(
            "face-not-detected", "no face detected in the face crop; landmarks fitted with the whole crop as the face "
            "box", where)
    return landmarks_in_box(image, faces[0] if faces else (0, 0, size, size))


def image_au_boxes(image: np.ndarray, where=None, diagnostics=None) -> np.ndarray:
    """:func:`au_boxes` of a square face crop, from the landmarks of :func:`crop_landmarks`: float32 (9, 4) boxes
    in units of the crop side.

    Raises:
        DataError: the image is not square.
    """
    return au_boxes(crop_landmarks(image, where, diagnostics), image.shape[0])


#: HTNet's five points, in MTCNN's order, each the mean of these landmarks (iBUG 68, 0-based). "left" and "right"
#: are the image's: ``eye_left`` is the subject's right eye (36-41).
FACE_POINTS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("eye_left", tuple(range(36, 42))),
    ("eye_right", tuple(range(42, 48))),
    ("nose", (30,)),
    ("mouth_left", (48,)),
    ("mouth_right", (54,)),
)
FACE_POINT_NAMES: tuple[str, ...] = tuple(name for name, _ in FACE_POINTS)
#: Index of each point's mirror image (left <-> right; the nose maps to itself).
FACE_POINT_MIRROR: tuple[int, ...] = (1, 0, 2, 4, 3)


def face_points(landmarks: np.ndarray, image_size: int) -> np.ndarray:
    """The five :data:`FACE_POINTS` of a face, (x, y) in units of the image side.

    Args:
        landmarks: (68, 2) landmarks in pixels of a square image (pixel centres at integers), or (N, 68, 2).
        image_size: side of that image in pixels.

    Returns:
        float32 (5, 2), or (N, 5, 2). The image spans [0, 1]: pixel ``i`` covers ``[i, i + 1) / image_size``, so a
        landmark at pixel ``x`` is at ``(x + 0.5) / image_size`` and a left-right mirror maps ``x`` to ``1 - x``.
    """
    landmarks = np.asarray(landmarks, np.float64)
    points = np.stack([landmarks[..., list(index), :].mean(axis=-2) for _, index in FACE_POINTS], axis=-2)
    return ((points + 0.5) / image_size).astype(np.float32)


def image_face_points(image: np.ndarray, where=None, diagnostics=None) -> np.ndarray:
    """:func:`face_points` of a square face crop, from the landmarks of :func:`crop_landmarks`: float32 (5, 2).

    Raises:
        DataError: the image is not square.
    """
    return face_points(crop_landmarks(image, where, diagnostics), image.shape[0])


def crop_au_regions(image: np.ndarray, landmarks: np.ndarray, side: int | None = None) -> np.ndarray:
    """The nine AU patches of a square face image, stacked in :data:`AU_REGION_NAMES` order.

    Args:
        image: (S, S) or (S, S, C) aligned face crop; (T, S, S[, C]) clips work too (the boxes are cut from the
            last two/three axes).
        landmarks: (68, 2) landmarks in that image.

    Returns:
        (9, side, side[, C]) patches, or (9, T, side, side[, C]) for a clip; same dtype as ``image``.
    """
    image = np.asarray(image)
    colour = image.ndim >= 3 and image.shape[-1] in (1, 3, 4) and image.shape[-2] != image.shape[-1]
    spatial = image.ndim - (3 if colour else 2)
    size = image.shape[spatial]
    if image.shape[spatial + 1] != size:
        raise ValueError(f"AU regions need a square face image, got shape {image.shape}")
    boxes = au_regions(landmarks, size, side)
    patches = []
    for left, top, right, bottom in boxes.values():
        index = [slice(None)] * image.ndim
        index[spatial], index[spatial + 1] = slice(top, bottom), slice(left, right)
        patches.append(image[tuple(index)])
    return np.stack(patches)
