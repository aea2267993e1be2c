"""What every merkit model shares: named inputs in, logits (and named auxiliary losses) out; presets; the registry.

A model subclasses :class:`MerModel`, declares ``input_keys`` (keys of :mod:`merkit.features`), and splits its
forward pass into ``forward_features`` (inputs -> features, for probing and visualisation) and ``forward_head``
(features -> logits). Every model keeps that contract: ``forward_head(forward_features(inputs))`` are the logits, so
a caller (``merkit predict``) never needs to know which model it runs. Models with auxiliary losses (FRL-DGT's
displacement losses) return them by name in :class:`ModelOutput`; the trainer adds them to the classification loss
and knows nothing about the paper.

The registry, in the style of timm: a model class is decorated with :func:`register_model` (its name, its
``PRESETS: dict[str, Config]`` with a ``paper`` and a small ``cpu`` preset, its paper);
:func:`create_model` builds one by name and preset, :func:`list_models` lists the names, and :func:`model_info`
gives a model's facts (input keys, ground-truth inputs, notes, presets, paper) from its config without building it
(:meth:`MerModel.facts`). :func:`build_model` is the older spelling of :func:`create_model`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, ClassVar, Mapping, TypeVar

import torch
from torch import nn

from merkit.boundary import did_you_mean
from merkit.errors import ConfigError
from merkit.features import require_inputs

#: Model name -> the module that registers it (filled by :func:`register_model`; kept for older callers).
MODEL_MODULES: dict[str, str] = {}


@dataclass(frozen=True)
class ModelFacts:
    """What a configured model takes and what a report must say about it, known without building the model.

    Attributes:
        input_keys: the model-input keys it consumes (:mod:`merkit.features`), in order.
        uses_ground_truth_inputs: the input keys built from annotations rather than video (every report flags them).
        notes: facts a report must show next to the model's numbers (e.g. "FRL-DGT ablation M0").
    """

    input_keys: tuple[str, ...]
    uses_ground_truth_inputs: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass
class ModelOutput:
    """logits: (B, num_classes) float32; aux_losses: name -> scalar tensor, already weighted."""

    logits: torch.Tensor
    aux_losses: dict[str, torch.Tensor] = field(default_factory=dict)


class MerModel(nn.Module):
    """Base class: ``forward(inputs) -> ModelOutput`` over a ``{key: tensor}`` mapping."""

    #: The model-input keys the model consumes (an instance may set its own, from its config).
    input_keys: ClassVar[tuple[str, ...]] = ()
    #: Input keys built from annotations rather than video (CVA+FPF's ground-truth AUs): every report flags them.
    uses_ground_truth_inputs: tuple[str, ...] = ()
    #: Facts a report must show about the model (e.g. SLSTT's "not ImageNet-pretrained").
    notes: tuple[str, ...] = ()

    @classmethod
    def facts(cls, config: Any) -> ModelFacts:
        """The facts of a model built with ``config``, without building it. A model whose inputs or notes depend
        on its config overrides this (and its instances set ``input_keys`` etc. from it); the default is the
        class's declared ``input_keys``, ``uses_ground_truth_inputs`` and ``notes``."""
        return ModelFacts(tuple(cls.input_keys), tuple(cls.uses_ground_truth_inputs), tuple(cls.notes))

    @classmethod
    def from_config(cls, num_classes: int, config: Any) -> "MerModel":
        """The model for ``num_classes`` classes and a resolved config (what :func:`create_model` calls)."""
        return cls(num_classes, config)

    def forward_features(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> ModelOutput:
        require_inputs(inputs, self.input_keys)
        return ModelOutput(self.forward_head(self.forward_features(inputs)))


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def preset_config(presets: Mapping[str, Any], preset: str | None, params: Mapping[str, Any], name: str):
    """The config of ``preset`` (``paper`` when ``None``) with ``params`` applied; YAML lists become tuples.

    Raises:
        ConfigError: an unknown preset or parameter; the one-line message suggests the closest known name and lists
            the known ones.
    """
    if preset is not None and preset not in presets:
        raise ConfigError(f"unknown {name} preset {preset!r}{did_you_mean(preset, presets)}; "
                          f"known: {sorted(presets)}")
    base = presets[preset or "paper"]
    known = {f.name for f in fields(base)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ConfigError(f"unknown {name} parameters {unknown} (model.params){did_you_mean(unknown[0], known)}; "
                          f"known: {sorted(known)}")
    return replace(base, **{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})


# ----------------------------------------------------------------------------------------------------------------
# The registry


@dataclass(frozen=True)
class RegisteredModel:
    """One registry entry: ``name`` builds ``cls`` from one of ``presets`` (``title`` names it in messages)."""

    name: str
    cls: type
    presets: Mapping[str, Any]
    title: str
    paper: str


@dataclass(frozen=True)
class ModelInfo:
    """A model's facts, from the registry and its config, without building it (:func:`model_info`).

    Attributes:
        name: registry name (``model.name``); title: the paper's name for it; paper: the citation.
        model_class: the class, as ``module.Class``.
        presets: every preset's config (frozen dataclasses, the paper's values first), by preset name.
        preset: the preset resolved (``paper`` when none was given); config: that preset with the overrides.
        input_keys, uses_ground_truth_inputs, notes: :class:`ModelFacts` of ``config``.
    """

    name: str
    title: str
    paper: str
    model_class: str
    presets: Mapping[str, Any]
    preset: str
    config: Any
    input_keys: tuple[str, ...]
    uses_ground_truth_inputs: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def config_record(self) -> dict[str, Any]:
        """Every field of ``config`` as JSON values: what a checkpoint records as its ``model_config``."""
        import dataclasses
        import json

        return json.loads(json.dumps(dataclasses.asdict(self.config), default=str))


_REGISTRY: dict[str, RegisteredModel] = {}

M = TypeVar("M", bound=type)


def register_model(name: str, *, presets: Mapping[str, Any], paper: str,
                   title: str | None = None) -> Callable[[M], M]:
    """Class decorator: register a :class:`MerModel` subclass under ``name`` with its ``presets`` (``paper`` among
    them) and the ``paper`` it implements. The class is built as ``cls.from_config(num_classes, config)``.

    Raises:
        ValueError: ``name`` is already registered to another class, or ``presets`` has no ``paper`` entry.
    """
    if "paper" not in presets:
        raise ValueError(f"model {name!r}: presets need a 'paper' entry, got {sorted(presets)}")

    def decorator(cls: M) -> M:
        known = _REGISTRY.get(name)
        if known is not None and (known.cls.__module__, known.cls.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ValueError(f"model name {name!r} is already registered to {known.cls.__qualname__}")
        _REGISTRY[name] = RegisteredModel(name, cls, presets, title or cls.__name__, paper)
        MODEL_MODULES[name] = cls.__module__
        return cls

    return decorator


def list_models(pattern: str = "*") -> list[str]:
    """The registered model names matching the shell-style ``pattern`` (:mod:`fnmatch`), sorted."""
    import fnmatch

    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def registered(name: str) -> RegisteredModel:
    """The registry entry of ``name``.

    Raises:
        ConfigError: unknown name; the one-line message suggests the closest one and lists the known ones.
    """
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r} (model.name){did_you_mean(name, _REGISTRY)}; "
                          f"known: {list_models()}")
    return _REGISTRY[name]


def model_info(name: str, preset: str | None = None, **params: Any) -> ModelInfo:
    """The facts of model ``name`` with ``preset`` (``paper`` when ``None``) and ``params``, without building it.

    Raises:
        ConfigError: unknown model, preset or parameter (one line, with a did-you-mean).
    """
    entry = registered(name)
    config = preset_config(entry.presets, preset, params, entry.title)
    facts = entry.cls.facts(config)
    return ModelInfo(name, entry.title, entry.paper, f"{entry.cls.__module__}.{entry.cls.__qualname__}",
                     dict(entry.presets), preset or "paper", config, tuple(facts.input_keys),
                     tuple(facts.uses_ground_truth_inputs), tuple(facts.notes))


def create_model(name: str, preset: str | None = None, *, num_classes: int, **overrides: Any) -> MerModel:
    """Build model ``name`` for ``num_classes`` classes: ``preset`` (``paper`` when ``None``) with ``overrides``
    (fields of the model's config, as ``model.params``), e.g. ``create_model("ststnet", "cpu", num_classes=3)``.

    Raises:
        ConfigError: unknown model, preset or parameter (one line, with a did-you-mean).
    """
    entry = registered(name)
    return entry.cls.from_config(num_classes, preset_config(entry.presets, preset, overrides, entry.title))


def build_model(name: str, num_classes: int, preset: str | None = None, **params: Any) -> MerModel:
    """Instantiate model ``name`` for ``num_classes`` classes: :func:`create_model` with positional classes.

    Raises:
        ConfigError: unknown model, preset or parameter; the message suggests the closest and lists the known ones.
    """
    return create_model(name, preset, num_classes=num_classes, **params)
