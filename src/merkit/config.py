"""Run configuration: typed dataclasses, loaded from YAML, with dotted command-line overrides.

A run is fully described by a :class:`RunConfig`; ``merkit evaluate`` writes the resolved config into the run
folder (``config.yaml``) so that every number can be traced back to it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from merkit.config_files import resolve_config
from merkit.errors import ConfigError
from merkit.face.clip import FaceConfig
from merkit.inputs.record import ON_ERROR, Preprocessing
from merkit.motion.stage import MotionConfig

SELECTIONS = ("last", "inner", "paper")
DATA_KINDS = ("flow_folder", "raw")
#: ``training.device`` values: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
DEVICE_PATTERN = re.compile(r"cpu|auto|cuda(:\d+)?")
#: Keys a ``training.param_groups`` entry may override, with their types.
PARAM_GROUP_KEYS: dict[str, type] = {"lr": float, "weight_decay": float, "momentum": float, "schedule": bool}


@dataclass
class DataConfig:
    """Where the samples come from, how they are labelled, and how their inputs are made.

    ``kind``:

    * ``flow_folder``: precomputed onset->apex flow images in the MEGC2019 composite's format in ``path``
      (:func:`merkit.inputs.composite.read_composite`, with ``channels``, ``file_channels``, ``with_apex``,
      ``apex_size``, ``with_au_boxes`` and ``with_face_points``).
    * ``raw``: a release in ``path`` loaded by name (``dataset``: ``casme2``, ``samm``, ``smic``, ``synthetic``,
      ...), then :func:`merkit.inputs.build.build_inputs`, cached under ``cache`` (default
      :func:`merkit.inputs.build.release_cache_dir`) with ``preprocess_workers`` processes. A clip that fails on
      bad data is skipped with a counted warning (``on_error: skip``) or stops the run (``raise``).

    ``face`` and ``motion`` make the preprocessing record (:attr:`preprocessing`): how frames become inputs in a
    raw run, and how a flow folder's images were made, so that ``merkit predict`` can rebuild them. Their defaults
    are the composite's recipe. ``benchmark`` names the published results the report lists (e.g.
    ``megc2019-composite``).
    """

    kind: str = "flow_folder"
    path: str | None = None
    benchmark: str | None = None
    scheme: str = "megc2019-3class"
    channels: list[str] = field(default_factory=lambda: ["u", "v", "strain"])
    file_channels: list[str] = field(default_factory=lambda: ["u", "v", "strain"])
    with_apex: bool = False
    apex_size: int | None = None
    with_au_boxes: bool = False
    with_face_points: bool = False
    dataset: str | None = None
    face: FaceConfig = field(default_factory=FaceConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    cache: str | None = None
    preprocess_workers: int = 1
    on_error: str = "skip"

    @property
    def preprocessing(self) -> Preprocessing:
        """The preprocessing record of ``face`` and ``motion``."""
        return Preprocessing(self.face, self.motion)


@dataclass
class ModelConfig:
    """Which model, which preset, and parameter overrides of the preset."""

    name: str = "ststnet"
    preset: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainConfig:
    """Optimisation, for a fixed number of epochs; the trainer never sees test data.

    Attributes:
        optimizer: ``adam``, ``adamw`` or ``sgd``; scheduler: ``none``, ``cosine``, ``exponential`` or ``step``
            (:func:`merkit.training.engine.make_scheduler`).
        augment: training hooks by name (:mod:`merkit.training.augment`).
        augment_params: ``{hook name: {parameter: value}}``, the keyword parameters of hooks listed in ``augment``
            (``{rotate: {degrees: 4}, random_crop: {padding: 4}, color_jitter: {strength: 0.2}}``); checked when
            the config loads (:func:`merkit.training.augment.get_augmentations`).
        device: ``cpu`` (default, bit-reproducible per machine), ``cuda``, ``cuda:N`` or ``auto``; not part of
            :meth:`RunConfig.result_hash` (``run.json`` records it).
        param_groups: ``{parameter-name prefix: {lr, weight_decay, momentum, schedule}}``, per-module optimiser
            settings (:func:`merkit.training.engine.make_optimizer`).
        ema_decay: ``0`` (default) or ``d`` in (0, 1): predict with an exponential moving average of the weights,
            updated after every step (:class:`torch.optim.swa_utils.AveragedModel`); in none of the papers.
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
    augment_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    grad_accumulation: int = 1
    eval_batch_size: int = 256
    device: str = "cpu"  # cpu | cuda | cuda:N | auto; see merkit.training.engine.resolve_device
    param_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    ema_decay: float = 0.0


@dataclass
class ProtocolConfig:
    """The evaluation protocol: folds, model selection, seeds, and where units run.

    Attributes:
        split: ``loso`` (default; one fold per subject), ``lodo`` (one fold per dataset, trained on the others) or
            ``train-test`` (train on ``train_on``'s datasets, test on ``test_on``'s); :mod:`merkit.training.loso`.
        selection: ``last`` (default, honest: the model after ``training.epochs``); ``inner`` (honest: the epoch
            count, and the recipe among ``recipes``, chosen by the pooled UF1 of ``inner_folds`` subject-disjoint
            folds of the training subjects, :mod:`merkit.training.selection`); or ``paper`` (the best epoch per test
            subject, as the papers' code does: optimistic, and labelled so in every output).
        inner_folds: k of ``inner`` selection. recipes: named recipes for ``inner``, ``{name: [key=value, ...]}``
            overrides of this config (``training.*`` and ``model.params.*``); empty: the config's own recipe.
        ensemble: K: each unit averages the class probabilities of K models trained with K seeds.
        seeds: one run per seed. workers: parallel units (Ray); threads_per_fold: torch threads (and Ray CPUs) per
            unit; gpus_per_fold: GPU share per unit on CUDA (``0``: ``1 / workers``).
        address: a Ray cluster to run units and preprocessing on (also ``--address`` or ``$RAY_ADDRESS``);
            ``None`` runs locally. max_retries: times a unit is rerun after its worker or node dies.
        save_checkpoints: keep each unit's weights.
        record_epochs: a diagnostic: also save the held-out subject's predictions after every epoch, which
            ``merkit report`` plots as the test-set learning curve. The curve never enters the reported figures,
            and an epoch count read off it was chosen on the test subjects.
    """

    split: str = "loso"
    train_on: list[str] = field(default_factory=list)
    test_on: list[str] = field(default_factory=list)
    selection: str = "last"
    inner_folds: int = 5
    recipes: dict[str, list[str]] = field(default_factory=dict)
    ensemble: int = 1
    seeds: list[int] = field(default_factory=lambda: [0])
    workers: int = 1
    threads_per_fold: int = 1
    gpus_per_fold: float = 0.0
    address: str | None = None
    max_retries: int = 3
    save_checkpoints: bool = True
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
        if self.data.kind not in DATA_KINDS:
            raise ConfigError(f"data.kind must be one of {DATA_KINDS}, got {self.data.kind!r}")
        if self.data.on_error not in ON_ERROR:
            raise ConfigError(f"data.on_error must be one of {ON_ERROR}, got {self.data.on_error!r}")
        if self.data.preprocess_workers < 1:
            raise ConfigError("data.preprocess_workers must be >= 1")
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
        if len(set(self.protocol.seeds)) != len(self.protocol.seeds):
            raise ConfigError(f"protocol.seeds lists a seed twice: {self.protocol.seeds}")
        if self.protocol.workers < 1 or self.protocol.threads_per_fold < 1:
            raise ConfigError("protocol.workers and protocol.threads_per_fold must be >= 1")
        self._validate_protocol()
        self._validate_device()
        from merkit.training.augment import get_augmentations

        get_augmentations(self.training.augment, self.training.augment_params)
        self.training.param_groups = _checked_param_groups(self.training.param_groups, self.training.optimizer)
        return self

    def _validate_protocol(self) -> None:
        from merkit.training.loso import SPLITS

        p = self.protocol
        if p.split not in SPLITS:
            raise ConfigError(f"protocol.split must be one of {SPLITS}, got {p.split!r}")
        if (p.split == "train-test") != bool(p.train_on or p.test_on):
            raise ConfigError("protocol.train_on and protocol.test_on go with protocol.split train-test, and it "
                              "needs both")
        if p.ensemble < 1 or p.inner_folds < 2 or p.max_retries < 0:
            raise ConfigError("protocol.ensemble must be >= 1, protocol.inner_folds >= 2, protocol.max_retries >= 0")
        if p.recipes and p.selection != "inner":
            raise ConfigError("protocol.recipes are chosen by protocol.selection inner; set it, or drop the recipes")
        if p.selection == "paper" and (p.ensemble > 1):
            raise ConfigError("protocol.ensemble > 1 averages fixed-epoch models; it does not go with selection paper")
        for name, overrides in p.recipes.items():
            bad = [o for o in overrides if not o.startswith(("training.", "model.params."))]
            if bad:
                raise ConfigError(f"protocol.recipes[{name!r}] may override training.* and model.params.* only, "
                                  f"got {bad}")
            self.with_overrides(overrides)  # every recipe must make a valid config

    def with_overrides(self, overrides: list[str]) -> "RunConfig":
        """A copy of this config with ``key.sub=value`` overrides applied, validated.

        Raises:
            ConfigError: as :func:`load_config`.
        """
        data = self.to_dict()
        data["protocol"]["recipes"] = {}
        return config_from_dict(_apply_overrides(data, overrides))

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
        """Plain nested dicts and lists (what ``config.yaml`` holds)."""
        return _plain(dataclasses.asdict(self))

    def result_hash(self) -> str:
        """Hash of everything that changes a fold's predictions.

        Excluded: ``name``; ``data.path`` (the data fingerprint checks the data instead), ``data.cache``,
        ``data.preprocess_workers`` and ``data.on_error`` (where and how inputs are computed; skipped clips change
        the fingerprint); ``protocol.seeds`` (each seed is its own unit), ``protocol.workers``,
        ``protocol.save_checkpoints``, ``protocol.gpus_per_fold``, ``protocol.address``,
        ``protocol.max_retries``, ``protocol.record_epochs`` and ``training.device`` (where a unit runs;
        ``run.json`` records the devices and machines).
        """
        d = self.to_dict()
        d.pop("name")
        for k in ("path", "cache", "preprocess_workers", "on_error"):
            d["data"].pop(k)
        for k in ("seeds", "workers", "save_checkpoints", "gpus_per_fold", "record_epochs", "address",
                  "max_retries"):
            d["protocol"].pop(k)
        d["training"].pop("device")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


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
        checked[prefix] = {k: coerce(v, PARAM_GROUP_KEYS[k], f"{where}[{k!r}]") for k, v in overrides.items()}
    return checked


def coerce(value: Any, hint: Any, key: str) -> Any:
    """``value`` checked against the declared type ``hint`` of config key ``key``, and converted where YAML is
    loose: ``1e-3`` (a string in YAML 1.1) and integers become floats for a float key, a list becomes a tuple for
    a tuple key. A boolean is never a number and a number never a boolean.

    Raises:
        ConfigError: the value does not fit the type; the message names the key, the type and the value.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return coerce(value, option, key)
            except ConfigError as error:
                errors.append(error)
        raise errors[0]
    if hint is Any:
        return value

    def fail() -> ConfigError:
        name = getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
        return ConfigError(f"config key {key} must be {name}, got {value!r}")

    if hint is bool:
        if isinstance(value, bool):
            return value
        raise fail()
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise fail()
    if hint is float:
        if isinstance(value, bool):
            raise fail()
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise fail() from None
        raise fail()
    if hint is str:
        if isinstance(value, str):
            return value
        raise fail()
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise fail()
        item = args[0] if args else Any
        items = [coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise fail()
        return dict(value)
    if dataclasses.is_dataclass(hint):
        return _from_dict(hint, value, f"{key}.")
    raise fail()


def _from_dict(cls, data: Any, prefix: str = ""):
    """Build dataclass ``cls`` from a mapping, every value checked by :func:`coerce`.

    Raises:
        ConfigError: not a mapping, unknown keys, a value of the wrong type, or a value the class rejects.
    """
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a mapping, got {data!r}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown config keys {[prefix + k for k in unknown]}; {prefix.rstrip('.') or 'config'} "
                          f"has {sorted(known)}")
    hints = typing.get_type_hints(cls)
    kwargs = {name: coerce(value, hints[name], prefix + name) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: {error}") from error


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    """Build a :class:`RunConfig` from nested dicts and validate it.

    Raises:
        ConfigError: unknown keys, values of the wrong type, or invalid values; the message names the key.
    """
    return _from_dict(RunConfig, data).validate()


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Load a YAML config (or the defaults when ``path`` is None) and apply ``key.sub=value`` overrides.

    ``path`` is a file, or the name of a config shipped with merkit (``"megc2019/ststnet"``:
    :func:`merkit.config_files.resolve_config`), which works from any folder.

    Override values are parsed as YAML (``training.epochs=50``, ``protocol.seeds=[0,1,2]``,
    ``data.face.size=112``) and then checked against the key's declared type, like the file's values.

    Raises:
        ConfigError: the file is missing or not valid YAML, an unknown shipped config name (with the closest
            names), unknown keys, malformed overrides, or invalid values.
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = resolve_config(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            raise ConfigError(f"{path} is not valid YAML: {str(error).splitlines()[0]}") from error
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a mapping of config sections, got {type(data).__name__}")
    return config_from_dict(_apply_overrides(data, overrides or []))


def _apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``data`` with each ``key.sub=value`` override set (the value parsed as YAML).

    Raises:
        ConfigError: a malformed override, a key under a value that is not a section, or a value that is not YAML.
    """
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        key, raw = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError as error:
            raise ConfigError(f"override {item!r}: the value is not valid YAML ({error})") from error
    return data


def dump_config(config: RunConfig, path: str | Path) -> None:
    """Write ``config`` as YAML to ``path`` atomically."""
    from merkit.files import write_text

    write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
