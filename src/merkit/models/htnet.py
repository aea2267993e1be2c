"""HTNet: Hierarchical Transformer Network.

Wang, Zhang, Luo and Sankaranarayana, "HTNet for micro-expression recognition", Neurocomputing 602 (2024) 128196
(arXiv:2307.14637); authors' code github.com/wangzhifengharrison/HTNet (commit 91cf4bda, files ``Model.py`` and
``main_HTNet.py``). The hierarchy is NesT's (Zhang et al., "Nested hierarchical transformer", AAAI 2022), which
``Model.py`` follows.

**Sources.** Of the paper, only the abstract, Fig. 1, Fig. 2, Fig. 5, Fig. 6 and Table 2 could be read here (the
last five as the authors' README reproduces them); its text sections could not. Each value below names where it
comes from: "paper" (those parts) or "code" (the file). Where both speak they agree, except for the geometry of the
self-attention (below).

**Input.** ``flow`` (B, 3, H, W) float32 in [0, 1]: the composite's onset->apex u / v / strain image, 28 x 28
(paper Fig. 1-2: optical flow of onset and apex; code: the STSTNet images). Another size is resized (bilinear).

**Facial areas** (paper abstract, Fig. 1-2; code ``crop_optical_flow_block``). Four 14 x 14 windows (half the
side) of the flow image, centred on the image-left eye, the image-right eye and the two mouth corners, are
assembled 2 x 2 into a new 28 x 28 image: eyes on top, mouth corners below (code: ``hconcat``/``vconcat`` in
``main``). The code finds the centres with MTCNN's five points (eyes, nose, mouth corners) on the apex crop
resized to 28 x 28, clips each coordinate to [7, 21] and truncates it to an integer; the nose point is found but
not used; where MTCNN finds no face it uses five fixed points. merkit (``regions``):

* ``landmarks`` (presets): the centres come from the ``face_points`` input, the same five points taken from dlib's
  68 landmarks fitted on the same apex crops at 224 px (eye centre = mean of its six landmarks, mouth corners 48
  and 54; :func:`merkit.face.regions.face_points`; ``data.with_face_points``). dlib replaces MTCNN, which merkit
  does not ship.
* ``fixed``: the code's fallback points, :data:`FIXED_POINTS`, for every sample (no landmark input).
* ``none``: no areas, the whole flow image (an ablation, not in the paper).

A centre ``c = round(28 x)``, clipped to [7, 21], cuts rows / columns ``[c - 7, c + 7)``. Rounding instead of the
code's truncation (at most 1 px apart) makes the windows of a mirrored face the mirror of the windows, so ``hflip``
(which mirrors ``face_points`` too) stays exact. The code indexes rows with the points' x and columns with their
y (``flow_image[x - 7:x + 7, y - 7:y + 7]``), so its window for the image-right eye lies near the image-left
mouth corner and the other way round: its four windows are still the four quadrants of the face, their 2 x 2
arrangement transposed. merkit cuts each window at its point; ``authors_axes: true`` reproduces the code.

**Network** (code ``Model.py``, NesT):

* patch embedding: 7 x 7 patches (code: ``patch_size=7``; paper Fig. 2: four patches per area), a linear map to
  ``dim`` = 256 (code; paper Fig. 5: the best full-composite UF1 of widths 56-512), a 4 x 4 token map;
* ``levels`` = 3 (code: ``num_hierarchies=3``), bottom first. Level l has width ``dim * 2**l`` (256, 512, 1024)
  and ``heads * 2**l`` heads (3, 6, 12; paper Fig. 6: 3 gives the best full-composite UF1 of 1-6; code
  ``heads=3``), ``depths`` (2, 2, 10) transformer blocks (code ``block_repeats``). A head has ``width // heads``
  dimensions (85 at every level: the code's ``dim // heads``, so the attention's inner width is 255, 510, 1020).
* a level cuts its map into ``4**(levels - 1 - l)`` blocks, adds a learned scalar per position in a block, and
  runs its blocks on every block alone: pre-norm multi-head self-attention (no bias on q, k, v; bias on the
  output) and an MLP of ratio 4 (code ``mlp_mult``) with GELU, both residual; dropout 0 (code).
* block aggregation (paper Fig. 2; code ``Aggregate``) after every level but the top: 3 x 3 convolution to twice
  the width, LayerNorm over the channels, 3 x 3 max pool of stride 2 (the map halves: 4 -> 2 -> 1).
* head (code ``mlp_head``): LayerNorm over the channels, global mean, linear to the classes.

Every LayerNorm normalises over the channels with eps 1e-5 (the code's own LayerNorm). ``forward_features``
returns the top level's map before the head, (B, dim * 2**(levels - 1), S, S): (B, 1024, 1, 1) for the paper.

**The geometry of the attention.** With the code's values at 28 px (4 x 4 tokens, three levels) every block holds
**one token**: 16 blocks of 1 x 1 at the bottom, then 4, then 1. Attention over one token is an identity softmax,
so each self-attention reduces to its value and output projections, and only the 3 x 3 aggregation convolutions
mix positions. The abstract describes local self-attention within each area and interactions between the areas:
that is ``levels: 2`` (blocks of 2 x 2 tokens, one area each, then one block of the four areas), for which neither
the paper's readable parts nor the code give depths. The ``paper`` preset keeps the code's geometry, which produced
the published figures.

**Departures.**

* Inputs: the code feeds the flow PNGs' 0-255 values, in OpenCV's BGR order (strain, v, u). merkit's input is in
  [0, 1] and is multiplied by ``input_scale`` (255 in the presets, as the code). The channel order is merkit's
  (u, v, strain): with a random initialisation that is a permutation of the embedding's weights.
* dlib's landmarks instead of MTCNN's points, and rounding instead of truncation (above). The code's 7 x 7
  patches are embedded by a 1 x 1 convolution over the flattened patch; merkit uses the equivalent 7 x 7
  convolution of stride 7 (the same function and parameter count, the weights ordered differently).
* The training recipe (code ``main``: Adam, lr 5e-5, batch 256, 800 epochs, no augmentation, no weight decay) is
  in the configs, not here. The code keeps, per test subject, the epoch of the best test accuracy (the latest on
  ties); merkit's ``protocol.selection: paper`` keeps the earliest on ties.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from merkit.models.base import MerModel, ModelFacts, register_model
from merkit.models.layers import PreNormBlock, mlp, resize

REGION_MODES = ("landmarks", "fixed", "none")
PAPER = ('Wang, Zhang, Luo and Sankaranarayana, "HTNet for micro-expression recognition", Neurocomputing 602 (2024) '
         "128196 (arXiv:2307.14637)")
#: The code's fallback points where MTCNN finds no face (``main_HTNet.py``, ``whole_face_block_coordinates``), in
#: its 28 px frame: image-left eye, image-right eye, nose, image-left and image-right mouth corner, (x, y).
FIXED_POINTS_28 = ((9.528073, 11.062551), (21.396168, 10.919773), (15.380184, 17.380562),
                   (10.255435, 22.121233), (20.583706, 22.25584))
#: The same in units of the side, as the ``face_points`` input.
FIXED_POINTS = tuple((x / 28.0, y / 28.0) for x, y in FIXED_POINTS_28)
#: Which of the five points centre the four areas, in mosaic order: top left, top right, bottom left, bottom right.
AREA_POINTS = (0, 1, 3, 4)
AREA_NAMES = ("eye_left", "eye_right", "mouth_left", "mouth_right")


@dataclass(frozen=True)
class Config:
    """HTNet hyperparameters; defaults are the paper's (see the module docstring for each value's source).

    Attributes:
        input_size: side of the flow image the model works on (28).
        patch_size: side of a patch (7: 2 x 2 patches per area).
        dim, heads: width and heads of the bottom level; both double at every level up.
        levels: number of levels (hierarchies); the token map's side must be divisible by ``2 ** (levels - 1)``.
        depths: transformer blocks per level, bottom first (one entry per level).
        mlp_ratio: hidden width of the MLP over the level's width.
        dropout: dropout in attention and MLP (0 in the code).
        regions: ``landmarks`` (``face_points`` input), ``fixed`` (:data:`FIXED_POINTS`) or ``none``.
        authors_axes: index rows by the points' x and columns by their y, as the authors' code does.
        input_scale: factor applied to the [0, 1] input (255: the code feeds 0-255 pixel values).
    """

    input_size: int = 28
    patch_size: int = 7
    dim: int = 256
    heads: int = 3
    levels: int = 3
    depths: tuple[int, ...] = (2, 2, 10)
    mlp_ratio: int = 4
    dropout: float = 0.0
    regions: str = "landmarks"
    authors_axes: bool = False
    input_scale: float = 255.0

    @property
    def widths(self) -> tuple[int, ...]:
        """Width of each level, bottom first (256, 512, 1024)."""
        return tuple(self.dim * 2 ** level for level in range(self.levels))

    @property
    def level_heads(self) -> tuple[int, ...]:
        """Heads of each level, bottom first (3, 6, 12)."""
        return tuple(self.heads * 2 ** level for level in range(self.levels))

    @property
    def tokens_per_block(self) -> int:
        """Tokens in one block, the same at every level (1 for the paper's values)."""
        side = self.input_size // self.patch_size // 2 ** (self.levels - 1)
        return side * side

    def check(self) -> "Config":
        """Raise :class:`ValueError` naming a value that does not fit."""
        grid = self.input_size // self.patch_size
        if self.input_size % self.patch_size:
            raise ValueError(f"input_size {self.input_size} is not a multiple of patch_size {self.patch_size}")
        if self.levels < 1 or grid % 2 ** (self.levels - 1):
            raise ValueError(f"a {grid} x {grid} token map cannot be cut into the blocks of {self.levels} levels")
        if len(self.depths) != self.levels or min(self.depths) < 1:
            raise ValueError(f"depths needs one positive entry per level ({self.levels}), got {self.depths}")
        if self.heads < 1 or self.dim < self.heads:
            raise ValueError(f"dim {self.dim} needs at least one dimension per head ({self.heads} heads)")
        if self.regions not in REGION_MODES:
            raise ValueError(f"regions must be one of {REGION_MODES}, got {self.regions!r}")
        if self.input_size % 4:
            raise ValueError(f"the facial areas need an input_size divisible by 4, got {self.input_size}")
        return self


PRESETS: dict[str, Config] = {
    "paper": Config(),
    # 2-core CPU: the paper's geometry (28 px, 7 px patches, three levels, one token per block, 3 heads at the
    # bottom), widths / 8 and two blocks per level instead of 2, 2, 10: a composite LOSO fold in seconds.
    "cpu": Config(dim=32, depths=(2, 2, 2)),
}


def area_centres(points: torch.Tensor, side: int, authors_axes: bool = False) -> torch.Tensor:
    """Integer window centres (row, column) of the four areas, (B, 4, 2) int64.

    Args:
        points: (B, 5, 2) face points (x, y) in units of the side (:func:`merkit.face.regions.face_points`).
        side: side of the flow image in pixels; the windows have side ``side // 2``.
        authors_axes: take the row from x and the column from y (the authors' code).
    """
    xy = points[:, list(AREA_POINTS)].float() * side
    rc = xy if authors_axes else xy.flip(-1)
    half = side // 4
    return torch.round(rc).clamp(half, side - half).long()


def area_mosaic(flow: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Cut the four areas of ``flow`` (B, C, S, S) at ``centres`` (B, 4, 2) and assemble them 2 x 2 (B, C, S, S).

    Window k covers rows ``[r - S/4, r + S/4)`` and columns ``[c - S/4, c + S/4)``; the mosaic holds windows 0, 1
    on top and 2, 3 below.
    """
    b, c, side, _ = flow.shape
    half = side // 4
    offsets = torch.arange(2 * half, device=flow.device)
    rows = (centres[..., 0] - half)[..., None] + offsets  # (B, 4, 2h)
    cols = (centres[..., 1] - half)[..., None] + offsets
    batch = torch.arange(b, device=flow.device)[:, None, None, None]
    windows = flow.permute(0, 2, 3, 1)[batch, rows[:, :, :, None], cols[:, :, None, :]]  # (B, 4, 2h, 2h, C)
    top = torch.cat([windows[:, 0], windows[:, 1]], dim=2)
    bottom = torch.cat([windows[:, 2], windows[:, 3]], dim=2)
    return torch.cat([top, bottom], dim=1).permute(0, 3, 1, 2).contiguous()


class ChannelNorm(nn.Module):
    """LayerNorm over the channels of a (B, C, H, W) map, eps 1e-5 (the code's ``LayerNorm``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.weight, self.bias, eps=1e-5)
        return y.permute(0, 3, 1, 2)


class SelfAttention(nn.Module):
    """Multi-head self-attention over (N, T, D) tokens, ``heads`` heads of ``D // heads`` dimensions.

    HTNet's own (the NesT code's), not ``nn.MultiheadAttention`` nor :mod:`merkit.models.layers`: the inner width
    ``heads * (D // heads)`` is below D where ``heads`` does not divide D (255 at 256 and 3 heads), and q, k, v have
    no bias while the output projection has one; ``nn.MultiheadAttention`` can express neither.
    """

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        inner = self.heads * self.head_dim
        self.qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.out = nn.Linear(inner, dim)
        self.dropout = dropout
        self.out_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, _ = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.out_dropout(self.out(y.transpose(1, 2).reshape(n, t, -1)))


def block(dim: int, heads: int, mlp_ratio: int, dropout: float) -> PreNormBlock:
    """HTNet's transformer block (:class:`merkit.models.layers.PreNormBlock`): ``x + MHSA(LN(x))``, then
    ``x + MLP(LN(x))`` with GELU and dropout; LayerNorm eps 1e-5 (the code's); no drop path."""
    return PreNormBlock(dim, SelfAttention(dim, heads, dropout), mlp(dim, dim * mlp_ratio, dropout), eps=1e-5)


class Level(nn.Module):
    """One level: its map cut into ``blocks x blocks`` blocks, the transformer run on each block alone.

    A learned scalar per position within a block (the code's ``pos_emb``) is added to every channel first.
    """

    def __init__(self, dim: int, heads: int, depth: int, blocks: int, tokens: int, mlp_ratio: int, dropout: float):
        super().__init__()
        self.blocks = blocks
        self.position = nn.Parameter(torch.randn(tokens))
        self.layers = nn.Sequential(*(block(dim, heads, mlp_ratio, dropout) for _ in range(depth)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        n = self.blocks
        bh, bw = h // n, w // n
        tokens = x.view(b, c, n, bh, n, bw).permute(0, 2, 4, 3, 5, 1).reshape(b * n * n, bh * bw, c)
        tokens = self.layers(tokens + self.position[:, None])
        return tokens.view(b, n, n, bh, bw, c).permute(0, 5, 1, 3, 2, 4).reshape(b, c, h, w)


class Aggregation(nn.Module):
    """Block aggregation: 3 x 3 convolution ``dim -> dim_out``, channel LayerNorm, 3 x 3 max pool of stride 2."""

    def __init__(self, dim: int, dim_out: int):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim_out, kernel_size=3, padding=1)
        self.norm = ChannelNorm(dim_out)
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.norm(self.conv(x)))


@register_model("htnet", presets=PRESETS, title="HTNet", paper=PAPER)
class HTNet(MerModel):
    """HTNet on ``{"flow": (B, 3, H, W)[, "face_points": (B, 5, 2)]}``; logits (B, num_classes).

    ``face_points`` is an input with ``regions: landmarks`` only.
    """

    def __init__(self, num_classes: int, config: Config = Config()):
        super().__init__()
        self.config = config = config.check()
        facts = self.facts(config)
        self.input_keys = facts.input_keys
        if facts.notes:
            self.notes = facts.notes
        self.register_buffer("fixed_points", torch.tensor(FIXED_POINTS), persistent=False)
        widths, heads = config.widths, config.level_heads
        self.embed = nn.Conv2d(3, widths[0], kernel_size=config.patch_size, stride=config.patch_size)
        tokens = config.tokens_per_block
        self.levels = nn.ModuleList(
            Level(widths[i], heads[i], config.depths[i], 2 ** (config.levels - 1 - i), tokens, config.mlp_ratio,
                  config.dropout) for i in range(config.levels))
        self.aggregations = nn.ModuleList(Aggregation(widths[i], widths[i + 1]) for i in range(config.levels - 1))
        self.head_norm = ChannelNorm(widths[-1])
        self.fc = nn.Linear(widths[-1], num_classes)

    @classmethod
    def facts(cls, config: Config) -> ModelFacts:
        """Inputs: ``flow``, and ``face_points`` with ``regions: landmarks``; a note without landmark areas."""
        notes = {"fixed": ("HTNet's facial areas at the authors' fixed fallback points, not at landmarks",),
                 "none": ("HTNet without facial areas: the whole flow image",)}.get(config.regions, ())
        return ModelFacts(("flow", "face_points") if config.regions == "landmarks" else ("flow",), (), notes)

    def areas(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The image the transformer sees: the four areas' mosaic (or the whole flow with ``regions: none``),
        (B, 3, input_size, input_size) in the input's [0, 1] units."""
        c = self.config
        flow = inputs["flow"]
        flow = resize(flow, c.input_size, antialias=False)
        if c.regions == "none":
            return flow
        if c.regions == "landmarks":
            points = inputs["face_points"].to(flow.device)
        else:
            points = self.fixed_points.expand(flow.shape[0], -1, -1)
        return area_mosaic(flow, area_centres(points, c.input_size, c.authors_axes))

    def forward_features(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B, width of the top level, S, S) map of the top level (S = 1 for the paper's values)."""
        x = self.embed(self.areas(inputs) * self.config.input_scale)
        for i, level in enumerate(self.levels):
            x = level(x)
            if i < len(self.aggregations):
                x = self.aggregations[i](x)
        return x

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.head_norm(features).mean(dim=(2, 3)))

