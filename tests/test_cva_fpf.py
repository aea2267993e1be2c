"""CVA+FPF+AU (merkit.models.cva_fpf) and the image augmentation hooks it trains with."""

from __future__ import annotations

import pytest
import torch

from merkit.models import build_model, count_parameters
from merkit.models.cva_fpf import SwinFPF
from merkit.training.augment import hflip, random_crop_pad15, rotate3
from tests.helpers import adamw_losses

# Pinned parameter counts (3 classes, no AU); docs/models.md prints the same table (docs/scripts/model_params.py).
CVA_PARAMS = {"paper": 75_759_511, "cpu": 509_901}


pytestmark = pytest.mark.usefixtures("one_thread")


def _cpu_inputs(n=4, au=False):
    inputs = {"flow": torch.rand(n, 3, 28, 28), "onset": torch.rand(n, 1, 28, 28), "apex": torch.rand(n, 1, 28, 28)}
    if au:
        inputs["action_units"] = (torch.rand(n, 21) > 0.7).float()
    return inputs


def test_paper_preset_swin_fpf_and_fusion_are_512x14x14_at_224():
    # One frame only, to keep the test fast: the Swin is shared by onset and apex.
    model = build_model("cva_fpf", 5, "paper", fpf_frames=("apex",)).eval()
    assert isinstance(model.fpf, SwinFPF)
    swin = model.fpf.backbone.config
    assert (swin.patch_size, swin.embed_dim, swin.depths, swin.num_heads, swin.window_size) == (
        4, 128, [2, 2, 6], [4, 8, 16], 7)
    inputs = {"apex_minus_onset": torch.rand(1, 3, 224, 224) - 0.5, "apex": torch.rand(1, 3, 224, 224)}
    with torch.no_grad():
        position = model.position_features(inputs)
        fused = model.spatial_features(inputs)
        features = model.forward_features(inputs)
        logits = model.forward_head(features)
    assert position.shape == (1, 512, 14, 14)
    assert fused.shape == (1, 512, 14, 14)
    assert features.shape == (1, 512)
    assert model.fc1.in_features == 512 * 196 and model.fc1.out_features == 512
    assert logits.shape == (1, 5)


@pytest.mark.parametrize("preset", sorted(CVA_PARAMS))
def test_parameter_count_per_preset(preset):
    assert count_parameters(build_model("cva_fpf", 3, preset)) == CVA_PARAMS[preset]


def test_vertical_attention_gives_one_weight_per_row_shared_by_all_columns():
    model = build_model("cva_fpf", 3, "cpu", motion_key="flow").eval()
    with torch.no_grad():
        _, maps = model.motion_features(_cpu_inputs(), return_attention=True)
    assert [m.shape[-1] for m in maps] == [1, 1, 1, 1]
    assert [m.shape[-2] for m in maps] == [14, 14, 7, 7]
    assert maps[-1].shape[1] == 64


@pytest.mark.parametrize("direction,shape", [("x", (1, 7)), ("xy", (7, 7))])
def test_attention_direction_switch(direction, shape):
    model = build_model("cva_fpf", 3, "cpu", motion_key="flow", attention=direction).eval()
    with torch.no_grad():
        _, maps = model.motion_features(_cpu_inputs(), return_attention=True)
    assert tuple(maps[-1].shape[-2:]) == shape


def test_onset_and_apex_go_through_the_same_fpf_separately_and_are_summed():
    model = build_model("cva_fpf", 3, "cpu", motion_key="flow").eval()
    inputs = _cpu_inputs()
    with torch.no_grad():
        both = model.position_features(inputs)
        model_onset = build_model("cva_fpf", 3, "cpu", motion_key="flow", fpf_frames=("onset",)).eval()
        model_onset.load_state_dict(model.state_dict())
        model_apex = build_model("cva_fpf", 3, "cpu", motion_key="flow", fpf_frames=("apex",)).eval()
        model_apex.load_state_dict(model.state_dict())
        total = model_onset.position_features(inputs) + model_apex.position_features(inputs)
    assert model.input_keys == ("flow", "onset", "apex")
    assert model_apex.input_keys == ("flow", "apex")
    assert torch.allclose(both, total, atol=1e-5)


def test_vit_fpf_switch_gives_the_same_feature_shape():
    model = build_model("cva_fpf", 3, "cpu", motion_key="flow", fpf_backbone="vit").eval()
    with torch.no_grad():
        assert model.position_features(_cpu_inputs()).shape == (4, 64, 7, 7)
    assert build_model("cva_fpf", 3, "cpu", fpf_backbone="none").input_keys == ("apex_minus_onset",)


def test_ground_truth_au_input_is_off_by_default_and_flagged_when_on():
    default = build_model("cva_fpf", 3, "cpu", motion_key="flow")
    assert default.config.au_source == "none"
    assert default.uses_ground_truth_inputs == () and "action_units" not in default.input_keys
    with_au = build_model("cva_fpf", 3, "cpu", motion_key="flow", au_source="annotation")
    assert with_au.uses_ground_truth_inputs == ("action_units",)
    assert "action_units" in with_au.input_keys
    assert with_au.fc2.in_features == with_au.config.fc1_dim + 21
    with pytest.raises(KeyError, match="action_units"):
        with_au({k: v for k, v in _cpu_inputs().items() if k != "action_units"})


def test_au_vector_changes_the_prediction():
    model = build_model("cva_fpf", 3, "cpu", motion_key="flow", au_source="annotation").eval()
    inputs = _cpu_inputs(au=True)
    other = dict(inputs, action_units=1.0 - inputs["action_units"])
    with torch.no_grad():
        assert not torch.allclose(model(inputs).logits, model(other).logits)


def test_a_few_training_steps_reduce_the_loss_on_tiny_inputs():
    torch.manual_seed(0)
    model = build_model("cva_fpf", 2, "cpu", motion_key="flow")
    labels = torch.tensor([0, 1] * 4)
    inputs = _cpu_inputs(8)
    inputs["flow"] = inputs["flow"] * 0.2 + labels.view(-1, 1, 1, 1) * 0.5
    losses = adamw_losses(model, inputs, labels)
    assert losses[-1] < losses[0] * 0.7


def test_image_augmentations_move_all_frames_together():
    g = torch.Generator().manual_seed(0)
    img = torch.rand(6, 1, 28, 28)
    inputs = {"flow": img.expand(-1, 3, -1, -1).clone(), "apex": img.clone()}
    for hook in (rotate3, random_crop_pad15):
        out = hook(inputs, {}, g)
        assert out["flow"].shape == (6, 3, 28, 28)
        assert torch.allclose(out["flow"][:, 1:2], out["apex"], atol=1e-6)
        assert not torch.allclose(out["apex"], img)


def test_image_flip_negates_u_of_flipped_flow_and_mirrors_the_apex():
    g = torch.Generator().manual_seed(1)
    flow, apex = torch.rand(16, 3, 8, 8), torch.rand(16, 1, 8, 8)
    out = hflip({"flow": flow, "apex": apex}, {"flow_channels": ["u", "v", "strain"]}, g)
    flipped = ~torch.isclose(out["apex"], apex).flatten(1).all(1)
    assert 0 < flipped.sum() < 16
    assert torch.allclose(out["apex"][flipped], apex[flipped].flip(-1))
    assert torch.allclose(out["flow"][flipped, 0], 1.0 - flow[flipped, 0].flip(-1))
    assert torch.allclose(out["flow"][flipped, 1], flow[flipped, 1].flip(-1))


@pytest.mark.parametrize("backbone", ["swin", "vit"])
def test_fpf_loads_a_local_pretrained_folder_without_network(backbone, tmp_path):
    first = build_model("cva_fpf", 3, "cpu", motion_key="flow", fpf_backbone=backbone).eval()
    first.fpf.backbone.save_pretrained(tmp_path)
    second = build_model("cva_fpf", 3, "cpu", motion_key="flow", fpf_backbone=backbone,
                         fpf_pretrained=str(tmp_path)).eval()
    inputs = _cpu_inputs()
    with torch.no_grad():
        assert torch.allclose(first.position_features(inputs), second.position_features(inputs), atol=1e-6)
