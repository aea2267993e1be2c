"""CVA + FPF + AU: the MMNet successor (later published as FaceSleuth).

"A novel approach for micro-expression recognition incorporating vertical attention and position localization",
anonymous ICLR 2024 submission (seed ``cva-fpf-au-paper``). Equation and table numbers refer to it.

* **Main branch**: MMNet's stem and four blocks (:class:`merkit.models.attention.AttentionBackbone`) on the
  apex - onset difference, with **continuous vertical attention** (CVA, eq. 1-4): per block, average-pool the
  features over the width to one profile per row, conv1x1 to ``max(8, C/32)`` channels, BN, h-swish (eq. 3),
  conv1x1 back to C, sigmoid; multiply by the previous block's map (max-pooled, 1x1 conv to match channels) and
  re-weight every column of the features (eq. 4). Output F_M: 512 x 14 x 14 at 224.
* **Facial Position Focalizer (FPF)**: a Swin Transformer (patch 4, embed 128, depths [2, 2, 6], heads [4, 8, 16],
  window 7; :class:`transformers.SwinModel`, random init unless ``fpf_pretrained`` names a local folder) on the
  onset and on the apex frame **separately** (shared weights); each gives 196 x 512 tokens, reshaped to
  512 x 14 x 14; the two are summed and **added** to F_M.
* **AU embedding** (sec. 3.3): the 21-d binary vector of active AUs, concatenated after ``fc1`` (512*196 -> 512):
  BN -> ReLU -> ``fc2`` (533 -> 128) -> BN -> ``fc3`` (128 -> classes).

**Warning.** In the paper and its code the AU vector is the *ground-truth FACS annotation*, fed at test time as
well: it leaks the label-defining annotation into the test input. It is off by default (``au_source="none"``);
``au_source="annotation"`` turns it on, and then the model's ``uses_ground_truth_inputs`` lists
``"action_units"`` so that reports flag the run as using test-time ground truth.

Inputs (``{key: tensor}``, float32): the motion input ``Config.motion_key`` (``apex_minus_onset`` or ``flow``,
(B, 3, H, W)), the FPF frames ``Config.fpf_frames`` (``onset`` and/or ``apex``, (B, 1|3, H, W) in [0, 1]; grey is
repeated to 3 channels), and with AUs ``action_units`` (B, 21) in {0, 1}: the multi-hot vector of the sample's
annotated AUs in the order 1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 16, 17, 18, 20, 23, 24, 25, 26, 28, 45 (the columns
of the authors' ``AU_info_obj.xlsx``; :data:`merkit.datasets.action_units.PAPER_AUS`), which the inputs stage builds
with ``data.action_units`` (:mod:`merkit.inputs.action_units`).

Ablation switches (Tables 3-7): ``attention`` (``y`` = vertical, ``x``, ``xy``), ``continuous`` (Table 4),
``fpf_backbone`` (``swin`` / ``vit``, Table 5; ``none`` drops the FPF), ``fpf_frames`` (onset, apex or both,
Table 6), ``au_source`` (Table 7).

Departures from the paper:

* The paper gives no ViT configuration for Table 5. ``fpf_backbone="vit"`` follows the authors' commented-out
  ``VisionTransformer_POS(img_size=224, patch_size=16, embed_dim=512, depth=2, num_heads=4)`` (FaceSleuth
  ``CASME2_5.py`` l. 360-363; ``PC_module.py``): MMNet's position calibration
  (:class:`merkit.models.mmnet.PositionCalibration`) at patch 16 on a 224 input (14 x 14 tokens), no class token,
  LayerNorm eps 1e-6, timm's initialisation; hidden size = the main branch's last width, ``vit_depth`` layers
  (default 2), ``vit_heads`` heads (default 4). ``vit_class_token=True`` (the ``cpu`` preset) is merkit's earlier
  branch instead: a :class:`transformers.ViTModel` whose class token takes part in attention and is dropped at the
  output (LayerNorm eps 1e-12); a ``fpf_pretrained`` ViT is always such a model.
* Without AUs the head keeps the MLP, with ``fc2`` taking 512 inputs instead of 533.
* Swin's drop path rate defaults to 0.1 (``SwinConfig``'s default); the paper does not give it.
* The FPF frames are ImageNet-normalised like MMNet's inputs; the paper does not say.
* Horizontal flip of the AU vector is not needed (AUs are not lateralised in the 21-d vector).

Where the paper and the public code (github.com/Svardfox/FaceSleuth at e4eead4) differ, this module follows the
paper. The code's ``CASME2_5.py`` trains the later ``SOA`` block (a learnable-orientation pooling, its own AdamW
group), not CVA; the paper's CVA is the unused class ``CCA_Y`` of ``CA_block.py``. Against ``CCA_Y``: the bottleneck
here is ``max(8, C/32)`` of the block's output channels (the code uses the input channels, 8 in every block), the
pooling is over the width only (the code reduces the row and column profiles through one shared conv and uses the
row map), and the continuous prior gets its 1x1 conv before every block from the second on (the code has none
before block 2, where the channels do not change).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn

from merkit.models.base import MerModel, ModelFacts, register_model
from merkit.models.mmnet import (
    MOTION_KEYS,
    MainBranchConfig,
    PositionCalibration,
    main_branch,
    prepare_motion,
    prepare_position,
)

AU_SOURCES = ("none", "annotation")
PAPER = ('"A novel approach for micro-expression recognition incorporating vertical attention and position '
         'localization", anonymous ICLR 2024 submission (later published as FaceSleuth)')
FPF_BACKBONES = ("swin", "vit", "none")


@dataclass(frozen=True)
class Config(MainBranchConfig):
    """CVA+FPF+AU hyperparameters; defaults are the paper's model **without** the ground-truth AU input.

    Attributes:
        motion_key, input_size, stem_width, stem_stride, widths, strides, continuous: the main branch, MMNet's
            (:class:`merkit.models.mmnet.MainBranchConfig`, the same defaults).
        attention: ``y`` (CVA, paper; MMNet's default is ``spatial``), ``x``, ``xy`` (Table 3), ``spatial``
            (MMNet's CA) or ``none``; ``continuous=False``: independent maps (Table 4).
        fpf_backbone: ``swin`` (paper), ``vit`` (Table 5) or ``none``.
        fpf_frames: position frames fed separately to the FPF and summed (Table 6): ``("onset", "apex")`` (paper),
            ``("onset",)`` or ``("apex",)``.
        fpf_input_size: side of the FPF input (224).
        swin_embed_dim, swin_depths, swin_heads, swin_window, swin_patch, swin_drop_path: the Swin FPF.
        vit_patch, vit_depth, vit_heads: the ViT FPF (hidden size = ``widths[-1]``).
        vit_class_token: ``False`` (paper): the authors' ViT without a class token; ``True``: a Hugging Face
            ``ViTModel`` whose class token takes part in attention (merkit's earlier branch, the ``cpu`` preset).
        fpf_pretrained: local folder of a ``save_pretrained`` Swin / ViT with this configuration; never downloads.
        au_source: ``none`` (default) or ``annotation`` (ground-truth AUs, also at test time; flagged).
        au_dim: length of the AU vector (21).
        fc1_dim, fc2_dim: the MLP head (512, 128).
        imagenet_normalize: ImageNet normalisation of the inputs.
    """

    attention: str = "y"
    fpf_backbone: str = "swin"
    fpf_frames: tuple[str, ...] = ("onset", "apex")
    fpf_input_size: int = 224
    swin_embed_dim: int = 128
    swin_depths: tuple[int, ...] = (2, 2, 6)
    swin_heads: tuple[int, ...] = (4, 8, 16)
    swin_window: int = 7
    swin_patch: int = 4
    swin_drop_path: float = 0.1
    vit_patch: int = 16
    vit_depth: int = 2
    vit_heads: int = 4
    vit_class_token: bool = False
    fpf_pretrained: str | None = None
    au_source: str = "none"
    au_dim: int = 21
    fc1_dim: int = 512
    fc2_dim: int = 128
    imagenet_normalize: bool = True

    @property
    def swin_output(self) -> tuple[int, int]:
        """(side, channels) of the Swin's last stage: patch merging halves the side (ceil) between stages."""
        side = self.fpf_input_size // self.swin_patch
        for _ in self.swin_depths[1:]:
            side = math.ceil(side / 2)
        return side, self.swin_embed_dim * 2 ** (len(self.swin_depths) - 1)


PRESETS: dict[str, Config] = {
    "paper": Config(),
    # 2-core CPU: the main branch of MMNet's cpu preset (28 x 28 -> 64 x 7 x 7) and a one-stage Swin (patch 4 on a
    # 28 x 28 frame -> 7 x 7 tokens, one 7 x 7 window, embed 64, depth 1, 2 heads: no patch merging), a one-layer
    # ViT of patch 4 for the Table 5 switch, and an MLP head of 128 -> 64.
    "cpu": Config(input_size=28, stem_width=24, widths=(16, 16, 32, 64), strides=(1, 1, 2, 1),
                  fpf_input_size=28, swin_embed_dim=64, swin_depths=(1,), swin_heads=(2,),
                  vit_patch=4, vit_depth=1, vit_heads=2, vit_class_token=True, fc1_dim=128, fc2_dim=64),
}


class SwinFPF(nn.Module):
    """Swin Transformer position branch: (B, 3, S, S) -> (B, C, s, s) from ``SwinModel``'s last hidden state."""

    def __init__(self, config: Config):
        super().__init__()
        from transformers import SwinConfig, SwinModel

        self.side, channels = config.swin_output
        if config.fpf_pretrained:
            self.backbone = SwinModel.from_pretrained(config.fpf_pretrained, local_files_only=True,
                                                      add_pooling_layer=False)
        else:
            self.backbone = SwinModel(SwinConfig(
                image_size=config.fpf_input_size, patch_size=config.swin_patch, num_channels=3,
                embed_dim=config.swin_embed_dim, depths=list(config.swin_depths), num_heads=list(config.swin_heads),
                window_size=config.swin_window, drop_path_rate=config.swin_drop_path), add_pooling_layer=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        tokens = self.backbone(pixel_values=image).last_hidden_state  # (B, s*s, C)
        side = math.isqrt(tokens.shape[1])  # a loaded checkpoint may differ from the config's side
        return tokens.transpose(1, 2).reshape(image.shape[0], -1, side, side)


class ViTFPF(nn.Module):
    """ViT position branch (Table 5): patch tokens of ``ViTModel`` without the class token, as (B, C, s, s)."""

    def __init__(self, config: Config, side: int):
        super().__init__()
        from transformers import ViTConfig, ViTModel

        self.side = side
        if config.fpf_pretrained:
            self.backbone = ViTModel.from_pretrained(config.fpf_pretrained, local_files_only=True,
                                                     add_pooling_layer=False)
        else:
            dim = config.widths[-1]
            self.backbone = ViTModel(ViTConfig(
                image_size=side * config.vit_patch, patch_size=config.vit_patch, hidden_size=dim,
                num_hidden_layers=config.vit_depth, num_attention_heads=config.vit_heads, intermediate_size=4 * dim),
                add_pooling_layer=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        tokens = self.backbone(pixel_values=image).last_hidden_state[:, 1:]
        side = math.isqrt(tokens.shape[1])
        return tokens.transpose(1, 2).reshape(image.shape[0], -1, side, side)


class PositionViTFPF(PositionCalibration):
    """ViT position branch (Table 5) as the authors' ``VisionTransformer_POS``: patch tokens without a class token,
    (B, 3, s * vit_patch, s * vit_patch) -> (B, C, s, s)."""

    def __init__(self, config: Config, side: int):
        super().__init__(side, config.widths[-1], config.vit_depth, config.vit_heads, 4.0, 0.0, "trunc_normal",
                         patch=config.vit_patch)


@register_model("cva_fpf", presets=PRESETS, title="CVA+FPF", paper=PAPER)
class CVAFPF(MerModel):
    """CVA + FPF (+ AU) on ``{motion_key, *fpf_frames[, "action_units"]}``; logits (B, num_classes).

    ``spatial_features`` returns F_M + sum of the FPF maps, (B, widths[-1], S, S) (512 x 14 x 14 for ``paper``);
    ``forward_features`` is fc1 of it with the optional AUs appended, and ``forward_head`` the rest of the MLP.
    """

    def __init__(self, num_classes: int, config: Config = Config()):
        super().__init__()
        if config.motion_key not in MOTION_KEYS:
            raise ValueError(f"motion_key must be one of {MOTION_KEYS}, got {config.motion_key!r}")
        if config.au_source not in AU_SOURCES:
            raise ValueError(f"au_source must be one of {AU_SOURCES}, got {config.au_source!r}")
        if config.fpf_backbone not in FPF_BACKBONES:
            raise ValueError(f"fpf_backbone must be one of {FPF_BACKBONES}, got {config.fpf_backbone!r}")
        bad = [f for f in config.fpf_frames if f not in ("onset", "apex")]
        if bad or not config.fpf_frames:
            raise ValueError(f"fpf_frames must be drawn from ('onset', 'apex'), got {config.fpf_frames!r}")
        self.config = config
        side, dim = config.feature_side, config.widths[-1]
        self.main = main_branch(config)
        self.fpf: nn.Module | None = None
        if config.fpf_backbone == "swin":
            if config.swin_output != (side, dim):
                raise ValueError(f"the Swin FPF gives {config.swin_output} (side, channels) but the main branch gives "
                                 f"{(side, dim)}; adjust fpf_input_size / swin_embed_dim / swin_depths")
            self.fpf = SwinFPF(config)
        elif config.fpf_backbone == "vit" and not config.vit_class_token and not config.fpf_pretrained:
            self.fpf = PositionViTFPF(config, side)
        elif config.fpf_backbone == "vit":
            self.fpf = ViTFPF(config, side)
        facts = self.facts(config)
        self.uses_ground_truth_inputs: tuple[str, ...] = facts.uses_ground_truth_inputs
        self.input_keys = facts.input_keys
        au = config.au_dim if config.au_source == "annotation" else 0
        self.fc1 = nn.Linear(dim * side * side, config.fc1_dim)
        self.norm1 = nn.BatchNorm1d(config.fc1_dim + au)
        self.fc2 = nn.Linear(config.fc1_dim + au, config.fc2_dim)
        self.norm2 = nn.BatchNorm1d(config.fc2_dim)
        self.fc3 = nn.Linear(config.fc2_dim, num_classes)

    @classmethod
    def facts(cls, config: Config) -> ModelFacts:
        """Inputs: the motion key, the FPF frames (without FPF, none) and, with ``au_source="annotation"``, the
        ground-truth ``action_units``, which are also listed as ``uses_ground_truth_inputs``."""
        frames = tuple(config.fpf_frames) if config.fpf_backbone != "none" else ()
        truth = ("action_units",) if config.au_source == "annotation" else ()
        return ModelFacts((config.motion_key,) + frames + truth, truth)

    @property
    def fpf_input_side(self) -> int:
        if isinstance(self.fpf, (ViTFPF, PositionViTFPF)):
            return self.fpf.side * self.config.vit_patch
        return self.config.fpf_input_size

    def motion_features(self, inputs: Mapping[str, torch.Tensor], return_attention: bool = False):
        """F_M, (B, widths[-1], S, S); with ``return_attention`` also the four blocks' attention maps."""
        c = self.config
        return self.main(prepare_motion(inputs, c.motion_key, c.input_size, c.imagenet_normalize), return_attention)

    def position_features(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        """Sum over ``fpf_frames`` of the FPF maps (the same network on each frame), or ``None`` without FPF."""
        if self.fpf is None:
            return None
        side = self.fpf_input_side
        maps = [self.fpf(prepare_position(inputs[k], side, self.config.imagenet_normalize))
                for k in self.config.fpf_frames]
        return torch.stack(maps).sum(0)

    def spatial_features(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """F_M + F_P (the main branch's map plus the FPF maps), (B, widths[-1], S, S)."""
        features = self.motion_features(inputs)
        position = self.position_features(inputs)
        return features if position is None else features + position

    def forward_features(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """fc1 of the flattened :meth:`spatial_features`, with the (B, au_dim) action units appended when
        ``au_source="annotation"``: (B, fc1_dim [+ au_dim]), the vector the paper's classifier consumes."""
        h = self.fc1(self.spatial_features(inputs).flatten(1))
        if self.config.au_source == "annotation":
            if "action_units" not in inputs:
                raise KeyError("au_source='annotation' needs the 'action_units' input (B, au_dim)")
            units = inputs["action_units"]
            if units.shape[1:] != (self.config.au_dim,):
                raise ValueError(f"action_units has shape {tuple(units.shape)}, the model takes (B, "
                                 f"{self.config.au_dim}): data.action_units must list au_dim AUs")
            h = torch.cat([h, units.to(h.dtype)], dim=1)
        return h

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """:meth:`forward_features` -> logits: BN -> ReLU -> fc2 -> BN -> fc3."""
        return self.fc3(self.norm2(self.fc2(torch.relu(self.norm1(features)))))

