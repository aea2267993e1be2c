"""FRL-DGT: adaptive displacement generation and Transformer fusion over action-unit regions.

Zhai, Zhao, Long, Xu, He and Zhao, "Feature Representation Learning with Adaptive Displacement Generation and
Transformer Fusion for Micro-Expression Recognition", CVPR 2023. No public code exists; this file follows the
paper's text (sections 3.1-3.3, 4.3, 4.4). Equations implemented:

* **DGM** (sec. 3.1): a convolutional encoder-decoder (blocks of conv + BN + LeakyReLU) on the concatenated onset
  and apex frames, ending in ``alpha * tanh`` (``alpha = 0.2``): a 2-channel displacement D in [-alpha, alpha].
  G_s(onset, D) warps the onset by bilinear sampling (:func:`warp`). Losses, returned as named, already-weighted
  auxiliary losses: L_rec (eq. 1), L_nm (eq. 2), L_sm (eq. 3), L_DGM = 10 L_rec + 1 L_nm + 0.2 L_sm (eq. 4).
* The classification gradient that reaches the DGM is multiplied by ``1e-6`` (sec. 3.3; :class:`ScaleGradient`).
* **Fusion layer** Fu-B-Attn (eq. 5-7, :class:`FusionLayer`): per head, ``W_raw = Lin([Q_1..Q_m]) K^T``,
  ``head = Softmax(BN(W_raw)) V``, heads concatenated. Fu-A-Attn (Fig. 5a, :class:`AttentionThenLinearFusion`):
  standard multi-head attention, then a linear map over the N output vectors.
* **Transformer Fusion** (sec. 3.2.2): the displacement concatenated with the frames (M channels) is cut into the
  nine AU regions (:mod:`merkit.face.regions`), each split into P x P patches, linearly projected to C, no class
  token. Local fusion (one module per region: Attn block + fusion layer), global fusion (the same over the nine
  local vectors), full-face fusion (the same over patches of the whole face); the global and full-face vectors
  are concatenated and classified by fully connected layers.
* **FRL-DGT-S** (sec. 4.4, ``sequence=True``): the onset of a T-frame clip is paired with each of the T - 1 other
  frames; each pair's displacement is concatenated with its frame and fused as above, then a temporal fusion
  module (Attn block + fusion layer over the T - 1 pair vectors) gives the clip's vector.

Inputs (``{key: tensor}``, float32, B = batch, frames in [0, 1]; grey frames are repeated when
``image_channels = 3``; every image input is resized (bilinear) to ``input_size``):

* ``onset``, ``apex``: (B, C, H, W) aligned face crops (``displacement="dgm"``; and whichever ``frames`` lists);
* ``flow``: (B, 3, H, W) onset->apex flow image (u, v, strain) for ``displacement="flow"`` / ``"flow_norm"``;
* ``dynamic_image``: (B, C, H, W) for ``displacement="dynamic_image"``;
* ``au_boxes``: (B, 9, 4) boxes ``(left, top, right, bottom)`` in units of the image side (pixels / S), in
  :data:`merkit.face.regions.AU_REGION_NAMES` order, only for ``regions="au-input"``
  (:func:`merkit.face.regions.au_boxes` builds them from landmarks in the aligned crop);
* ``ss_onset``, ``ss_apex``: (B, P, C, H, W) self-supervised frame pairs, only for ``self_supervised=True``;
* ``clip``: (B, T, C, H, W), (B, T, H, W) or (B, T, H, W, 3) for ``sequence=True`` (the motion stage's
  ``resample_clip``; multiply by ``clip_scale`` to reach [0, 1], e.g. 1/255 for uint8-range frames).

Displacement units: D is in the normalised coordinates of :func:`torch.nn.functional.grid_sample` (the image
spans [-1, 1]), so ``alpha = 0.2`` allows at most 0.1 of the image side (22 px at 224). It is the forward
displacement onset -> apex (a pixel at p in the onset is at p + D(p) in the apex, the paper's wording), so G_s
samples the onset at ``p - D(p)``. ``D * S / 2`` converts to pixels.

Departures and choices the paper leaves open (all documented switches live in :class:`Config`):

* The DGM's depth, widths and activation are not given: a small U-Net (stride-2 encoder, bilinear-upsampling
  decoder with skip connections, LeakyReLU 0.1); the last convolution starts at zero so D starts at 0.
* "We normalize the displacements before output" is read as a per-sample, per-channel standardisation
  (``(D - mean) / sqrt(var + eps)``) of the copy of D that feeds the Transformer Fusion: weak displacements are
  amplified and strong ones damped, as the paper says. G_s and the losses use the un-normalised D, since a
  normalised field could not reconstruct the apex. ``flow_norm`` (Table 2, M1) applies the same standardisation to
  the flow image, which also removes the composite's per-image min-max stretch.
* The paper gives the DGM its own Adam (lr 0.002) and the fusion Adam with cosine annealing. merkit uses one Adam
  with a parameter group for the DGM (``training.param_groups: {dgm.: {lr: 0.002}}``; the fusion uses
  ``training.lr``). Adam's state is per parameter, so this equals two Adams, except that the cosine schedule
  scales both groups (``schedule: false`` keeps the DGM's lr constant; the paper does not say which). Under
  Adam, which is invariant to a gradient's scale, the 1e-6 factor matters only relative to the DGM's own losses:
  without L_DGM (no aux losses), Adam would undo it.
* Fusion-layer BN: one BatchNorm1d per layer over the heads (statistics over the batch and the key positions), so
  that it keeps the order of the keys within a sample; no ``1/sqrt(c)`` scaling (the BN sets the scale). Lin is a
  weight per head and query position plus a per-head bias, initialised to ``1/m`` and 0 (an average, see
  :class:`FusionLayer`).
* Learned positional embeddings (ViT's, which the paper follows for patching) are added to each module's tokens.
  The Attn block is ``depth`` pre-norm ``nn.TransformerEncoderLayer`` (LN, MHA, MLP, GELU). Sec. 3.2.2 calls it
  "a stack of multiple Transformer layers" without a number: ``depth = 2``, the smallest stack that is multiple,
  is the default; ``depth = 1`` (merkit's setting before 2026-12-02) is a switch, and the report notes it. The
  patch projection is shared by the nine regions; the full face has its own, with patch
  ``face_patch`` (not given by the paper; 16 at 224 gives 14 x 14 patches).
* Ablations without a module: without local fusion (M7) a region's vector is the mean of its patch embeddings;
  without global fusion (M8) the nine local vectors are averaged; without full-face fusion (M6) only the global
  vector reaches the head. 3 x 3 image patches (M5): the face is cut into a 3 x 3 grid whose cells are resized to
  ``region_side``.
* Without self-supervision (M3) is data-side: the model only adds the L_DGM of ``ss_onset`` / ``ss_apex`` pairs
  when ``self_supervised=True``; the data path must draw them from the training clips (see docs/models.md).
* MagNet magnification (linear Eulerian here, the training hook ``magnify``) and the random frame near the apex
  (``apex_jitter``) are data-side augmentations, not part of the model.
* TIM (FRL-DGT-S) is replaced upstream by :func:`merkit.motion.representations.resample_clip` (linear in time).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from merkit.features import require_inputs
from merkit.models.base import MerModel, ModelFacts, ModelOutput, register_model
from merkit.models.layers import as_channels, resize

DISPLACEMENTS = ("dgm", "flow", "flow_norm", "dynamic_image")
REGION_KINDS = ("au-template", "au-input", "grid")
FUSIONS = ("fu_b", "fu_a")
NUM_REGIONS = 9
PAPER = ('Zhai, Zhao, Long, Xu, He and Zhao, "Feature Representation Learning with Adaptive Displacement Generation '
         'and Transformer Fusion for Micro-Expression Recognition", CVPR 2023')


@dataclass(frozen=True)
class Config:
    """FRL-DGT hyperparameters; defaults are the paper's (sec. 3.3) where it gives them.

    Attributes:
        displacement: ``dgm`` (paper), ``flow`` (Table 2 M0), ``flow_norm`` (M1), ``dynamic_image`` (M2).
        flow_channels: channels of the ``flow`` input that replace the displacement with ``flow`` / ``flow_norm``:
            2 (u, v; the paper's M0 puts optical flow where the 2-channel displacement was) or 3 (u, v, strain,
            merkit's composite runs).
        frames: image inputs concatenated with the displacement (paper: onset and apex; the composite: apex).
            FRL-DGT-S ignores it: each pair's displacement is concatenated with that pair's frame.
        image_channels: channels of each frame (3 RGB, 1 grey); grey inputs are repeated when this is 3.
        input_size: side (pixels) every image input is resized to (paper: 224).
        alpha: displacement scale, grid units (paper 0.2).
        dgm_widths: encoder widths of the DGM, one stride-2 stage each (the decoder mirrors them).
        normalise: standardise the displacement that feeds the fusion (the paper's output normalisation).
        norm_eps: variance floor of that normalisation (grid units squared).
        lambda_rec, lambda_nm, lambda_sm: eq. 4 weights (10, 1, 0.2).
        cls_grad_scale: factor on the classification gradient reaching the DGM (1e-6).
        self_supervised: add L_DGM of the ``ss_onset`` / ``ss_apex`` pairs (paper: yes; M3: no).
        regions: ``au-input`` (paper: boxes from the ``au_boxes`` input, which merkit builds from each clip's 68
            dlib landmarks, sec. 3.2.1), ``au-template`` (nine AU boxes of the template face in the aligned crop),
            ``grid`` (3 x 3 image patches, M5).
        template_crop: the face stage's crop kind (:mod:`merkit.face.crop`) the template boxes are placed in.
        region_side, patch_size: AU box side and patch side in pixels at ``input_size`` (90, 18 -> N = 25).
        face_patch: patch side of the full-face module.
        dim, heads, mlp_ratio, dropout: embedding C (256), heads h (8), MLP ratio, dropout.
        depth: Transformer layers per Attn block, in every fusion module (sec. 3.2.2: "a stack of multiple
            Transformer layers", no number; 2, the smallest stack that is multiple). Each layer adds
            (4 + 2r) C^2 + (9 + r) C parameters per module (r = ``mlp_ratio``). ``1`` is a switch.
        fusion: ``fu_b`` (Fu-B-Attn, paper) or ``fu_a`` (Fu-A-Attn, M4).
        local_fusion, global_fusion, face_fusion: the three modules (M7, M8, M6 switch one off).
        head_hidden: width of the hidden fully connected layer.
        sequence: FRL-DGT-S on the ``clip`` input (T frames, onset first).
        sequence_length: T (paper 10); clips of another length are rejected.
        clip_scale: factor bringing ``clip`` to [0, 1].
    """

    displacement: str = "dgm"
    flow_channels: int = 2
    frames: tuple[str, ...] = ("onset", "apex")
    image_channels: int = 3
    input_size: int = 224
    alpha: float = 0.2
    dgm_widths: tuple[int, ...] = (32, 64, 128, 256)
    normalise: bool = True
    norm_eps: float = 1e-8
    lambda_rec: float = 10.0
    lambda_nm: float = 1.0
    lambda_sm: float = 0.2
    cls_grad_scale: float = 1e-6
    self_supervised: bool = True
    regions: str = "au-input"
    template_crop: str = "slstt"
    region_side: int = 90
    patch_size: int = 18
    face_patch: int = 16
    dim: int = 256
    heads: int = 8
    depth: int = 2
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    fusion: str = "fu_b"
    local_fusion: bool = True
    global_fusion: bool = True
    face_fusion: bool = True
    head_hidden: int = 256
    sequence: bool = False
    sequence_length: int = 10
    clip_scale: float = 1.0


PRESETS: dict[str, Config] = {
    # The paper's full model (sec. 3): self-supervised DGM pairs, AU boxes from each clip's landmarks.
    "paper": Config(),
    # The paper preset until 2026-12-07: ablation M3 (no self-supervision) with template AU boxes and the
    # 3-channel flow for M0; its weights and outputs are the old paper preset's exactly.
    "ablation-m3-template": Config(self_supervised=False, regions="au-template", flow_channels=3),
    # 2-core CPU: 56 px faces, 20 px AU boxes of 4 px patches (N = 25 as in the paper), 8 px full-face patches
    # (49), C = 32 with 4 heads, a three-stage DGM of widths 8/16/32, a 32-wide hidden layer.
    # Like the old paper preset, without self-supervision, with template boxes and 3-channel flow (the settings of
    # merkit's composite and synthetic runs, whose configs set what they use).
    "cpu": Config(input_size=56, dgm_widths=(8, 16, 32), region_side=20, patch_size=4, face_patch=8, dim=32,
                  heads=4, mlp_ratio=2.0, head_hidden=32, self_supervised=False, regions="au-template",
                  flow_channels=3),
}


# ----------------------------------------------------------------------------------------------------------------
# Displacement generation (sec. 3.1)


class ScaleGradient(torch.autograd.Function):
    """Identity forward; the backward pass multiplies the incoming gradient by ``scale`` (sec. 3.3: 1e-6)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * ctx.scale, None


def scale_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    return x if scale == 1.0 else ScaleGradient.apply(x, scale)


def warp(image: torch.Tensor, displacement: torch.Tensor) -> torch.Tensor:
    """G_s(onset, D): the onset moved by D with bilinear sampling (eq. 1's approximate apex).

    Args:
        image: (B, C, H, W) onset frames.
        displacement: (B, 2, H, W) forward displacement (x, y) in grid units (the image spans [-1, 1]).

    Returns:
        (B, C, H, W): ``image`` sampled at ``p - D(p)`` (border padding), so a pixel at p moves to p + D.
    """
    h, w = image.shape[-2:]
    ys = (torch.arange(h, device=image.device, dtype=image.dtype) * 2 + 1) / h - 1
    xs = (torch.arange(w, device=image.device, dtype=image.dtype) * 2 + 1) / w - 1
    base = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (H, W, 2), (x, y) pixel centres
    grid = base.unsqueeze(0) - displacement.permute(0, 2, 3, 1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)


def dgm_losses(onset: torch.Tensor, apex: torch.Tensor, displacement: torch.Tensor) -> dict[str, torch.Tensor]:
    """The unweighted DGM losses (eq. 1-3) of (B, C, H, W) frames and a (B, 2, H, W) displacement.

    ``rec``: mean |G_s(onset, D) - apex| over pixels and channels (eq. 1); ``nm``: mean |D| (eq. 2, also averaged
    over the two channels); ``sm``: mean |D_x,y - D_x-1,y| + mean |D_x,y - D_x,y-1| (eq. 3).
    """
    rec = (warp(onset, displacement) - apex).abs().mean()
    nm = displacement.abs().mean()
    sm = ((displacement[..., :, 1:] - displacement[..., :, :-1]).abs().mean()
          + (displacement[..., 1:, :] - displacement[..., :-1, :]).abs().mean())
    return {"rec": rec, "nm": nm, "sm": sm}


def conv_block(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """The DGM's basic block: conv 3x3 + BN + LeakyReLU (sec. 3.1)."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.LeakyReLU(0.1, inplace=True))


class DisplacementGenerator(nn.Module):
    """DGM: (B, C, H, W) onset and apex -> (B, 2, H, W) displacement in [-alpha, alpha] (grid units).

    An encoder of stride-2 stages (two conv blocks each) and a decoder that upsamples bilinearly, concatenates the
    encoder's map of the same size and applies a conv block, then a 3x3 convolution to 2 channels, ``tanh`` and
    the scale ``alpha``. H and W need not be multiples of 2**stages (the decoder resizes to each skip's size).
    """

    def __init__(self, image_channels: int, widths: tuple[int, ...], alpha: float):
        super().__init__()
        self.alpha = alpha
        self.stem = conv_block(2 * image_channels, widths[0])
        enc, previous = [], widths[0]
        for width in widths:
            enc.append(nn.Sequential(conv_block(previous, width, stride=2), conv_block(width, width)))
            previous = width
        self.encoder = nn.ModuleList(enc)
        dec = []
        for skip in reversed([widths[0], *widths[:-1]]):  # channels of the stem and of all but the last stage
            dec.append(conv_block(previous + skip, skip))
            previous = skip
        self.decoder = nn.ModuleList(dec)
        self.out = nn.Conv2d(previous, 2, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, onset: torch.Tensor, apex: torch.Tensor) -> torch.Tensor:
        x = self.stem(torch.cat([onset, apex], dim=1))
        skips = [x]
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        skips.pop()  # the deepest map is x itself
        for block in self.decoder:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.alpha * torch.tanh(self.out(x))


def standardise(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Per sample and channel ``(x - mean) / sqrt(var + eps)`` over the spatial axes of (B, C, H, W).

    ``eps`` floors the variance; it also keeps the gradient finite for a constant map (the DGM's D starts at 0).
    """
    var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
    return (x - mean) / torch.sqrt(var + eps)


# ----------------------------------------------------------------------------------------------------------------
# Fusion layers (sec. 3.2.2, Fig. 5, eq. 5-7)


class FusionLayer(nn.Module):
    """Fu-B-Attn: fuse a (B, m, C) sequence into one (B, C) vector (eq. 5-7).

    Per head k (``c = C / h``): Q, K, V (m x c) are linear projections of the tokens; ``q = Lin([Q_1..Q_m])`` is a
    learned weighted sum of the m queries plus a bias (weights ``lin_weight[k]``, initialised to ``1/m``);
    ``W_raw = q K^T`` (1 x m, eq. 5); ``head_k = Softmax(BN(W_raw)) V`` (eq. 6); the heads are concatenated (eq. 7).

    With equal weights ``1/m`` and zero bias, ``q`` is the mean query and ``W_raw`` is the average over the queries
    of the standard attention scores ``Q K^T`` (linearity): "linear fusion before attention" is then an average.
    ``forward(x, return_weights=True)`` also returns the (B, h, m) softmax weights (Fig. 7).

    The paper's own layer, so it stays here rather than in :mod:`merkit.models.layers`: no library attention fuses
    the queries before attending or batch-normalises the scores.
    """

    def __init__(self, tokens: int, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"fusion dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.lin_weight = nn.Parameter(torch.full((heads, tokens), 1.0 / tokens))
        self.lin_bias = nn.Parameter(torch.zeros(heads))
        self.norm = nn.BatchNorm1d(heads)

    def forward(self, x: torch.Tensor, return_weights: bool = False):
        b, m, dim = x.shape
        q, k, v = self.qkv(x).view(b, m, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)  # (B, h, m, c)
        fused_q = torch.einsum("hm,bhmc->bhc", self.lin_weight, q) + self.lin_bias[None, :, None]
        raw = torch.einsum("bhc,bhnc->bhn", fused_q, k)  # eq. 5
        weights = torch.softmax(self.norm(raw), dim=-1)  # eq. 6
        out = torch.einsum("bhn,bhnc->bhc", weights, v).reshape(b, dim)  # eq. 7
        return (out, weights) if return_weights else out


class AttentionThenLinearFusion(nn.Module):
    """Fu-A-Attn (Fig. 5a, Table 2 M4): standard multi-head attention, then a linear map of the m outputs to one."""

    def __init__(self, tokens: int, dim: int, heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.linear = nn.Linear(tokens, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.attn(x, x, x, need_weights=False)[0]
        return self.linear(y.transpose(1, 2)).squeeze(-1)


class FusionModule(nn.Module):
    """One local / global / full-face / temporal module: (B, m, C) tokens -> (B, C).

    Learned positional embedding, an Attn block (``depth`` pre-norm Transformer layers: LN, MHA, MLP), then the
    fusion layer (``fu_b``) or attention + linear fusion (``fu_a``).
    """

    def __init__(self, tokens: int, dim: int, heads: int, depth: int, mlp_ratio: float, dropout: float,
                 fusion: str):
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(1, tokens, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, heads, int(dim * mlp_ratio), dropout, activation="gelu",
                                       batch_first=True, norm_first=True)
            for _ in range(depth))
        self.fuse = FusionLayer(tokens, dim, heads) if fusion == "fu_b" else AttentionThenLinearFusion(
            tokens, dim, heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos
        for block in self.blocks:
            x = block(x)
        return self.fuse(x)


# ----------------------------------------------------------------------------------------------------------------
# AU regions (sec. 3.2.1)


def template_boxes(image_size: int, side: int, crop: str = "slstt") -> np.ndarray:
    """(9, 4) int64 AU boxes ``(left, top, right, bottom)`` of merkit's template face in an aligned crop.

    The 68-point template (:data:`merkit.face.align.TEMPLATE_68`) is placed in a ``crop`` crop of side
    ``image_size`` (:mod:`merkit.face.crop`) and the boxes follow :func:`merkit.face.regions.au_regions`.
    """
    from merkit.face.align import TEMPLATE_68
    from merkit.face.crop import crop_box, crop_matrix
    from merkit.face.regions import au_regions

    matrix = crop_matrix(crop_box(TEMPLATE_68, crop), image_size)
    landmarks = TEMPLATE_68 @ matrix[:2, :2].T + matrix[:2, 2]
    return np.array(list(au_regions(landmarks, image_size, side).values()), dtype=np.int64)


def crop_regions(x: torch.Tensor, left: torch.Tensor, top: torch.Tensor, side: int) -> torch.Tensor:
    """Cut square regions out of (B, M, H, W) maps: ``left``, ``top`` (B, K) int64 pixels -> (B, K, M, side, side).

    Region k of sample b is ``x[b, :, top:top + side, left:left + side]``; boxes must lie inside the image.
    """
    b = left.shape[0]
    offsets = torch.arange(side, device=x.device)
    rows = (top[:, :, None] + offsets)[:, :, :, None]  # (B, K, side, 1)
    cols = (left[:, :, None] + offsets)[:, :, None, :]  # (B, K, 1, side)
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    return x[batch, :, rows, cols].permute(0, 1, 4, 2, 3)  # advanced indices first: (B, K, side, side, M)


# ----------------------------------------------------------------------------------------------------------------
# The model


def _as_channels(image: torch.Tensor, channels: int, key: str) -> torch.Tensor:
    return as_channels(image, channels, key, " (set model.params.image_channels)")


def _input_keys(c: Config) -> tuple[str, ...]:
    """The model-input keys of configuration ``c`` (see the module docstring)."""
    if c.sequence:
        keys = ["clip"]
    else:
        motion = {"dgm": ("onset", "apex"), "flow": ("flow",), "flow_norm": ("flow",),
                  "dynamic_image": ("dynamic_image",)}[c.displacement]
        keys = list(motion) + [f for f in c.frames if f not in motion]
    if c.self_supervised and c.displacement == "dgm":
        keys += ["ss_onset", "ss_apex"]
    if c.regions == "au-input":
        keys.append("au_boxes")
    return tuple(keys)


def _notes(c: Config) -> list[str]:
    """Facts a run's report must show: which Table 2 ablation this configuration is."""
    notes = []
    if c.displacement != "dgm":
        row = {"flow": "M0", "flow_norm": "M1", "dynamic_image": "M2"}[c.displacement]
        notes.append(f"FRL-DGT ablation {row}: displacement={c.displacement} instead of the DGM"
                     + (f" ({c.flow_channels} flow channels)" if c.displacement != "dynamic_image" else ""))
    elif not c.self_supervised:
        notes.append("FRL-DGT without self-supervised DGM pairs (the Table 2 M3 setting)")
    for flag, row in (("face_fusion", "M6"), ("local_fusion", "M7"), ("global_fusion", "M8")):
        if not getattr(c, flag):
            notes.append(f"FRL-DGT ablation {row}: {flag} off")
    if c.fusion == "fu_a":
        notes.append("FRL-DGT ablation M4: Fu-A-Attn instead of Fu-B-Attn")
    if c.regions == "grid":
        notes.append("FRL-DGT ablation M5: 3 x 3 image patches instead of AU regions")
    if c.depth < 2:
        notes.append(f"FRL-DGT Attn blocks of depth {c.depth}: the paper stacks multiple Transformer layers "
                     "(sec. 3.2.2; merkit's default is 2)")
    return notes


@register_model("frl_dgt", presets=PRESETS, title="FRL-DGT", paper=PAPER)
class FRLDGT(MerModel):
    """FRL-DGT (or FRL-DGT-S with ``sequence=True``); logits (B, num_classes). See the module docstring for inputs.

    ``forward_features`` returns the embedding fed to the head, (B, E) with E = ``dim`` times the number of active
    branches (global, full face). ``forward`` also returns the DGM losses by name (training mode only):
    ``dgm_rec``, ``dgm_nm``, ``dgm_sm`` (eq. 4 weights applied) and, with self-supervision, ``ss_rec``, ``ss_nm``,
    ``ss_sm``. :meth:`displacement` exposes D for visualisation.
    """

    def __init__(self, num_classes: int, config: Config = Config()):
        super().__init__()
        c = config
        for name, value, allowed in (("displacement", c.displacement, DISPLACEMENTS),
                                     ("regions", c.regions, REGION_KINDS), ("fusion", c.fusion, FUSIONS)):
            if value not in allowed:
                raise ValueError(f"FRL-DGT {name} must be one of {allowed}, got {value!r}")
        if c.region_side % c.patch_size or c.input_size % c.face_patch:
            raise ValueError(f"region_side {c.region_side} must be a multiple of patch_size {c.patch_size} and "
                             f"input_size {c.input_size} of face_patch {c.face_patch}")
        if c.region_side > c.input_size:
            raise ValueError(f"region_side {c.region_side} exceeds input_size {c.input_size}")
        if not (c.face_fusion or c.local_fusion or c.global_fusion):
            raise ValueError("FRL-DGT needs at least one of local, global and full-face fusion")
        if c.sequence and c.displacement != "dgm":
            raise ValueError("FRL-DGT-S (sequence=True) generates its displacements with the DGM")
        if c.depth < 1:
            raise ValueError(f"FRL-DGT depth (Transformer layers per Attn block) must be >= 1, got {c.depth}")
        if c.flow_channels not in (2, 3):
            raise ValueError(f"FRL-DGT flow_channels must be 2 (u, v) or 3 (u, v, strain), got {c.flow_channels}")
        self.config = c
        facts = self.facts(c)
        self.input_keys = facts.input_keys
        self.notes = list(facts.notes)
        self.dgm = (DisplacementGenerator(c.image_channels, c.dgm_widths, c.alpha)
                    if c.displacement == "dgm" else None)
        motion_channels = {"dgm": 2, "flow": c.flow_channels, "flow_norm": c.flow_channels,
                           "dynamic_image": c.image_channels}[c.displacement]
        frames = 1 if c.sequence else len(c.frames)
        channels = motion_channels + frames * c.image_channels
        self.in_channels = channels
        tokens = (c.region_side // c.patch_size) ** 2
        block = {"dim": c.dim, "heads": c.heads, "depth": c.depth, "mlp_ratio": c.mlp_ratio,
                 "dropout": c.dropout, "fusion": c.fusion}
        self.region_embed = nn.Conv2d(channels, c.dim, c.patch_size, stride=c.patch_size)
        self.local = (nn.ModuleList(FusionModule(tokens, **block) for _ in range(NUM_REGIONS))
                      if c.local_fusion else None)
        self.globl = FusionModule(NUM_REGIONS, **block) if c.global_fusion else None
        self.face_embed = nn.Conv2d(channels, c.dim, c.face_patch, stride=c.face_patch) if c.face_fusion else None
        self.face = FusionModule((c.input_size // c.face_patch) ** 2, **block) if c.face_fusion else None
        width = c.dim * (int(c.local_fusion or c.global_fusion) + int(c.face_fusion))
        self.embed_dim = width
        self.temporal = (FusionModule(c.sequence_length - 1, width, c.heads, c.depth, c.mlp_ratio, c.dropout,
                                      c.fusion) if c.sequence else None)
        self.head = nn.Sequential(nn.Linear(width, c.head_hidden), nn.ReLU(inplace=True), nn.Dropout(c.dropout),
                                  nn.Linear(c.head_hidden, num_classes))
        if c.regions == "au-template":
            boxes = torch.from_numpy(template_boxes(c.input_size, c.region_side, c.template_crop))
            self.register_buffer("box_origin", boxes[:, :2].clone(), persistent=False)  # (9, 2) left, top

    @classmethod
    def facts(cls, config: Config) -> ModelFacts:
        """Inputs (see the module docstring) and which Table 2 ablation the configuration is."""
        return ModelFacts(_input_keys(config), (), tuple(_notes(config)))


    # --- inputs -------------------------------------------------------------------------------------------------

    def _image(self, inputs: Mapping[str, torch.Tensor], key: str) -> torch.Tensor:
        return resize(_as_channels(inputs[key], self.config.image_channels, key), self.config.input_size)

    def _clip(self, clip: torch.Tensor) -> torch.Tensor:
        """``clip`` as (B, T, C, S, S) in [0, 1] (accepts (B, T, H, W) grey and (B, T, H, W, 3) channels-last)."""
        c = self.config
        if clip.ndim == 4:
            clip = clip.unsqueeze(2)
        elif clip.ndim == 5 and clip.shape[-1] == 3 and clip.shape[2] != 3:
            clip = clip.permute(0, 1, 4, 2, 3)
        if clip.ndim != 5 or clip.shape[1] != c.sequence_length:
            raise ValueError(f"FRL-DGT-S needs a clip of {c.sequence_length} frames, got shape {tuple(clip.shape)}")
        b, t = clip.shape[:2]
        frames = self._frames_of(clip.flatten(0, 1) * c.clip_scale, "clip")
        return frames.view(b, t, *frames.shape[1:])

    def _frames_of(self, x: torch.Tensor, key: str) -> torch.Tensor:
        return resize(_as_channels(x, self.config.image_channels, key), self.config.input_size)

    # --- displacement -------------------------------------------------------------------------------------------

    def displacement(self, onset: torch.Tensor, apex: torch.Tensor) -> torch.Tensor:
        """The DGM's (B, 2, S, S) displacement of prepared (B, C, S, S) frames, grid units, before normalisation."""
        if self.dgm is None:
            raise RuntimeError(f"this FRL-DGT uses displacement={self.config.displacement!r}, not the DGM")
        return self.dgm(onset, apex)

    def weighted_dgm_losses(self, onset: torch.Tensor, apex: torch.Tensor, d: torch.Tensor,
                            prefix: str) -> dict[str, torch.Tensor]:
        c = self.config
        raw = dgm_losses(onset, apex, d)
        return {f"{prefix}_rec": c.lambda_rec * raw["rec"], f"{prefix}_nm": c.lambda_nm * raw["nm"],
                f"{prefix}_sm": c.lambda_sm * raw["sm"]}

    def _motion_map(self, d: torch.Tensor) -> torch.Tensor:
        """The displacement as the fusion sees it: classification gradient scaled, optionally standardised."""
        c = self.config
        d = scale_gradient(d, c.cls_grad_scale)
        return standardise(d, c.norm_eps) if c.normalise else d

    # --- fusion -------------------------------------------------------------------------------------------------

    def _boxes(self, inputs: Mapping[str, torch.Tensor], b: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 9) left and top pixels of the AU boxes at ``input_size``."""
        c = self.config
        if c.regions == "au-template":
            origin = self.box_origin.to(device)
            return origin[:, 0].expand(b, -1), origin[:, 1].expand(b, -1)
        boxes = inputs["au_boxes"].to(device=device, dtype=torch.float32)
        if boxes.shape[1:] != (NUM_REGIONS, 4):
            raise ValueError(f"au_boxes must be (B, {NUM_REGIONS}, 4), got {tuple(boxes.shape)}")
        centre = (boxes[..., :2] + boxes[..., 2:]) / 2 * c.input_size
        corner = torch.round(centre - c.region_side / 2).long().clamp(0, c.input_size - c.region_side)
        return corner[..., 0], corner[..., 1]

    def _regions(self, x: torch.Tensor, inputs: Mapping[str, torch.Tensor], repeat: int) -> torch.Tensor:
        """(B', M, S, S) fusion input -> (B', 9, M, side, side) regions; ``repeat`` pairs per sample (FRL-DGT-S)."""
        c = self.config
        if c.regions == "grid":
            cell = c.input_size // 3
            grid = torch.arange(3, device=x.device) * cell
            left = grid.repeat(3).expand(x.shape[0], -1)
            top = grid.repeat_interleave(3).expand(x.shape[0], -1)
            cells = crop_regions(x, left, top, cell)
            if cell != c.region_side:
                cells = resize(cells.flatten(0, 1), c.region_side).view(*cells.shape[:3], c.region_side,
                                                                          c.region_side)
            return cells
        left, top = self._boxes(inputs, x.shape[0] // repeat, x.device)
        if repeat > 1:
            left, top = left.repeat_interleave(repeat, 0), top.repeat_interleave(repeat, 0)
        return crop_regions(x, left, top, c.region_side)

    def fuse(self, x: torch.Tensor, inputs: Mapping[str, torch.Tensor], repeat: int = 1) -> torch.Tensor:
        """Transformer Fusion of (B', M, S, S) maps -> (B', E) embedding (local, global, full-face)."""
        c = self.config
        parts = []
        if c.local_fusion or c.global_fusion:
            regions = self._regions(x, inputs, repeat)  # (B', 9, M, side, side)
            b = regions.shape[0]
            tokens = self.region_embed(regions.flatten(0, 1)).flatten(2).transpose(1, 2)  # (B' * 9, N, C)
            tokens = tokens.view(b, NUM_REGIONS, -1, c.dim)
            if self.local is not None:
                local = torch.stack([m(tokens[:, i]) for i, m in enumerate(self.local)], dim=1)
            else:
                local = tokens.mean(dim=2)
            parts.append(self.globl(local) if self.globl is not None else local.mean(dim=1))
        if self.face is not None:
            parts.append(self.face(self.face_embed(x).flatten(2).transpose(1, 2)))
        return torch.cat(parts, dim=1)

    # --- forward ------------------------------------------------------------------------------------------------

    def _features_and_losses(self, inputs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        c = self.config
        losses: dict[str, torch.Tensor] = {}
        if c.sequence:
            clip = self._clip(inputs["clip"])
            b, t = clip.shape[:2]
            onset = clip[:, :1].expand(-1, t - 1, -1, -1, -1).flatten(0, 1)
            others = clip[:, 1:].flatten(0, 1)  # (B * (T - 1), C, S, S), pair-major per sample
            d = self.displacement(onset, others)
            if self.training:
                losses.update(self.weighted_dgm_losses(onset, others, d, "dgm"))
            pairs = self.fuse(torch.cat([self._motion_map(d), others], dim=1), inputs, repeat=t - 1)
            features = self.temporal(pairs.view(b, t - 1, -1))
        else:
            frames = {k: self._image(inputs, k) for k in c.frames}
            if c.displacement == "dgm":
                onset, apex = frames.get("onset"), frames.get("apex")
                onset = onset if onset is not None else self._image(inputs, "onset")
                apex = apex if apex is not None else self._image(inputs, "apex")
                d = self.displacement(onset, apex)
                if self.training:
                    losses.update(self.weighted_dgm_losses(onset, apex, d, "dgm"))
                motion = self._motion_map(d)
            elif c.displacement in ("flow", "flow_norm"):
                motion = resize(inputs["flow"][:, :c.flow_channels], c.input_size)
                motion = standardise(motion, c.norm_eps) if c.displacement == "flow_norm" else motion
            else:
                motion = self._image(inputs, "dynamic_image")
            features = self.fuse(torch.cat([motion, *frames.values()], dim=1), inputs)
        if c.self_supervised and self.dgm is not None and self.training:
            losses.update(self._self_supervised_losses(inputs))
        return features, losses

    def _self_supervised_losses(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """L_DGM of the extra (B, P, C, H, W) ``ss_onset`` / ``ss_apex`` pairs (sec. 3.1), prefixed ``ss``."""
        ss_onset, ss_apex = inputs["ss_onset"], inputs["ss_apex"]
        if ss_onset.ndim == 4:
            ss_onset, ss_apex = ss_onset.unsqueeze(1), ss_apex.unsqueeze(1)
        onset = self._frames_of(ss_onset.flatten(0, 1), "ss_onset")
        apex = self._frames_of(ss_apex.flatten(0, 1), "ss_apex")
        return self.weighted_dgm_losses(onset, apex, self.dgm(onset, apex), "ss")

    def forward_features(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self._features_and_losses(inputs)[0]

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> ModelOutput:
        require_inputs(inputs, self.input_keys)
        features, losses = self._features_and_losses(inputs)
        return ModelOutput(self.forward_head(features), losses)

