"""Batch mixing regularisers for small training sets: mixup and CutMix (``training.mixup_alpha``,
``training.cutmix_alpha``), applied by :func:`merkit.training.engine.fit` to each training batch after the
augmentation hooks. Both are off by default (alpha 0), and then nothing here runs and no random number is drawn.

* mixup (Zhang, Cisse, Dauphin and Lopez-Paz, "mixup: Beyond Empirical Risk Minimization", ICLR 2018): with
  lam ~ Beta(a, a) and a random permutation p of the batch, every floating-point input becomes
  ``lam * x + (1 - lam) * x[p]``, and the loss ``lam * CE(logits, y) + (1 - lam) * CE(logits, y[p])``.
* CutMix (Yun, Han, Oh, Chun, Choe and Yoo, "CutMix: Regularization Strategy to Train Strong Classifiers with
  Localizable Features", ICCV 2019, Algorithm A1): a box of area ``1 - lam`` of the side squared, centred uniformly
  and clipped to the image, is pasted from ``x[p]`` into every image input (a tensor whose last two dimensions are
  spatial: ``(B, C, H, W)``, or ``(B, T, C, H, W)``), at the same relative place in inputs of different sizes; lam is
  then set to the box's actual share. Inputs that are not images (AU vectors, face points, AU boxes) stay the
  first sample's.

With both alphas set, each batch uses one of the two with probability 1/2 (timm's ``switch_prob`` 0.5). Every draw
comes from the fold's generator, so a (seed, fold) unit stays reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Mixed:
    """A mixed batch: ``inputs``, the partner of each row (``partner``, (B,) int64 positions in the batch) and the
    weight ``lam`` of each row's own label in the loss."""

    inputs: dict[str, torch.Tensor]
    partner: torch.Tensor
    lam: float


def _is_image(tensor: torch.Tensor) -> bool:
    return tensor.is_floating_point() and tensor.ndim >= 4


def mix_batch(inputs: dict[str, torch.Tensor], mixup_alpha: float, cutmix_alpha: float,
              generator: torch.Generator) -> Mixed | None:
    """The batch mixed by mixup or CutMix (see the module docstring), or ``None`` when both alphas are 0.

    Args:
        inputs: the batch, ``{key: (B, ...) tensor}``, after augmentation.
        mixup_alpha, cutmix_alpha: Beta parameters (0: that regulariser is off).
        generator: the fold's CPU generator (permutation, Beta draw, box, and the choice between the two).
    """
    if mixup_alpha <= 0 and cutmix_alpha <= 0:
        return None
    batch = next(iter(inputs.values())).shape[0]
    use_cutmix = cutmix_alpha > 0 and (mixup_alpha <= 0 or bool(torch.rand((), generator=generator) < 0.5))
    alpha = cutmix_alpha if use_cutmix else mixup_alpha
    seed = int(torch.randint(0, 2 ** 31 - 1, (1,), generator=generator))
    rng = np.random.default_rng(seed)
    lam = float(rng.beta(alpha, alpha))
    partner = torch.randperm(batch, generator=generator)
    if not use_cutmix:
        mixed = {k: lam * v + (1 - lam) * v[partner.to(v.device)] if v.is_floating_point() else v
                 for k, v in inputs.items()}
        return Mixed(mixed, partner, lam)
    cut = float(np.sqrt(1.0 - lam))
    cy, cx = rng.uniform(0.0, 1.0, size=2)
    y0, y1 = max(cy - cut / 2, 0.0), min(cy + cut / 2, 1.0)
    x0, x1 = max(cx - cut / 2, 0.0), min(cx + cut / 2, 1.0)
    mixed, share = dict(inputs), None
    for key, value in inputs.items():
        if not _is_image(value):
            continue
        h, w = value.shape[-2:]
        top, bottom = int(round(y0 * h)), int(round(y1 * h))
        left, right = int(round(x0 * w)), int(round(x1 * w))
        out = value.clone()
        out[..., top:bottom, left:right] = value[partner.to(value.device)][..., top:bottom, left:right]
        mixed[key] = out
        if share is None:
            share = (bottom - top) * (right - left) / float(h * w)
    return Mixed(mixed, partner, 1.0 - share if share is not None else 1.0)
