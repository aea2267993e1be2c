"""SLSTT: Short and Long range relation based Spatio-Temporal Transformer.

Zhang and Arandjelović, "Short and long range relation based spatio-temporal transformer for micro-expression
recognition", IEEE Transactions on Affective Computing, 2022 (arXiv:2112.05851). Official code (MIT):
github.com/Vision-Intelligence-and-Robots-Group/SLSTT.

Input: **long-term optical flow**, the flow from the onset to each of F frames around the apex (F = 11 in the
paper: the apex and 5 frames on either side), in temporal order. The flow images are made by the motion stage
(:func:`merkit.motion.representations.long_term_flow`: HSV-encoded as in the official code, or u/v/magnitude);
this module never computes flow.

Architecture:

* **Spatial encoder** (Sec. 3.3, eq. 1-8), applied to every frame independently: a ViT (Dosovitskiy et al.,
  ICLR 2021) with patch embedding, class token and learned position embeddings (eq. 1), then L_T pre-LayerNorm
  Transformer layers of multi-head self-attention and a GELU MLP (eq. 2-8). The paper's encoder is ViT-B/16 at
  384x384: 24x24 = 576 patches, D = 768, 12 layers, 12 heads, MLP 3072, initialised from ImageNet. The encoder is
  Hugging Face ``transformers.ViTModel``; a frame's feature is its final (LayerNorm-ed) class token.
* **Temporal aggregator** (Sec. 3.4) over the F per-frame class tokens:

  - ``lstm`` (eq. 9-14): a 3-layer LSTM reads the class tokens in temporal order, hidden size 512; its output
    after the last frame goes through fc 512->256, ReLU, fc 256->classes (the official code's head, Sec. 3.5).
  - ``mean``: a linear classifier on each frame's class token, and the per-frame logits averaged over the
    frames. It does not depend on the frame order.

Split for probing: :meth:`SLSTT.forward_features` returns the per-frame class tokens (B, F, D) in temporal order;
:meth:`SLSTT.forward_head` aggregates them and classifies.

Departures from the paper and its code, and why:

* Inputs in [0, 1] are resized to ``image_size`` (bilinear) inside the model and normalised with
  ``(x - input_mean) / input_std``, by default 0.5 / 0.5, the normalisation the Hugging Face ImageNet ViT weights
  were trained with. The official code normalised with the ImageNet mean and standard deviation.
* Dropout follows the official code (``model/slstt.py`` ``dropout_rate=0.1``, applied in ``model/transformer.py``;
  the paper does not mention dropout): p = 0.1 on the softmaxed attention probabilities (``attention_dropout``)
  and on each residual branch, the attention output after its projection and the MLP output, before the
  addition (``dropout``). Hugging Face's ViT also applies ``hidden_dropout_prob`` after the patch and position
  embeddings, where the official code has none; that site gets ``embedding_dropout``, 0 by default.
* Position embeddings of a pretrained encoder are interpolated (bicubic, ``interpolate_pos_encoding``) when
  ``image_size`` differs from the checkpoint's, so one checkpoint serves any input size.
* The official code runs every encoder layer under ``torch.no_grad`` (``model/transformer.py`` l. 83), so with
  either aggregator it never trains the encoder's layers, patch embedding, class token or position embedding. The
  report initialises the encoder from ImageNet and says nothing of freezing it. Here the encoder is fine-tuned end
  to end by default; ``freeze_encoder=True`` freezes it as the official code does: its final LayerNorm, which runs
  after the layers outside ``no_grad`` (``model/slstt.py`` ``self.norm``), still trains.
* LayerNorm epsilon ``layer_norm_eps``: 1e-6 in the ``paper`` preset, the official code's (``model/transformer.py``
  l. 77, 79; ``model/slstt.py`` l. 91), also when Hugging Face weights (whose config says 1e-12) are loaded; the
  ``cpu`` preset keeps Hugging Face's 1e-12, the setting of merkit's composite figures.
* Where the input is the single onset->apex flow image (the MEGC2019 composite, input key ``flow``), F = 1: the
  aggregators then see one frame, and the model is a ViT on one flow image, not the paper's spatio-temporal
  model. :attr:`SLSTT.notes` says so for the run report.
* Without pretrained weights the encoder is randomly initialised and a :class:`PretrainedWeightsWarning` is
  raised: a ViT trained from scratch on a few hundred clips is not SLSTT. The ``cpu`` preset is such a model by
  design (a small ViT that fits a 2-core CPU budget).
* The ``cpu`` preset's LSTM has one layer, not three. At PyTorch's default initialisation an LSTM layer's gates sit
  near 0.5 and its weights are small, so each layer passes on only a small fraction of its input's variation (about
  0.15 by a rough estimate), and after three layers the output barely depends on the input. The paper's
  ImageNet-pretrained (and, in the official code, frozen) encoder gives the LSTM strong features to start from; a
  random encoder does not. Measured on the MEGC2019 composite (F = 1, a random width-192, 3-layer encoder, one batch
  of 32): the 3-layer LSTM's output varied across the batch with standard deviation 0.0013, and the encoder's
  gradient norm was 0.007, against 11.7 with the mean aggregator. Trained on all 442 samples with AdamW (lr 3e-4 to
  1e-3, 10 to 40 epochs, encoders of width 128 or 192 with 2 or 3 layers), the 3-layer LSTM's training loss stayed
  between 1.03 and 1.10 (ln 3 = 1.10); with one layer (width 192, 2 encoder layers, lr 5e-4) it fell to 0.71 in 20
  epochs, and the mean aggregator's to 0.34.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from merkit.errors import ConfigError
from merkit.models.base import MerModel, ModelFacts, register_model

AGGREGATORS: tuple[str, ...] = ("lstm", "mean")
INPUT_KEYS: tuple[str, ...] = ("long_term_flow", "flow")
IMAGENET_VIT_B16_384 = "google/vit-base-patch16-384"
PAPER = ('Zhang and Arandjelović, "Short and long range relation based spatio-temporal transformer for '
         'micro-expression recognition", IEEE Transactions on Affective Computing, 2022 (arXiv:2112.05851)')
#: The note of a run whose encoder is randomly initialised.
RANDOM_ENCODER_NOTE = "encoder not ImageNet-pretrained: not comparable with the published SLSTT results"


class PretrainedWeightsWarning(UserWarning):
    """The ViT encoder runs without ImageNet weights, so the model is not the paper's SLSTT."""


@dataclass(frozen=True)
class Config:
    """SLSTT hyperparameters; the defaults are the paper's (Sec. 4.2 of the paper, ViT-B/16 at 384, F = 11).

    Attributes:
        input_key: ``long_term_flow`` ((B, F, 3, H, W)) or ``flow`` ((B, 3, H, W), one onset->apex image: F = 1).
        frames: F, the number of flow frames per sample; inputs with another F are refused.
        image_size: side (pixels) at which frames enter the encoder; inputs of other sizes are resized to it.
        patch_size, hidden_size, num_layers, num_heads, mlp_size: the ViT (P, D, L_T, M, 4D in eq. 1-8).
        dropout: dropout probability on the two residual branches of every encoder layer (after the attention
            projection and after the MLP; official code 0.1; the paper gives none).
        attention_dropout: dropout probability on the softmaxed attention probabilities (official code 0.1).
        embedding_dropout: dropout probability after the patch and position embeddings (official code: none, 0).
            Dropout acts in training mode only; in eval mode the model is deterministic.
        aggregator: ``lstm`` (eq. 9-14) or ``mean`` (average of per-frame logits).
        lstm_hidden, lstm_layers, head_hidden: the LSTM aggregator and its head (official code: 512, 3, 256).
        pretrained: Hugging Face hub id of ImageNet ViT weights, or ``None`` for a randomly initialised encoder.
        weights_dir: a local folder written by ``save_pretrained`` (ViTModel or ViTForImageClassification); it
            takes precedence over ``pretrained`` and must exist. With weights, the architecture (width, depth,
            heads, patch) is the checkpoint's.
        require_pretrained: raise instead of warning when no pretrained weights can be loaded.
        freeze_encoder: do not train the encoder's embeddings and layers (the official code's behaviour, with either
            aggregator); its final LayerNorm still trains, as in the official code.
        layer_norm_eps: epsilon of every LayerNorm of the encoder (official code 1e-6; Hugging Face ViT 1e-12).
        input_mean, input_std: inputs are normalised as ``(x - mean) / std`` before the encoder. The defaults suit
            images in [0, 1] (HSV-encoded long-term flow, the composite's flow images); for ``raw`` long-term flow
            (u, v, magnitude in pixels) set ``input_mean: 0`` and ``input_std`` to a typical magnitude.
    """

    input_key: str = "long_term_flow"
    frames: int = 11
    image_size: int = 384
    patch_size: int = 16
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    mlp_size: int = 3072
    dropout: float = 0.1
    attention_dropout: float = 0.1
    embedding_dropout: float = 0.0
    aggregator: str = "lstm"
    lstm_hidden: int = 512
    lstm_layers: int = 3
    head_hidden: int = 256
    pretrained: str | None = IMAGENET_VIT_B16_384
    weights_dir: str | None = None
    require_pretrained: bool = False
    freeze_encoder: bool = False
    input_mean: float = 0.5
    input_std: float = 0.5
    layer_norm_eps: float = 1e-6

    def __post_init__(self) -> None:
        if self.aggregator not in AGGREGATORS:
            raise ConfigError(f"SLSTT aggregator must be one of {AGGREGATORS}, got {self.aggregator!r}")
        if self.input_key not in INPUT_KEYS:
            raise ConfigError(f"SLSTT input_key must be one of {INPUT_KEYS}, got {self.input_key!r}")
        if self.input_key == "flow" and self.frames != 1:
            raise ConfigError("SLSTT input_key 'flow' is one onset->apex image per sample: set frames: 1")
        if self.frames < 1:
            raise ConfigError(f"SLSTT frames must be >= 1, got {self.frames}")
        if self.image_size % self.patch_size:
            raise ConfigError(f"SLSTT image_size {self.image_size} is not a multiple of patch_size "
                              f"{self.patch_size}")
        for name in ("dropout", "attention_dropout", "embedding_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"SLSTT {name} must lie in [0, 1), got {getattr(self, name)}")
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"SLSTT hidden_size {self.hidden_size} is not a multiple of num_heads "
                              f"{self.num_heads}")


PRESETS: dict[str, Config] = {
    # The paper: ViT-B/16 at 384 from ImageNet, F = 11, LSTM aggregator. For a GPU (about 86 M encoder
    # parameters, 577 tokens per frame, 11 frames per sample). Dropout 0.1 as the official code (both presets).
    "paper": Config(),
    # A small ViT for a 2-core CPU: 28 px frames (the composite's flow images), patch 4 -> 7x7 = 49 patches,
    # width 192, 2 layers of 3 heads, MLP 384; randomly initialised (no ImageNet ViT exists at this patch size).
    # One LSTM layer, not three: on a randomly initialised encoder, three stacked LSTM layers pass almost nothing
    # of their input at initialisation (see the module docstring) and did not train within the CPU budget.
    # Sized so that a 68-fold composite LOSO (F = 1, 20 epochs) takes about 30 CPU-minutes or less.
    "cpu": Config(frames=11, image_size=28, patch_size=4, hidden_size=192, num_layers=2, num_heads=3,
                  mlp_size=384, lstm_hidden=128, lstm_layers=1, head_hidden=64, pretrained=None,
                  layer_norm_eps=1e-12),
}


def vit_config(config: Config):
    """The ``transformers.ViTConfig`` of a randomly initialised encoder for ``config``."""
    from transformers import ViTConfig

    return ViTConfig(
        hidden_size=config.hidden_size, num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads, intermediate_size=config.mlp_size,
        hidden_act="gelu", hidden_dropout_prob=config.dropout, attention_probs_dropout_prob=config.attention_dropout,
        layer_norm_eps=config.layer_norm_eps, image_size=config.image_size, patch_size=config.patch_size,
        num_channels=3, qkv_bias=True,
    )


def load_encoder(config: Config):
    """The ViT encoder of ``config``: pretrained where weights are named and reachable, else random.

    Order: ``weights_dir`` (must exist), then the hub id ``pretrained`` (fails fast offline with
    ``HF_HUB_OFFLINE=1``), then a random initialisation with a :class:`PretrainedWeightsWarning`.

    Returns:
        ``(encoder, source)``: a ``transformers.ViTModel`` without pooler, and a one-line description of where its
        weights came from (for the run report).

    Raises:
        FileNotFoundError: ``weights_dir`` does not exist.
        ConfigError: ``require_pretrained`` is set and no weights could be loaded.
    """
    from transformers import ViTModel

    overrides = dict(hidden_dropout_prob=config.dropout, attention_probs_dropout_prob=config.attention_dropout,
                     layer_norm_eps=config.layer_norm_eps)
    reason: str
    if config.weights_dir is not None:
        folder = Path(config.weights_dir).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"SLSTT weights_dir {folder} does not exist; it should be a folder written by "
                                    "ViTModel.save_pretrained (config.json and model.safetensors)")
        encoder = ViTModel.from_pretrained(str(folder), add_pooling_layer=False, **overrides)
        _check_architecture(config, encoder.config, str(folder))
        return encoder, f"pretrained weights from {folder}"
    if config.pretrained is not None:
        try:
            encoder = ViTModel.from_pretrained(config.pretrained, add_pooling_layer=False, **overrides)
        except OSError as err:  # offline, no cache, unknown id: transformers raises OSError for all of these
            reason = f"could not load {config.pretrained!r} ({str(err).splitlines()[0]})"
        else:
            _check_architecture(config, encoder.config, config.pretrained)
            return encoder, f"pretrained weights {config.pretrained}"
    else:
        reason = "no pretrained weights are configured (pretrained: null)"
    message = (
        f"SLSTT: the ViT encoder is RANDOMLY INITIALISED: {reason}. SLSTT fine-tunes an ImageNet ViT-B/16; a ViT "
        "trained from scratch on a few hundred micro-expression clips is not SLSTT, and its results are not "
        "comparable with the paper's. Name a local copy of the weights with model.params.weights_dir (a folder "
        "written by save_pretrained), or allow hub access.")
    if config.require_pretrained:
        raise ConfigError(message)
    warnings.warn(message, PretrainedWeightsWarning, stacklevel=3)
    return ViTModel(vit_config(config), add_pooling_layer=False), f"random initialisation ({reason})"


def _config_notes(c: Config) -> list[str]:
    """The notes that follow from the config alone: aggregator and frames, F = 1, dropout off the official code."""
    notes = [f"SLSTT aggregator: {c.aggregator}; F = {c.frames} frame(s) per sample from input '{c.input_key}'"]
    if c.input_key == "flow":
        notes.append("F = 1: one onset->apex flow image per sample, so SLSTT runs without its temporal "
                     "dimension (not the paper's F = 11 long-term flow)")
    if (c.dropout, c.attention_dropout, c.embedding_dropout) != (0.1, 0.1, 0.0):
        notes.append(f"SLSTT dropout {c.dropout} (residual branches), {c.attention_dropout} (attention), "
                     f"{c.embedding_dropout} (embeddings); the official code's is 0.1, 0.1, 0")
    return notes


def _check_architecture(config: Config, loaded, source: str) -> None:
    pairs = {"hidden_size": loaded.hidden_size, "num_layers": loaded.num_hidden_layers,
             "num_heads": loaded.num_attention_heads, "mlp_size": loaded.intermediate_size,
             "patch_size": loaded.patch_size}
    differ = {k: (getattr(config, k), v) for k, v in pairs.items() if getattr(config, k) != v}
    if differ:
        warnings.warn(f"SLSTT: the checkpoint {source} defines the encoder; it differs from the config in "
                      + ", ".join(f"{k} (config {a}, checkpoint {b})" for k, (a, b) in differ.items()),
                      stacklevel=3)


@register_model("slstt", presets=PRESETS, title="SLSTT", paper=PAPER)
class SLSTT(MerModel):
    """SLSTT on ``{"long_term_flow": (B, F, 3, H, W)}`` or ``{"flow": (B, 3, H, W)}`` (F = 1), float32 in [0, 1].

    Frames are in temporal order (onset side first). Returns logits (B, num_classes).
    """

    input_keys = ("long_term_flow",)

    def __init__(self, num_classes: int, config: Config = Config()):
        super().__init__()
        self.config = config
        self.input_keys = self.facts(config).input_keys
        self.encoder, self.weights_source = load_encoder(config)
        # Hugging Face reuses hidden_dropout_prob after the embeddings; the official code has no dropout there.
        self.encoder.embeddings.dropout = nn.Dropout(config.embedding_dropout)
        width = self.encoder.config.hidden_size
        # Position embeddings are interpolated only when frames enter at another size than the checkpoint's.
        self._interpolate = config.image_size != self.encoder.config.image_size
        if config.freeze_encoder:  # the official code's no_grad covers the layers, not the final LayerNorm
            self.encoder.requires_grad_(False)
            self.encoder.layernorm.requires_grad_(True)
        if config.aggregator == "lstm":
            self.lstm = nn.LSTM(width, config.lstm_hidden, num_layers=config.lstm_layers, batch_first=True)
            self.fc1 = nn.Linear(config.lstm_hidden, config.head_hidden)
            self.fc2 = nn.Linear(config.head_hidden, num_classes)
        else:
            self.classifier = nn.Linear(width, num_classes)

    @classmethod
    def facts(cls, config: Config) -> ModelFacts:
        """Inputs and notes from ``config`` alone. Where the encoder's weights come from is known only once they
        are loaded (a hub id may be unreachable): a built model's :attr:`notes` say which it got."""
        if config.weights_dir is not None:
            weights = f"pretrained weights from {config.weights_dir} (must exist)"
        elif config.pretrained is not None:
            weights = f"pretrained weights {config.pretrained} where loadable, else a random initialisation"
        else:
            weights = "random initialisation (no pretrained weights are configured (pretrained: null))"
        tokens = (config.image_size // config.patch_size) ** 2
        encoder = (f"SLSTT encoder: ViT {config.hidden_size}-d x {config.num_layers} layers, {config.num_heads} "
                   f"heads, patch {config.patch_size} at {config.image_size} px ({tokens} patches); {weights}")
        notes = [encoder, *_config_notes(config)]
        if config.weights_dir is None and config.pretrained is None:
            notes.append(RANDOM_ENCODER_NOTE)
        return ModelFacts((config.input_key,), (), tuple(notes))

    @property
    def notes(self) -> list[str]:
        """Facts about this model that a run report must show next to its numbers."""
        enc = self.encoder.config
        c = self.config
        tokens = (c.image_size // enc.patch_size) ** 2
        notes = [
            f"SLSTT encoder: ViT {enc.hidden_size}-d x {enc.num_hidden_layers} layers, {enc.num_attention_heads} "
            f"heads, patch {enc.patch_size} at {c.image_size} px ({tokens} patches); {self.weights_source}",
            *_config_notes(c),
        ]
        if self.weights_source.startswith("random"):
            notes.append(RANDOM_ENCODER_NOTE)
        return notes

    def frames_of(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The input as (B, F, 3, H, W).

        Raises:
            ValueError: the input's rank or its number of frames disagrees with the config.
        """
        x = inputs[self.config.input_key]
        if self.config.input_key == "flow":
            if x.ndim != 4:
                raise ValueError(f"SLSTT input 'flow' must be (B, 3, H, W), got shape {tuple(x.shape)}")
            x = x.unsqueeze(1)
        elif x.ndim != 5:
            raise ValueError(f"SLSTT input 'long_term_flow' must be (B, F, 3, H, W), got shape {tuple(x.shape)}")
        if x.shape[1] != self.config.frames:
            raise ValueError(f"SLSTT expects F = {self.config.frames} flow frames per sample, got {x.shape[1]}; "
                             "set model.params.frames to match the motion stage")
        return x

    def forward_features(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Inputs -> per-frame class tokens (B, F, D), frame t of the output from frame t of the input."""
        x = self.frames_of(inputs)
        b, f = x.shape[:2]
        x = x.reshape(b * f, *x.shape[2:])  # every frame through the same encoder, in one batch
        size = self.config.image_size
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        x = (x - self.config.input_mean) / self.config.input_std
        tokens = self.encoder(pixel_values=x, interpolate_pos_encoding=self._interpolate).last_hidden_state
        return tokens[:, 0].reshape(b, f, -1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Per-frame class tokens (B, F, D), in temporal order -> logits (B, num_classes)."""
        if self.config.aggregator == "mean":
            return self.classifier(features).mean(dim=1)
        out, _ = self.lstm(features)
        return self.fc2(F.relu(self.fc1(out[:, -1])))

