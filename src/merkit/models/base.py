"""What every merkit model shares: named inputs in, logits (and named auxiliary losses) out; presets; the registry.

A model subclasses :class:`MerModel`, declares ``input_keys`` (keys of :mod:`merkit.features`), and splits its
forward pass into ``forward_features`` (inputs -> features, for probing and visualisation) and ``forward_head``
(features -> logits). Every model keeps that contract: ``forward_head(forward_features(inputs))`` are the logits, so
a caller (``merkit predict``) never needs to know which model it runs. Models with auxiliary losses (FRL-DGT's
displacement losses) return them by name in :class:`ModelOutput`; the trainer adds them to the classification loss
and knows nothing about the paper.

A model module exposes ``PRESETS: dict[str, Config]`` (``paper`` and a small ``cpu`` one) and
``build(num_classes, preset=None, **params)``, which :func:`preset_config` serves; :data:`MODEL_MODULES` registers
it under its name for :func:`build_model`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar, Mapping

import torch
from torch import nn

from merkit.boundary import did_you_mean, unknown_name
from merkit.errors import ConfigError
from merkit.features import require_inputs

#: Model name -> module; add a model by adding its module here.
MODEL_MODULES: dict[str, str] = {
    "ststnet": "merkit.models.ststnet",
    "mmnet": "merkit.models.mmnet",
    "cva_fpf": "merkit.models.cva_fpf",
    "slstt": "merkit.models.slstt",
    "frl_dgt": "merkit.models.frl_dgt",
    "htnet": "merkit.models.htnet",
}


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
        ConfigError: an unknown preset or parameter; the message lists the known ones.
    """
    if preset is not None and preset not in presets:
        raise ConfigError(f"{unknown_name(f'{name} preset', preset, presets)} (model.preset)")
    base = presets[preset or "paper"]
    known = {f.name for f in fields(base)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ConfigError(f"unknown {name} parameters {unknown}{did_you_mean(unknown[0], known)} (model.params); "
                          f"known: {sorted(known)}")
    return replace(base, **{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})


def build_model(name: str, num_classes: int, preset: str | None = None, **params: Any) -> MerModel:
    """Instantiate model ``name`` for ``num_classes`` classes.

    Raises:
        ConfigError: unknown model, preset or parameter; the message lists the known ones.
    """
    if name not in MODEL_MODULES:
        raise ConfigError(f"{unknown_name('model', name, MODEL_MODULES)} (model.name)")
    return importlib.import_module(MODEL_MODULES[name]).build(num_classes, preset=preset, **params)
