"""Run configuration: typed dataclasses, loaded from YAML, with dotted command-line overrides.

A run is fully described by a :class:`RunConfig`; ``merkit evaluate`` writes the resolved config into the run
folder (``config.yaml``) so that every number can be traced back to it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from merkit.errors import ConfigError

SELECTIONS = ("last", "paper")
#: ``training.device`` values: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
DEVICE_PATTERN = re.compile(r"cpu|auto|cuda(:\d+)?")
#: Keys a ``training.param_groups`` entry may override, with their types.
PARAM_GROUP_KEYS: dict[str, type] = {"lr": float, "weight_decay": float, "momentum": float, "schedule": bool}


@dataclass
class DataConfig:
    """Where the samples come from and how they are labelled.

    ``kind``:

    * ``flow_folder``: precomputed onset->apex flow images with a manifest (e.g. the MEGC2019 composite), in
      ``path``.
    * ``raw``: a dataset release in ``path`` loaded by name (``dataset``: a :mod:`merkit.datasets.registry` name such
      as ``casme2``, ``samm``, ``smic`` or ``synthetic``), then the face stage (``face``: fields of
      :class:`merkit.face.clip.FaceConfig`) and the motion stage (``motion``: fields of
      :class:`merkit.motion.stage.MotionConfig`), both cached under ``cache`` (default
      :func:`default_cache_dir` / ``preprocess`` / one folder per release, see
      :func:`merkit.api.release_cache_dir`) and computed with ``preprocess_workers`` processes.

    ``benchmark``: the name under which published results are looked up for the report (``published_results.csv``
    in the package), e.g. ``megc2019-composite``; ``None`` shows none.
    """

    kind: str = "flow_folder"
    path: str | None = None
    benchmark: str | None = None  # e.g. "megc2019-composite": the report lists published results for it
    scheme: str = "megc2019-3class"
    channels: list[str] = field(default_factory=lambda: ["u", "v", "strain"])
    file_channels: list[str] = field(default_factory=lambda: ["u", "v", "strain"])
    with_apex: bool = False
    apex_size: int | None = None
    with_au_boxes: bool = False  # flow_folder: AU boxes from landmarks fitted on the apex crops (FRL-DGT au-input)
    dataset: str | None = None
    face: dict[str, Any] = field(default_factory=dict)
    motion: dict[str, Any] = field(default_factory=dict)
    cache: str | None = None
    preprocess_workers: int = 1


@dataclass
class ModelConfig:
    """Which model, which preset, and parameter overrides of the preset."""

    name: str = "ststnet"
    preset: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainConfig:
    """Optimisation: a fixed number of epochs, always; the trainer never looks at test data (see protocol).

    ``device``: where the model trains and predicts: ``cpu`` (default), ``cuda``, ``cuda:N``, or ``auto`` (CUDA when
    available, else CPU). Inputs stay on the CPU and move batch by batch. CPU runs are bit-reproducible for a
    given seed and thread count; CUDA runs are not (cuDNN picks kernels, some of them non-deterministic, and
    convolutions may use TF32), and differ from CPU runs in the low digits. The device is not part of
    :meth:`RunConfig.result_hash`: a run records the devices it used in ``run.json`` instead.

    ``param_groups``: per-module optimizer settings, ``{parameter-name prefix: {key: value}}`` with keys
    ``lr``, ``weight_decay``, ``momentum`` (SGD only) and ``schedule`` (``false`` keeps the group's lr constant
    while the scheduler moves the others), e.g. ``{"dgm.": {"lr": 0.002}}`` for FRL-DGT's displacement generator.
    A parameter joins the group of the longest prefix its name starts with, else the default group
    (``lr``, ``weight_decay``); see :func:`merkit.training.engine.make_optimizer`.

    ``ema_decay``: ``0`` (default) trains and evaluates the weights as they are after the last step. A value
    ``d`` in ``(0, 1)`` keeps an exponential moving average of the weights and batch-norm statistics, updated
    after every optimiser step (``avg = d * avg + (1 - d) * weights``, Polyak averaging, with
    :class:`torch.optim.swa_utils.AveragedModel`); the average is what the model predicts with, after every epoch
    and at the end. Its horizon is about ``1 / (1 - d)`` steps. Not in any of the four papers.
    """

    epochs: int = 100
    batch_size: int = 64
    optimizer: str = "adam"  # adam | adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    scheduler: str = "none"  # none | cosine | exponential | step
    scheduler_params: dict[str, Any] = field(default_factory=dict)
    class_weighted: bool = False
    augment: list[str] = field(default_factory=list)
    grad_accumulation: int = 1
    eval_batch_size: int = 256
    device: str = "cpu"  # cpu | cuda | cuda:N | auto; see merkit.training.engine.resolve_device
    param_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    ema_decay: float = 0.0


@dataclass
class ProtocolConfig:
    """Leave-one-subject-out protocol.

    ``selection``:
      * ``last`` (default, honest): train for ``training.epochs`` and evaluate the last epoch.
      * ``paper``: evaluate the test subject after every epoch and keep the best epoch *per test subject*, as the
        papers' code does. It is optimistic, and every output of such a run says so.

    ``gpus_per_fold``: the GPU share each Ray fold worker requests when ``training.device`` resolves to CUDA and
    ``workers > 1`` (Ray then sets the worker's visible GPU, so the device must be ``cuda`` or ``auto``, not
    ``cuda:N``). ``0`` (default) means ``1 / workers``: the workers share one GPU. ``1`` gives each fold a GPU of
    its own. Ignored on the CPU and when ``workers == 1``.

    ``record_epochs``: a diagnostic. Also write the held-out subject's predictions after every epoch to
    ``<run>/epochs/seed<S>/<fold>.csv``; ``merkit report`` then adds the pooled test-set learning curve. The
    reported figures do not change, and the curve is never used for them: an epoch count read off it is chosen on
    the test subjects, so a recipe picked that way must be reported on seeds it was not picked on.
    """

    selection: str = "last"
    seeds: list[int] = field(default_factory=lambda: [0])
    workers: int = 1
    threads_per_fold: int = 1
    save_checkpoints: bool = True
    gpus_per_fold: float = 0.0
    record_epochs: bool = False


@dataclass
class RunConfig:
    name: str = "run"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainConfig = field(default_factory=TrainConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)

    def validate(self) -> "RunConfig":
        """Check value ranges; raise :class:`ConfigError` naming the bad key."""
        if self.protocol.selection not in SELECTIONS:
            raise ConfigError(f"protocol.selection must be one of {SELECTIONS}, got {self.protocol.selection!r}")
        if self.training.epochs < 1:
            raise ConfigError("training.epochs must be >= 1")
        if self.training.batch_size < 1:
            raise ConfigError("training.batch_size must be >= 1")
        if not 0.0 <= self.training.ema_decay < 1.0:
            raise ConfigError(f"training.ema_decay must lie in [0, 1), got {self.training.ema_decay}")
        if not self.protocol.seeds:
            raise ConfigError("protocol.seeds must list at least one seed")
        if self.protocol.workers < 1 or self.protocol.threads_per_fold < 1:
            raise ConfigError("protocol.workers and protocol.threads_per_fold must be >= 1")
        self._validate_device()
        self.training.param_groups = _checked_param_groups(self.training.param_groups, self.training.optimizer)
        return self

    def _validate_device(self) -> None:
        device, gpus = self.training.device, self.protocol.gpus_per_fold
        if not isinstance(device, str) or not DEVICE_PATTERN.fullmatch(device):
            raise ConfigError(f"training.device must be cpu, cuda, cuda:N or auto, got {device!r}")
        if not 0 <= gpus <= 1:
            raise ConfigError(f"protocol.gpus_per_fold must be in [0, 1] (a share of one GPU), got {gpus}")
        if gpus > 0 and device == "cpu":
            raise ConfigError("protocol.gpus_per_fold > 0 needs training.device cuda or auto, not cpu")
        if device.startswith("cuda:") and self.protocol.workers > 1:
            raise ConfigError(f"training.device {device!r} with protocol.workers > 1: Ray gives each fold worker "
                              "its own visible GPU, so use training.device=cuda (and protocol.gpus_per_fold)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def result_hash(self) -> str:
        """Hash of everything that changes a fold's predictions.

        Excluded: ``name``, ``data.path`` (checked by the data fingerprint instead), ``data.cache`` and
        ``data.preprocess_workers`` (where and how fast features are computed), ``protocol.seeds`` (each seed is
        its own unit), ``protocol.workers``, ``protocol.save_checkpoints``, ``protocol.gpus_per_fold``,
        ``protocol.record_epochs`` and ``training.device`` (where a unit runs; ``run.json`` records the devices).
        ``training.param_groups`` and ``training.ema_decay`` count only when set, so configs without them keep the
        hash they had before the keys existed.
        """
        d = self.to_dict()
        d.pop("name")
        for k in ("path", "cache", "preprocess_workers"):
            d["data"].pop(k)
        for k in ("seeds", "workers", "save_checkpoints", "gpus_per_fold", "record_epochs"):
            d["protocol"].pop(k)
        d["training"].pop("device")
        # Keys added after runs existed count only when set, so those runs keep their hash and resume.
        if not d["training"]["param_groups"]:
            d["training"].pop("param_groups")
        if not d["training"]["ema_decay"]:
            d["training"].pop("ema_decay")
        if not d["data"]["with_au_boxes"]:
            d["data"].pop("with_au_boxes")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _checked_param_groups(groups: Any, optimizer: str) -> dict[str, dict[str, Any]]:
    """``training.param_groups`` with its values coerced (YAML 1.1 reads ``1e-3`` as a string).

    Raises:
        ConfigError: not a mapping of prefix -> mapping, an unknown override key, a value of the wrong type, or
            ``momentum`` with an optimizer other than SGD.
    """
    if not isinstance(groups, dict):
        raise ConfigError(f"training.param_groups must map parameter-name prefixes to settings, got {groups!r}")
    checked = {}
    for prefix, overrides in groups.items():
        where = f"training.param_groups[{prefix!r}]"
        if not isinstance(prefix, str) or not prefix:
            raise ConfigError(f"training.param_groups keys must be non-empty parameter-name prefixes, got {prefix!r}")
        if not isinstance(overrides, dict):
            raise ConfigError(f"{where} must be a mapping such as {{lr: 0.002}}, got {overrides!r}")
        unknown = sorted(set(overrides) - set(PARAM_GROUP_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown keys {unknown}; known: {sorted(PARAM_GROUP_KEYS)}")
        if "momentum" in overrides and optimizer != "sgd":
            raise ConfigError(f"{where}: momentum applies to training.optimizer sgd only, not {optimizer!r}")
        bad = [k for k, v in overrides.items() if v is None or isinstance(v, bool) != (PARAM_GROUP_KEYS[k] is bool)]
        if bad:
            raise ConfigError(f"{where}: {bad[0]} must be {PARAM_GROUP_KEYS[bad[0]].__name__}, "
                              f"got {overrides[bad[0]]!r}")
        checked[prefix] = {k: _coerce(v, PARAM_GROUP_KEYS[k], f"{where}[{k!r}]") for k, v in overrides.items()}
    return checked


def default_cache_dir() -> Path:
    """Where merkit caches derived data: ``$MERKIT_CACHE``, else ``$XDG_CACHE_HOME/merkit``, else
    ``~/.cache/merkit``."""
    if os.environ.get("MERKIT_CACHE"):
        return Path(os.environ["MERKIT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "merkit"


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Coerce YAML scalars to the field's type: YAML 1.1 reads ``1e-3`` as a string, for instance."""
    if value is None:
        return None
    target = {float: float, int: int, bool: bool}.get(hint)
    if target is None and typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        target = args[0] if len(args) == 1 and args[0] in (float, int) else None
    if target is None or isinstance(value, target) and not (target is int and isinstance(value, bool)):
        return value
    try:
        if target is bool:
            raise ValueError
        if target is float and isinstance(value, (int, str)):
            return float(value)
        if target is int and isinstance(value, str):
            return int(value)
    except ValueError:
        pass
    raise ConfigError(f"config key {key} must be {target.__name__}, got {value!r}")


def _from_dict(cls, data: dict[str, Any], prefix: str = ""):
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'} must be a mapping, got {type(data).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"unknown config keys {[prefix + k for k in unknown]}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        f = known[name]
        if dataclasses.is_dataclass(f.default_factory if f.default_factory is not dataclasses.MISSING else None):
            kwargs[name] = _from_dict(f.default_factory, value, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(value, hints[name], prefix + name)
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    """Build a :class:`RunConfig` from nested dicts; unknown keys raise :class:`ConfigError`."""
    return _from_dict(RunConfig, data).validate()


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Load a YAML config (or the defaults when ``path`` is None) and apply ``key.sub=value`` overrides.

    Override values are parsed as YAML (``training.epochs=50``, ``protocol.seeds=[0,1,2]``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ConfigError: unknown keys, malformed overrides or invalid values.
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        data = yaml.safe_load(path.read_text()) or {}
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        key, raw = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
        node[parts[-1]] = yaml.safe_load(raw)
    return config_from_dict(data)


def dump_config(config: RunConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
