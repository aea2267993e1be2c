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


def tiny_checkpoint_and_clip(root):
    """A tiny STSTNet checkpoint (1 epoch on toy features, 112 px faces, DIS flow) in ``root/ckpt`` and one
    synthetic clip under ``root/synthetic``: ``(checkpoint folder, the clip's sample-table row, its RGB uint8
    frames)``."""
    from merkit import api
    from merkit.config import DataConfig, ModelConfig, ProtocolConfig, RunConfig, TrainConfig
    from merkit.face.clip import FaceConfig
    from merkit.inputs import Preprocessing
    from merkit.motion.stage import MotionConfig
    from merkit.synthetic import generate

    record = Preprocessing(FaceConfig(size=112, upsample=0), MotionConfig(method="dis"))
    config = RunConfig(data=DataConfig(face=record.face, motion=record.motion),
                       model=ModelConfig(name="ststnet", preset="cpu"), training=TrainConfig(epochs=1, batch_size=16),
                       protocol=ProtocolConfig(seeds=[0]))
    folder = api.train(config, root / "ckpt", features=toy_flow_features(2, 2))
    row = generate(root / "synthetic", subjects=1, clips_per_class=1, seed=2, duration=(8, 10)).iloc[0]
    return folder, row, [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in row.frames]
