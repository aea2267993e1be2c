"""Motion representations that models request by name.

All functions take aligned face crops (the face stage's output) as numpy arrays: a frame is (H, W) grey or
(H, W, 3) RGB, uint8 or float in [0, 1]; a clip is a sequence of such frames (or a (T, H, W[, 3]) array) in temporal
order. Positions (``onset``, ``apex``, ``offset``) are 0-based indices into the clip, not the datasets' frame numbers.

* :func:`onset_apex_flow`: u, v and optical strain from onset to apex (STSTNet, HTNet, the MEGC2019 composite).
* :func:`apex_minus_onset`: the apex-onset image difference (MMNet).
* :func:`long_term_flow`: flow from the onset to each of F frames around the apex (SLSTT).
* :func:`dynamic_image`: approximate rank pooling of a clip (Bilen et al., CVPR 2016; compared in FRL-DGT).
* :func:`resample_clip`: a clip resampled in time to T frames (FRL-DGT-S).
* :func:`onset_apex_frames`: the onset and apex crops with temporal-jitter windows around each, and the part of
  each window a jitter mode draws from (:func:`jitter_bounds`; MMNet, CVA+FPF, FRL-DGT).
* :func:`ss_pairs`: random (earlier, later) frame pairs of a clip for FRL-DGT's self-supervised DGM loss.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import cv2
import numpy as np

from merkit.motion.flow import FARNEBACK_SLSTT, compute_flow, flow_magnitude, optical_strain

REPRESENTATIONS: tuple[str, ...] = (
    "onset_apex_flow", "apex_minus_onset", "long_term_flow", "dynamic_image", "resample_clip",
    "onset_apex_frames", "au_boxes", "face_points", "ss_pairs",
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
    if np.shape(onset) != np.shape(apex):
        raise ValueError(f"onset and apex differ in shape: {np.shape(onset)} and {np.shape(apex)}")
    return face_crop(apex, size) - face_crop(onset, size)


def face_crop(frame: np.ndarray, size: int | None = None) -> np.ndarray:
    """One aligned face crop as a model input: scaled to [0, 1] (uint8 / 255), area-resized to ``size``,
    channels first.

    :func:`apex_minus_onset` is exactly ``face_crop(apex, size) - face_crop(onset, size)``.

    Args:
        frame: (H, W) grey or (H, W, 3) RGB, uint8 or float in [0, 1].
        size: output side in pixels, or ``None`` to keep the frame's size.

    Returns:
        float32 (C, S, S), C = 1 (grey) or 3 (RGB).
    """
    image = _resize(_float01(frame), size)
    return (image[None] if image.ndim == 2 else image.transpose(2, 0, 1)).astype(np.float32)


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


# --------------------------------------------------------------------------------------------------------------
# Frames and self-supervised pairs for the raw-clip models (MMNet, CVA+FPF, FRL-DGT)


def jitter_windows(onset: int, apex: int, length: int, jitter: int) -> tuple[np.ndarray, np.ndarray]:
    """Clip positions a training sample may draw its onset and apex from: 2J + 1 each, centred on the labels.

    MMNet (Li et al., IJCAI 2022) trains on an onset and an apex picked at random among "the four frames around"
    the labelled ones (the MMNet reproduction report, sec. 5.2, implementation details), read here as J = 2: the
    labelled frame and two on each side. FRL-DGT picks "a frame before or after the original apex frame" (Zhai et
    al., CVPR 2023, sec. 3.3), which is J = 1 on the apex only.

    Rule (position ``k`` of a window is the labelled frame moved by ``k - J`` frames, then clamped):

    * both windows are clamped to the clip, ``[0, length - 1]``;
    * with ``gap = apex - onset``, the onset may move later and the apex earlier by at most
      ``max(0, (gap - 1) // 2)`` frames, so the onset window ends before the apex window starts. A drawn onset
      therefore precedes a drawn apex whenever the labelled onset precedes the labelled apex, and the two never
      coincide (which would give a zero difference image).

    A clamped position repeats the nearest allowed frame, so frames at a clamp are drawn more often than the others.
    Window index ``J`` is always the labelled frame.

    Args:
        onset, apex: labelled positions in the clip (0-based), ``0 <= onset <= apex < length``.
        length: number of frames in the clip.
        jitter: J >= 0, frames.

    Returns:
        ``(onset_positions, apex_positions)``, int64 (2J + 1,) each, non-decreasing.

    Raises:
        ValueError: positions out of order or outside the clip, or ``jitter < 0``.
    """
    if jitter < 0:
        raise ValueError(f"jitter must be >= 0 frames, got {jitter}")
    if not 0 <= onset <= apex < length:
        raise ValueError(f"need 0 <= onset <= apex < length, got {onset}, {apex}, {length}")
    reach = max(0, (apex - onset - 1) // 2)
    steps = np.arange(-jitter, jitter + 1, dtype=np.int64)
    return np.clip(onset + steps, 0, onset + reach), np.clip(apex + steps, apex - reach, length - 1)


#: How temporal jitter draws a training sample's onset and apex (:func:`jitter_bounds`): ``symmetric`` (the MMNet
#: report's "four frames around", +-J), ``inward`` (the authors' ``CASME2_5.py``) and ``mmnet-3class`` (the
#: authors' ``CASME2_3.py``).
JITTER_MODES: tuple[str, ...] = ("symmetric", "inward", "mmnet-3class")


def jitter_reaches(onset: int, apex: int, offset: int, mode: str) -> tuple[int, int, int]:
    """How far, in frames, the code-derived jitter modes may move the onset later, the apex earlier and the apex
    later: ``(onset_later, apex_earlier, apex_later)``, each ``>= 0``. With span = apex - onset:

    * ``inward`` (muse1998/MMNet ``CASME2_5.py`` l. 148 and 157; FaceSleuth ``CASME2_5.py`` l. 161, 171-172):
      ``r = int(0.15 * span / 4)`` for the onset and for the apex earlier, 0 for the apex later;
    * ``mmnet-3class`` (muse1998/MMNet ``CASME2_3.py`` l. 137 and 146): onset ``int(0.2 * span / 4)``, apex
      earlier ``int(0.15 * span / 4)``, apex later ``int(0.15 * (offset - apex) / 4)``.

    The expressions are the scripts' own, floating point included, so the reaches match theirs frame for frame.
    On CASME II (median span 30 frames) the ``inward`` reach is 0 for about a third of the clips and 1 for about
    half.

    Raises:
        ValueError: ``mode`` is ``symmetric`` (its reach is J, not the span's) or unknown.
    """
    span = apex - onset
    if mode == "inward":
        reach = max(0, int(0.15 * span / 4))
        return reach, reach, 0
    if mode == "mmnet-3class":
        return (max(0, int(0.2 * span / 4)), max(0, int(0.15 * span / 4)),
                max(0, int(0.15 * (offset - apex) / 4)))
    raise ValueError(f"jitter_reaches: mode must be inward or mmnet-3class, got {mode!r}")


def jitter_bounds(onset: int, apex: int, offset: int, jitter: int, mode: str = "symmetric") -> np.ndarray:
    """The window indices a training sample may draw its onset and apex from, under jitter ``mode``.

    The windows of :func:`jitter_windows` hold the labelled frame moved by ``k - J`` frames at index ``k``. This
    returns, per window, the inclusive index range ``[lo, hi]`` that temporal jitter draws from uniformly
    (:func:`merkit.training.augment.temporal_jitter`):

    * ``symmetric``: the whole window, ``[0, 2J]`` for both: the labelled frame moved by up to J frames either way
      (the MMNet reproduction report, sec. 5.2: one of "the four frames around" the labelled onset and apex;
      J = 2). Clamped positions repeat (see :func:`jitter_windows`).
    * ``inward``, ``mmnet-3class``: ``[J, J + onset_later]`` for the onset and ``[J - apex_earlier,
      J + apex_later]`` for the apex, with the reaches of :func:`jitter_reaches`. A reach is capped at J, since
      the window holds no farther frame; set J (``data.motion.jitter``) to at least the largest reach of the
      release (CASME II: 3 for ``inward``, 4 for ``mmnet-3class``). Within these ranges no window position is
      clamped, so the draw is uniform over distinct frames, as the scripts' ``random.randint``.

    A reach of 0 gives ``[J, J]``: the labelled frame, always.

    Args:
        onset, apex, offset: labelled positions in the clip (0-based), ``onset <= apex``.
        jitter: J >= 0, the windows' half-width in frames.
        mode: one of :data:`JITTER_MODES`.

    Returns:
        int64 (4,): ``onset_lo, onset_hi, apex_lo, apex_hi``, window indices in ``[0, 2J]``.

    Raises:
        ValueError: an unknown mode, ``jitter < 0`` or ``apex < onset``.
    """
    if mode not in JITTER_MODES:
        raise ValueError(f"jitter mode must be one of {JITTER_MODES}, got {mode!r}")
    if jitter < 0:
        raise ValueError(f"jitter must be >= 0 frames, got {jitter}")
    if apex < onset:
        raise ValueError(f"need onset <= apex, got {onset}, {apex}")
    if mode == "symmetric":
        return np.array([0, 2 * jitter, 0, 2 * jitter], dtype=np.int64)
    later, earlier, apex_later = (min(r, jitter) for r in jitter_reaches(onset, apex, offset, mode))
    return np.array([jitter, jitter + later, jitter - earlier, jitter + apex_later], dtype=np.int64)


def onset_apex_frames(clip: Sequence[np.ndarray] | np.ndarray, onset: int, apex: int, jitter: int = 2,
                      size: int | None = None, mode: str = "symmetric",
                      offset: int | None = None) -> dict[str, np.ndarray]:
    """The onset and apex crops of a clip, the windows of crops that temporal jitter draws from, and the part of
    each window it may draw from.

    The crops are :func:`face_crop` of the frames, so ``apex - onset`` equals :func:`apex_minus_onset` of the same
    frames bit for bit, and the training hook :func:`merkit.training.augment.temporal_jitter` recomputes the
    difference from drawn window frames the same way. The windows follow :func:`jitter_windows` in every mode;
    the mode only sets ``jitter_bounds`` (:func:`jitter_bounds`).

    Memory per sample (float32): 2 (2J + 2) C S^2 x 4 bytes: at J = 2, grey, S = 28 about 37 KB; grey S = 56
    about 150 KB; RGB S = 224 about 7 MB (1.8 GB for CASME II's 255 clips).

    Args:
        clip: the aligned clip, (T, H, W[, 3]), uint8 or float in [0, 1].
        onset, apex: labelled positions in the clip (0-based).
        jitter: J, frames on each side.
        size: output side in pixels, or ``None``.
        mode: the jitter mode, one of :data:`JITTER_MODES`.
        offset: labelled offset position (``mmnet-3class`` reads it); ``None``: the clip's last frame.

    Returns:
        ``onset``, ``apex``: float32 (C, S, S) in [0, 1]; ``onset_window``, ``apex_window``: float32
        (2J + 1, C, S, S), index J being ``onset`` / ``apex``; ``jitter_bounds``: int64 (4,).

    Raises:
        ValueError: positions out of order or outside the clip, a negative jitter or an unknown mode.
    """
    arr = _as_clip(clip)
    onset_at, apex_at = jitter_windows(onset, apex, len(arr), jitter)
    bounds = jitter_bounds(onset, apex, len(arr) - 1 if offset is None else offset, jitter, mode)
    crops = {int(i): face_crop(arr[i], size) for i in np.unique(np.concatenate([onset_at, apex_at]))}
    onset_window = np.stack([crops[int(i)] for i in onset_at])
    apex_window = np.stack([crops[int(i)] for i in apex_at])
    return {"onset": onset_window[jitter].copy(), "apex": apex_window[jitter].copy(),
            "onset_window": onset_window, "apex_window": apex_window, "jitter_bounds": bounds}


def _key_seed(key: str) -> int:
    """A 64-bit seed from a string: Python's ``hash`` is salted per process, SHA-256 is not."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "little")


def ss_pair_positions(length: int, pairs: int, key: str) -> np.ndarray:
    """P random (earlier, later) position pairs of a clip of ``length`` frames, fixed by ``key``.

    Each pair is two distinct positions drawn uniformly (every unordered pair equally likely, with replacement
    across pairs), earlier first. A one-frame clip gives (0, 0). The generator is seeded by a SHA-256 hash of
    ``key`` (the sample id), so the pairs are the same in every process and every run.

    Returns:
        int64 (P, 2).

    Raises:
        ValueError: ``length < 1`` or ``pairs < 1``.
    """
    if length < 1 or pairs < 1:
        raise ValueError(f"need length >= 1 and pairs >= 1, got {length}, {pairs}")
    if length == 1:
        return np.zeros((pairs, 2), np.int64)
    rng = np.random.default_rng(_key_seed(key))
    drawn = np.stack([rng.choice(length, size=2, replace=False) for _ in range(pairs)])
    return np.sort(drawn, axis=1).astype(np.int64)


def ss_pairs(clip: Sequence[np.ndarray] | np.ndarray, pairs: int, key: str,
             size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Extra frame pairs of a clip for FRL-DGT's self-supervised DGM training (Zhai et al., CVPR 2023, sec. 3.1).

    The paper samples "additional random pairs" of frames from the training sequences and trains the DGM on them
    with L_DGM only. Here the P pairs of :func:`ss_pair_positions` are drawn once, at preprocessing, from the whole
    aligned clip: they are the same in every epoch (not redrawn), which makes a run reproducible and cacheable at
    the price of less variety. Only training samples' pairs reach a loss (the model ignores them in eval mode).

    Memory per sample (float32): 2 P C S^2 x 4 bytes: at P = 4, grey, S = 56 about 100 KB; RGB S = 224 about 4.8 MB.

    Args:
        clip: the aligned clip, (T, H, W[, 3]), uint8 or float in [0, 1].
        pairs: P.
        key: seeds the draw, the sample id.
        size: output side in pixels, or ``None``.

    Returns:
        ``(earlier, later)``: float32 (P, C, S, S) each, in [0, 1] (:func:`face_crop`).
    """
    arr = _as_clip(clip)
    at = ss_pair_positions(len(arr), pairs, key)
    crops = {int(i): face_crop(arr[i], size) for i in np.unique(at)}
    return (np.stack([crops[int(i)] for i in at[:, 0]]), np.stack([crops[int(i)] for i in at[:, 1]]))
