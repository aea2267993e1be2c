"""Continuous-attention convolutional backbones shared by MMNet and its successor CVA+FPF+AU.

Both papers stack four residual blocks whose output is re-weighted by an attention map, and both let each block's
map be multiplied by the previous block's map ("continuous" attention), so that the network keeps looking at the
same facial region from layer to layer. They differ in how one block's map is computed:

* ``spatial`` -- MMNet's CA module (Li et al., IJCAI 2022, eq. 1-3): a CBAM-style spatial map
  ``sigmoid(BN(conv1x1([mean_c F; max_c F])))`` of shape (B, 1, H, W), times the previous map max-pooled to the
  current size.
* ``y``, ``x``, ``xy`` -- the CVA module of "A novel approach for micro-expression recognition incorporating
  vertical attention and position localization" (the MMNet successor, later FaceSleuth; eq. 1-4), in the style
  of coordinate attention (Hou et al., CVPR 2021): average-pool the features along one axis to a profile
  (``y``: one value per row, (B, C, H, 1); ``x``: one per column, (B, C, 1, W)), reduce the channels with a 1x1
  convolution to ``max(8, C / 32)``, batch norm, h-swish ``x * ReLU6(x + 3) / 6`` (eq. 3), restore the channels
  with a 1x1 convolution and take the sigmoid. ``xy`` (the paper's "both directions", Table 3) is coordinate
  attention proper: both profiles share the reducing convolution and each has its own restoring one; the map is
  the product of the two. In continuous mode the previous map is max-pooled to the current size and passed
  through a 1x1 convolution that maps its channels to the current ones (eq. 1, ``f_1x1(P_M(Attn^{i-1}))``).

Block body (both papers, eq. 2 of each): ``F_conv = ReLU(BN(conv1x1(ReLU(BN(conv3x3_s(F))))) + P(F))`` where the
residual ``P`` is the identity when shape is unchanged and a strided 1x1 convolution + BN otherwise (as in the
authors' MMNet code, a ResNet BasicBlock with its second 3x3 convolution replaced by a 1x1). The block returns
``F_conv * Attn`` (MMNet eq. 3, CVA eq. 4) and ``Attn``, which the next block receives.

Departures from the papers and their code:

* The previous map is brought to the current size with a 3x3 max pool of stride 2 (padding 1) along each axis
  that halves, as MMNet's code does, and with an adaptive max pool in any other case (e.g. odd sizes in the small
  CPU presets).
* ``independent`` mode (successor Table 4) simply drops the product with the previous map; for the CVA blocks
  the channel-matching 1x1 convolution is then not created.
* The CVA prior's 1x1 convolution (eq. 1) is unconstrained, as written in the paper, so a combined CVA map can
  take values outside [0, 1], and negative ones.

Scale note: a continuous map is a product of sigmoids, so it shrinks with depth (MMNet's four spatial maps average
about 0.5, 0.2, 0.15, 0.07 at initialisation on the composite), and F_M with it; the position embedding added to F_M
comes out of a LayerNorm at unit scale. This is the papers' design and is kept.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

ATTENTION_KINDS = ("spatial", "y", "x", "xy", "none")


def pool_to(attn: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Max-pool an attention map (B, C, H', W') to spatial ``size`` (H, W); axes of length 1 are left alone.

    An axis that halves (``H == ceil(H' / 2)``) uses MMNet's 3x3 / stride 2 / padding 1 max pool; any other change
    uses an adaptive max pool.
    """
    kernel, stride, pad = [], [], []
    for src, dst in zip(attn.shape[-2:], size):
        if src == dst:
            kernel.append(1), stride.append(1), pad.append(0)
        elif dst == math.ceil(src / 2) and src > 2:
            kernel.append(3), stride.append(2), pad.append(1)
        else:
            return F.adaptive_max_pool2d(attn, size)
    if kernel == [1, 1]:
        return attn
    return F.max_pool2d(attn, tuple(kernel), tuple(stride), tuple(pad))


class HSwish(nn.Module):
    """h-swish, ``x * ReLU6(x + 3) / 6`` (CVA paper eq. 3)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * F.relu6(x + 3.0) / 6.0


class SpatialAttention(nn.Module):
    """MMNet's CA map: ``sigmoid(BN(conv1x1([mean_c; max_c])))``, (B, C, H, W) -> (B, 1, H, W)."""

    def __init__(self, channels: int, continuous: bool):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size=1, bias=False)
        self.norm = nn.BatchNorm2d(1)

    def forward(self, x: torch.Tensor, prior: torch.Tensor | None) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        attn = torch.sigmoid(self.norm(self.conv(pooled)))
        if prior is not None:
            attn = attn * pool_to(prior, attn.shape[-2:])
        return attn


class AxisAttention(nn.Module):
    """CVA map along one or both axes (coordinate-attention style), (B, C, H, W) ->

    ``y``: (B, C, H, 1), one weight per channel and row, broadcast over the columns (CVA eq. 1, 4);
    ``x``: (B, C, 1, W); ``xy``: (B, C, H, W), the product of a row and a column profile.
    """

    def __init__(self, channels: int, continuous: bool, direction: str = "y", prior_channels: int | None = None):
        """``prior_channels``: channels of the previous block's map (``None`` for the first block)."""
        super().__init__()
        if direction not in ("y", "x", "xy"):
            raise ValueError(f"CVA direction must be y, x or xy, got {direction!r}")
        self.direction = direction
        mid = max(8, channels // 32)
        self.reduce = nn.Conv2d(channels, mid, kernel_size=1)
        self.norm = nn.BatchNorm2d(mid)
        self.act = HSwish()
        self.restore = nn.ModuleDict({axis: nn.Conv2d(mid, channels, kernel_size=1) for axis in direction})
        # eq. 1: f_1x1(P_M(Attn^{i-1})) maps the previous map's channels to the current block's.
        self.prior_proj = (nn.Conv2d(prior_channels, channels, kernel_size=1, bias=False)
                           if continuous and prior_channels is not None else None)

    def forward(self, x: torch.Tensor, prior: torch.Tensor | None) -> torch.Tensor:
        h, w = x.shape[-2:]
        profiles = []
        if "y" in self.direction:
            profiles.append(x.mean(dim=3, keepdim=True))  # (B, C, H, 1): P_AY, pool over the width
        if "x" in self.direction:
            profiles.append(x.mean(dim=2, keepdim=True).transpose(2, 3))  # (B, C, W, 1)
        z = self.act(self.norm(self.reduce(torch.cat(profiles, dim=2))))
        parts = torch.split(z, [p.shape[2] for p in profiles], dim=2)
        attn = None
        for axis, part in zip([a for a in "yx" if a in self.direction], parts):
            a = torch.sigmoid(self.restore[axis](part))
            a = a if axis == "y" else a.transpose(2, 3)  # x: back to (B, C, 1, W)
            attn = a if attn is None else attn * a
        if prior is not None and self.prior_proj is not None:
            attn = attn * self.prior_proj(pool_to(prior, attn.shape[-2:]))
        return attn


class AttentionBlock(nn.Module):
    """One CA / CVA block: residual body, then ``features * attention`` (MMNet eq. 3, CVA eq. 4).

    ``forward(x, prior)`` with x (B, C_in, H, W) and the previous block's map (or ``None``) returns
    ``(features (B, C_out, H/s, W/s), attention map)``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, attention: str, continuous: bool,
                 prior_channels: int | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = (nn.Identity() if stride == 1 and in_channels == out_channels else nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)))
        self.continuous = continuous
        if attention == "spatial":
            self.attention: nn.Module | None = SpatialAttention(out_channels, continuous)
        elif attention in ("y", "x", "xy"):
            self.attention = AxisAttention(out_channels, continuous, attention, prior_channels)
        elif attention == "none":
            self.attention = None
        else:
            raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {attention!r}")

    def forward(self, x: torch.Tensor, prior: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))
        if self.attention is None:
            return out, None
        attn = self.attention(out, prior if self.continuous else None)
        return out * attn, attn


def conv_output_side(side: int, strides: tuple[int, ...]) -> int:
    """Side of the feature map after 3x3 / padding 1 convolutions with ``strides`` (ceil division each)."""
    for s in strides:
        side = math.ceil(side / s)
    return side


class AttentionBackbone(nn.Module):
    """The main (motion) branch of MMNet and of CVA+FPF+AU.

    stem: conv3x3 3 -> ``stem_width``, stride ``stem_stride``, BN, ReLU; conv3x3 ``stem_width`` -> ``widths[0]``,
    BN, ReLU (MMNet code: 3 -> 180 stride 2, 180 -> 128); then one :class:`AttentionBlock` per width / stride.
    At 224 x 224 with the papers' widths (128, 128, 256, 512) and strides (1, 2, 2, 2) the output is
    (B, 512, 14, 14).
    """

    def __init__(self, in_channels: int, stem_width: int, stem_stride: int, widths: tuple[int, ...],
                 strides: tuple[int, ...], attention: str, continuous: bool):
        super().__init__()
        if len(widths) != len(strides):
            raise ValueError(f"widths {widths} and strides {strides} must have the same length")
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem_width, 3, stride=stem_stride, padding=1, bias=False),
            nn.BatchNorm2d(stem_width), nn.ReLU(inplace=True),
            nn.Conv2d(stem_width, widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True),
        )
        blocks, previous = [], widths[0]
        for i, (width, stride) in enumerate(zip(widths, strides)):
            blocks.append(AttentionBlock(previous, width, stride, attention, continuous,
                                         prior_channels=widths[i - 1] if i else None))
            previous = width
        self.blocks = nn.ModuleList(blocks)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        """(B, C, H, W) -> (B, widths[-1], H', W'); with ``return_attention`` also the list of block maps."""
        x = self.stem(x)
        maps: list[torch.Tensor | None] = []
        attn = None
        for block in self.blocks:
            x, attn = block(x, attn)
            maps.append(attn)
        return (x, maps) if return_attention else x
