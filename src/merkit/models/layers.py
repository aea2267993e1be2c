"""Layers that several papers' models share: input preparation, stochastic depth and the pre-norm transformer block.

A model file keeps what is its paper's own; what two or more models use the same way lives here once:

* :func:`as_channels` (grey -> RGB) and :func:`resize` (bilinear, antialiased when shrinking): MMNet, CVA+FPF,
  FRL-DGT; SLSTT and HTNet resize without antialiasing (``antialias=False``), as they always did.
* :func:`normalize_image`: ImageNet normalisation (MMNet, CVA+FPF).
* :class:`DropPath` (stochastic depth) and :class:`PreNormBlock` with :func:`mlp`, the ViT / NesT block
  ``x + DropPath(Attn(LN(x)))``, ``x + DropPath(MLP(LN(x)))``: MMNet's position calibration and HTNet's levels.

Which transformer blocks are shared and which are not, and why (parameter names and numerics must not change: saved
checkpoints load by name, and a seeded build must give the same weights):

* MMNet's PC block and HTNet's block are the same pre-norm layout and use :class:`PreNormBlock`; they differ in the
  attention (below), the LayerNorm eps (1e-6, timm's ViT; 1e-5, the HTNet code's) and the MLP's dropout modules.
* HTNet's attention stays in :mod:`merkit.models.htnet`: heads of ``dim // heads`` dimensions give an inner width
  below ``dim`` (255 at 256 and 3 heads) and q, k, v have no bias, which ``nn.MultiheadAttention`` cannot express.
* FRL-DGT's Attn blocks are ``torch.nn.TransformerEncoderLayer`` already; SLSTT's encoder and CVA+FPF's Swin / ViT
  are ``transformers`` models. Replacing MMNet's block by ``nn.TransformerEncoderLayer`` would rename its parameters
  (``attn`` -> ``self_attn``, ``mlp.0`` -> ``linear1``), drop its drop path, and in eval mode run torch's fused
  fast path, whose numerics differ; so it is not done.
* FRL-DGT's fusion layer (Fu-B-Attn, eq. 5-7) is that paper's own layer and stays in its file.
* :class:`DropPath` draws ``torch.rand`` per sample; ``torchvision.ops.StochasticDepth`` draws ``bernoulli_``, a
  different random stream, so swapping it would change training runs with drop path (MMNet ``paper-3class``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def as_channels(image: torch.Tensor, channels: int = 3, key: str = "image", hint: str = "") -> torch.Tensor:
    """(B, C, H, W) -> (B, channels, H, W): unchanged when C == ``channels``; grey (C = 1) repeated to 3 channels.

    Raises:
        ValueError: any other channel count; the message names the input ``key`` (and adds ``hint``).
    """
    if image.shape[1] == channels:
        return image
    if image.shape[1] == 1 and channels == 3:
        return image.expand(-1, 3, -1, -1)
    raise ValueError(f"input {key!r} has {image.shape[1]} channels (shape {tuple(image.shape)}), the model expects "
                     f"{channels}{hint}")


def resize(image: torch.Tensor, side: int, antialias: bool = True) -> torch.Tensor:
    """Bilinear resize of (B, C, H, W) to (B, C, side, side) (``align_corners=False``); a no-op at that size.

    With ``antialias`` (the default) the filter is antialiased when either side shrinks, as torchvision's
    ``Resize``; ``antialias=False`` is plain bilinear interpolation.
    """
    if image.shape[-2:] == (side, side):
        return image
    if not antialias:
        return F.interpolate(image, size=(side, side), mode="bilinear", align_corners=False)
    shrink = image.shape[-1] > side or image.shape[-2] > side
    return F.interpolate(image, size=(side, side), mode="bilinear", align_corners=False, antialias=shrink)


def normalize_image(image: torch.Tensor, difference: bool = False) -> torch.Tensor:
    """ImageNet normalisation of (B, 3, H, W) in [0, 1]; a ``difference`` of two frames is only divided by std."""
    std = image.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    if difference:
        return image / std
    return (image - image.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / std


class DropPath(nn.Module):
    """Stochastic depth: drop the residual branch of whole samples with probability ``p`` during training."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), device=x.device, dtype=x.dtype) >= self.p
        return x * keep / (1.0 - self.p)


class MultiheadSelfAttention(nn.MultiheadAttention):
    """``nn.MultiheadAttention`` called on one (B, T, D) sequence (``batch_first``): ``forward(x)`` -> (B, T, D).

    The same parameters (``in_proj_weight``, ``out_proj``) and initialisation as its base class.
    """

    def __init__(self, dim: int, heads: int):
        super().__init__(dim, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x, x, x, need_weights=False)[0]


def mlp(dim: int, hidden: int, dropout: float | None = None) -> nn.Sequential:
    """The transformer MLP ``Linear(dim, hidden) -> GELU -> Linear(hidden, dim)``.

    With a ``dropout`` (even 0) a Dropout follows the GELU and the second Linear (HTNet's layout: parameters
    ``0`` and ``3``); without (``None``) there are no Dropout modules (ViT's layout: parameters ``0`` and ``2``).
    """
    if dropout is None:
        return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim),
                         nn.Dropout(dropout))


class PreNormBlock(nn.Module):
    """Pre-norm transformer block on (B, T, dim) tokens (ViT's and NesT's layout):
    ``x + DropPath(attn(LN(x)))``, then ``x + DropPath(mlp(LN(x)))``.

    Args:
        dim: token width.
        attn: self-attention module, (B, T, dim) -> (B, T, dim), e.g. :class:`MultiheadSelfAttention`.
        mlp: the MLP module, (B, T, dim) -> (B, T, dim), e.g. :func:`mlp`.
        eps: LayerNorm epsilon.
        drop_path: stochastic depth rate of both residual branches (0: none).

    Parameters are named ``norm1``, ``attn``, ``norm2``, ``mlp``; the LayerNorms draw no random numbers, so the
    modules' initial weights depend only on the order in which the caller creates ``attn`` and ``mlp``.
    """

    def __init__(self, dim: int, attn: nn.Module, mlp: nn.Module, eps: float, drop_path: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = attn
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = mlp
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))
