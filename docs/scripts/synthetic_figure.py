"""Regenerate docs/img/synthetic_clips.png: onset, apex, flow field and optical strain of one synthetic clip per class.

    python docs/scripts/synthetic_figure.py [--out docs/img/synthetic_clips.png] [--seed 0]

The clips come from ``merkit.datasets.synthetic.generate`` (one pseudo-subject, one clip per class, default
settings); the face crop, TV-L1 flow and strain are the ones ``merkit demo`` feeds to STSTNet, before the resize
to 28x28.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from merkit.datasets.synthetic import CLASSES, generate  # noqa: E402
from merkit.demo import FAST_TVL1, FLOW_SETTINGS  # noqa: E402
from merkit.face.landmarks import detect_landmarks  # noqa: E402
from merkit.motion.flow import optical_strain, tvl1_flow  # noqa: E402
from merkit.face.clip import fit_face  # noqa: E402
from merkit.pipeline import onset_apex_paths  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "img" / "synthetic_clips.png")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    face = FLOW_SETTINGS["face"]
    crop = face.size
    with tempfile.TemporaryDirectory() as tmp:
        table = generate(tmp, subjects=1, clips_per_class=1, seed=args.seed)
        fig, axes = plt.subplots(len(CLASSES), 4, figsize=(8.4, 2.3 * len(CLASSES)))
        for r, label_class in enumerate(CLASSES):
            row = table[table["label_class"] == label_class].iloc[0]
            onset_path, apex_path = onset_apex_paths(row)
            onset = cv2.imread(onset_path, cv2.IMREAD_GRAYSCALE)
            apex = cv2.imread(apex_path, cv2.IMREAD_GRAYSCALE)
            landmarks, _, _ = detect_landmarks(onset, face.detector, None, face.upsample)
            transform, _ = fit_face(landmarks, face)
            on, ap = transform.warp(onset), transform.warp(apex)
            flow = tvl1_flow(on, ap, **FAST_TVL1)
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
