"""What every merkit model shares: named inputs in, logits (and named auxiliary losses) out.

A model subclasses :class:`MerModel`, declares ``input_keys`` (keys of :mod:`merkit.features`), and splits its
forward pass into ``forward_features`` (inputs -> feature tensor, for probing and visualisation) and
``forward_head`` (features -> logits). Models with auxiliary losses (FRL-DGT's displacement losses) override
``forward`` and return them by name in :class:`ModelOutput`; the trainer adds them to the classification loss and
knows nothing about the paper.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Mapping

import torch
from torch import nn

from merkit.features import require_inputs


@dataclass
class ModelOutput:
    """logits: (B, num_classes) float32; aux_losses: name -> scalar tensor, already weighted."""

    logits: torch.Tensor
    aux_losses: dict[str, torch.Tensor] = field(default_factory=dict)


class MerModel(nn.Module):
    """Base class: ``forward(inputs) -> ModelOutput`` over a ``{key: tensor}`` mapping."""

    input_keys: ClassVar[tuple[str, ...]] = ()

    def forward_features(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> ModelOutput:
        require_inputs(inputs, self.input_keys)
        return ModelOutput(self.forward_head(self.forward_features(inputs)))


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
