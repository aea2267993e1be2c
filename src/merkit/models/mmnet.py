"""MMNet: Muscle Motion-guided Network.

Li, Sui, Zhu and Zhao, "MMNet: Muscle Motion-Guided Network for Micro-Expression Recognition", IJCAI 2022
(arXiv:2201.05297); authors' code github.com/muse1998/MMNet. Equation numbers below follow the paper as
restated in the MMNet reproduction report (seed ``mmnet-reproduction-report-zh``).

Two branches, fused by addition:

* **Main branch** on the motion input (the paper: apex - onset at 224 x 224, ImageNet-normalised): conv 3 -> 180,
  3x3, stride 2, BN, ReLU; conv 180 -> 128, 3x3, BN, ReLU; four continuous-attention (CA) blocks of widths 128,
  128, 256, 512 and strides 1, 2, 2, 2 (:mod:`merkit.models.attention`, eq. 1-3), giving F_M of 512 x 14 x 14.
  Each block's spatial map ``sigmoid(BN(conv1x1([mean_c; max_c])))`` is multiplied by the previous block's map,
  max-pooled to the current size (eq. 1), and re-weights the block's features (eq. 3).
* **Position calibration (PC)**: a shallow ViT on the onset frame resized to 14 x 14 (bilinear without
  antialiasing, as the authors' tensor ``Resize([14, 14])`` in the torchvision of 2022, whose tensor path did not
  antialias; ``pc_antialias``), patch 1, dim 512, 4 heads, learned positional embedding, no class token, pre-norm
  blocks and a final LayerNorm; 5-class: depth 2, MLP ratio 4; 3-class: depth 3, MLP ratio 2, drop path 0.3. Its
  linear layers start from a truncated normal of std 0.02 with zero biases (the authors' ``_init_weights``,
  ``pc_init="trunc_normal"``).
  Its 196 tokens are reshaped to E_pos (512 x 14 x 14) and **added** to F_M.
* **Head**: flatten, linear to the classes.

Inputs (``{key: tensor}``, float32, B = batch; the keys are configurable, see :class:`Config`):

* motion, ``Config.motion_key``: ``"apex_minus_onset"`` (B, 3, H, W), apex minus onset of [0, 1] face crops (raw
  clips), or ``"flow"`` (B, 3, H, W), u / v / optical strain in [0, 1] (the precomputed MEGC2019 composite, the
  "optical flow instead of difference" variant of the reproduction report);
* position, ``Config.position_key``: ``"onset"`` (paper) or ``"apex"`` (the composite has no onset frame),
  (B, C, H, W) in [0, 1]; grey crops (C = 1) are repeated to 3 channels.

Inputs of another size are resized (bilinear) to ``input_size``. With ``imagenet_normalize`` the position image
is normalised with the ImageNet mean and std, and the motion input too: a difference of two normalised frames is
the raw difference divided by the std (the mean cancels), a flow image is normalised like an image.

Departures from the paper and its code:

* The reproduction report calls the PC "a shallow ViT" without sizes. ``paper`` takes the authors' 5-class script
  (``CASME2_5.py``: depth 2, 4 heads, MLP ratio 4, no drop path) and ``paper-3class`` their 3-class script
  (``CASME2_3.py``: depth 3, 4 heads, MLP ratio 2, drop path 0.3). Drop path rates grow linearly over the blocks
  (timm's rule, as the authors' ViT).
* ``CASME2_3.py`` builds its stem convolution with ``groups=2`` on 3 input channels, which PyTorch refuses, so
  ``paper-3class`` keeps the 5-class stem (``groups=1``). Both scripts' heads have 5 outputs; merkit's has one
  per class.
* ``dropout`` before the linear head (default 0): the authors' code creates a dropout there but never calls it.
* The ``cpu`` preset keeps the PC of merkit's composite runs: an antialiased resize (``pc_antialias=True``) and
  PyTorch's default initialisation (``pc_init="torch"``).
* The first CA block has an identity residual (authors' code); the paper's "1x1 residual projection" is used
  where shape changes.
* Ablation switches beyond the paper: ``pc`` (PC on/off), ``attention`` (``spatial``: MMNet; ``y``/``x``/``xy``:
  the successor's CVA maps; ``none``) and ``continuous`` (continuous vs. independent attention).
* Temporal jitter of onset / apex (training draws frames near the labelled ones; ``data.motion.jitter_mode``)
  and the image augmentations (flip, rotation, random crop, colour jitter) belong to the data path and to the
  training hooks of :mod:`merkit.training.augment`, not to the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn

from merkit.models.attention import AttentionBackbone, conv_output_side
from merkit.models.base import MerModel, ModelFacts, register_model
from merkit.models.layers import MultiheadSelfAttention, PreNormBlock, as_channels, mlp, normalize_image, resize

MOTION_KEYS = ("apex_minus_onset", "flow")
PAPER = ('Li, Sui, Zhu and Zhao, "MMNet: Muscle Motion-Guided Network for Micro-Expression Recognition", IJCAI 2022 '
         "(arXiv:2201.05297)")


@dataclass(frozen=True)
class MainBranchConfig:
    """The main (motion) branch of MMNet, which its successor CVA+FPF+AU reuses (:mod:`merkit.models.cva_fpf`).

    Attributes:
        motion_key: input key of the main branch, ``apex_minus_onset`` (paper) or ``flow`` (composite).
        input_size: side (pixels) the motion input is resized to (paper: 224).
        stem_width, stem_stride: first convolution, 3 -> 180, stride 2.
        widths, strides: the four attention blocks (paper: 128, 128, 256, 512 / 1, 2, 2, 2).
        attention: ``spatial`` (MMNet CA, eq. 1), ``y``/``x``/``xy`` (CVA maps), or ``none``.
        continuous: multiply each block's map by the previous block's (eq. 1); ``False`` = independent attention.
    """

    motion_key: str = "apex_minus_onset"
    input_size: int = 224
    stem_width: int = 180
    stem_stride: int = 2
    widths: tuple[int, ...] = (128, 128, 256, 512)
    strides: tuple[int, ...] = (1, 2, 2, 2)
    attention: str = "spatial"
    continuous: bool = True

    @property
    def feature_side(self) -> int:
        """Side of the main branch's feature map (14 at 224 with the paper's strides)."""
        return conv_output_side(self.input_size, (self.stem_stride, *self.strides))


def main_branch(config: MainBranchConfig) -> AttentionBackbone:
    """The main branch of ``config`` on a 3-channel motion input."""
    return AttentionBackbone(3, config.stem_width, config.stem_stride, config.widths, config.strides,
                             config.attention, config.continuous)


@dataclass(frozen=True)
class Config(MainBranchConfig):
    """MMNet hyperparameters; defaults are the paper's 5-class model.

    Attributes:
        motion_key, input_size, stem_width, stem_stride, widths, strides, attention, continuous: the main branch
            (:class:`MainBranchConfig`).
        position_key: input key of the PC branch, ``onset`` (paper) or ``apex``.
        pc: add the position calibration embedding (the paper's sub-branch); ``False`` = main branch only.
        pc_depth, pc_heads, pc_mlp_ratio, pc_drop_path: the PC ViT (5-class: 2, 4, 4, 0; 3-class: 3, 4, 2, 0.3).
        dropout: dropout before the linear head (merkit's; 0 = paper).
        imagenet_normalize: normalise the inputs with the ImageNet mean / std, as the authors' transforms.
        pc_antialias: antialias the PC's resize when it shrinks (``False``: plain bilinear, the authors').
        pc_init: ``trunc_normal`` (the authors': linear weights from a truncated normal of std 0.02, zero biases)
            or ``torch`` (PyTorch's default initialisation).
    """

    position_key: str = "onset"
    pc: bool = True
    pc_depth: int = 2
    pc_heads: int = 4
    pc_mlp_ratio: float = 4.0
    pc_drop_path: float = 0.0
    dropout: float = 0.0
    imagenet_normalize: bool = True
    pc_antialias: bool = False
    pc_init: str = "trunc_normal"


PC_INITS = ("trunc_normal", "torch")

PRESETS: dict[str, Config] = {
    "paper": Config(),
    "paper-3class": Config(pc_depth=3, pc_mlp_ratio=2.0, pc_drop_path=0.3),
    # 2-core CPU: the composite's native 28 x 28 flow, no resizing; stride-2 stem -> 14, one stride-2 block -> 7;
    # widths / 8 and a one-block PC of dim 64 on a 7 x 7 position image. Fits a 68-fold LOSO in minutes.
    "cpu": Config(input_size=28, stem_width=24, widths=(16, 16, 32, 64), strides=(1, 1, 2, 1),
                  pc_depth=1, pc_heads=2, pc_mlp_ratio=2.0, pc_antialias=True, pc_init="torch"),
}


def prepare_motion(inputs: Mapping[str, torch.Tensor], key: str, side: int, imagenet: bool) -> torch.Tensor:
    """The main branch's input: ``inputs[key]`` as (B, 3, side, side), normalised as configured."""
    x = resize(as_channels(inputs[key], 3, key), side)
    return normalize_image(x, difference=key == "apex_minus_onset") if imagenet else x


def prepare_position(image: torch.Tensor, side: int, imagenet: bool, key: str = "position",
                     antialias: bool = True) -> torch.Tensor:
    """A position frame (B, 1 or 3, H, W) in [0, 1] (input ``key``) as a normalised (B, 3, side, side) image,
    resized bilinearly (antialiased when shrinking with ``antialias``)."""
    x = as_channels(image, 3, key)
    x = normalize_image(x) if imagenet else x
    return resize(x, side, antialias=antialias)


def pc_block(dim: int, heads: int, mlp_ratio: float, drop_path: float) -> PreNormBlock:
    """The PC's ViT block (timm's layout): pre-norm, LayerNorm eps 1e-6, multi-head self-attention, GELU MLP."""
    return PreNormBlock(dim, MultiheadSelfAttention(dim, heads), mlp(dim, int(dim * mlp_ratio)), eps=1e-6,
                        drop_path=drop_path)


def _trunc_normal_init(module: nn.Module) -> None:
    """timm's ViT ``_init_weights`` for one module: linear weights from a truncated normal of std 0.02, zero bias
    (``nn.MultiheadAttention``'s packed q, k, v projection counts as the linear layer it stands for)."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.MultiheadAttention):
        nn.init.trunc_normal_(module.in_proj_weight, std=0.02)
        nn.init.zeros_(module.in_proj_bias)


class PositionCalibration(nn.Module):
    """MMNet's PC module: (B, 3, S * patch, S * patch) image -> (B, dim, S, S) position embedding E_pos.

    Patch 1 (a linear projection of each pixel; ``patch`` > 1: the authors' ``VisionTransformer_POS`` at another
    patch size, the ViT position branch of CVA+FPF's Table 5), learned positional embedding (truncated normal, std
    0.02), no class token, ``depth`` pre-norm blocks, final LayerNorm; the S * S tokens are reshaped to the grid. With
    ``init="trunc_normal"`` the blocks' linear layers (q, k, v, output projection, MLP) are redrawn from a truncated
    normal of std 0.02 with zero biases, as timm's ViT ``_init_weights`` in the authors' ``PC_module.py``; the patch
    embedding (a convolution) keeps PyTorch's default there too.
    """

    def __init__(self, side: int, dim: int, depth: int, heads: int, mlp_ratio: float, drop_path: float,
                 init: str = "torch", patch: int = 1):
        super().__init__()
        self.side = side
        self.embed = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)
        self.pos = nn.Parameter(torch.zeros(1, side * side, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        rates = torch.linspace(0, drop_path, depth).tolist()  # timm's rule: 0 for the first block
        self.blocks = nn.ModuleList(pc_block(dim, heads, mlp_ratio, r) for r in rates)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        if init == "trunc_normal":
            self.blocks.apply(_trunc_normal_init)
        elif init != "torch":
            raise ValueError(f"pc_init must be one of {PC_INITS}, got {init!r}")

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        b = image.shape[0]
        x = self.embed(image).flatten(2).transpose(1, 2) + self.pos
        for block in self.blocks:
            x = block(x)
        return self.norm(x).transpose(1, 2).reshape(b, -1, self.side, self.side)


@register_model("mmnet", presets=PRESETS, title="MMNet", paper=PAPER)
class MMNet(MerModel):
    """MMNet on ``{motion_key: (B, 3, H, W), position_key: (B, 1|3, H, W)}``; logits (B, num_classes).

    ``forward_features`` returns F_M + E_pos, (B, widths[-1], S, S) (512 x 14 x 14 for the paper preset).
    """

    uses_ground_truth_inputs: tuple[str, ...] = ()

    def __init__(self, num_classes: int, config: Config = Config()):
        super().__init__()
        if config.motion_key not in MOTION_KEYS:
            raise ValueError(f"motion_key must be one of {MOTION_KEYS}, got {config.motion_key!r}")
        self.config = config
        self.input_keys = self.facts(config).input_keys
        self.main = main_branch(config)
        side, dim = config.feature_side, config.widths[-1]
        self.pc = (PositionCalibration(side, dim, config.pc_depth, config.pc_heads, config.pc_mlp_ratio,
                                       config.pc_drop_path, config.pc_init) if config.pc else None)
        self.dropout = nn.Dropout(config.dropout)
        self.fc = nn.Linear(dim * side * side, num_classes)

    @classmethod
    def facts(cls, config: Config) -> ModelFacts:
        """Inputs: the motion key, and the position key with the PC on."""
        return ModelFacts((config.motion_key,) + ((config.position_key,) if config.pc else ()))

    def motion_features(self, inputs: Mapping[str, torch.Tensor], return_attention: bool = False):
        """F_M, (B, widths[-1], S, S); with ``return_attention`` also the four blocks' attention maps."""
        c = self.config
        return self.main(prepare_motion(inputs, c.motion_key, c.input_size, c.imagenet_normalize), return_attention)

    def forward_features(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        features = self.motion_features(inputs)
        if self.pc is not None:
            c = self.config
            features = features + self.pc(prepare_position(inputs[c.position_key], c.feature_side,
                                                           c.imagenet_normalize, c.position_key, c.pc_antialias))
        return features

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(features.flatten(1)))

