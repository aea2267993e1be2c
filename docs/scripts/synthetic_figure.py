"""Regenerate docs/img/synthetic_clips.png: onset, apex, flow field and optical strain of one synthetic clip per class.

    python docs/scripts/synthetic_figure.py [--out docs/img/synthetic_clips.png] [--seed 0]

The clips come from ``merkit.synthetic.generate`` (one pseudo-subject, one clip per class, default
settings). The face crops are the inputs stage's (:func:`merkit.inputs.row_inputs` with the demo's record,
:data:`merkit.demo.DEMO_FACE` and :data:`merkit.demo.DEMO_MOTION`), and the TV-L1 flow and strain are computed
on them with the demo's flow parameters: what ``merkit demo`` feeds to STSTNet, before the resize to 28x28.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from merkit.demo import DEMO_FACE, DEMO_MOTION  # noqa: E402
from merkit.inputs import Preprocessing, row_inputs  # noqa: E402
from merkit.motion.flow import compute_flow, optical_strain  # noqa: E402
from merkit.synthetic import CLASSES, generate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "img" / "synthetic_clips.png")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    record = Preprocessing(DEMO_FACE, DEMO_MOTION)
    crop = DEMO_FACE.size
    with tempfile.TemporaryDirectory() as tmp:
        table = generate(tmp, subjects=1, clips_per_class=1, seed=args.seed)
        fig, axes = plt.subplots(len(CLASSES), 4, figsize=(8.4, 2.3 * len(CLASSES)))
        for r, label_class in enumerate(CLASSES):
            row = table[table["label_class"] == label_class].iloc[0]
            inputs = row_inputs(row.to_dict(), record)
            on, ap = inputs.crop(inputs.onset), inputs.crop(inputs.apex)
            flow = compute_flow(on, ap, DEMO_MOTION.method, **DEMO_MOTION.flow_params)
            strain = optical_strain(flow)
            ax = axes[r]
            ax[0].imshow(on, cmap="gray")
            ax[0].set_ylabel(f"{label_class}\n{row.emotion}, AU {row.action_units}\n"
                             f"peak {row.amplitude_px:.1f} px" + (", blink" if row.blink else ""), fontsize=8)
            ax[1].imshow(ap, cmap="gray")
            ax[2].imshow(on, cmap="gray", alpha=0.45)
            step = 8
            ys, xs = np.mgrid[step // 2:crop:step, step // 2:crop:step]
            u, v = flow[ys, xs, 0], flow[ys, xs, 1]
            ax[2].quiver(xs, ys, u, v, np.hypot(u, v), angles="xy", scale_units="xy", scale=1 / 12, width=0.006,
                         cmap="autumn")
            im = ax[3].imshow(strain, cmap="inferno", vmin=0, vmax=float(np.percentile(strain, 99.5)))
            fig.colorbar(im, ax=ax[3], fraction=0.046, pad=0.03).ax.tick_params(labelsize=6)
            for a in ax:
                a.set_xticks([])
                a.set_yticks([])
        for a, t in zip(axes[0], ("onset (face crop)", "apex", "TV-L1 flow, onset->apex\n(arrows 12x longer)",
                                  "optical strain")):
            a.set_title(t, fontsize=9)
        fig.tight_layout()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.out, dpi=72)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
