"""Action units as displacement fields: each AU moves landmark-anchored points of the face.

Part of :mod:`merkit.synthetic` (its module docstring describes the generator).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np




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


