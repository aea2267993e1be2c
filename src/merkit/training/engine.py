"""The training engine: plain PyTorch, a fixed number of epochs, no access to test data.

``fit`` trains a model on a :class:`~merkit.features.FeatureSet`. The only way test data can influence anything is
the optional ``on_epoch_end`` callback, which the *paper* protocol uses to score every epoch on the test subject;
the default protocol never passes one.

Devices: ``training.device`` (:func:`resolve_device`) says where the model trains. The FeatureSet stays on the CPU
and each batch moves to the device, so a dataset larger than GPU memory trains as long as one batch fits.
Random draws (batch order, augmentation) come from the CPU generator on every device, so the data a unit sees
does not depend on the device; only the arithmetic does. On the CPU a seed gives identical predictions run after
run; on CUDA it does not (cuDNN kernel choice, non-deterministic kernels, TF32 convolutions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from merkit.config import DEVICE_PATTERN, TrainConfig
from merkit.errors import ConfigError
from merkit.features import FeatureSet
from merkit.models.base import MerModel
from merkit.training.augment import get_augmentations, mirror
from merkit.training.mixing import mix_batch


def resolve_device(spec: str) -> torch.device:
    """The :class:`torch.device` that ``training.device`` names.

    ``cpu``; ``cuda`` (the current CUDA device); ``cuda:N``; ``auto`` (``cuda`` when
    :func:`torch.cuda.is_available`, else ``cpu``).

    Raises:
        ConfigError: ``spec`` is none of these, or names a CUDA device this machine does not have.
    """
    if not isinstance(spec, str) or not DEVICE_PATTERN.fullmatch(spec):
        raise ConfigError(f"training.device must be cpu, cuda, cuda:N or auto, got {spec!r}")
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"training.device is {spec!r} but PyTorch sees no CUDA device here "
                              f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}); "
                              "use training.device=cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"training.device is {spec!r} but only {torch.cuda.device_count()} CUDA device(s) "
                              "are visible")
    return device


def describe_device(device: torch.device) -> str:
    """``cpu``, or ``cuda:N (<GPU name>)``: the device as a run records it."""
    if device.type != "cuda":
        return str(device)
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def describe_environment() -> str:
    """One line naming what can change a CPU unit's floating-point results besides the code and the config.

    The host CPU's model, the vector instructions torch dispatches to on it, and the versions of Python and of the
    numerical packages merkit trains with. Two hosts of the same kind can differ in any of these, and over tens of
    epochs a difference moves a figure about as much as another seed (docs/results.md). Packages that are not
    installed are left out.
    """
    import platform
    from importlib.metadata import PackageNotFoundError, version

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    parts = [f"{cpu} ({torch.backends.cpu.get_cpu_capability()})", f"python {platform.python_version()}",
             f"torch {torch.__version__}"]
    for package in ("numpy", "transformers", "opencv-contrib-python-headless"):
        try:
            parts.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            continue
    return ", ".join(parts)


def module_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter or buffer; CPU for a model with neither."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def cpu_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model``'s state dict as contiguous CPU tensors, the form every merkit checkpoint is written in, so that a
    GPU-trained checkpoint loads (``map_location`` CPU) and predicts on a machine without a GPU."""
    return {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}


def _to_device(inputs: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in inputs.items()}


def _prefix_groups(model: nn.Module, param_groups: dict[str, dict]) -> list[tuple[str | None, list[nn.Parameter]]]:
    """Split ``model``'s trainable parameters by ``training.param_groups`` prefix (longest prefix wins).

    Returns ``[(prefix, parameters), ...]``: the default group (prefix ``None``) first when it is not empty, then
    one group per prefix in config order.

    Raises:
        ConfigError: a prefix matches no trainable parameter (the message lists the model's top-level names).
    """
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    prefixes = sorted(param_groups, key=len, reverse=True)
    members: dict[str | None, list[nn.Parameter]] = {None: [], **{prefix: [] for prefix in param_groups}}
    for name, p in named:
        members[next((prefix for prefix in prefixes if name.startswith(prefix)), None)].append(p)
    empty = [prefix for prefix in param_groups if not members[prefix]]
    if empty:
        tops = list(dict.fromkeys(name.split(".")[0] + "." for name, _ in named))
        raise ConfigError(f"training.param_groups prefix {empty[0]!r} matches no trainable parameter of "
                          f"{type(model).__name__}; its parameter names start with {tops[:12]}")
    return [(prefix, members[prefix]) for prefix in (None, *param_groups) if members[prefix]]


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """One optimizer (``training.optimizer``) over the trainable parameters.

    With ``training.param_groups``, torch parameter groups: first the default group (parameters under no prefix;
    ``training.lr`` and ``weight_decay``), then one group per prefix in config order, whose ``lr``,
    ``weight_decay`` and, for SGD, ``momentum`` override the defaults. A parameter belongs to the longest prefix
    its name (``model.named_parameters()``) starts with. The optimizer type is shared by every group. Each group
    records ``prefix`` (``None`` for the default group) and ``schedule`` (read by :func:`make_scheduler`).
    ``training.fused_optimizer`` passes ``fused=True`` to torch's optimizer (its fused CPU and CUDA kernels).

    Raises:
        ConfigError: unknown optimizer, a prefix that matches no trainable parameter, or
            ``training.fused_optimizer`` where torch has no fused kernel for the parameters' device or dtype.
    """
    if cfg.optimizer not in ("adam", "adamw", "sgd"):
        raise ConfigError(f"training.optimizer must be adam, adamw or sgd, got {cfg.optimizer!r}")
    if cfg.param_groups:
        params: list = []
        for prefix, members in _prefix_groups(model, cfg.param_groups):
            overrides = dict(cfg.param_groups.get(prefix, {}))
            schedule = overrides.pop("schedule", True)
            params.append({"params": members, **overrides, "prefix": prefix, "schedule": schedule})
    else:
        params = [p for p in model.parameters() if p.requires_grad]
    fused = {"fused": True} if cfg.fused_optimizer else {}  # torch's own default (None) otherwise
    try:
        if cfg.optimizer == "adam":
            return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
        if cfg.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, **fused)
    except RuntimeError as e:  # torch refuses fused=True on a device or dtype its kernels do not cover
        if not fused:
            raise
        raise ConfigError(f"training.fused_optimizer: torch {torch.__version__} has no fused {cfg.optimizer} "
                          f"kernel for these parameters ({str(e).splitlines()[0]}); leave it false") from e


def schedule_factor(cfg: TrainConfig) -> Callable[[int], float]:
    """The factor on the initial lr after ``e`` epochs, in closed form, of ``training.scheduler``."""
    p = cfg.scheduler_params
    if cfg.scheduler == "none":
        return lambda e: 1.0
    if cfg.scheduler == "cosine":
        t_max = p.get("t_max", cfg.epochs)
        return lambda e: 0.5 * (1.0 + math.cos(math.pi * e / t_max))
    if cfg.scheduler == "exponential":
        gamma, decay_epochs = p.get("gamma", 0.987), p.get("decay_epochs", cfg.epochs)
        return lambda e: gamma ** min(e, decay_epochs)
    if cfg.scheduler == "step":
        step_size, gamma = p.get("step_size", 10), p.get("gamma", 0.1)
        return lambda e: gamma ** (e // step_size)
    raise ConfigError(f"training.scheduler must be none, cosine, exponential or step, got {cfg.scheduler!r}")


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig):
    """Per-epoch learning-rate schedule, or ``None``.

    * ``cosine``: cosine annealing to 0 over ``epochs`` (``scheduler_params.t_max`` overrides).
    * ``exponential``: lr *= ``gamma`` each epoch for the first ``decay_epochs`` epochs (MMNet: 0.987, 50).
    * ``step``: lr *= ``gamma`` every ``step_size`` epochs.

    A schedule multiplies every parameter group's lr by the same factor, so groups keep their lr ratios (torch's
    schedulers work per group from each group's initial lr). A group with ``schedule: false``
    (``training.param_groups``) keeps its lr constant instead; the schedule is then one
    :class:`~torch.optim.lr_scheduler.LambdaLR` with the closed form of :func:`schedule_factor` per scheduled
    group, which for cosine agrees with :class:`~torch.optim.lr_scheduler.CosineAnnealingLR` up to rounding.
    """
    factor = schedule_factor(cfg)  # also rejects an unknown scheduler name
    p = cfg.scheduler_params
    if cfg.scheduler == "none":
        return None
    if not all(group.get("schedule", True) for group in optimizer.param_groups):
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, [factor if group.get("schedule", True) else (lambda e: 1.0) for group in optimizer.param_groups])
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=p.get("t_max", cfg.epochs))
    if cfg.scheduler == "exponential":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=p.get("step_size", 10), gamma=p.get("gamma", 0.1))


def class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Inverse-frequency weights ``N / (K * n_k)``; classes absent from training get weight 0."""
    counts = torch.bincount(labels, minlength=num_classes).float()
    weights = torch.where(counts > 0, labels.numel() / (num_classes * counts.clamp(min=1)), torch.zeros(()))
    return weights


def _batch_keys(model: MerModel, augment: list, train: FeatureSet) -> tuple[str, ...]:
    """The input keys a batch carries: the model's, and those the augmentation hooks read (temporal jitter reads
    frame windows; a hook declares them as ``extra_keys``).

    Raises:
        ConfigError: a hook reads an input the data does not provide.
    """
    for hook in augment:
        missing = [k for k in getattr(hook, "extra_keys", ()) if k not in train.inputs]
        if missing:
            raise ConfigError(f"augmentation {hook.__name__} reads the inputs {missing}, which the data does not "
                              f"provide (it has {sorted(train.inputs)}); for raw clips add onset_apex_frames to "
                              "data.motion.representations")
    return tuple(dict.fromkeys([*model.input_keys, *(k for hook in augment for k in getattr(hook, "extra_keys", ()))]))


@dataclass
class _Step:
    """One epoch of :func:`fit`: a pass over the training rows in batches (shuffled unless ``cfg.shuffle`` is off),
    with gradient accumulation."""

    model: MerModel
    train: FeatureSet
    keys: tuple[str, ...]
    augment: list
    criterion: nn.Module
    optimizer: torch.optim.Optimizer
    ema: Any
    cfg: TrainConfig
    device: torch.device
    generator: torch.Generator

    def epoch(self) -> torch.Tensor | None:
        """Run the epoch; return its mean training loss, a float64 scalar tensor on the device (``None`` when no
        batch ran): the loss each batch minimised (cross-entropy plus the auxiliary losses, before the division by
        ``grad_accumulation``), weighted by the batch's rows. Keeping it draws no random number and changes no
        gradient (``detach``); it stays on the device, so a caller that does not read it waits for nothing."""
        cfg, n = self.cfg, len(self.train)
        steps = max(1, math.ceil(n / cfg.batch_size))
        labels = self.train.labels
        self.model.train()
        order = torch.randperm(n, generator=self.generator) if cfg.shuffle else torch.arange(n)
        self.optimizer.zero_grad(set_to_none=True)
        losses, rows = [], []
        for step in range(steps):
            idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            if idx.numel() < 2 and n >= 2:  # a batch of one breaks batch norm; fold it into the previous step
                continue
            inputs = _to_device(self.train.batch(idx, self.keys), self.device)
            for hook in self.augment:
                inputs = hook(inputs, self.train.meta, self.generator)
            targets = labels.index_select(0, idx).to(self.device)
            mixed = mix_batch(inputs, cfg.mixup_alpha, cfg.cutmix_alpha, self.generator)
            if mixed is None:
                out = self.model(inputs)
                loss = self.criterion(out.logits, targets)
            else:
                out = self.model(mixed.inputs)
                loss = mixed.lam * self.criterion(out.logits, targets) + \
                    (1 - mixed.lam) * self.criterion(out.logits, targets[mixed.partner.to(self.device)])
            for aux in out.aux_losses.values():
                loss = loss + aux
            losses.append(loss.detach())
            rows.append(idx.numel())
            (loss / cfg.grad_accumulation).backward()
            if (step + 1) % cfg.grad_accumulation == 0 or step == steps - 1:
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                if self.ema is not None:
                    self.ema.update_parameters(self.model)
        if not losses:
            return None
        weights = torch.tensor(rows, dtype=torch.float64, device=self.device)
        return (torch.stack(losses).to(torch.float64) * weights).sum() / sum(rows)


def fit(
    model: MerModel,
    train: FeatureSet,
    cfg: TrainConfig,
    generator: torch.Generator,
    on_epoch_end: Callable[[int, MerModel], None] | None = None,
    progress: Callable[[int], None] | None = None,
    stop_after: int | None = None,
    on_train_loss: Callable[[int, float], None] | None = None,
) -> MerModel:
    """Train ``model`` on ``train`` for exactly ``cfg.epochs`` epochs, on ``cfg.device``.

    The model moves to the device (and stays there: :func:`predict_proba` follows it; save with
    :func:`cpu_state_dict`). Each batch moves to the device before the augmentation hooks, which therefore run on
    the device; their random draws come from ``generator``, a CPU generator.

    Args:
        generator: a CPU :class:`torch.Generator`; seeds the batch order and the augmentations, so a (seed, fold)
            unit is reproducible.
        on_epoch_end: called as ``on_epoch_end(epoch, model)`` after each epoch (1-based), model in eval mode.
        progress: called with the finished epoch number, for progress displays.
        stop_after: stop after this many epochs of the ``cfg.epochs`` schedule (the learning-rate schedule still
            spans ``cfg.epochs``), so the model equals the full run's model at that epoch (inner selection).
        on_train_loss: called as ``on_train_loss(epoch, loss)`` after each epoch (1-based) with the epoch's mean
            training loss (float, the loss below averaged over the epoch's training rows, in training mode, with
            the augmentations); reading it changes neither the weights nor the random draws.

    Loss: cross-entropy on ``ModelOutput.logits`` (class-weighted if ``cfg.class_weighted``, with
    ``cfg.label_smoothing``) plus the sum of ``ModelOutput.aux_losses``; with ``cfg.mixup_alpha`` or
    ``cfg.cutmix_alpha`` each batch is mixed after augmentation (:mod:`merkit.training.mixing`).

    A model that declares ``closed_form = True`` (the linear SVM) is fitted once on every training row by its
    ``fit_closed_form(inputs, labels, seed)`` (:func:`_fit_closed_form`) instead.

    With ``cfg.ema_decay > 0`` the exponential moving average of the weights and buffers is updated after every
    optimiser step; ``on_epoch_end`` sees the average, and ``model`` holds the average when ``fit`` returns.

    Raises:
        ConfigError: bad device, optimizer, scheduler, augmentation or parameter-group prefix.
    """
    device = resolve_device(cfg.device)
    if getattr(model, "closed_form", False):
        return _fit_closed_form(model, train, cfg, generator, on_epoch_end, progress, stop_after)
    augment = get_augmentations(cfg.augment, cfg.augment_params)
    keys = _batch_keys(model, augment, train)
    weight = class_weights(train.labels, len(train.classes)) if cfg.class_weighted else None
    criterion = nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing).to(device)  # the class
    # weights are a buffer of the loss
    model.to(device)  # before the optimizer, which then holds the device's parameters and state
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg)
    ema = None
    if cfg.ema_decay > 0:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
    step = _Step(model, train, keys, augment, criterion, optimizer, ema, cfg, device, generator)
    for epoch in range(1, (stop_after or cfg.epochs) + 1):
        loss = step.epoch()
        if on_train_loss is not None:
            on_train_loss(epoch, float("nan") if loss is None else loss.item())
        if scheduler is not None:
            scheduler.step()
        if on_epoch_end is not None:
            evaluated = model if ema is None else ema.module
            evaluated.eval()
            on_epoch_end(epoch, evaluated)
        if progress is not None:
            progress(epoch)
    if ema is not None:
        model.load_state_dict(ema.module.state_dict())
    model.eval()
    return model


def _fit_closed_form(model: MerModel, train: FeatureSet, cfg: TrainConfig, generator: torch.Generator,
                     on_epoch_end: Callable[[int, MerModel], None] | None, progress: Callable[[int], None] | None,
                     stop_after: int | None) -> MerModel:
    """:func:`fit` for a model trained in closed form (``closed_form = True``): one ``fit_closed_form`` on every
    training row, on the CPU, with a seed drawn from ``generator``. The model does not change from epoch to epoch,
    so ``on_epoch_end`` and ``progress`` see the same model after each of the ``stop_after or cfg.epochs`` epochs.

    Raises:
        ConfigError: augmentation, mixing or label smoothing is set: a closed-form fit takes none of them.
    """
    used = [k for k, on in (("training.augment", cfg.augment), ("training.mixup_alpha", cfg.mixup_alpha),
                            ("training.cutmix_alpha", cfg.cutmix_alpha),
                            ("training.label_smoothing", cfg.label_smoothing)) if on]
    if used:
        raise ConfigError(f"{type(model).__name__} is fitted in closed form and takes no {', '.join(used)}; "
                          "leave them unset")
    seed = int(torch.randint(0, 2 ** 31 - 1, (1,), generator=generator))
    model.to("cpu")
    model.fit_closed_form(train.batch(torch.arange(len(train)), model.input_keys), train.labels, seed)
    model.eval()
    for epoch in range(1, (stop_after or cfg.epochs) + 1):
        if on_epoch_end is not None:
            on_epoch_end(epoch, model)
        if progress is not None:
            progress(epoch)
    return model


def _mirror_averaged(model: MerModel, inputs: dict[str, torch.Tensor], meta) -> torch.Tensor:
    """(B, K) float64: the mean of the class probabilities of ``inputs`` and of their mirror
    (:func:`merkit.training.augment.mirror`)."""
    plain = torch.softmax(model(inputs).logits.double(), dim=1)
    mirrored = torch.softmax(model(mirror(inputs, meta)).logits.double(), dim=1)
    return (plain + mirrored) / 2


@torch.no_grad()
def predict_proba(model: MerModel, data: FeatureSet, batch_size: int = 256,
                  device: str | torch.device | None = None, tta: str = "none") -> np.ndarray:
    """Class probabilities, float64 numpy array (N, num_classes) on the CPU, rows in ``data.table`` order.

    Args:
        device: where to run: a ``training.device`` string or a :class:`torch.device`; the model moves there.
            ``None`` (default) runs where the model already is (after :func:`fit`: ``training.device``).
        tta: ``none``, or ``flip`` (``protocol.tta``): the mean of the probabilities of each input and of its
            left-right mirror (:func:`merkit.training.augment.mirror`, with ``data.meta``'s flow channels).

    Raises:
        ConfigError: a device string that :func:`resolve_device` rejects, or an unknown ``tta``.
    """
    if tta not in ("none", "flip"):
        raise ConfigError(f"protocol.tta must be none or flip, got {tta!r}")
    if device is None:
        device = module_device(model)
    elif isinstance(device, str):
        device = resolve_device(device)
    model.to(device).eval()
    out = []
    for start in range(0, len(data), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data)))
        inputs = _to_device(data.batch(idx, model.input_keys), device)
        if tta == "flip":
            out.append(_mirror_averaged(model, inputs, data.meta).cpu().numpy())
            continue
        logits = model(inputs).logits
        out.append(torch.softmax(logits.double(), dim=1).cpu().numpy())
    return np.concatenate(out, axis=0) if out else np.zeros((0, len(data.classes)))
