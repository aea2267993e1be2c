"""Draw every motion representation of one synthetic clip: ``docs/img/motion_representations.png``.

Run from the repository root: ``python docs/scripts/motion_representations.py [--out PATH] [--seed S]``.
A small synthetic dataset (one subject, one clip per class) is generated in a temporary folder; its positive clip
(AU6 + AU12) is aligned from onset to offset by the inputs stage (:func:`merkit.inputs.row_inputs`: the face fitted
on the onset, 224 px grey) and every representation of :mod:`merkit.motion.representations` is drawn, with the
apex-spotting curve.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from merkit.face.clip import FaceConfig  # noqa: E402
from merkit.inputs import Preprocessing, row_inputs  # noqa: E402
from merkit.motion import representations as rep  # noqa: E402
from merkit.motion.spotting import spot_apex  # noqa: E402
from merkit.motion.stage import MotionConfig  # noqa: E402
from merkit.synthetic import generate  # noqa: E402

# Every frame from the onset to the offset, aligned with the onset's transform: resample_clip reads them all, so the
# inputs stage decodes and aligns the whole span.
# The SLSTT crop, merkit's default when the figure was drawn.
ALIGN = Preprocessing(FaceConfig(size=224, color="grey", span="onset-offset", crop="slstt"),
                      MotionConfig(representations=("resample_clip",)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/img/motion_representations.png"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        table = generate(tmp, subjects=1, clips_per_class=1, seed=args.seed)
        row = next(r for r in table.itertuples(index=False) if r.label_class == "positive")
        clip = row_inputs(row._asdict(), ALIGN).clip
    frames = clip.frames
    numbers = list(clip.frame_numbers)
    onset, apex, offset = 0, numbers.index(int(row.apex)), len(frames) - 1
    spot = spot_apex(frames, onset, offset)

    flow = rep.onset_apex_flow(frames[onset], frames[apex], size=28)
    raw = rep.onset_apex_flow(frames[onset], frames[apex], size=None, normalise="none")
    diff = rep.apex_minus_onset(frames[onset], frames[apex])[0]
    long_term = rep.long_term_flow(frames, apex, onset, offset, size=112)
    times = rep.long_term_window(onset, apex, offset)
    dynamic = rep.dynamic_image(frames[onset:offset + 1])[0]
    resampled = rep.resample_clip(frames[onset:offset + 1], 8)

    fig = plt.figure(figsize=(13, 9.6), dpi=66)
    grid = fig.add_gridspec(4, 8, hspace=0.45, wspace=0.15)

    def show(ax, image, title, cmap="gray", **kw):
        ax.imshow(image, cmap=cmap, **kw)
        ax.set_title(title, fontsize=9)
        ax.axis("off")

    show(fig.add_subplot(grid[0, 0:2]), frames[onset], f"onset (frame {numbers[onset]})")
    show(fig.add_subplot(grid[0, 2:4]), frames[apex], f"apex (frame {numbers[apex]}, annotated)")
    lim = float(np.abs(raw[:2]).max())
    show(fig.add_subplot(grid[0, 4:6]), raw[0], f"u, px (max |u,v| {lim:.1f})", "RdBu_r", vmin=-lim, vmax=lim)
    show(fig.add_subplot(grid[0, 6:8]), raw[1], "v, px (down +)", "RdBu_r", vmin=-lim, vmax=lim)

    show(fig.add_subplot(grid[1, 0:2]), raw[2], "optical strain (raw; 99th pct. = white)", "magma",
         vmin=0, vmax=float(np.percentile(raw[2], 99)))
    show(fig.add_subplot(grid[1, 2:4]), np.transpose(flow, (1, 2, 0)),
         "onset_apex_flow 28x28\n(R=u, G=v, B=strain, min-max)")
    dl = float(np.abs(diff).max())
    show(fig.add_subplot(grid[1, 4:6]), diff, "apex_minus_onset (MMNet)", "RdBu_r", vmin=-dl, vmax=dl)
    show(fig.add_subplot(grid[1, 6:8]), dynamic, f"dynamic_image ({offset + 1} frames)")

    for k, idx in enumerate(np.linspace(0, len(long_term) - 1, 8).round().astype(int)):
        frame = numbers[0] + times[idx]
        show(fig.add_subplot(grid[2, k]), np.transpose(long_term[idx], (1, 2, 0)),
             f"frame {frame:.0f}" if k else f"long_term_flow (HSV)\nonset -> frame {frame:.0f}")
    for k in range(8):
        show(fig.add_subplot(grid[3, k]), resampled[k], f"resample_clip {k + 1}/8" if k else "resample_clip(8)\n1/8")

    ax = fig.add_axes([0.08, -0.06, 0.86, 0.1])
    x = numbers[onset:offset + 1]
    ax.plot(x, spot.curve, lw=1, label="mean flow magnitude vs onset, global affine removed (px)")
    ax.plot(x, spot.smoothed, lw=2, label="smoothed")
    ax.axvline(numbers[spot.apex], color="k", ls="--", lw=1, label=f"spotted apex {numbers[spot.apex]}")
    ax.axvline(int(row.apex), color="r", ls=":", lw=1.5, label=f"true apex {int(row.apex)}")
    ax.set_xlabel("frame", fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    ax.tick_params(labelsize=8)
    fig.suptitle(f"Motion representations of one synthetic positive clip (AU6+AU12, peak "
                 f"{row.amplitude_px:.1f} px), aligned by the face stage", fontsize=11)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, bbox_inches="tight")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
