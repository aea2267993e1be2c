"""STSTNet: Shallow Triple Stream Three-dimensional CNN.

Liong, Gan, See, Khor and Huang, "Shallow Triple Stream Three-dimensional CNN (STSTNet) for Micro-expression
Recognition", IEEE FG 2019 (arXiv:1902.03634).

Input: the onset->apex optical-flow image, three channels (horizontal flow u, vertical flow v, optical strain),
28x28 on the MEGC2019 composite. The "three-dimensional" of the name refers to these three stacked streams.

Architecture (paper, Fig. 2):

* three parallel 3x3 convolutions with 3, 5 and 8 filters ("same" padding), each followed by ReLU;
* their concatenation (16 channels) -> batch norm -> 3x3 max pool, stride 3 -> 2x2 average pool, stride 2;
* flatten (16 x 5 x 5 = 400 at 28x28) -> fully connected layer to the classes.

Implementation notes: the three branches are evaluated as one convolution over their stacked filters (the
concatenation of three convolutions of the same input is exactly that), and activations are kept in
channels-last memory layout. Both cut the CPU time of a training step several-fold at this size (measured in
``benchmarks/bench_ststnet_loso.py``); the arithmetic is the paper's.

Departures from the paper: the optional dropout before the fully connected layer (``dropout``, default 0, i.e.
none, as in the paper) is merkit's; the max pool uses padding 1 so that 28 -> 10 ("same" pooling in the
original MATLAB model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from merkit.models.base import MerModel, register_model


@dataclass(frozen=True)
class Config:
    in_channels: int = 3
    branch_filters: tuple[int, ...] = (3, 5, 8)
    input_size: int = 28
    dropout: float = 0.0


PRESETS: dict[str, Config] = {
    "paper": Config(),
    "cpu": Config(),  # the paper's network is already tiny: the CPU preset is the paper preset
}


@register_model("ststnet", presets=PRESETS, title="STSTNet",
                paper="Liong, Gan, See, Khor and Huang, \"Shallow Triple Stream Three-dimensional CNN (STSTNet) for "
                      "Micro-expression Recognition\", IEEE FG 2019 (arXiv:1902.03634)")
class STSTNet(MerModel):
    """STSTNet on ``{"flow": (B, 3, H, W) float32}`` (u, v, strain in [0, 1]); logits (B, num_classes)."""

    input_keys = ("flow",)

    def __init__(self, num_classes: int, config: Config = Config()):
        super().__init__()
        self.config = config
        self.branches = nn.ModuleList(
            nn.Conv2d(config.in_channels, f, kernel_size=3, padding=1) for f in config.branch_filters
        )
        width = sum(config.branch_filters)
        self.norm = nn.BatchNorm2d(width)
        self.max_pool = nn.MaxPool2d(kernel_size=3, stride=3, padding=1)
        self.avg_pool = nn.AvgPool2d(kernel_size=2, stride=2)
        side = ((config.input_size + 2 - 3) // 3 + 1) // 2
        self.dropout = nn.Dropout(config.dropout)
        self.fc = nn.Linear(width * side * side, num_classes)

    @classmethod
    def from_config(cls, num_classes: int, config: Config) -> "STSTNet":
        """The model with its parameters in channels-last memory layout (same values; faster on CPU)."""
        return cls(num_classes, config).to(memory_format=torch.channels_last)

    def forward_features(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B, 3, H, W) flow image -> (B, 16, H', W') pooled feature map (H' = 5 at H = 28)."""
        x = inputs["flow"].contiguous(memory_format=torch.channels_last)
        # The three parallel branches see the same input, so their concatenated outputs are one convolution with
        # the branches' filters stacked: same arithmetic, one kernel call instead of three plus a copy.
        weight = torch.cat([b.weight for b in self.branches])
        bias = torch.cat([b.bias for b in self.branches])
        x = F.relu(F.conv2d(x, weight, bias, padding=1))
        return self.avg_pool(self.max_pool(self.norm(x)))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(features.flatten(1)))

