"""The training engine: plain PyTorch, a fixed number of epochs, no access to test data.

``fit`` trains a model on a :class:`~merkit.features.FeatureSet`. The only way test data can influence anything is
the optional ``on_epoch_end`` callback, which the *paper* protocol uses to score every epoch on the test subject;
the default protocol never passes one.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import nn

from merkit.config import TrainConfig
from merkit.errors import ConfigError
from merkit.features import FeatureSet
from merkit.models.base import MerModel
from merkit.training.augment import get_augmentations


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    raise ConfigError(f"training.optimizer must be adam, adamw or sgd, got {cfg.optimizer!r}")


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig):
    """Per-epoch learning-rate schedule, or ``None``.

    * ``cosine``: cosine annealing to 0 over ``epochs`` (``scheduler_params.t_max`` overrides).
    * ``exponential``: lr *= ``gamma`` each epoch for the first ``decay_epochs`` epochs (MMNet: 0.987, 50).
    * ``step``: lr *= ``gamma`` every ``step_size`` epochs.
    """
    p = cfg.scheduler_params
    if cfg.scheduler == "none":
        return None
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=p.get("t_max", cfg.epochs))
    if cfg.scheduler == "exponential":
        gamma, decay_epochs = p.get("gamma", 0.987), p.get("decay_epochs", cfg.epochs)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: gamma ** min(e, decay_epochs))
    if cfg.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=p.get("step_size", 10), gamma=p.get("gamma", 0.1))
    raise ConfigError(f"training.scheduler must be none, cosine, exponential or step, got {cfg.scheduler!r}")


def class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Inverse-frequency weights ``N / (K * n_k)``; classes absent from training get weight 0."""
    counts = torch.bincount(labels, minlength=num_classes).float()
    weights = torch.where(counts > 0, labels.numel() / (num_classes * counts.clamp(min=1)), torch.zeros(()))
    return weights


def fit(
    model: MerModel,
    train: FeatureSet,
    cfg: TrainConfig,
    generator: torch.Generator,
    on_epoch_end: Callable[[int, MerModel], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> MerModel:
    """Train ``model`` on ``train`` for exactly ``cfg.epochs`` epochs.

    Args:
        generator: seeds the batch order and the augmentations, so a (seed, fold) unit is reproducible.
        on_epoch_end: called as ``on_epoch_end(epoch, model)`` after each epoch (1-based), model in eval mode.
        progress: called with the finished epoch number, for progress displays.

    Loss: cross-entropy on ``ModelOutput.logits`` (class-weighted if ``cfg.class_weighted``) plus the sum of
    ``ModelOutput.aux_losses``.
    """
    augment = get_augmentations(cfg.augment)
    meta = train.meta
    labels = train.labels
    weight = class_weights(labels, len(train.classes)) if cfg.class_weighted else None
    criterion = nn.CrossEntropyLoss(weight=weight)
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg)
    n = len(train)
    steps = max(1, math.ceil(n / cfg.batch_size))
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = torch.randperm(n, generator=generator)
        optimizer.zero_grad(set_to_none=True)
        for step in range(steps):
            idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            if idx.numel() < 2 and n >= 2:  # a batch of one breaks batch norm; fold it into the previous step
                continue
            inputs = train.batch(idx, model.input_keys)
            for hook in augment:
                inputs = hook(inputs, meta, generator)
            out = model(inputs)
            loss = criterion(out.logits, labels.index_select(0, idx))
            for aux in out.aux_losses.values():
                loss = loss + aux
            (loss / cfg.grad_accumulation).backward()
            if (step + 1) % cfg.grad_accumulation == 0 or step == steps - 1:
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        if scheduler is not None:
            scheduler.step()
        if on_epoch_end is not None:
            model.eval()
            on_epoch_end(epoch, model)
        if progress is not None:
            progress(epoch)
    model.eval()
    return model


@torch.no_grad()
def predict_proba(model: MerModel, data: FeatureSet, batch_size: int = 256) -> np.ndarray:
    """Class probabilities, float64 array (N, num_classes), rows in ``data.table`` order."""
    model.eval()
    out = []
    for start in range(0, len(data), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data)))
        logits = model(data.batch(idx, model.input_keys)).logits
        out.append(torch.softmax(logits.double(), dim=1).numpy())
    return np.concatenate(out, axis=0) if out else np.zeros((0, len(data.classes)))
