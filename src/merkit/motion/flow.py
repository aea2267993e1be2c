"""Optical flow between two grey frames, behind one interface, and optical strain.

Flow arrays are float32 (H, W, 2) in pixels: channel 0 is u (positive to the right), channel 1 is v (positive
downwards), such that ``prev(y, x) ~ next(y + v, x + u)``. That is OpenCV's convention for all three backends.

Backends (:func:`compute_flow` dispatches on ``method``):

* ``"tvl1"``: TV-L1 (Zach, Pock and Bischof, DAGM 2007), OpenCV's ``DualTVL1OpticalFlow``. The field's standard:
  STSTNet, HTNet and the MEGC2019 composite's released images use it. Slow (about 0.5 s for a 224x224 pair).
* ``"farneback"``: polynomial expansion (Farneback, SCIA 2003), with SLSTT's parameters as defaults.
* ``"dis"``: dense inverse search (Kroeger et al., ECCV 2016). The fastest; coarse on tiny images.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

FLOW_METHODS: tuple[str, ...] = ("tvl1", "farneback", "dis")

#: ``cv2.calcOpticalFlowFarneback`` arguments used by SLSTT's preprocessing (``0.5, 3, 15, 3, 5, 1.2, 0``).
FARNEBACK_SLSTT: dict[str, float | int] = {
    "pyr_scale": 0.5, "levels": 3, "winsize": 15, "iterations": 3, "poly_n": 5, "poly_sigma": 1.2, "flags": 0,
}

#: ``DISOpticalFlow`` setters, by the keyword :func:`dis_flow` accepts.
_DIS_SETTERS: dict[str, str] = {
    "finest_scale": "setFinestScale",
    "patch_size": "setPatchSize",
    "patch_stride": "setPatchStride",
    "gradient_descent_iterations": "setGradientDescentIterations",
    "variational_refinement_iterations": "setVariationalRefinementIterations",
    "variational_refinement_alpha": "setVariationalRefinementAlpha",
    "variational_refinement_delta": "setVariationalRefinementDelta",
    "variational_refinement_gamma": "setVariationalRefinementGamma",
    "use_mean_normalization": "setUseMeanNormalization",
    "use_spatial_propagation": "setUseSpatialPropagation",
}
_DIS_PRESETS: dict[str, int] = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def _grey_u8(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 3:
        frame = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    if frame.dtype != np.uint8:
        # Round rather than truncate: uint8 frames that went through / 255 must come back unchanged.
        frame = np.clip(np.rint(frame * (255.0 if frame.max() <= 1.0 else 1.0)), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(frame)


def _pair(prev: np.ndarray, next: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = _grey_u8(np.asarray(prev)), _grey_u8(np.asarray(next))
    if a.shape != b.shape:
        raise ValueError(f"flow needs two frames of the same size, got {a.shape} and {b.shape}")
    return a, b


def tvl1_flow(prev: np.ndarray, next: np.ndarray, **params) -> np.ndarray:
    """TV-L1 optical flow (Zach, Pock and Bischof 2007; OpenCV's ``DualTVL1OpticalFlow``).

    Args:
        prev, next: (H, W) grey or (H, W, 3) RGB frames, uint8 or float in [0, 1].
        params: ``cv2.optflow.DualTVL1OpticalFlow_create`` keyword arguments, with OpenCV's names and defaults:
            ``tau=0.25`` (time step), ``lambda_=0.15`` (data-term weight: lower gives smoother flow),
            ``theta=0.3`` (coupling), ``nscales=5`` (pyramid levels), ``warps=5`` (warpings per level),
            ``epsilon=0.01`` (stopping threshold), ``innnerIterations=30`` (sic), ``outerIterations=10``,
            ``scaleStep=0.8``, ``gamma=0.0``, ``medianFiltering=5``, ``useInitialFlow=False``.

    Returns:
        float32 (H, W, 2) flow in pixels (u right, v down).

    Raises:
        ValueError: the frames differ in size. An unknown parameter raises OpenCV's error.
    """
    a, b = _pair(prev, next)
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create(**params)
    return tvl1.calc(a, b, None).astype(np.float32)


def farneback_flow(prev: np.ndarray, next: np.ndarray, pyr_scale: float = 0.5, levels: int = 3,
                   winsize: int = 15, iterations: int = 3, poly_n: int = 5, poly_sigma: float = 1.2,
                   flags: int = 0) -> np.ndarray:
    """Farneback optical flow (Farneback, "Two-frame motion estimation based on polynomial expansion", SCIA 2003).

    The defaults are SLSTT's (``cv2.calcOpticalFlowFarneback(..., 0.5, 3, 15, 3, 5, 1.2, 0)``, see
    :data:`FARNEBACK_SLSTT`).

    Args:
        prev, next: (H, W) grey or (H, W, 3) RGB frames, uint8 or float in [0, 1].
        pyr_scale: scale between pyramid levels (< 1).
        levels: pyramid levels, including the full-size image.
        winsize: averaging window (pixels); larger is smoother and more robust to noise.
        iterations: iterations per pyramid level.
        poly_n: neighbourhood (pixels) of the polynomial expansion, 5 or 7.
        poly_sigma: Gaussian sigma of the polynomial expansion (1.1 for poly_n=5, 1.5 for 7 per OpenCV).
        flags: OpenCV flags (``cv2.OPTFLOW_FARNEBACK_GAUSSIAN`` for a Gaussian window).

    Returns:
        float32 (H, W, 2) flow in pixels (u right, v down).

    Raises:
        ValueError: the frames differ in size.
    """
    a, b = _pair(prev, next)
    flow = cv2.calcOpticalFlowFarneback(a, b, None, pyr_scale, levels, winsize, iterations, poly_n, poly_sigma,
                                        flags)
    return flow.astype(np.float32)


def dis_flow(prev: np.ndarray, next: np.ndarray, preset: str = "medium", **params) -> np.ndarray:
    """Dense inverse search optical flow (Kroeger et al., "Fast optical flow using dense inverse search", ECCV 2016).

    Args:
        prev, next: (H, W) grey or (H, W, 3) RGB frames, uint8 or float in [0, 1].
        preset: OpenCV preset to start from: ``ultrafast``, ``fast`` or ``medium``.
        params: overrides of the preset, by these names (OpenCV setter in brackets): ``finest_scale``
            (FinestScale: 0 is full resolution), ``patch_size`` (pixels), ``patch_stride`` (pixels),
            ``gradient_descent_iterations``, ``variational_refinement_iterations`` (0 disables the refinement),
            ``variational_refinement_alpha`` (smoothness), ``variational_refinement_delta`` (colour constancy),
            ``variational_refinement_gamma`` (gradient constancy), ``use_mean_normalization``,
            ``use_spatial_propagation``.

    Returns:
        float32 (H, W, 2) flow in pixels (u right, v down).

    Raises:
        ValueError: unknown preset or parameter, or frames of different sizes.
    """
    if preset not in _DIS_PRESETS:
        raise ValueError(f"DIS preset must be one of {sorted(_DIS_PRESETS)}, got {preset!r}")
    unknown = sorted(set(params) - set(_DIS_SETTERS))
    if unknown:
        raise ValueError(f"unknown DIS parameters {unknown}; known: {sorted(_DIS_SETTERS)}")
    a, b = _pair(prev, next)
    dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[preset])
    for name, value in params.items():
        getattr(dis, _DIS_SETTERS[name])(value)
    return dis.calc(a, b, None).astype(np.float32)


_BACKENDS = {"tvl1": tvl1_flow, "farneback": farneback_flow, "dis": dis_flow}


def compute_flow(prev: np.ndarray, next: np.ndarray, method: str = "tvl1", **params) -> np.ndarray:
    """Dense optical flow from ``prev`` to ``next`` with the chosen backend.

    Args:
        prev, next: (H, W) grey or (H, W, 3) RGB frames of the same size, uint8 or float in [0, 1].
        method: ``tvl1`` (:func:`tvl1_flow`), ``farneback`` (:func:`farneback_flow`) or ``dis``
            (:func:`dis_flow`).
        params: the backend's parameters, as documented on its function.

    Returns:
        float32 (H, W, 2) flow in pixels: u (right) and v (down), ``prev(y, x) ~ next(y + v, x + u)``.

    Raises:
        ValueError: unknown method, frames of different sizes, or (DIS) an unknown parameter.
        TypeError: (Farneback) an unknown parameter.
    """
    try:
        backend = _BACKENDS[method]
    except KeyError:
        raise ValueError(f"flow method must be one of {FLOW_METHODS}, got {method!r}") from None
    return backend(prev, next, **params)


def optical_strain(flow: np.ndarray) -> np.ndarray:
    """Optical strain magnitude of a flow field.

    ``e = sqrt(u_x^2 + v_y^2 + 1/2 (u_y + v_x)^2)`` with central differences (one-sided at the borders), the
    magnitude of the infinitesimal strain tensor (Liong et al., "Subtle expression recognition using optical
    strain weighted features", ACCV workshops 2014; also STSTNet, FG 2019). Translations and rotations have zero
    strain; a linear shear ``u = a y`` has strain ``|a| / sqrt(2)`` everywhere.

    Args:
        flow: float (H, W, 2) u, v in pixels.

    Returns:
        float32 (H, W) strain magnitude (unitless: pixels per pixel).
    """
    u, v = flow[..., 0].astype(np.float64), flow[..., 1].astype(np.float64)
    u_y, u_x = np.gradient(u)
    v_y, v_x = np.gradient(v)
    return np.sqrt(u_x**2 + v_y**2 + 0.5 * (u_y + v_x) ** 2).astype(np.float32)


def flow_magnitude(flow: np.ndarray) -> np.ndarray:
    """float32 (H, W) flow magnitude ``sqrt(u^2 + v^2)`` in pixels."""
    return np.hypot(flow[..., 0], flow[..., 1]).astype(np.float32)


def endpoint_error(flow: np.ndarray, reference: np.ndarray) -> float:
    """Mean endpoint error (pixels): the mean over pixels of ``|flow - reference|`` as 2-D vectors.

    Raises:
        ValueError: the fields differ in shape.
    """
    if flow.shape != reference.shape:
        raise ValueError(f"flow fields differ in shape: {flow.shape} and {reference.shape}")
    return float(np.hypot(*(flow.astype(np.float64) - reference).transpose(2, 0, 1)).mean())


_FLO_TAG = b"PIEH"


def read_flo(path: str | Path) -> np.ndarray:
    """Read a Middlebury ``.flo`` file: the tag ``PIEH``, int32 width and height, then float32 u, v interleaved.

    Returns:
        float32 (H, W, 2) flow.

    Raises:
        ValueError: the file is not a ``.flo`` file or is truncated.
    """
    raw = Path(path).read_bytes()
    if raw[:4] != _FLO_TAG:
        raise ValueError(f"{path} is not a Middlebury .flo file (tag {raw[:4]!r})")
    width, height = (int(x) for x in np.frombuffer(raw, "<i4", count=2, offset=4))
    data = np.frombuffer(raw, "<f4", offset=12)
    if data.size != width * height * 2:
        raise ValueError(f"{path}: expected {width}x{height}x2 floats, found {data.size}")
    return data.reshape(height, width, 2).copy()


def write_flo(path: str | Path, flow: np.ndarray) -> None:
    """Write a float (H, W, 2) flow as a Middlebury ``.flo`` file (see :func:`read_flo`)."""
    height, width = flow.shape[:2]
    with open(path, "wb") as fh:
        fh.write(_FLO_TAG)
        fh.write(np.array([width, height], "<i4").tobytes())
        fh.write(np.ascontiguousarray(flow, "<f4").tobytes())
