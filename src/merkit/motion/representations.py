"""Motion representations that models request by name.

All functions take aligned face crops (the face stage's output) as numpy arrays: a frame is (H, W) grey or
(H, W, 3) RGB, uint8 or float in [0, 1]; a clip is a sequence of such frames (or a (T, H, W[, 3]) array) in temporal
order. Positions (``onset``, ``apex``, ``offset``) are 0-based indices into the clip, not the datasets' frame numbers.

* :func:`onset_apex_flow`: u, v and optical strain from onset to apex (STSTNet, HTNet, the MEGC2019 composite).
* :func:`apex_minus_onset`: the apex-onset image difference (MMNet).
* :func:`long_term_flow`: flow from the onset to each of F frames around the apex (SLSTT).
* :func:`dynamic_image`: approximate rank pooling of a clip (Bilen et al., CVPR 2016; compared in FRL-DGT).
* :func:`resample_clip`: a clip resampled in time to T frames (FRL-DGT-S).
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from merkit.motion.flow import FARNEBACK_SLSTT, compute_flow, flow_magnitude, optical_strain

REPRESENTATIONS: tuple[str, ...] = (
    "onset_apex_flow", "apex_minus_onset", "long_term_flow", "dynamic_image", "resample_clip",
)


def minmax(channel: np.ndarray) -> np.ndarray:
    """Min-max stretch one channel to [0, 1] (a constant channel maps to 0), as the composite's images are."""
    lo, hi = float(channel.min()), float(channel.max())
    if hi - lo < 1e-12:
        return np.zeros_like(channel, dtype=np.float32)
    return ((channel - lo) / (hi - lo)).astype(np.float32)


def _float01(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype == np.uint8:
        return frame.astype(np.float32) / 255.0
    return frame.astype(np.float32)


def _resize(channel: np.ndarray, size: int | None) -> np.ndarray:
    if size is None:
        return channel
    return cv2.resize(channel, (size, size), interpolation=cv2.INTER_AREA)


def _check_normalise(normalise: str) -> None:
    if normalise not in ("minmax", "none"):
        raise ValueError(f"normalise must be 'minmax' or 'none', got {normalise!r}")


def onset_apex_flow(onset: np.ndarray, apex: np.ndarray, size: int | None = 28, normalise: str = "minmax",
                    method: str = "tvl1", **flow_params) -> np.ndarray:
    """u, v and optical strain from the onset to the apex frame, as a (3, S, S) float32 image.

    Flow is computed at the frames' resolution, strain from that flow, then each map is resized to ``size``
    (area interpolation; ``None`` keeps the size) and, with ``normalise="minmax"``, stretched to [0, 1] per image
    and per channel exactly as the MEGC2019 composite's released images are (STSTNet, FG 2019). With
    ``normalise="none"`` u and v stay in pixels of the input resolution and strain is unitless.

    Args:
        onset, apex: (H, W) grey or (H, W, 3) RGB aligned face crops, uint8 or float in [0, 1].
        size: output side in pixels (28 for STSTNet/HTNet), or ``None``.
        normalise: ``minmax`` (per image, per channel, to [0, 1]) or ``none`` (raw values).
        method: flow backend (:func:`merkit.motion.flow.compute_flow`); the composite used ``tvl1``.
        flow_params: passed to the backend.

    Returns:
        float32 (3, S, S): channels u, v, strain.

    Raises:
        ValueError: unknown ``normalise`` or ``method``, or frames of different sizes.
    """
    _check_normalise(normalise)
    flow = compute_flow(onset, apex, method, **flow_params)
    maps = [_resize(m, size) for m in (flow[..., 0], flow[..., 1], optical_strain(flow))]
    if normalise == "minmax":
        maps = [minmax(m) for m in maps]
    return np.stack(maps).astype(np.float32)


def apex_minus_onset(onset: np.ndarray, apex: np.ndarray, size: int | None = None) -> np.ndarray:
    """The apex-onset image difference that MMNet's main branch takes (Li et al., IJCAI 2022).

    Frames are scaled to [0, 1] (uint8 / 255) and resized to ``size`` (area interpolation) before subtracting.
    MMNet subtracts ImageNet-normalised frames, ``(apex - m) / s - (onset - m) / s``, which equals this difference
    divided by the per-channel ``s``: apply that scaling in the model's input transform if you need it.

    Args:
        onset, apex: (H, W) grey or (H, W, 3) RGB aligned face crops, uint8 or float in [0, 1].
        size: output side in pixels, or ``None`` to keep the frames' size.

    Returns:
        float32 (C, S, S) in [-1, 1], C = 1 (grey) or 3 (RGB).

    Raises:
        ValueError: the frames differ in shape.
    """
    a, b = _float01(onset), _float01(apex)
    if a.shape != b.shape:
        raise ValueError(f"onset and apex differ in shape: {a.shape} and {b.shape}")
    diff = _resize(b, size) - _resize(a, size)
    return (diff[None] if diff.ndim == 2 else diff.transpose(2, 0, 1)).astype(np.float32)


def _as_clip(clip: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    arr = np.stack([np.asarray(f) for f in clip]) if not isinstance(clip, np.ndarray) else clip
    if arr.ndim not in (3, 4) or len(arr) == 0:
        raise ValueError(f"a clip is (T, H, W) or (T, H, W, 3) with T >= 1, got shape {arr.shape}")
    return arr


def resample_clip(clip: Sequence[np.ndarray] | np.ndarray, length: int, kind: str = "linear") -> np.ndarray:
    """Resample a clip in time to ``length`` frames at evenly spaced times from its first to its last frame.

    FRL-DGT-S (Zhai et al., CVPR 2023) brings every clip to a fixed length with the temporal interpolation model
    (TIM; Zhou et al., CVPR 2011, as used by Pfister et al., ICCV 2011). TIM embeds the frames on a curve learned
    from the clip (a graph embedding of the path graph) and samples new frames along that curve. This function
    instead blends the two nearest frames linearly in time (``kind="linear"``) or repeats the nearest frame
    (``kind="nearest"``). Both keep the first and the last frame and are exact at the original frame times; for
    sub-pixel micro-movements linear blending is close to TIM, but it averages (ghosts) larger motions where TIM
    follows the clip's curve.

    Args:
        clip: T frames, (T, H, W) or (T, H, W, 3), uint8 or float.
        length: number of output frames (>= 1). ``length == T`` returns the clip unchanged (as float32).
        kind: ``linear`` or ``nearest``.

    Returns:
        float32 (length, H, W[, 3]) in the input's value range, in temporal order.

    Raises:
        ValueError: ``length < 1``, an unknown ``kind`` or a malformed clip.
    """
    arr = _as_clip(clip).astype(np.float32)
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    if kind not in ("linear", "nearest"):
        raise ValueError(f"kind must be 'linear' or 'nearest', got {kind!r}")
    return _sample_at(arr, np.linspace(0.0, len(arr) - 1.0, length), kind)


def _sample_at(arr: np.ndarray, times: np.ndarray, kind: str = "linear") -> np.ndarray:
    """Frames of ``arr`` (float32) at fractional positions ``times``."""
    if kind == "nearest":
        return arr[np.rint(times).astype(int)]
    lo = np.floor(times).astype(int)
    hi = np.minimum(lo + 1, len(arr) - 1)
    w = (times - lo).astype(np.float32).reshape((-1,) + (1,) * (arr.ndim - 1))
    return (1.0 - w) * arr[lo] + w * arr[hi]


def long_term_window(onset: int, apex: int, offset: int, frames: int = 11) -> np.ndarray:
    """The clip times, in frames, at which :func:`long_term_flow` samples: SLSTT's frame selection.

    SLSTT (Zhang et al., IEEE TAC 2022; its ``preprocess/data_init.py``) starts at ``max(apex - F // 2,
    onset + 1)`` (the onset itself would give zero flow), ends at ``min(start + F - 1, offset)``, and, when the
    window is cut short by the offset, fills it up to F frames by frame interpolation (RIFE in SLSTT). Here the
    F times are spaced evenly over ``[start, end]``: integers when the window fits, fractional (frames blended
    linearly, see :func:`resample_clip`) when it is short. A clip whose onset equals its offset samples the onset.

    Returns:
        float64 (F,) non-decreasing times, strictly increasing when ``end > start``.

    Raises:
        ValueError: ``frames < 1`` or positions out of order.
    """
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if not onset <= apex <= offset:
        raise ValueError(f"need onset <= apex <= offset, got {onset}, {apex}, {offset}")
    start = min(max(apex - frames // 2, onset + 1), offset)
    end = min(start + frames - 1, offset)
    return np.linspace(float(start), float(end), frames)


def long_term_flow(clip: Sequence[np.ndarray] | np.ndarray, apex: int, onset: int = 0, offset: int | None = None,
                   frames: int = 11, encoding: str = "hsv", size: int | None = None, method: str = "farneback",
                   **flow_params) -> np.ndarray:
    """Long-term optical flow: flow from the onset to each of F frames around the apex (SLSTT).

    The F frames are chosen by :func:`long_term_window` (centred on the apex, clipped to the onset and offset,
    resampled in time so that F is always reached) and returned in temporal order. Flow is Farneback with SLSTT's
    parameters by default.

    Encodings:

    * ``hsv`` (SLSTT): hue = flow angle, saturation = 1, value = magnitude min-max stretched per frame, converted
      to RGB in [0, 1]. Like SLSTT's images, the per-frame stretch discards the absolute magnitude.
    * ``raw``: u, v and magnitude in pixels of the input resolution (before any resize).

    Args:
        clip: the aligned clip, (T, H, W[, 3]), uint8 or float in [0, 1].
        apex, onset, offset: positions in the clip (0-based); ``offset`` defaults to the last frame.
        frames: F, the number of flow frames (SLSTT: 11).
        encoding: ``hsv`` or ``raw``.
        size: output side in pixels (area interpolation), or ``None`` to keep the frames' size.
        method: flow backend (:func:`merkit.motion.flow.compute_flow`).
        flow_params: passed to the backend; Farneback defaults to :data:`FARNEBACK_SLSTT`.

    Returns:
        float32 (F, 3, S, S): per frame (R, G, B) for ``hsv``, (u, v, magnitude) for ``raw``.

    Raises:
        ValueError: positions outside the clip or out of order, an unknown encoding or method.
    """
    if encoding not in ("hsv", "raw"):
        raise ValueError(f"encoding must be 'hsv' or 'raw', got {encoding!r}")
    arr = _as_clip(clip)
    offset = len(arr) - 1 if offset is None else offset
    if not 0 <= onset <= apex <= offset < len(arr):
        raise ValueError(f"need 0 <= onset <= apex <= offset < {len(arr)}, got {onset}, {apex}, {offset}")
    if method == "farneback":
        flow_params = {**FARNEBACK_SLSTT, **flow_params}
    times = long_term_window(onset, apex, offset, frames)
    targets = _sample_at(_float01_clip(arr), times)
    first = _float01(arr[onset])
    out = []
    for target in targets:
        flow = compute_flow(first, target, method, **flow_params)
        maps = _encode_hsv(flow) if encoding == "hsv" else [flow[..., 0], flow[..., 1], flow_magnitude(flow)]
        out.append(np.stack([_resize(m, size) for m in maps]))
    return np.stack(out).astype(np.float32)


def _float01_clip(arr: np.ndarray) -> np.ndarray:
    return arr.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float32)


def _encode_hsv(flow: np.ndarray) -> list[np.ndarray]:
    """SLSTT's HSV flow image as three float [0, 1] RGB maps."""
    mag, ang = cv2.cartToPolar(flow[..., 0], flow[..., 1])
    hsv = np.empty(flow.shape[:2] + (3,), np.uint8)
    hsv[..., 0] = np.round(ang * 90.0 / np.pi).astype(np.uint8) % 180  # OpenCV's 8-bit hue runs 0..179
    hsv[..., 1] = 255
    hsv[..., 2] = cv2.normalize(mag, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.float32) / 255.0
    return [rgb[..., 0], rgb[..., 1], rgb[..., 2]]


def rank_pooling_weights(length: int) -> np.ndarray:
    """Approximate rank pooling coefficients (Bilen et al., "Dynamic image networks for action recognition",
    CVPR 2016): ``alpha_t = 2 (T - t + 1) - (T + 1) (H_T - H_{t-1})`` for t = 1..T, with the harmonic
    numbers ``H_t = sum_{i<=t} 1/i`` and ``H_0 = 0``; equivalently ``alpha_t = sum_{j=t..T} (2 j - T - 1) / j``,
    the form of the authors' code. They sum to zero, so a static clip pools to zero; the first is the most negative.

    Returns:
        float64 (T,) weights.
    """
    t = np.arange(1, length + 1, dtype=np.float64)
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / t)])
    return 2.0 * (length - t + 1) - (length + 1) * (harmonic[length] - harmonic[t.astype(int) - 1])


def dynamic_image(clip: Sequence[np.ndarray] | np.ndarray, normalise: str = "minmax",
                  size: int | None = None) -> np.ndarray:
    """Dynamic image of a clip by approximate rank pooling (Bilen et al., CVPR 2016; a baseline in FRL-DGT).

    ``d = sum_t alpha_t I_t`` with :func:`rank_pooling_weights`: a single image whose pixels grow where the clip
    brightens over time. A static clip gives zero. Frames are taken in [0, 1] (uint8 / 255).

    Args:
        clip: T >= 2 frames, (T, H, W) or (T, H, W, 3).
        normalise: ``minmax`` (per image, all channels together, to [0, 1], as Bilen et al. rescale for display and
            CNN input) or ``none`` (raw weighted sum).
        size: output side in pixels (area interpolation), or ``None``.

    Returns:
        float32 (C, S, S), C = 1 (grey) or 3 (RGB).

    Raises:
        ValueError: fewer than 2 frames, unknown ``normalise``.
    """
    _check_normalise(normalise)
    arr = _float01_clip(_as_clip(clip))
    if len(arr) < 2:
        raise ValueError(f"a dynamic image needs at least 2 frames, got {len(arr)}")
    weights = rank_pooling_weights(len(arr)).astype(np.float32)
    image = _resize(np.tensordot(weights, arr, axes=1).astype(np.float32), size)
    if normalise == "minmax":
        image = minmax(image)
    return (image[None] if image.ndim == 2 else image.transpose(2, 0, 1)).astype(np.float32)
