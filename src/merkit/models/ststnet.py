"""STSTNet: Shallow Triple Stream Three-dimensional CNN.

Liong, Gan, See, Khor and Huang, "Shallow Triple Stream Three-dimensional CNN (STSTNet) for Micro-expression
Recognition", IEEE FG 2019 (arXiv:1902.03634).

Input: the onset->apex optical-flow image, three channels (horizontal flow u, vertical flow v, optical strain),
28x28 on the MEGC2019 composite. The "three-dimensional" of the name refers to these three stacked streams.

Architecture (paper, Fig. 2; the authors' PyTorch ``main.py``, github.com/christy1206/STSTNet):

* three parallel 3x3 convolutions with 3, 5 and 8 filters, each followed by ReLU and batch norm (``main.py``: padding
  2, so 28 -> 30);
* per branch, a 3x3 max pool, stride 3, padding 1 (30 -> 10), then dropout 0.5 (``main.py``);
* their concatenation (16 channels) -> 2x2 average pool, stride 2 -> flatten (16 x 5 x 5 = 400 at 28x28) -> fully
  connected layer to the classes.

The authors' code reads the flow images with ``cv2.imread``: channels in BGR order (strain, v, u for the released
images, whose R, G, B are u, v, strain) and values 0-255. ``input_scale`` (255) and ``bgr`` (True) reproduce that
from merkit's [0, 1] (u, v, strain) input, inside the model, so a checkpoint's predictor feeds it the same way.

Presets: ``paper`` is the authors' network above. ``cpu`` is the network of merkit's shipped recipe
(``configs/megc2019/ststnet.yaml``, the packaged model): padding 1 (28 -> 28, 10 -> 5 after the pools, the same
400 features), no dropout inside the branches (the recipe puts its dropout before the fully connected layer,
``dropout``, merkit's), inputs in [0, 1] in (u, v, strain) order. docs/models.md ("STSTNet") lists every difference
with its source.

Implementation notes: the three branches are evaluated as one convolution over their stacked filters (the
concatenation of three convolutions of the same input is exactly that; batch norm and dropout act per channel and
per element, so one layer over the 16 channels is the three branches' layers), and activations are kept in
channels-last memory layout. Both cut the CPU time of a training step several-fold at this size (measured in
``benchmarks/bench_ststnet_loso.py``).
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
    padding: int = 2
    branch_dropout: float = 0.5
    input_scale: float = 255.0
    bgr: bool = True


PRESETS: dict[str, Config] = {
    # the authors' main.py: padding 2, dropout 0.5 after each branch's pooling, BGR 0-255 input
    "paper": Config(),
    # merkit's shipped recipe's network (configs/megc2019/ststnet.yaml, the packaged model); tiny like the paper's
    "cpu": Config(padding=1, branch_dropout=0.0, input_scale=1.0, bgr=False),
}


@register_model("ststnet", presets=PRESETS, title="STSTNet",
                paper="Liong, Gan, See, Khor and Huang, \"Shallow Triple Stream Three-dimensional CNN (STSTNet) for "
                      "Micro-expression Recognition\", IEEE FG 2019 (arXiv:1902.03634)")
class STSTNet(MerModel):
    """STSTNet on ``{"flow": (B, 3, H, W) float32}`` (u, v, strain in [0, 1]); logits (B, num_classes).

    Config: ``padding`` of the branch convolutions; ``branch_dropout`` after each branch's max pool; ``dropout``
    before the fully connected layer; ``input_scale`` multiplies the input and ``bgr`` reverses its channels on entry.
    """

    input_keys = ("flow",)

    def __init__(self, num_classes: int, config: Config = Config()):
        super().__init__()
        self.config = config
        self.branches = nn.ModuleList(
            nn.Conv2d(config.in_channels, f, kernel_size=3, padding=config.padding) for f in config.branch_filters
        )
        width = sum(config.branch_filters)
        self.norm = nn.BatchNorm2d(width)
        self.max_pool = nn.MaxPool2d(kernel_size=3, stride=3, padding=1)
        self.avg_pool = nn.AvgPool2d(kernel_size=2, stride=2)
        conv_side = config.input_size + 2 * config.padding - 2
        side = ((conv_side + 2 - 3) // 3 + 1) // 2
        self.branch_dropout = nn.Dropout(config.branch_dropout)
        self.dropout = nn.Dropout(config.dropout)
        self.fc = nn.Linear(width * side * side, num_classes)

    @classmethod
    def from_config(cls, num_classes: int, config: Config) -> "STSTNet":
        """The model with its parameters in channels-last memory layout (same values; faster on CPU)."""
        return cls(num_classes, config).to(memory_format=torch.channels_last)

    def forward_features(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B, 3, H, W) flow image -> (B, 16, H', W') pooled feature map (H' = 5 at H = 28)."""
        x = inputs["flow"]
        if self.config.bgr:
            x = x.flip(1)
        if self.config.input_scale != 1.0:
            x = x * self.config.input_scale
        x = x.contiguous(memory_format=torch.channels_last)
        # The three parallel branches see the same input, so their concatenated outputs are one convolution with
        # the branches' filters stacked: same arithmetic, one kernel call instead of three plus a copy.
        weight = torch.cat([b.weight for b in self.branches])
        bias = torch.cat([b.bias for b in self.branches])
        x = F.relu(F.conv2d(x, weight, bias, padding=self.config.padding))
        x = self.max_pool(self.norm(x))
        if self.config.branch_dropout > 0:
            x = self.branch_dropout(x)
        return self.avg_pool(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(features.flatten(1)))

