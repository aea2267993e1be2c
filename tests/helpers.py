"""Small in-memory data for harness tests (no files, a few seconds of training)."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import torch

from merkit.datasets.table import new_sample_table
from merkit.features import FeatureSet


def toy_flow_features(subjects: int = 5, per_class: int = 4, seed: int = 0, signal: float = 1.0) -> FeatureSet:
    """3-class (B,3,28,28) "flow" images whose class is a bright blob in a class-specific place, plus noise.

    ``signal=0`` gives pure noise: labels are then unlearnable.
    """
    rng = np.random.default_rng(seed)
    rows, images = [], []
    centres = [(7, 7), (7, 20), (20, 14)]
    yy, xx = np.mgrid[0:28, 0:28]
    for s in range(subjects):
        for label, (cy, cx) in enumerate(centres):
            for k in range(per_class):
                blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18.0)
                img = 0.5 * rng.random((3, 28, 28)) + signal * blob[None]
                images.append(img.astype(np.float32))
                rows.append({"dataset": "toy", "subject": f"s{s:02d}", "sample": f"c{label}_{k}",
                             "emotion": ["negative", "positive", "surprise"][label], "label": label})
    table = new_sample_table(rows)
    return FeatureSet(table, {"flow": torch.from_numpy(np.stack(images))}, ("negative", "positive", "surprise"),
                      meta={"flow_channels": ["u", "v", "strain"]})


def adamw_losses(model: torch.nn.Module, inputs: dict[str, torch.Tensor], labels: torch.Tensor,
                 steps: int = 8, lr: float = 1e-3) -> list[float]:
    """Cross-entropy of ``steps`` full-batch AdamW steps on one fixed batch, the loss before each step."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(inputs).logits, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def write_flow_folder(root, subjects=3):
    """The toy features as a flow folder on disk (manifest.csv + RGB PNGs), like the composite."""
    fs = toy_flow_features(subjects=subjects, per_class=3)
    (root / "flow").mkdir(parents=True)
    rows = []
    for r, img in zip(fs.table.itertuples(), fs.inputs["flow"].numpy()):
        name = f"flow/{r.subject}_{r.sample}.png"
        rgb = (np.clip(img / img.max(), 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)
        cv2.imwrite(str(root / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        rows.append({"dataset": r.dataset, "subject": r.subject, "sample": r.sample, "label": r.label,
                     "emotion": r.emotion, "flow": name})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root
