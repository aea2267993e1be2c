"""OFF-ApexNet: Optical Flow Features from the Apex frame Network, as the MEB toolbox defines and trains it.

Gan, Liong, Yau, Huang and Tan, "OFF-ApexNet on micro-expression recognition system", Signal Processing: Image
Communication 74 (2019) 129-139 (doi:10.1016/j.image.2019.02.005; arXiv:1805.08699). The definition merkit follows
is the MEB toolbox's (github.com/tvaranka/meb at f731b0a, ``meb/models/me_networks.py`` l. 126-175), and the recipe
that of MEB's composite notebook (``experiments/paper_experiments/Table 3. Early stopping.ipynb``, cells 2, 6-7).

Input: the onset->apex optical flow, two channels (horizontal u, vertical v; no strain: MEB passes
``data[:, :2]``, "as in original publication"), each min-max stretched per sample, at 28 x 28.

Architecture (MEB l. 152-175):

* conv 3x3, 2 -> 6, padding 1, ReLU, max pool 2x2 (28 -> 14);
* conv 3x3, 6 -> 16, padding 1, ReLU, max pool 2x2 (14 -> 7);
* flatten (16 x 7 x 7 = 784) -> dropout -> fc 1024, ReLU -> dropout -> fc to the classes.

Departures: the paper's network has two paths, one per flow component, whose features are concatenated before the
fully connected layers; MEB stacks u and v as two channels of one path, and merkit follows MEB (the issue asks for
MEB's benchmark model). The input is resized to ``input_size`` when it has another size (bilinear,
:func:`merkit.models.layers.resize`); the composite's images are already 28 x 28.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from merkit.models.base import MerModel, register_model
from merkit.models.layers import resize


@dataclass(frozen=True)
class Config:
    in_channels: int = 2
    widths: tuple[int, int] = (6, 16)
    hidden: int = 1024
    dropout: float = 0.5
    input_size: int = 28


PRESETS: dict[str, Config] = {
    "paper": Config(),
    "cpu": Config(),  # 0.8 M parameters, most of them in fc1: already CPU-sized
}


@register_model("off_apexnet", presets=PRESETS, title="OFF-ApexNet",
                paper="Gan, Liong, Yau, Huang and Tan, \"OFF-ApexNet on micro-expression recognition system\", "
                      "Signal Processing: Image Communication 74 (2019) 129-139; as defined in the MEB toolbox")
class OffApexNet(MerModel):
    """OFF-ApexNet on ``{"flow": (B, 2, H, W) float32}`` (u, v in [0, 1]: ``data.channels: [u, v]``); logits
    (B, num_classes)."""

    input_keys = ("flow",)

    def __init__(self, num_classes: int, config: Config = Config()):
        super().__init__()
        self.config = config
        w1, w2 = config.widths
        side = config.input_size // 2 // 2
        if side < 1:
            raise ValueError(f"OFF-ApexNet needs input_size >= 4, got {config.input_size}")
        self.conv1 = nn.Conv2d(config.in_channels, w1, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.conv2 = nn.Conv2d(w1, w2, kernel_size=3, padding=1)
        self.fc1 = nn.Linear(side * side * w2, config.hidden)
        self.drop = nn.Dropout(config.dropout)
        self.fc = nn.Linear(config.hidden, num_classes)
        self.drop2 = nn.Dropout(config.dropout)

    def forward_features(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B, 2, H, W) flow (u, v) -> (B, hidden) features after fc1 and ReLU.

        Raises:
            ValueError: the flow has another channel count than ``in_channels`` (e.g. u, v and strain: set
                ``data.channels: [u, v]``).
        """
        x = inputs["flow"]
        if x.shape[1] != self.config.in_channels:
            raise ValueError(f"OFF-ApexNet takes a flow of {self.config.in_channels} channels (u, v), got shape "
                             f"{tuple(x.shape)}; set data.channels: [u, v]")
        x = resize(x, self.config.input_size)
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        return F.relu(self.fc1(self.drop(x.flatten(1))))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop2(features))
