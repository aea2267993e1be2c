"""SLSTT: aggregators, temporal order, presets, pretrained-weight loading (no network: HF_HUB_OFFLINE=1)."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from merkit.config import load_config
from merkit.errors import ConfigError
from merkit.models import build_model, count_parameters
from merkit.models.slstt import PRESETS, Config, PretrainedWeightsWarning, vit_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

# A ViT small enough for unit tests: 8 px frames, patch 4 -> 4 patches, width 32, one layer.
TINY = dict(image_size=8, patch_size=4, hidden_size=32, num_layers=1, num_heads=2, mlp_size=64, lstm_hidden=16,
            lstm_layers=3, head_hidden=8, frames=5, pretrained=None)


def tiny(aggregator: str, **params) -> torch.nn.Module:
    torch.manual_seed(0)
    with pytest.warns(PretrainedWeightsWarning):
        return build_model("slstt", 3, "cpu", aggregator=aggregator, **{**TINY, **params}).eval()


def clip(batch: int = 2, frames: int = 5, size: int = 8) -> torch.Tensor:
    return torch.rand(batch, frames, 3, size, size, generator=torch.Generator().manual_seed(1))


def test_mean_aggregator_is_invariant_to_frame_order():
    model = tiny("mean")
    x = clip()
    shuffled = x[:, torch.tensor([3, 0, 4, 2, 1])]
    with torch.no_grad():
        assert torch.allclose(model({"long_term_flow": x}).logits, model({"long_term_flow": shuffled}).logits,
                              atol=1e-5)


def test_lstm_aggregator_depends_on_frame_order():
    model = tiny("lstm")
    x = clip()
    with torch.no_grad():
        forward = model({"long_term_flow": x}).logits
        backward = model({"long_term_flow": x.flip(1)}).logits
    assert (forward - backward).abs().max() > 1e-4


def test_encoder_output_frame_t_comes_from_input_frame_t():
    model = tiny("lstm")
    x = clip()
    with torch.no_grad():
        features = model.forward_features({"long_term_flow": x})
        for t in range(x.shape[1]):
            single = model.encoder(pixel_values=(x[:, t] - 0.5) / 0.5).last_hidden_state[:, 0]
            assert torch.allclose(features[:, t], single, atol=1e-5)


def test_lstm_reads_frames_first_to_last():
    """The head equals an LSTM stepped through frames 0, 1, ..., F-1, carrying its state, on the last frame."""
    model = tiny("lstm")
    x = clip()
    with torch.no_grad():
        features = model.forward_features({"long_term_flow": x})
        state = None
        for t in range(features.shape[1]):
            out, state = model.lstm(features[:, t:t + 1], state)
        expected = model.fc2(torch.relu(model.fc1(out[:, -1])))
        assert torch.allclose(model.forward_head(features), expected, atol=1e-5)


def test_paper_preset_is_vit_b16_at_384_with_about_86m_encoder_parameters():
    with pytest.warns(PretrainedWeightsWarning):
        model = build_model("slstt", 5, "paper", pretrained=None)
    n = count_parameters(model.encoder)
    assert 85.5e6 < n < 86.5e6, n
    enc = model.encoder.config
    assert (enc.hidden_size, enc.num_hidden_layers, enc.num_attention_heads, enc.intermediate_size) == (
        768, 12, 12, 3072)
    # 24 x 24 = 576 patches at 384 px, plus the class token
    assert model.encoder.embeddings.position_embeddings.shape[1] == 24 * 24 + 1
    assert model.config.frames == 11 and model.config.aggregator == "lstm"
    assert (model.lstm.hidden_size, model.lstm.num_layers, model.fc1.out_features) == (512, 3, 256)


def test_pretrained_weights_round_trip_through_save_pretrained(tmp_path):
    from transformers import ViTModel

    config = replace(PRESETS["cpu"], **TINY)
    torch.manual_seed(3)
    reference = ViTModel(vit_config(config), add_pooling_layer=False).eval()
    reference.save_pretrained(tmp_path)

    with warnings.catch_warnings():
        warnings.simplefilter("error", PretrainedWeightsWarning)
        model = build_model("slstt", 3, "cpu", aggregator="mean", **{**TINY, "weights_dir": str(tmp_path)}).eval()
    assert str(tmp_path) in model.weights_source
    loaded = model.encoder.state_dict()
    for name, tensor in reference.state_dict().items():
        assert torch.equal(loaded[name], tensor), name
    x = clip()
    with torch.no_grad():
        expected = torch.stack([reference(pixel_values=(x[:, t] - 0.5) / 0.5).last_hidden_state[:, 0]
                                for t in range(x.shape[1])], dim=1)
        assert torch.allclose(model.forward_features({"long_term_flow": x}), expected, atol=1e-6)


def test_position_embeddings_are_interpolated_for_another_input_size(tmp_path):
    from transformers import ViTModel

    ViTModel(vit_config(replace(PRESETS["cpu"], **TINY)), add_pooling_layer=False).save_pretrained(tmp_path)
    model = build_model("slstt", 3, "cpu", aggregator="mean",
                        **{**TINY, "image_size": 16, "weights_dir": str(tmp_path)}).eval()
    assert model.encoder.config.image_size == 8  # the checkpoint's grid: 2 x 2 patches
    with torch.no_grad():
        out = model({"long_term_flow": clip(size=16)}).logits
    assert out.shape == (2, 3) and torch.isfinite(out).all()
    assert "16 patches" in model.notes[0]


def test_missing_pretrained_weights_warn_loudly_or_raise_when_required():
    with pytest.warns(PretrainedWeightsWarning, match="RANDOMLY INITIALISED.*no pretrained weights"):
        build_model("slstt", 3, "cpu", **TINY)
    # an unreachable hub id (offline in tests) falls back to a random encoder, loudly
    with pytest.warns(PretrainedWeightsWarning, match="could not load 'merkit-tests/no-such-vit'"):
        model = build_model("slstt", 3, "cpu", **{**TINY, "pretrained": "merkit-tests/no-such-vit"})
    assert any("not ImageNet-pretrained" in note for note in model.notes)
    with pytest.raises(ConfigError, match="RANDOMLY INITIALISED"):
        build_model("slstt", 3, "cpu", **{**TINY, "require_pretrained": True})


def test_weights_dir_that_does_not_exist_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        build_model("slstt", 3, "cpu", **{**TINY, "weights_dir": str(tmp_path / "missing")})


def test_single_flow_image_runs_as_f_equals_1_and_says_so():
    model = tiny("lstm", input_key="flow", frames=1)
    assert model.input_keys == ("flow",)
    out = model({"flow": torch.rand(2, 3, 8, 8)}).logits
    assert out.shape == (2, 3)
    assert any("F = 1" in note for note in model.notes)
    with pytest.raises(ConfigError, match="frames: 1"):
        Config(input_key="flow", frames=11)


def test_wrong_number_of_frames_is_refused():
    model = tiny("mean")
    with pytest.raises(ValueError, match="F = 5"):
        model({"long_term_flow": clip(frames=3)})


def test_inputs_of_another_size_are_resized_to_the_encoder_size():
    model = tiny("mean")
    with torch.no_grad():
        out = model({"long_term_flow": clip(size=28)}).logits
    assert out.shape == (2, 3)


def test_frozen_encoder_trains_only_its_final_layernorm_as_the_official_code():
    model = tiny("lstm", freeze_encoder=True).train()
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = model({"long_term_flow": clip()}).logits.sum()
    loss.backward()
    opt.step()
    after = model.encoder.state_dict()
    assert all(torch.equal(before[k], v) for k, v in after.items() if not k.startswith("layernorm."))
    # model/slstt.py applies self.norm after the no_grad blocks, so the official code trains it
    assert not torch.equal(before["layernorm.weight"], after["layernorm.weight"])
    assert model.fc2.weight.grad is not None


def test_unknown_parameters_and_aggregators_are_refused():
    with pytest.raises(ConfigError, match="unknown SLSTT parameters"):
        build_model("slstt", 3, "cpu", hidden=3)
    with pytest.raises(ConfigError, match="aggregator"):
        build_model("slstt", 3, "cpu", aggregator="max")


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*/slstt*.yaml")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_slstt_configs_load_and_resolve_to_a_valid_model_config(path):
    config = load_config(path)
    assert config.model.name == "slstt"
    resolved = replace(PRESETS[config.model.preset], **config.model.params)
    if resolved.input_key == "flow":
        assert resolved.frames == 1
    assert resolved.aggregator in ("mean", "lstm")


def test_same_torch_seed_builds_the_same_random_encoder():
    """LOSO units seed torch before building the model; a fold must be reproducible from its seed."""
    a, b = tiny("lstm"), tiny("lstm")  # tiny() seeds torch with 0
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name


def test_motion_stage_long_term_flow_feeds_the_model():
    """The motion stage's output, (F, 3, S, S) per sample, is the model's input without reshaping."""
    import numpy as np

    from merkit.motion.representations import long_term_flow

    yy, xx = np.mgrid[:32, :32]
    clip = np.stack([(255 * np.exp(-((xx - 12 - 0.5 * t) ** 2 + (yy - 16) ** 2) / 30.0)).astype(np.uint8)
                     for t in range(12)])
    flow = long_term_flow(clip, apex=6, frames=5, encoding="hsv", size=8)
    assert flow.shape == (5, 3, 8, 8) and 0.0 <= flow.min() and flow.max() <= 1.0
    model = tiny("lstm")
    with torch.no_grad():
        logits = model({"long_term_flow": torch.from_numpy(np.stack([flow, flow]))}).logits
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()


def test_weights_dir_may_hold_an_image_classification_checkpoint(tmp_path):
    """google/vit-base-patch16-384 is a ViTForImageClassification; its ViT must load, its classifier be dropped."""
    from transformers import ViTForImageClassification

    config = vit_config(replace(PRESETS["cpu"], **TINY))
    config.num_labels = 7
    torch.manual_seed(4)
    classifier = ViTForImageClassification(config).eval()
    classifier.save_pretrained(tmp_path)
    model = build_model("slstt", 3, "cpu", aggregator="mean", **{**TINY, "weights_dir": str(tmp_path)})
    loaded = model.encoder.state_dict()
    for name, tensor in classifier.vit.state_dict().items():
        assert torch.equal(loaded[name], tensor), name


def test_dropout_defaults_to_the_official_codes_and_acts_in_training_mode_only():
    """Official code: p = 0.1 on the attention probabilities and on both residual branches, none after the
    embeddings (model/transformer.py). In eval mode the outputs are deterministic."""
    assert (PRESETS["paper"].dropout, PRESETS["paper"].attention_dropout, PRESETS["paper"].embedding_dropout) == (
        0.1, 0.1, 0.0)
    assert (PRESETS["cpu"].dropout, PRESETS["cpu"].attention_dropout) == (0.1, 0.1)
    model = tiny("mean")
    assert model.encoder.config.hidden_dropout_prob == 0.1 and model.encoder.config.attention_probs_dropout_prob == 0.1
    assert model.encoder.embeddings.dropout.p == 0.0
    rates = {name: m.p for name, m in model.encoder.named_modules() if isinstance(m, torch.nn.Dropout)}
    assert rates.pop("embeddings.dropout") == 0.0
    assert rates and set(rates.values()) == {0.1}  # the residual-branch dropouts of the one layer
    assert not any("dropout" in note for note in model.notes)
    x = {"long_term_flow": clip()}
    with torch.no_grad():
        model.eval()
        assert torch.equal(model(x).logits, model(x).logits)
        model.train()
        torch.manual_seed(0)
        first = model(x).logits
        assert not torch.equal(first, model(x).logits)
        torch.manual_seed(0)
        assert torch.equal(first, model(x).logits)  # the only randomness is dropout's, from the torch seed


@pytest.mark.parametrize("params", [{"dropout": 0.0}, {"dropout": 0.0, "attention_dropout": 0.0,
                                                       "embedding_dropout": 0.1}])
def test_each_dropout_site_is_a_switch(params):
    """Attention-probability dropout alone, and embedding dropout alone, each make training mode random; with
    all three at 0 training mode is deterministic."""
    model = tiny("mean", **params).train()
    x = {"long_term_flow": clip()}
    with torch.no_grad():
        assert not torch.equal(model(x).logits, model(x).logits)
    assert any("dropout" in note for note in model.notes)
    silent = tiny("mean", dropout=0.0, attention_dropout=0.0).train()
    with torch.no_grad():
        assert torch.equal(silent(x).logits, silent(x).logits)
    with pytest.raises(ConfigError, match="dropout"):
        build_model("slstt", 3, "cpu", **{**TINY, "dropout": 1.0})
