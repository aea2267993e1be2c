"""Square face crops defined from the 68 landmarks of an aligned face.

A crop is a square box ``(cx, cy, side)`` in the coordinates of the landmarks it is computed from (eye units after
alignment, see :mod:`merkit.face.align`). :func:`crop_matrix` turns it into the scale-and-shift that maps that box
onto a ``size`` x ``size`` output, which :mod:`merkit.face.clip` composes with the alignment so that each frame is
interpolated once.

Kinds:

* ``slstt``: centred on the nose tip (landmark 30), side ``(y8 - y19) + (y8 - y57)``: chin to brow plus chin to
  lower lip, as the SLSTT code crops (Zhang and Arandjelović, "Short and Long Range Relation Based
  Spatio-Temporal Transformer for Micro-Expression Recognition", IEEE TAC 2022).
* ``eyes``: derived from the eye centres only: side ``EYES_SIDE`` inter-ocular distances, centred ``EYES_DROP``
  inter-ocular distances below the eye midpoint, so that brows, eyes, cheeks, mouth and chin are inside.
* ``landmarks``: the landmarks' bounding box made square about its centre, widened by ``margin`` of its side on
  every side.
"""

from __future__ import annotations

import numpy as np

from merkit.face.align import eye_centres

CROPS = ("slstt", "eyes", "landmarks")
EYES_SIDE = 2.5
EYES_DROP = 0.6


def crop_box(landmarks: np.ndarray, kind: str, margin: float = 0.0) -> tuple[float, float, float]:
    """The square crop ``(cx, cy, side)`` of a face, in the landmarks' coordinates.

    Args:
        landmarks: (68, 2) (x, y) landmarks, ideally of an aligned face (eye line level).
        kind: ``slstt``, ``eyes`` or ``landmarks`` (see the module docstring; the pipeline's default is
            :class:`merkit.face.clip.FaceConfig`'s).
        margin: for ``landmarks`` only, the fraction of the box side added on each side (none by default).

    Raises:
        ValueError: unknown ``kind``, or a degenerate face (non-positive side: chin above the brows).
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if kind == "slstt":
        cx, cy = lm[30]
        side = (lm[8, 1] - lm[19, 1]) + (lm[8, 1] - lm[57, 1])
    elif kind == "eyes":
        eyes = eye_centres(lm)
        distance = float(np.linalg.norm(eyes[1] - eyes[0]))
        cx, cy = eyes.mean(axis=0) + np.array([0.0, EYES_DROP * distance])
        side = EYES_SIDE * distance
    elif kind == "landmarks":
        low, high = lm.min(axis=0), lm.max(axis=0)
        cx, cy = (low + high) / 2
        side = float(np.max(high - low)) * (1 + 2 * margin)
    else:
        raise ValueError(f"crop must be one of {CROPS}, got {kind!r}")
    if not side > 0:
        raise ValueError(f"degenerate face for the {kind!r} crop: side {side:.3g}")
    return float(cx), float(cy), float(side)


def crop_matrix(box: tuple[float, float, float], size: int) -> np.ndarray:
    """3x3 float64 scale-and-shift mapping the square ``box`` ``(cx, cy, side)`` onto pixels ``[0, size)``.

    Pixel centres are at integer coordinates: the box's left edge ``cx - side/2`` maps to -0.5, its right edge to
    ``size - 0.5``.
    """
    cx, cy, side = box
    scale = size / side
    return np.array([[scale, 0.0, (side / 2 - cx) * scale - 0.5],
                     [0.0, scale, (side / 2 - cy) * scale - 0.5],
                     [0.0, 0.0, 1.0]])
