"""Face alignment to a canonical 68-point template: ``similarity`` and ``piecewise-affine``.

Coordinates are (x, y) pixels, x to the right and y downwards. The template lives in *eye units*: the origin is the
midpoint of the eye centres, the eye centres sit at (-0.5, 0) and (+0.5, 0), so one unit is the inter-ocular
distance. An eye centre is the mean of the six landmarks of that eye (iBUG 68-point scheme, 0-based: 36-41 is the
subject's right eye, on the image's left; 42-47 the subject's left eye).

* ``similarity``: rotation, uniform scale and translation (4 degrees of freedom). With ``points="eyes"`` it is
  fitted exactly on the two eye centres, so they land on the template and the eye line is level; with
  ``points="eyes-nose-mouth"`` it is the least-squares (Umeyama 1991) fit of the eye centres, the nose tip (30) and
  the mouth centre (mean of 48 and 54).
* ``piecewise-affine``: a Delaunay-triangulated warp moving all 68 landmarks onto the template (the model of
  scikit-image's :class:`~skimage.transform.PiecewiseAffineTransform`). The MMNet reproduction (MMNet: Li et al.,
  IJCAI 2022) warped faces to a template with a local weighted mean (LWM) transform; this is the piecewise-affine
  member of that family of landmark-to-template warps, not LWM itself. Outside the landmark hull the warp follows
  the similarity fit, through anchor points beyond the output border, so that the whole output frame is defined.
  The mapping equals scikit-image's transform estimated from output to source points, evaluated with closed-form
  barycentric coordinates and a rasterised triangle lookup (scikit-image took about 2.5 s for a 224 x 224 grid
  here, this about 0.2 s).

The transform is built once (per clip, see :mod:`merkit.face.clip`) and applied to every frame with one
interpolation: the alignment and the crop are composed into a single mapping from source pixels to output pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

ALIGNMENTS = ("similarity", "piecewise-affine")
SIMILARITY_POINTS = ("eyes", "eyes-nose-mouth")

RIGHT_EYE = list(range(36, 42))  # the subject's right eye, on the image's left
LEFT_EYE = list(range(42, 48))

# Index of each landmark's left-right mirror image in the iBUG 68-point scheme.
MIRROR_68 = np.array(
    list(range(16, -1, -1))  # jaw
    + list(range(26, 16, -1))  # brows
    + [27, 28, 29, 30] + [35, 34, 33, 32, 31]  # nose bridge, nostrils
    + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40]  # eyes
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]  # outer lips
    + [64, 63, 62, 61, 60, 67, 66, 65]  # inner lips
)

# Mean dlib 68-point shape in eye units (see the module docstring), left-right symmetric. Regenerate with
# ``python docs/scripts/face_template.py`` (mean of 10 freely licensed real faces).
TEMPLATE_68 = np.array([
    [-1.1402, +0.0600],
    [-1.1292, +0.3582],
    [-1.0990, +0.6497],
    [-1.0400, +0.9379],
    [-0.9343, +1.2159],
    [-0.7662, +1.4578],
    [-0.5451, +1.6602],
    [-0.2884, +1.8135],
    [+0.0000, +1.8594],
    [+0.2884, +1.8135],
    [+0.5451, +1.6602],
    [+0.7662, +1.4578],
    [+0.9343, +1.2159],
    [+1.0400, +0.9379],
    [+1.0990, +0.6497],
    [+1.1292, +0.3582],
    [+1.1402, +0.0600],
    [-0.9265, -0.2219],
    [-0.7899, -0.3607],
    [-0.5961, -0.4068],
    [-0.3891, -0.3860],
    [-0.2014, -0.3100],
    [+0.2014, -0.3100],
    [+0.3891, -0.3860],
    [+0.5961, -0.4068],
    [+0.7899, -0.3607],
    [+0.9265, -0.2219],
    [+0.0000, -0.0633],
    [+0.0000, +0.1225],
    [+0.0000, +0.3021],
    [+0.0000, +0.4856],
    [-0.2378, +0.6316],
    [-0.1214, +0.6659],
    [+0.0000, +0.6972],
    [+0.1214, +0.6659],
    [+0.2378, +0.6316],
    [-0.6991, +0.0092],
    [-0.5701, -0.0547],
    [-0.4293, -0.0560],
    [-0.2928, +0.0234],
    [-0.4332, +0.0376],
    [-0.5755, +0.0404],
    [+0.2928, +0.0234],
    [+0.4293, -0.0560],
    [+0.5701, -0.0547],
    [+0.6991, +0.0092],
    [+0.5755, +0.0404],
    [+0.4332, +0.0376],
    [-0.5065, +0.9869],
    [-0.3277, +0.9017],
    [-0.1377, +0.8669],
    [+0.0000, +0.8917],
    [+0.1377, +0.8669],
    [+0.3277, +0.9017],
    [+0.5065, +0.9869],
    [+0.3380, +1.1967],
    [+0.1480, +1.2855],
    [+0.0000, +1.3000],
    [-0.1480, +1.2855],
    [-0.3380, +1.1967],
    [-0.4465, +0.9999],
    [-0.1401, +0.9599],
    [+0.0000, +0.9705],
    [+0.1401, +0.9599],
    [+0.4465, +0.9999],
    [+0.1441, +1.1472],
    [+0.0000, +1.1618],
    [-0.1441, +1.1472],
])


def eye_centres(landmarks: np.ndarray) -> np.ndarray:
    """The two eye centres, (2, 2) float64: row 0 the image-left eye (36-41), row 1 the image-right eye (42-47)."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    return np.stack([landmarks[RIGHT_EYE].mean(axis=0), landmarks[LEFT_EYE].mean(axis=0)])


def eye_angle(landmarks: np.ndarray) -> float:
    """Angle of the eye line in degrees (0 = level; positive when the image-right eye is lower)."""
    (x0, y0), (x1, y1) = eye_centres(landmarks)
    return float(np.degrees(np.arctan2(y1 - y0, x1 - x0)))


def _estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    from skimage.transform import SimilarityTransform  # imported on use: merkit.config imports this module

    tform = SimilarityTransform.from_estimate(np.asarray(src, np.float64), np.asarray(dst, np.float64))
    if not tform:
        raise ValueError(f"similarity estimation failed: {tform}")
    return tform.params


def normalise_to_eyes(landmarks: np.ndarray) -> np.ndarray:
    """Landmarks (68, 2) moved into eye units: the eye centres land exactly on (-0.5, 0) and (+0.5, 0)."""
    matrix = _estimate_similarity(eye_centres(landmarks), [[-0.5, 0.0], [0.5, 0.0]])
    return apply_matrix(matrix, landmarks)


def apply_matrix(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 3x3 homogeneous (or 2x3 affine) matrix to (N, 2) points; returns float64 (N, 2)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return points @ np.asarray(matrix, np.float64)[:2, :2].T + np.asarray(matrix, np.float64)[:2, 2]


def _similarity_points(landmarks: np.ndarray, points: str) -> np.ndarray:
    landmarks = np.asarray(landmarks, dtype=np.float64)
    eyes = eye_centres(landmarks)
    if points == "eyes":
        return eyes
    if points == "eyes-nose-mouth":
        return np.vstack([eyes, landmarks[30], (landmarks[48] + landmarks[54]) / 2])
    raise ValueError(f"similarity points must be one of {SIMILARITY_POINTS}, got {points!r}")


def similarity_to_template(landmarks: np.ndarray, points: str = "eyes",
                           template: np.ndarray = TEMPLATE_68) -> np.ndarray:
    """The similarity taking source pixels to template eye units, as a 3x3 float64 matrix.

    Args:
        landmarks: (68, 2) source landmarks in pixels.
        points: ``eyes`` (exact fit of the two eye centres) or ``eyes-nose-mouth`` (least squares over the eye
            centres, nose tip and mouth centre).
        template: (68, 2) template in eye units.
    """
    return _estimate_similarity(_similarity_points(landmarks, points), _similarity_points(template, points))


def _local_coordinates(corners: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Barycentric coordinates (l_a, l_b) of ``points`` in triangles ``corners`` (a, b, c); l_c = 1 - l_a - l_b.

    ``corners`` is (3, 2) for one triangle or (N, 3, 2), one per point. The 2x2 systems are solved in closed form:
    element-wise arithmetic, which stays fast on a loaded machine where batched LAPACK calls did not.
    """
    c = corners[..., 2, :]
    e1, e2, d = corners[..., 0, :] - c, corners[..., 1, :] - c, points - c
    det = e1[..., 0] * e2[..., 1] - e2[..., 0] * e1[..., 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        la = (d[..., 0] * e2[..., 1] - e2[..., 0] * d[..., 1]) / det
        lb = (e1[..., 0] * d[..., 1] - d[..., 0] * e1[..., 1]) / det
    return np.stack(np.broadcast_arrays(la, lb), axis=-1)


def _containing_triangle(triangles: np.ndarray, vertices: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Index of a triangle containing each (N, 2) point, -1 where none does (first triangle wins on an edge)."""
    simplex = np.full(len(points), -1)
    for index, corners in enumerate(vertices[triangles]):
        local = _local_coordinates(corners, points)
        hit = (simplex < 0) & (local >= -1e-9).all(axis=1) & (local.sum(axis=1) <= 1 + 1e-9)
        simplex[hit] = index
    return simplex


def _grid_triangles(triangles: np.ndarray, vertices: np.ndarray, size: int) -> np.ndarray:
    """Containing triangle of every pixel centre of a size x size grid (row-major), -1 where none.

    The triangles are rasterised with ``cv2.fillConvexPoly`` (microseconds each); the pixels on their edges, where
    rasterisation may pick a neighbour, are then checked exactly and re-assigned by :func:`_containing_triangle`.
    """
    shift = 8
    labels = np.full((size, size), -1, dtype=np.int32)
    for index, corners in enumerate(vertices[triangles]):
        cv2.fillConvexPoly(labels, np.round(corners * (1 << shift)).astype(np.int32), int(index), cv2.LINE_8, shift)
    simplex = labels.ravel()
    ys, xs = np.mgrid[0:size, 0:size]
    grid = np.column_stack([xs.ravel(), ys.ravel()]).astype(np.float64)
    local = _local_coordinates(vertices[triangles[np.maximum(simplex, 0)]], grid)
    wrong = (simplex < 0) | (local < -1e-9).any(axis=1) | (local.sum(axis=1) > 1 + 1e-9)
    simplex[wrong] = _containing_triangle(triangles, vertices, grid[wrong])
    return simplex


def _piecewise_map(triangles: np.ndarray, from_points: np.ndarray, to_points: np.ndarray, points: np.ndarray,
                   fallback: np.ndarray, simplex: np.ndarray | None = None) -> np.ndarray:
    """Carry each (N, 2) point by the affine map of the triangle that holds it; points in none follow the 3x3
    ``fallback``. ``triangles`` (M, 3) index both ``from_points`` and ``to_points``; ``simplex`` (N,), the
    containing triangles, is searched for when not given."""
    if simplex is None:
        simplex = _containing_triangle(triangles, from_points, points)
    mapped = apply_matrix(fallback, points)
    inside = simplex >= 0
    local = _local_coordinates(from_points[triangles[simplex[inside]]], points[inside])
    weights = np.column_stack([local, 1 - local.sum(axis=1)])
    mapped[inside] = np.einsum("ni,nij->nj", weights, to_points[triangles[simplex[inside]]])
    return mapped


@dataclass
class FaceTransform:
    """One mapping from source-frame pixels to output pixels, applied identically to every frame of a clip.

    Attributes:
        kind: ``similarity`` or ``piecewise-affine``.
        matrix: 3x3 float64 similarity, source pixels -> output pixels. For ``piecewise-affine`` it is the
            similarity part, which also governs the output border outside the landmark hull.
        size: output side in pixels (square output).
        output_points, source_points: (N, 2) control-point pairs of the piecewise-affine warp (68 landmarks then
            border anchors), in output and source pixels; ``None`` for ``similarity``.
    """

    kind: str
    matrix: np.ndarray
    size: int
    output_points: np.ndarray | None = None
    source_points: np.ndarray | None = None
    _maps: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Map (N, 2) source pixels to output pixels."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if self.kind == "similarity":
            return apply_matrix(self.matrix, points)
        return _piecewise_map(self._triangles(), self.source_points, self.output_points, points, self.matrix)

    def invert(self, points: np.ndarray) -> np.ndarray:
        """Map (N, 2) output pixels back to source pixels."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        inverse = np.linalg.inv(self.matrix)
        if self.kind == "similarity":
            return apply_matrix(inverse, points)
        return _piecewise_map(self._triangles(), self.output_points, self.source_points, points, inverse)

    def _triangles(self) -> np.ndarray:
        # One triangulation, of the output (template) points, serves both directions, so that apply and invert
        # are exact inverses (as in scikit-image's PiecewiseAffineTransform estimated output -> source).
        from scipy.spatial import Delaunay  # imported on use (about 0.4 s): merkit.config imports this module

        return Delaunay(self.output_points).simplices

    def _remap_tables(self) -> tuple[np.ndarray, np.ndarray]:
        # The piecewise-affine inverse map is computed once per clip and reused by cv2.remap for every frame.
        if self._maps is None:
            ys, xs = np.mgrid[0 : self.size, 0 : self.size]
            grid = np.column_stack([xs.ravel(), ys.ravel()]).astype(np.float64)
            triangles = self._triangles()
            simplex = _grid_triangles(triangles, self.output_points, self.size)
            source = _piecewise_map(triangles, self.output_points, self.source_points, grid,
                                    np.linalg.inv(self.matrix), simplex)
            self._maps = (source[:, 0].reshape(self.size, self.size).astype(np.float32),
                          source[:, 1].reshape(self.size, self.size).astype(np.float32))
        return self._maps

    def warp(self, image: np.ndarray) -> np.ndarray:
        """Warp a source frame ((H, W) or (H, W, 3), any dtype cv2 handles) to the (size, size[, 3]) output.

        Bilinear interpolation; pixels that fall outside the source frame are black.
        """
        image = np.ascontiguousarray(image)
        if self.kind == "similarity":
            return cv2.warpAffine(image, self.matrix[:2], (self.size, self.size), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        map_x, map_y = self._remap_tables()
        return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays for ``np.savez`` (see :meth:`from_arrays`)."""
        arrays = {"transform_kind": np.array(self.kind), "transform_matrix": self.matrix,
                  "transform_size": np.array(self.size)}
        if self.kind == "piecewise-affine":
            arrays["transform_output_points"] = self.output_points
            arrays["transform_source_points"] = self.source_points
        return arrays

    @classmethod
    def from_arrays(cls, arrays) -> "FaceTransform":
        kind = str(arrays["transform_kind"])
        pwa = kind == "piecewise-affine"
        return cls(kind=kind, matrix=np.asarray(arrays["transform_matrix"], np.float64),
                   size=int(arrays["transform_size"]),
                   output_points=np.asarray(arrays["transform_output_points"]) if pwa else None,
                   source_points=np.asarray(arrays["transform_source_points"]) if pwa else None)


def piecewise_affine(source_landmarks: np.ndarray, output_landmarks: np.ndarray, similarity: np.ndarray,
                     size: int) -> FaceTransform:
    """The piecewise-affine transform moving ``source_landmarks`` onto ``output_landmarks`` (both (68, 2) pixels).

    ``similarity`` (3x3, source -> output) places anchors on a ring of 16 points around the output frame, at 1.5x its
    half-diagonal, and their similarity pre-images in the source, so that the warp is defined over the whole output
    and blends into the similarity away from the face.
    """
    centre = (size - 1) / 2
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    radius = 1.5 * size / np.sqrt(2)
    ring = np.column_stack([centre + radius * np.cos(angles), centre + radius * np.sin(angles)])
    output_points = np.vstack([output_landmarks, ring])
    source_points = np.vstack([source_landmarks, apply_matrix(np.linalg.inv(similarity), ring)])
    return FaceTransform("piecewise-affine", np.asarray(similarity, np.float64), int(size),
                         output_points=output_points, source_points=source_points)
