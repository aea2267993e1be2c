"""Figures of ``merkit predict``: one clip (:func:`prediction_figure`) and a spotting timeline
(:func:`draw_timeline`, written by :func:`timeline_figure`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np

from merkit.files import write_atomic

if TYPE_CHECKING:  # the results module draws with these functions; it is imported for annotations only
    from merkit.predict.results import Prediction, SpotResult


def _motion_image(inputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, str]:
    """A displayable (H, W[, 3]) image of the first motion input, and its caption."""
    for key in ("flow", "apex_minus_onset", "dynamic_image", "long_term_flow"):
        if key in inputs:
            a = np.asarray(inputs[key], dtype=np.float32)
            if key == "long_term_flow":
                a = a[len(a) // 2]
            if key == "apex_minus_onset":
                a = 0.5 + 0.5 * a / max(float(np.abs(a).max()), 1e-6)
            image = a[0] if a.shape[0] == 1 else a[:3].transpose(1, 2, 0)
            caption = "flow (R u, G v, B strain)" if key == "flow" else key.replace("_", " ")
            return np.clip(image, 0, 1), caption
    return np.zeros((8, 8)), "no motion input"


def prediction_figure(prediction: Prediction, path: str | Path) -> Path:
    """Write the figure of one :class:`Prediction`: onset and apex crops, the motion map, the model's feature map
    (channel-mean of |features|, upsampled over the apex crop) where the model has a spatial one, and the class
    probabilities."""
    import cv2
    from matplotlib.figure import Figure

    has_map = prediction.feature_map is not None
    panels = 4 + int(has_map)
    fig = Figure(figsize=(2.6 * panels, 2.9))
    axes = fig.subplots(1, panels, gridspec_kw={"width_ratios": [1] * (panels - 1) + [1.3]})
    grey = {"cmap": "gray", "vmin": 0, "vmax": 255}
    for ax, key in zip(axes, ("onset", "apex")):
        number = prediction.onset if key == "onset" else prediction.apex
        ax.imshow(prediction.crops[key], **(grey if prediction.crops[key].ndim == 2 else {}))
        ax.set_title(f"{key} (frame {number})", fontsize=9)
    motion, caption = _motion_image(prediction.inputs)
    axes[2].imshow(motion, cmap="gray" if motion.ndim == 2 else None, interpolation="nearest")
    axes[2].set_title(caption, fontsize=9)
    if has_map:
        apex = prediction.crops["apex"]
        heat = np.abs(prediction.feature_map).mean(axis=0)
        heat = cv2.resize(heat.astype(np.float32), apex.shape[1::-1], interpolation=cv2.INTER_CUBIC)
        axes[3].imshow(apex, **(grey if apex.ndim == 2 else {}))
        axes[3].imshow(heat, cmap="inferno", alpha=0.55)
        axes[3].set_title("model feature map", fontsize=9)
    for ax in axes[:-1]:
        ax.set_xticks([])
        ax.set_yticks([])
    bars = axes[-1]
    names = list(prediction.probabilities)
    values = [prediction.probabilities[n] for n in names]
    colours = ["tab:orange" if n == prediction.label else "tab:grey" for n in names]
    bars.barh(names, values, color=colours)
    bars.set_xlim(0, 1)
    bars.invert_yaxis()
    title = (f"uncertain (top {prediction.top_class} < {prediction.min_confidence:g})" if prediction.uncertain
             else f"prediction: {prediction.label}")
    bars.set_title(title + ("" if prediction.temperature == 1.0 else f"\ncalibrated, T = {prediction.temperature:.2f}"),
                   fontsize=9)
    if prediction.min_confidence is not None:
        bars.axvline(prediction.min_confidence, color="black", ls=":", lw=1)
    bars.tick_params(labelsize=8)
    for y, v in enumerate(values):
        bars.text(min(v + 0.02, 0.8), y, f"{v:.2f}", va="center", fontsize=8)
    t = prediction.timing
    fig.suptitle(f"{Path(prediction.source).name}: onset {prediction.onset}, apex {prediction.apex} "
                 f"({prediction.apex_source}); face {t.face:.2f} s, motion {t.motion:.2f} s, model {t.model:.3f} s",
                 fontsize=9)
    if prediction.domain_warnings:
        fig.text(0.01, 0.01, "\n".join(f"domain warning {f.name} ({f.basis}): {f.value:.2f} s, expected {f.expected}"
                                       for f in prediction.domain_warnings), color="tab:red", fontsize=8,
                 va="bottom")
    fig.tight_layout(rect=(0, 0.06 * len(prediction.domain_warnings), 1, 1))
    path = Path(path)
    write_atomic(path, lambda p: fig.savefig(p, dpi=90))
    return path


def timeline_figure(result: SpotResult, path: str | Path) -> Path:
    """Write :func:`draw_timeline` of a :class:`SpotResult` (PNG, 90 dpi) atomically to ``path``."""
    fig = draw_timeline(result)
    path = Path(path)
    write_atomic(path, lambda p: fig.savefig(p, dpi=90))
    return path


def draw_timeline(result: SpotResult):
    """The timeline of a :class:`SpotResult` (a :class:`matplotlib.figure.Figure`): each window's peak motion
    score at its peak frame, joined in time order, the threshold, and the candidate intervals: micro ones shaded
    and labelled with their predicted class (grey and unlabelled when spotted without a model; ``(!)`` marks a
    domain warning), macro ones hatched and marked ``macro``."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    scale = (1.0 / result.fps) if result.fps else 1.0
    unit = "s" if result.fps else "frame"
    fig = Figure(figsize=(10, 2.8))
    ax = fig.subplots()
    # The windows come in the order of their starts, but overlapping windows can peak out of that order (one peaks
    # at its end, the next near its start): drawn in window order, the line ran backwards in time.
    curve = result.curve.sort_values("peak", kind="stable")
    ax.plot(curve["peak"] * scale, curve["score"], "o-", ms=3, lw=1, color="tab:blue",
            label="peak motion vs local onset")
    ax.axhline(result.threshold, color="tab:red", ls="--", lw=1, label=f"threshold {result.threshold:.2f} px")
    rising = curve[(curve["score"] >= result.threshold) & ~curve["interior"].astype(bool)]
    ax.plot(rising["peak"] * scale, rising["score"], "x", ms=6, color="black",
            label="still rising at window end (not a candidate)")
    colours = dict(zip(result.classes, matplotlib.rcParams["axes.prop_cycle"].by_key()["color"][1:]))
    top = float(curve["score"].max()) if len(curve) else 1.0
    for k, row in enumerate(result.intervals.itertuples(index=False)):
        label = getattr(row, "label", "")  # spotting without a model leaves the intervals unlabelled
        label = "" if not isinstance(label, str) else label
        macro = getattr(row, "kind", "micro") == "macro"
        if macro:  # drawn apart: hatched, with its kind, and a label only when --label-macro asked for one
            ax.axvspan(row.onset * scale, row.offset * scale, facecolor="none", edgecolor="black", hatch="///",
                       lw=0.8)
            label = f"macro{': ' + label if label else ''}"
        else:
            ax.axvspan(row.onset * scale, row.offset * scale, color=colours.get(label, "tab:grey"), alpha=0.3)
        warnings = getattr(row, "domain_warnings", "")
        if isinstance(warnings, str) and warnings and not macro:
            label += " (!)"
        # Neighbouring intervals can be a fraction of a second apart: stagger their labels.
        ax.text(row.apex * scale, top * (1.03 + 0.1 * (k % 2)), label, ha="center", va="bottom", fontsize=7)
    for skipped in result.skipped_frames:
        ax.axvline(skipped * scale, color="black", alpha=0.15, lw=0.8)
    ax.set_xlim(result.frame_numbers[0] * scale, result.frame_numbers[-1] * scale)
    ax.set_ylim(0, top * 1.25 if top > 0 else 1)
    ax.set_xlabel(unit)
    ax.set_ylabel("motion (px)")
    ax.set_title(f"{Path(result.source).name}: {len(result.intervals)} candidate interval(s) from "
                 f"{len(curve)} windows", fontsize=9)
    handles = ax.get_legend_handles_labels()[0] + [Patch(color=colours[c], alpha=0.3, label=c)
                                                   for c in result.classes if c in colours]
    handles.append(Patch(facecolor="none", edgecolor="black", hatch="///", label="macro-expression (> 0.5 s)"))
    marked = result.intervals[result.intervals["kind"] == "micro"] if "kind" in result.intervals else result.intervals
    if any(isinstance(w, str) and w for w in marked.get("domain_warnings", [])):
        handles.append(Patch(color="white", label="(!) domain warning"))
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig
