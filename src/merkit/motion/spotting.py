"""Apex spotting: the frame of peak motion relative to the onset, within [onset, offset].

SMIC has no apex annotation, and a user's own videos have none either. Following the common practice of apex
spotting in micro-expression work (e.g. Liong et al., "Less is more: micro-expression recognition from video using
apex frame", Signal Processing: Image Communication 2018, who take the frame that differs most from the onset),
each frame t of [onset, offset] is scored by how far the face has moved from the onset frame, the score curve is
smoothed in time, and the apex is the frame with the highest score.

Measures (``measure=``):

* ``flow`` (default): mean optical flow magnitude (pixels) from the onset to frame t.
* ``strain``: mean optical strain of that flow.
* ``intensity``: mean absolute grey-level difference to the onset; no flow needed, but sensitive to sensor noise,
  illumination flicker and head drift.
* any callable ``f(onset_frame, frame) -> float`` on the (grey, float32 [0, 1]) frames.

Head drift. Even with one alignment transform per clip (the face stage's protocol), the head drifts by a pixel or
so over a clip, as much as a micro-expression moves, and that drift grows steadily towards the offset, where it
would win the argmax. With ``compensate="affine"`` (the default) the best-fitting affine flow field (least squares
over the mask) is subtracted before scoring, which removes rigid translation, rotation and scaling of the whole
face and keeps the local, non-rigid facial motion. A margin of ``border`` (10 % of the side) is left out of the fit
and the scores, since flow at the edges of a crop is unreliable. Blinks (AU45) remain a source of error: they are
local motion too. ``benchmarks/bench_flow.py --spotting`` measures the accuracy of each measure on clips of
:mod:`merkit.synthetic` (``docs/benchmarks.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING
from typing import Annotated, Callable, Literal, Sequence

import cv2
import numpy as np
import pydantic
from pydantic import Field

from merkit.boundary import FIELDS, Bool, Count, Fraction, Int, NonNegativeFloat, PositiveFloat, check_fields
from merkit.motion.flow import FLOW_METHODS, compute_flow, flow_magnitude, optical_strain

if TYPE_CHECKING:
    import pandas as pd

SPOTTING_MEASURES: tuple[str, ...] = ("flow", "strain", "intensity")

Measure = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class ApexSpot:
    """The result of :func:`spot_apex`.

    Attributes:
        apex: position of the spotted apex in the clip (0-based), within [onset, offset].
        onset, offset: the searched interval (positions in the clip).
        curve: float64 (offset - onset + 1,) score of each frame of the interval, before smoothing.
        smoothed: the curve after the moving average whose maximum gives the apex.
        measure: the measure's name.
    """

    apex: int
    onset: int
    offset: int
    curve: np.ndarray
    smoothed: np.ndarray
    measure: str


def _grey01(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim == 3:
        frame = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    return frame.astype(np.float32) / 255.0 if frame.dtype == np.uint8 else frame.astype(np.float32)


def _masked_mean(values: np.ndarray, mask: np.ndarray | None) -> float:
    return float(values[mask].mean() if mask is not None else values.mean())


@lru_cache(maxsize=16)
def _affine_basis(h: int, w: int, mask_bits: bytes | None) -> tuple[np.ndarray, np.ndarray | slice, np.ndarray]:
    """The design matrix (x, y, 1) of an (h, w) grid, the rows of the mask, and the pseudo-inverse of the masked
    design, which maps a flow's masked values to its least-squares affine coefficients. Cached: a clip's frames
    share one grid and one mask, so the fit costs a matrix product per frame."""
    ys, xs = np.mgrid[0:h, 0:w]
    design = np.stack([xs.ravel(), ys.ravel(), np.ones(h * w)], axis=1).astype(np.float64)
    rows = slice(None) if mask_bits is None else np.unpackbits(np.frombuffer(mask_bits, np.uint8))[: h * w] > 0
    return design, rows, np.linalg.pinv(design[rows])


def remove_affine(flow: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """``flow`` minus its least-squares affine part ``(u, v) = A (x, y) + b`` fitted over ``mask``.

    The residual keeps non-rigid (local) motion; a flow that is exactly affine (a rigid drift, rotation or
    zoom of the whole face) leaves zero. The fit is the pseudo-inverse of the masked design matrix, cached per
    grid and mask.

    Returns:
        float32 (H, W, 2).
    """
    h, w = flow.shape[:2]
    bits = None if mask is None else np.packbits(np.asarray(mask, dtype=bool).ravel()).tobytes()
    design, rows, inverse = _affine_basis(h, w, bits)
    values = flow.reshape(-1, 2).astype(np.float64)
    return (values - design @ (inverse @ values[rows])).reshape(h, w, 2).astype(np.float32)


def motion_curve(clip: Sequence[np.ndarray] | np.ndarray, onset: int = 0, offset: int | None = None,
                 measure: str | Measure = "flow", method: str = "farneback", mask: np.ndarray | None = None,
                 compensate: str = "affine", border: float = 0.1, **flow_params) -> np.ndarray:
    """Score of each frame of [onset, offset] by its motion relative to the onset frame.

    Args:
        clip: aligned clip, (T, H, W[, 3]) or a sequence of such frames, uint8 or float in [0, 1].
        onset, offset: positions in the clip (0-based); ``offset`` defaults to the last frame.
        measure: ``flow``, ``strain``, ``intensity`` or a callable (see the module docstring).
        method: flow backend for ``flow`` and ``strain`` (:func:`merkit.motion.flow.compute_flow`).
        mask: optional boolean (H, W) region over which scores are averaged (e.g. the face without the eyes).
        compensate: ``affine`` (subtract the global affine motion from the flow, see the module docstring) or
            ``none``; used by ``flow`` and ``strain``.
        border: fraction of the frame's side, on each edge, left out of the scores (and of the affine fit): flow
            at the edges of a crop is unreliable (pixels move in and out of the frame).
        flow_params: passed to the flow backend.

    Returns:
        float64 (offset - onset + 1,) scores; the onset's own score is that of the onset against itself.

    Raises:
        ValueError: positions outside the clip or out of order, an unknown measure or ``compensate``, or a mask of
            the wrong shape.
    """
    if compensate not in ("affine", "none"):
        raise ValueError(f"compensate must be 'affine' or 'none', got {compensate!r}")
    n = len(clip)
    offset = n - 1 if offset is None else offset
    if not 0 <= onset <= offset < n:
        raise ValueError(f"need 0 <= onset <= offset < {n}, got onset={onset}, offset={offset}")
    if not callable(measure) and measure not in SPOTTING_MEASURES:
        raise ValueError(f"measure must be one of {SPOTTING_MEASURES} or a callable, got {measure!r}")
    first = _grey01(clip[onset])
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != first.shape:
            raise ValueError(f"mask is {mask.shape}, frames are {first.shape}")
    if not 0.0 <= border < 0.5:
        raise ValueError(f"border must be in [0, 0.5), got {border}")
    if border > 0:
        inner = np.zeros(first.shape, dtype=bool)
        by, bx = int(round(border * first.shape[0])), int(round(border * first.shape[1]))
        inner[by:first.shape[0] - by, bx:first.shape[1] - bx] = True
        mask = inner if mask is None else mask & inner

    def score(frame: np.ndarray) -> float:
        if callable(measure):
            return float(measure(first, frame))
        if measure == "intensity":
            return _masked_mean(np.abs(frame - first), mask)
        flow = compute_flow(first, frame, method, **flow_params)
        if compensate == "affine":
            flow = remove_affine(flow, mask)
        return _masked_mean(flow_magnitude(flow) if measure == "flow" else optical_strain(flow), mask)

    return np.array([score(_grey01(clip[t])) for t in range(onset, offset + 1)], dtype=np.float64)


def smooth_curve(curve: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over ``window`` frames (odd; 1 leaves the curve as is), edges padded by reflection."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"smoothing window must be a positive odd number of frames, got {window}")
    if window == 1 or len(curve) < 2:
        return np.asarray(curve, dtype=np.float64)
    half = min(window // 2, len(curve) - 1)
    padded = np.pad(np.asarray(curve, dtype=np.float64), half, mode="reflect")
    return np.convolve(padded, np.ones(2 * half + 1) / (2 * half + 1), mode="valid")


def spot_apex(clip: Sequence[np.ndarray] | np.ndarray, onset: int = 0, offset: int | None = None,
              measure: str | Measure = "flow", smooth: int = 3, method: str = "farneback",
              mask: np.ndarray | None = None, compensate: str = "affine", border: float = 0.1,
              **flow_params) -> ApexSpot:
    """Spot the apex: the frame of [onset, offset] whose motion relative to the onset is largest.

    Args:
        clip: aligned clip, (T, H, W[, 3]) or a sequence of frames, uint8 or float in [0, 1].
        onset, offset: positions in the clip (0-based); ``offset`` defaults to the last frame.
        measure: see :func:`motion_curve`.
        smooth: moving-average window (frames, odd) applied to the score curve before taking its maximum, so that
            a single noisy frame cannot win; 1 disables it.
        method, mask, compensate, border, flow_params: see :func:`motion_curve`.

    Returns:
        :class:`ApexSpot` with the apex position (the first maximum if several frames tie) and the curves.

    Raises:
        ValueError: as :func:`motion_curve`, or an invalid ``smooth``.
    """
    offset = len(clip) - 1 if offset is None else offset
    curve = motion_curve(clip, onset, offset, measure, method, mask, compensate, border, **flow_params)
    smoothed = smooth_curve(curve, smooth)
    name = measure if isinstance(measure, str) else getattr(measure, "__name__", "custom")
    return ApexSpot(onset + int(np.argmax(smoothed)), onset, offset, curve, smoothed, name)


#: How a clip's apex is chosen: ``annotated-or-spot`` takes the annotation and spots only where there is none,
#: ``annotated`` requires the annotation, ``spot`` always spots.
APEX_RULES: tuple[str, ...] = ("annotated-or-spot", "annotated", "spot")


def choose_apex(clip: Sequence[np.ndarray] | np.ndarray, onset: int, offset: int, annotated: int | None,
                rule: str = "annotated-or-spot", measure: str = "flow", where=None) -> tuple[int, str]:
    """The one apex rule of merkit: the apex position of a clip and where it came from.

    A spotted apex is :func:`spot_apex` over [onset, offset], except that it is never the onset itself when the
    clip has a later frame: the onset scores zero against itself, and a still clip could otherwise tie there, which
    would make every onset->apex representation empty. The strongest later frame is taken instead.

    Args:
        clip: the aligned clip, (T, H, W[, 3]).
        onset, offset: positions in the clip.
        annotated: the annotated (or user-given) apex position, or ``None``.
        rule: one of :data:`APEX_RULES`.
        measure: the spotting measure.
        where: a :class:`merkit.errors.Where` named in errors.

    Returns:
        ``(position, source)``, source ``annotated`` or ``spotted``.

    Raises:
        DataError: ``rule="annotated"`` and no annotation.
        ValueError: an unknown rule.
    """
    from merkit.errors import DataError

    if rule not in APEX_RULES:
        raise ValueError(f"apex rule must be one of {APEX_RULES}, got {rule!r}")
    if annotated is not None and rule != "spot":
        return annotated, "annotated"
    if rule == "annotated":
        raise DataError("the sample has no apex frame number", where,
                        hint="use apex 'annotated-or-spot' (data.motion.apex) to spot it")
    found = spot_apex(clip, onset, offset, measure)
    apex = found.apex
    if apex == onset and offset > onset:
        apex = onset + 1 + int(np.argmax(found.smoothed[1:]))
    return apex, "spotted"


#: How a spotted interval is bounded: ``window`` reports the whole window [local onset, window end]; ``extent``
#: the motion's extent around the peak (:func:`motion_extent`).
INTERVAL_RULES: tuple[str, ...] = ("window", "extent")


@pydantic.with_config(FIELDS)
@dataclass(frozen=True)
class SpotConfig:
    """Sliding-window spotting of a long video (:meth:`merkit.predict.Predictor.spot`).

    Each window starts at a local onset; the face is fitted on it, the window's frames are warped with that one
    transform, and every frame is scored by its motion relative to the local onset
    (:func:`merkit.motion.spotting.motion_curve`: flow magnitude with the global affine (head) motion removed).
    A window whose smoothed peak exceeds ``mean + p (max - mean)`` of all windows' peaks (the relative threshold
    of Moilanen, Zhao and Pietikainen, "Spotting rapid facial movements from videos using appearance-based feature
    difference analysis", ICPR 2014, which the MEGC spotting baselines reuse) becomes a candidate interval with its
    apex at the peak; overlapping candidates keep the strongest. With ``interior_peak`` a window whose motion is
    still rising at its last frame is no candidate: a micro-expression (under 0.5 s) rises and falls within the
    window, while a head turn or a macro-expression keeps growing past it.

    The defaults of ``p``, ``method``, ``size`` and ``interval`` were chosen on merkit's synthetic long videos
    (seed 0) and checked on a fresh set (seed 1); ``docs/predict.md`` gives the figures and
    ``docs/benchmarks.md`` the speed. Before they were 0.5, ``farneback``, the checkpoint's crop (224 px by
    default) and ``window``.

    Attributes:
        window_s: window length, seconds (a micro-expression lasts under 0.5 s).
        hop_s: step between window starts, seconds.
        p: threshold fraction in [0, 1]; higher keeps fewer intervals.
        min_score: absolute floor of the threshold, pixels of flow on the aligned crop.
        measure, method: the spotting measure and flow backend (:func:`~merkit.motion.spotting.motion_curve`).
        smooth: moving-average window (frames, odd) over each window's curve.
        interior_peak: only windows whose peak lies before their last frame become candidates.
        default_fps: frame rate assumed for a frame folder given without one.
        size: side, pixels, of the aligned face crop the motion is measured on; ``None`` takes the checkpoint's
            (``FaceConfig.size``). Flow magnitudes, the scores and ``min_score`` are in pixels of this crop.
        interval: ``window`` or ``extent`` (:data:`INTERVAL_RULES`): the bounds of a spotted interval.

    Raises:
        ConfigError (a ValueError): a window, hop or default frame rate that is not finite and positive, ``p``
            outside [0, 1], a negative ``min_score``, an unknown measure, flow method or interval rule, or a crop
            under 16 pixels (:func:`merkit.boundary.check_fields`).
    """

    window_s: PositiveFloat = 0.5
    hop_s: PositiveFloat = 0.25
    p: Fraction = 0.05
    min_score: NonNegativeFloat = 0.0
    measure: Literal[SPOTTING_MEASURES] = "flow"
    method: Literal[FLOW_METHODS] = "dis"
    smooth: Count = 3
    interior_peak: Bool = True
    default_fps: PositiveFloat = 30.0
    size: Annotated[Int, Field(ge=16)] | None = 112
    interval: Literal[INTERVAL_RULES] = "extent"

    def __post_init__(self) -> None:
        check_fields(self)

    def frames(self, fps: float | None) -> tuple[int, int]:
        """(window, hop) in frames at ``fps`` (at least 3 and 1 frames)."""
        rate = fps or self.default_fps
        return max(3, int(round(self.window_s * rate))), max(1, int(round(self.hop_s * rate)))


def motion_extent(curve: np.ndarray, peak: int) -> tuple[int, int]:
    """The extent of the motion around a peak of a window's curve: positions ``(start, end)`` in the window.

    The curve is the (smoothed) motion of each frame relative to the window's first frame. Its height is measured
    from its lowest value before the peak; ``t_rise`` and ``t_fall`` are where it crosses half the peak's height
    before and after the peak (linear interpolation; the window's ends when it does not). The extent is twice
    those half-height distances: ``[peak - 2 (peak - t_rise), peak + 2 (t_fall - peak)]``, rounded and clipped to
    the window, with ``start < peak`` and ``end > peak`` where the window allows. For a raised-cosine rise and fall
    (the onset-apex-offset time course of an expression) this gives its onset and offset exactly; for a Gaussian
    bump, +-2.35 standard deviations.

    Args:
        curve: float (L,) scores of the window's frames.
        peak: position of the peak in the curve, ``1 <= peak < L``.

    Returns:
        ``(start, end)``, positions in ``[0, L - 1]``.

    Raises:
        ValueError: a peak outside ``[1, L - 1]``.
    """
    c = np.asarray(curve, dtype=np.float64)
    last = len(c) - 1
    if not 1 <= peak <= last:
        raise ValueError(f"peak must lie in [1, {last}], got {peak}")
    base = float(c[: peak + 1].min())
    level = base + 0.5 * (float(c[peak]) - base)
    below = np.flatnonzero(c[:peak] < level)
    if len(below):
        i = int(below[-1])
        t_rise = i + (level - c[i]) / (c[i + 1] - c[i])
    else:
        t_rise = 0.0
    after = np.flatnonzero(c[peak + 1:] < level)
    if len(after):
        j = peak + 1 + int(after[0])
        t_fall = j - 1 + (c[j - 1] - level) / (c[j - 1] - c[j])
    else:
        t_fall = float(last)
    start = int(np.clip(round(peak - 2 * (peak - t_rise)), 0, peak - 1))
    end = int(np.clip(round(peak + 2 * (t_fall - peak)), min(peak + 1, last), last))
    return start, end


def select_intervals(windows: "pd.DataFrame", config: SpotConfig) -> tuple[list[int], float]:
    """The windows that become candidate intervals, and the threshold they had to pass.

    Args:
        windows: one row per window with ``onset``, ``offset`` (frame numbers), ``score`` (its smoothed peak
            motion, pixels) and ``interior`` (the peak lies before the window's last frame); optionally ``start``
            and ``end``, the frame numbers of the interval the window reports (default its onset and offset),
            which decide what overlaps.
        config: the threshold fraction ``p``, its floor ``min_score`` and ``interior_peak``.

    Returns:
        ``(rows, threshold)``: row positions of the chosen windows in the order of their intervals, the strongest
        kept among overlapping ones, and the threshold ``max(min_score, mean + p (max - mean))`` of the scores.
    """
    scores = windows["score"].to_numpy()
    start = windows["start" if "start" in windows else "onset"].to_numpy()
    end = windows["end" if "end" in windows else "offset"].to_numpy()
    interior = windows["interior"].to_numpy(dtype=bool)
    threshold = max(config.min_score, float(scores.mean() + config.p * (scores.max() - scores.mean())))
    chosen: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        if scores[i] < threshold:
            break
        if config.interior_peak and not interior[i]:
            continue
        if all(end[i] < start[j] or start[i] > end[j] for j in chosen):
            chosen.append(int(i))
    return sorted(chosen, key=lambda j: start[j]), threshold


def dip_duration(forward: np.ndarray, backward: np.ndarray, step: float = 0.5) -> float:
    """The duration, in frames, of an expression seen from its apex: the onset-to-offset time of the raised-cosine
    rise and fall that, with a linear drift, fits the motion relative to the apex frame best.

    Seen from the apex frame, the face differs little while the expression is near its apex and most once it is
    back at neutral. For an expression whose intensity rises and falls as a raised cosine (the onset-apex-offset
    time course of an expression), rising over ``h_b`` frames before the apex and falling over ``h_f`` after it,
    the motion ``k`` frames from the apex is ``A g(k / h)`` with ``g(u) = (1 - cos(pi min(u, 1))) / 2``: a dip
    that is full once the face is back at neutral. Residual head motion and illumination change make the face
    drift away from the apex frame as well, roughly in proportion to the time apart, so the curves are fitted
    with ``A g(k / h) + b k`` by least squares, for every ``h_f`` and ``h_b`` from 1 frame to each curve's length
    in steps of ``step`` frames; the duration is ``h_f + h_b`` of the best fit with ``A > 0``. The drift term is what
    keeps the estimate unbiased: a half-depth crossing (this function's rule until 2026-12-07) reads the drift at
    the far frames as depth, and times short expressions long. A dip that has not ended within a curve is timed
    at least that curve's length. A side with no frame beyond the apex takes the other side's ``h``.

    Args:
        forward: float (Lf,) motion of the frames from the apex onwards relative to the apex (``forward[0]`` is the
            apex, ~0).
        backward: float (Lb,) the same for the frames from the apex backwards (``backward[0]`` is the apex).
        step: the grid's spacing, frames.

    Returns:
        Frames, >= 0 (0 when neither curve moves).
    """
    sides = [np.asarray(c, dtype=np.float64)[1:] for c in (forward, backward)]
    if not any(len(c) and float(c.max()) > 0 for c in sides):
        return 0.0
    fits = [_dip_sums(c, step) for c in sides if len(c)]
    if len(fits) == 1:  # one side only: it stands for both
        (h, *parts), = fits
        best = _best_fit(*parts)
        return float(2 * h[best[0]]) if best is not None else float(2 * h[-1])
    (hf, *f), (hb, *b) = fits
    best = _best_fit(*(x[:, None] + y[None, :] if i < 3 else x + y for i, (x, y) in enumerate(zip(f, b))))
    return float(hf[best[0]] + hb[best[1]]) if best is not None else float(hf[-1] + hb[-1])


def _dip_sums(curve: np.ndarray, step: float) -> tuple:
    """For :func:`dip_duration`: the grid of ``h`` and the least-squares sums of one side's curve (frames 1..L from
    the apex) against the dip ``g(k / h)`` for each ``h`` and the drift ``k``."""
    k = np.arange(1, len(curve) + 1, dtype=np.float64)
    grid = np.arange(1.0, len(curve) + 1e-9, step)
    shape = 0.5 * (1 - np.cos(np.pi * np.minimum(k[None, :] / grid[:, None], 1.0)))  # (n_h, L)
    return grid, (shape ** 2).sum(1), shape @ k, shape @ curve, float(k @ k), float(k @ curve), float(curve @ curve)


def _best_fit(ss, sk, sy, kk, ky, yy) -> tuple[int, ...] | None:
    """The index of the least residual among the two-term fits ``A g + b k`` whose normal-equation sums are given
    (arrays over the grid), with ``A > 0``; ``None`` when no fit has one."""
    det = ss * kk - sk ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        amplitude = (sy * kk - sk * ky) / det
        drift = (ss * ky - sk * sy) / det
        residual = np.where((det > 1e-12) & (amplitude > 0), yy - amplitude * sy - drift * ky, np.inf)
    if not np.isfinite(residual).any():
        return None
    return tuple(int(i) for i in np.unravel_index(int(np.argmin(residual)), residual.shape))


def dip_sides(forward: np.ndarray, backward: np.ndarray) -> tuple[bool, bool]:
    """Whether the motion relative to the apex reaches half its largest value after the apex (``forward``) and
    before it (``backward``). A side that never does shows a face at rest on that
    side: the frame is the end of an expression rather than its apex."""
    curves = [np.asarray(c, dtype=np.float64)[1:] for c in (forward, backward)]
    top = max((float(c.max()) for c in curves if len(c)), default=0.0)
    return tuple(bool(len(c) and (c >= 0.5 * top).any()) and top > 0 for c in curves)
