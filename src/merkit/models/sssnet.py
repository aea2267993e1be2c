"""SSSNet: Shallow Single Stream network, as the MEB toolbox defines and trains it.

Varanka, Peng and Zhao, "Micro-expression recognition with noisy labels", IS&T Electronic Imaging: Human Vision and
Electronic Imaging 2021 (doi:10.2352/ISSN.2470-1173.2021.11.HVEI-157); the definition merkit follows is the MEB
toolbox's (github.com/tvaranka/meb at f731b0a, ``meb/models/me_networks.py`` l. 8-75), and the recipe that of MEB's
composite notebook (``experiments/paper_experiments/Figure 2. Different F1-metrics.ipynb``, cells 1-3).

Input: the onset->apex optical-flow image, three channels (horizontal flow u, vertical flow v, optical strain), each
min-max stretched per sample, at 64 x 64 (MEB: ``datasets.MEGC(optical_flow=True, resize=64)``).

Architecture (MEB l. 50-75), with ``h_dims = (h1, h2, h3) = (32, 64, 256)``:

* conv 5x5, 3 -> h1, no padding (64 -> 60), ReLU, max pool 3x3 stride 3 (60 -> 20), batch norm, 2-D dropout;
* conv 3x3, h1 -> h2, no padding (20 -> 18), ReLU, max pool 2x2 stride 2 (18 -> 9), batch norm, 2-D dropout;
* flatten (h2 x 9 x 9 = 5184) -> fc h3, ReLU -> dropout -> fc to the classes;
* with ``softmax_output`` (MEB's ``softmax=True``, which its composite notebook sets): a softmax on the output,
  which the cross-entropy loss then treats as logits.

Departures: the MEGC2019 composite's released images are 28 x 28, so the model resizes its input to
``input_size`` (bilinear, :func:`merkit.models.layers.resize`; a no-op at 64 x 64, e.g. raw clips with
``data.face.size: 64``); MEB resizes its own Sun-Roth-Black flows from the full-size crop with scikit-image's
antialiased resize. The fully connected layer's input width follows ``input_size`` (MEB hard-codes 9 x 9, which
holds for inputs of 64-69 pixels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from merkit.models.base import MerModel, ModelFacts, register_model
from merkit.models.layers import resize


@dataclass(frozen=True)
class Config:
    in_channels: int = 3
    h_dims: tuple[int, int, int] = (32, 64, 256)
    dropout: float = 0.5
    input_size: int = 64
    softmax_output: bool = True
    # False: the default memory layout; True: parameters and activations in channels-last layout, the same values
    # computed by other CPU kernels (a fold about 1.3 times faster, other rounding; docs/benchmarks.md)
    channels_last: bool = False


PRESETS: dict[str, Config] = {
    # MEB's composite notebook: SSSNet(softmax=True) on 64 x 64 flows (Figure 2 notebook, cell 2)
    "paper": Config(),
    # the network is small (1.35 M parameters, about 16 M multiply-adds a sample): the CPU preset is the paper preset
    "cpu": Config(),
}


def _feature_side(input_size: int) -> int:
    """The side of the second pooled map: conv 5 (no padding), pool 3/3, conv 3 (no padding), pool 2/2."""
    side = (input_size - 4 - 3) // 3 + 1
    return (side - 2 - 2) // 2 + 1


@register_model("sssnet", presets=PRESETS, title="SSSNet",
                paper="Varanka, Peng and Zhao, \"Micro-expression recognition with noisy labels\", IS&T Electronic "
                      "Imaging 2021 (doi:10.2352/ISSN.2470-1173.2021.11.HVEI-157); as defined in the MEB toolbox")
class SSSNet(MerModel):
    """SSSNet on ``{"flow": (B, 3, H, W) float32}`` (u, v, strain in [0, 1], resized to ``input_size``); output
    (B, num_classes): logits, or class probabilities with ``softmax_output`` (MEB's ``softmax=True``)."""

    input_keys = ("flow",)

    def __init__(self, num_classes: int, config: Config = Config()):
        super().__init__()
        self.config = config
        self.notes = self.facts(config).notes
        h1, h2, h3 = config.h_dims
        side = _feature_side(config.input_size)
        if side < 1:
            raise ValueError(f"SSSNet needs input_size >= 11, got {config.input_size}")
        self.conv1 = nn.Conv2d(config.in_channels, h1, kernel_size=5)
        self.pool = nn.MaxPool2d(kernel_size=3, stride=3)
        self.bn1 = nn.BatchNorm2d(h1)
        self.drop1 = nn.Dropout2d(config.dropout)
        self.conv2 = nn.Conv2d(h1, h2, kernel_size=3)
        self.bn2 = nn.BatchNorm2d(h2)
        self.pool2 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.drop2 = nn.Dropout2d(config.dropout)
        self.fc1 = nn.Linear(side * side * h2, h3)
        self.drop3 = nn.Dropout(config.dropout)
        self.fc = nn.Linear(h3, num_classes)

    @classmethod
    def facts(cls, config: Config) -> ModelFacts:
        notes = ("SSSNet ends in a softmax (MEB's softmax=True): its class probabilities are a softmax of "
                 "probabilities, flatter than the other models'",) if config.softmax_output else ()
        return ModelFacts(cls.input_keys, (), notes)

    @classmethod
    def from_config(cls, num_classes: int, config: Config) -> "SSSNet":
        """The model, its parameters in channels-last layout with ``config.channels_last`` (same values)."""
        model = cls(num_classes, config)
        return model.to(memory_format=torch.channels_last) if config.channels_last else model

    def forward_features(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B, 3, H, W) flow image -> (B, h3) features after fc1 and ReLU (before the last dropout).

        MEB applies ReLU before each max pool; merkit pools first. The two orders give the same values and the same
        gradients bit for bit (ReLU is monotone, so it commutes with a maximum, and the pooled maximum keeps the
        same position), and ReLU then runs on a map 9 and 4 times smaller."""
        x = resize(inputs["flow"], self.config.input_size)
        if self.config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.drop1(self.bn1(F.relu(self.pool(self.conv1(x)))))
        x = self.drop2(self.bn2(F.relu(self.pool2(self.conv2(x)))))
        return F.relu(self.fc1(x.flatten(1)))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        out = self.fc(self.drop3(features))
        return torch.softmax(out, dim=1) if self.config.softmax_output else out
