"""MMNet (merkit.models.mmnet) and the shared continuous-attention blocks (merkit.models.attention)."""

from __future__ import annotations

import pytest
import torch

from merkit.errors import ConfigError
from merkit.models import build_model, count_parameters
from merkit.models.attention import AttentionBlock, pool_to
from merkit.models.mmnet import PRESETS
from tests.helpers import adamw_losses

# Pinned parameter counts (3 classes); docs/models.md prints the same table (docs/scripts/model_params.py).
MMNET_PARAMS = {"paper": 9_238_135, "paper-3class": 9_241_719, "cpu": 87_147}


pytestmark = pytest.mark.usefixtures("one_thread")


def test_paper_preset_gives_512x14x14_before_fusion_at_224():
    model = build_model("mmnet", 5, "paper").eval()
    inputs = {"apex_minus_onset": torch.rand(1, 3, 224, 224) - 0.5, "onset": torch.rand(1, 3, 224, 224)}
    with torch.no_grad():
        motion, maps = model.motion_features(inputs, return_attention=True)
        fused = model.forward_features(inputs)
        logits = model.forward_head(fused)
    assert motion.shape == (1, 512, 14, 14)
    assert fused.shape == (1, 512, 14, 14)
    assert [tuple(m.shape[-2:]) for m in maps] == [(112, 112), (56, 56), (28, 28), (14, 14)]
    assert logits.shape == (1, 5)


@pytest.mark.parametrize("preset", sorted(MMNET_PARAMS))
def test_parameter_count_per_preset(preset):
    assert count_parameters(build_model("mmnet", 3, preset)) == MMNET_PARAMS[preset]


def test_three_class_preset_has_the_deeper_position_calibration():
    assert (PRESETS["paper-3class"].pc_depth, PRESETS["paper-3class"].pc_mlp_ratio) == (3, 2.0)
    assert PRESETS["paper-3class"].pc_drop_path == 0.3
    assert len(build_model("mmnet", 3, "paper-3class").pc.blocks) == 3


@pytest.mark.parametrize("kind", ["spatial", "y", "x", "xy"])
def test_continuous_attention_depends_on_the_previous_map_and_independent_does_not(kind):
    torch.manual_seed(0)
    x = torch.rand(2, 8, 8, 8)
    prior_a = torch.rand(2, 1 if kind == "spatial" else 8, 16, 16 if kind != "y" else 1)
    if kind == "x":
        prior_a = torch.rand(2, 8, 1, 16)
    prior_b = prior_a.flip(0) * 0.5 + 0.1  # a different previous map
    for continuous in (True, False):
        block = AttentionBlock(8, 8, 1, kind, continuous, prior_channels=8).eval()
        with torch.no_grad():
            out_a, attn_a = block(x, prior_a)
            out_b, attn_b = block(x, prior_b)
        if continuous:
            assert not torch.allclose(attn_a, attn_b), kind
            assert not torch.allclose(out_a, out_b), kind
        else:
            assert torch.equal(attn_a, attn_b), kind
            assert torch.equal(out_a, out_b), kind


def test_spatial_attention_is_the_own_map_times_the_max_pooled_previous_map():
    block = AttentionBlock(4, 4, 1, "spatial", True).eval()
    x, prior = torch.rand(1, 4, 6, 6), torch.rand(1, 1, 12, 12)
    with torch.no_grad():
        _, own = block(x, None)
        _, combined = block(x, prior)
    assert torch.allclose(combined, own * torch.nn.functional.max_pool2d(prior, 3, 2, 1))


def test_pool_to_halves_with_mmnets_3x3_stride2_pool_and_keeps_singleton_axes():
    prior = torch.rand(2, 4, 14, 1)
    pooled = pool_to(prior, (7, 1))
    assert pooled.shape == (2, 4, 7, 1)
    assert torch.equal(pooled[:, :, 0, 0], prior[:, :, :2, 0].amax(dim=2))


def test_composite_path_takes_flow_and_a_grey_apex():
    model = build_model("mmnet", 3, "cpu", motion_key="flow", position_key="apex")
    assert model.input_keys == ("flow", "apex")
    out = model({"flow": torch.rand(4, 3, 28, 28), "apex": torch.rand(4, 1, 28, 28)})
    assert out.logits.shape == (4, 3)


def test_position_calibration_switch_removes_the_position_input():
    model = build_model("mmnet", 3, "cpu", pc=False)
    assert model.pc is None and model.input_keys == ("apex_minus_onset",)
    assert model.uses_ground_truth_inputs == ()


def test_unknown_preset_and_parameter_are_named():
    with pytest.raises(ConfigError, match="gpu"):
        build_model("mmnet", 3, "gpu")
    with pytest.raises(ConfigError, match="pc_width"):
        build_model("mmnet", 3, "cpu", pc_width=3)
    with pytest.raises(ConfigError, match="model.name"):
        build_model("mmnot", 3)


def test_a_few_training_steps_reduce_the_loss_on_tiny_inputs():
    torch.manual_seed(0)
    model = build_model("mmnet", 2, "cpu", motion_key="flow", position_key="apex")
    labels = torch.tensor([0, 1] * 4)
    flow = torch.rand(8, 3, 28, 28) * 0.2 + labels.view(-1, 1, 1, 1) * 0.5  # separable by brightness
    inputs = {"flow": flow, "apex": torch.rand(8, 1, 28, 28)}
    losses = adamw_losses(model, inputs, labels)
    assert losses[-1] < losses[0] * 0.7


@pytest.mark.parametrize("name,params", [
    ("mmnet", {}),
    ("cva_fpf", {"au_source": "annotation"}),
])
def test_raw_clip_keys_train_through_one_loso_unit_with_the_image_augmentations(name, params):
    """Tiny in-memory raw-clip FeatureSet (apex - onset, onset, apex, AUs) through run_unit with the paper's hooks."""
    from merkit.config import config_from_dict
    from merkit.datasets.table import new_sample_table
    from merkit.features import FeatureSet
    from merkit.training.loso import loso_folds
    from merkit.training.runner import run_unit

    g = torch.Generator().manual_seed(0)
    rows = [{"dataset": "casme2", "subject": f"sub0{s}", "sample": f"EP0{i}", "emotion": "x"}
            for s in range(3) for i in range(4)]
    table = new_sample_table(rows)
    table["label"] = [i % 2 for i in range(len(table))]
    onset = torch.rand(len(table), 3, 28, 28, generator=g)
    apex = onset + torch.tensor(table["label"].to_numpy()).float().view(-1, 1, 1, 1) * 0.3
    data = FeatureSet(table, {"apex_minus_onset": apex - onset, "onset": onset, "apex": apex,
                              "action_units": torch.zeros(len(table), 21)}, ("a", "b"),
                      meta={"ground_truth_inputs": ["action_units"]})
    from merkit.datasets.action_units import PAPER_AUS

    aus = {"kind": "raw", "action_units": list(PAPER_AUS)} if params.get("au_source") == "annotation" else {}
    config = config_from_dict({
        "data": aus,
        "model": {"name": name, "preset": "cpu", "params": params},
        "training": {"epochs": 2, "batch_size": 4, "optimizer": "adamw", "lr": 8e-4, "weight_decay": 0.6,
                     "augment": ["hflip", "rotate3", "random_crop_pad15"]},
    })
    preds = run_unit(config.resolve().protocol, data, loso_folds(table)[0], seed=0)
    assert len(preds) == 4 and set(preds["prediction"]) <= {0, 1}
