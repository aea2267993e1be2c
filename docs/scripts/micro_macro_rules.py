"""Compare rules that time a spotted interval from its apex, on the same motion curves, for ``docs/predict.md``
("Micro or macro", the table of rules pooled over the development sets).

Each argument is ``SET:RUN``: a synthetic long-video set (``merkit synth SET --long-videos 6 --video-seconds 20
--micro 3 --macro 2 --seed N``) and the folder ``merkit evaluate-spotting SET --out RUN`` wrote. The intervals of
``RUN/spotted.csv`` whose ground-truth event of highest IoU is a micro- or macro-expression are timed again: their
motion curves are computed once, as ``merkit.predict.scan.event_duration`` computes them (the apex frame, and the
frame it re-times from when the face is at rest on one side), and every rule of :data:`RULES` times the same
curves. Spotting itself does not depend on the rule, so the intervals are those of any merkit version.

Run (about 20 s a set on a 2-core CPU, after the sets are spotted):
``python docs/scripts/micro_macro_rules.py set2:spot-set2 set3:spot-set3 ...``. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from merkit.evaluation.spotting import attribute_misses
from merkit.media import read_video
from merkit.motion.spotting import SpotConfig, dip_duration, dip_sides
from merkit.predict import scan
from merkit.predict.trust import expression_kind


def half_depth(forward: np.ndarray, backward: np.ndarray) -> float:
    """The rule before 2026-12-07: ``2 (t_rise + t_fall)``, where the curves first reach half their largest
    value (linear interpolation; a curve's end when it never does)."""
    curves = [np.asarray(c, dtype=np.float64).copy() for c in (forward, backward)]
    for c in curves:
        c[:1] = 0.0
    top = max(float(c.max()) if len(c) else 0.0 for c in curves)
    if top <= 0:
        return 0.0
    widths = []
    for c in curves:
        above = np.flatnonzero(c >= 0.5 * top)
        if not len(above):
            widths.append(float(len(c) - 1))
            continue
        j = int(above[0])
        widths.append(float(j) if j == 0 else j - 1 + (0.5 * top - c[j - 1]) / (c[j] - c[j - 1]))
    return 2.0 * sum(widths)


def floor_fit(forward: np.ndarray, backward: np.ndarray) -> float:
    """The dip fit with a constant floor (from the first frame on) in place of the linear drift."""
    sides = [np.asarray(c, dtype=np.float64)[1:] for c in (forward, backward)]
    best, duration = np.inf, 0.0
    for hf in np.arange(1.0, len(sides[0]) + 1e-9, 0.5):
        for hb in np.arange(1.0, len(sides[1]) + 1e-9, 0.5):
            shape = np.concatenate([_dip(len(sides[0]), hf), _dip(len(sides[1]), hb)])
            design = np.stack([shape, np.ones_like(shape)], 1)
            y = np.concatenate(sides)
            coef, *_ = np.linalg.lstsq(design, y, rcond=None)
            residual = float(((design @ coef - y) ** 2).sum())
            if coef[0] > 0 and residual < best:
                best, duration = residual, hf + hb
    return duration


def _dip(length: int, h: float) -> np.ndarray:
    k = np.arange(1, length + 1, dtype=np.float64)
    return 0.5 * (1 - np.cos(np.pi * np.minimum(k / h, 1.0)))


#: name -> (frames -> frames) on the (forward, backward) curves.
RULES = {
    "half depth": half_depth,
    "half depth x 0.92": lambda f, b: 0.92 * half_depth(f, b),
    "fit with a constant floor instead of the drift": floor_fit,
    "fit with a linear drift (dip_duration)": dip_duration,
}


def _true_frames(row, events: pd.DataFrame) -> float:
    """Onset to offset, frames, of the micro- or macro-expression with the highest IoU with ``row`` (0 if none)."""
    best, frames = 0.0, 0.0
    for e in events[(events["video"] == row.video) & events["kind"].isin(["micro", "macro"])].itertuples():
        shared = max(0, min(row.offset, e.offset) - max(row.onset, e.onset) + 1)
        iou = shared / (max(row.offset, e.offset) - min(row.onset, e.onset) + 1)
        if iou > best:
            best, frames = iou, float(e.offset - e.onset)
    return frames


def timed_curves(frames, apex: int, reach: int = 22):
    """The curves ``event_duration`` times, after its re-timing step (``None`` without a face)."""
    config = SpotConfig()
    curves = scan._curves_from(frames, apex, reach, scan.SPOT_FACE, config)
    if curves is None:
        return None
    after, before = dip_sides(*curves)
    strong = [float(c.max()) for c in curves]
    if min(strong) < scan.LOPSIDED * max(strong):
        after, before = strong[0] > strong[1], strong[1] > strong[0]
    if after != before:
        side = curves[0] if after else curves[1]
        moved = apex + (1 if after else -1) * int(np.argmax(side))
        if moved != apex:
            curves = scan._curves_from(frames, moved, reach, scan.SPOT_FACE, config)
    return curves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", nargs="+", help="SET:RUN")
    args = parser.parse_args()
    rows = []
    for pair in args.pairs:
        root, run = (Path(p) for p in pair.split(":"))
        videos = pd.read_csv(root / "videos.csv")
        events = pd.read_csv(root / "intervals.csv")
        spotted = pd.read_csv(run / "spotted.csv")
        spotted["event"] = attribute_misses(spotted, events, by="iou")
        spotted["true_frames"] = [_true_frames(r, events) for r in spotted.itertuples(index=False)]
        for video, part in spotted[spotted["event"].isin(["micro", "macro"])].groupby("video"):
            meta = videos[videos["video"] == video].iloc[0]
            frames = read_video(root / meta["path"], fps=float(meta["fps"]))
            rate = float(meta["fps"])
            for r in part.itertuples(index=False):
                curves = timed_curves(frames, int(r.apex))
                if curves is not None:
                    timed = {name: rule(*curves) for name, rule in RULES.items()}
                    rows.append({"set": root.name, "event": r.event,
                                 **{name: expression_kind(t / rate) for name, t in timed.items()},
                                 **{f"{name} ratio": t / r.true_frames for name, t in timed.items()}})
    table = pd.DataFrame(rows)
    print("| rule | micro: precision | micro: recall | macro: precision | macro: recall | timed / true, micro "
          "(median) |")
    print("|---|---|---|---|---|---|")
    for name in RULES:
        cells = []
        for kind in ("micro", "macro"):
            right = int(((table[name] == kind) & (table["event"] == kind)).sum())
            called, true = int((table[name] == kind).sum()), int((table["event"] == kind).sum())
            cells += [f"{right / called:.3f} ({right} of {called})" if called else "-",
                      f"{right / true:.3f} ({right} of {true})" if true else "-"]
        ratio = table.loc[table["event"] == "micro", f"{name} ratio"].median()
        print(f"| {name} | " + " | ".join(cells) + f" | {ratio:.3f} |")


if __name__ == "__main__":
    main()
