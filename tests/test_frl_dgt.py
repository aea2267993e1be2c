"""FRL-DGT (Zhai et al., CVPR 2023): fusion layer, AU-region crops, gradient scaling, DGM learning, harness run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from merkit.models import build_model, count_parameters
from merkit.models.frl_dgt import (
    NUM_REGIONS,
    AttentionThenLinearFusion,
    DisplacementGenerator,
    FusionLayer,
    crop_regions,
    dgm_losses,
    template_boxes,
    warp,
)


pytestmark = pytest.mark.usefixtures("one_thread")


def pair_inputs(batch: int, side: int = 56, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    onset = torch.rand(batch, 3, side, side, generator=g)
    return {"onset": onset, "apex": (onset + 0.05 * torch.rand(batch, 3, side, side, generator=g)).clamp(0, 1)}


# --- fusion layer (eq. 5-7) ---------------------------------------------------------------------------------------

def test_fusion_layer_fuses_a_sequence_into_one_vector_with_per_head_key_weights():
    layer = FusionLayer(tokens=25, dim=32, heads=4)
    out, weights = layer(torch.randn(6, 25, 32), return_weights=True)
    assert out.shape == (6, 32)
    assert weights.shape == (6, 4, 25)
    torch.testing.assert_close(weights.sum(-1), torch.ones(6, 4))
    assert AttentionThenLinearFusion(tokens=25, dim=32, heads=4)(torch.randn(6, 25, 32)).shape == (6, 32)


def test_equal_query_weights_make_the_fused_scores_the_average_of_the_standard_attention_scores():
    """Holds when Lin's weights are all equal to 1/m and its bias is 0 (its initial state), for any input: the
    fused query is then the mean query, and by linearity W_raw = mean over the m queries of the rows of Q K^T."""
    torch.manual_seed(0)
    m, dim, heads = 9, 24, 3
    layer = FusionLayer(tokens=m, dim=dim, heads=heads).eval()
    captured = {}
    layer.norm.register_forward_hook(lambda mod, args, out: captured.update(raw=args[0]))
    x = torch.randn(5, m, dim)
    layer(x)
    q, k, _ = layer.qkv(x).view(5, m, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)
    standard_scores = q @ k.transpose(-1, -2)  # (B, h, m queries, m keys)
    torch.testing.assert_close(captured["raw"], standard_scores.mean(dim=2))
    with torch.no_grad():
        layer.lin_weight[0, 0] += 0.5  # unequal weights: no longer the average
    layer(x)
    assert not torch.allclose(captured["raw"], standard_scores.mean(dim=2))


def test_fusion_layer_is_mean_pooling_of_the_values_when_every_key_scores_the_same():
    """When W_raw is constant over the keys (here: Lin's weights and bias zero, so the fused query is 0), the BN
    maps it to a constant, the softmax is uniform, and each head returns the plain average of its value vectors."""
    torch.manual_seed(1)
    layer = FusionLayer(tokens=7, dim=16, heads=2)
    with torch.no_grad():
        layer.lin_weight.zero_()
        layer.lin_bias.zero_()
    x = torch.randn(4, 7, 16)
    out, weights = layer(x, return_weights=True)
    values = layer.qkv(x)[..., 32:]
    torch.testing.assert_close(out, values.mean(dim=1))
    torch.testing.assert_close(weights, torch.full_like(weights, 1 / 7))


# --- AU regions -------------------------------------------------------------------------------------------------

def test_region_crops_pick_each_boxes_pixels_for_each_sample():
    b, m, side = 2, 3, 56
    rows = torch.arange(side).view(1, 1, side, 1)
    cols = torch.arange(side).view(1, 1, 1, side)
    x = (10_000 * torch.arange(b).view(b, 1, 1, 1) + 1_000 * torch.arange(m).view(1, m, 1, 1)
         + 100 * rows + cols).float().expand(b, m, side, side).contiguous()
    left = torch.tensor([[0, 10, 36], [5, 0, 1]])
    top = torch.tensor([[0, 30, 36], [2, 36, 20]])
    crops = crop_regions(x, left, top, 20)
    assert crops.shape == (b, 3, m, 20, 20)
    for i in range(b):
        for k in range(3):
            l, t = int(left[i, k]), int(top[i, k])
            torch.testing.assert_close(crops[i, k], x[i, :, t:t + 20, l:l + 20])


def test_template_regions_are_the_face_stages_au_boxes_and_input_boxes_are_cut_at_their_centres():
    from merkit.face.align import TEMPLATE_68
    from merkit.face.crop import crop_box, crop_matrix
    from merkit.face.regions import AU_REGION_NAMES, au_regions

    matrix = crop_matrix(crop_box(TEMPLATE_68, "slstt"), 224)
    expected = au_regions(TEMPLATE_68 @ matrix[:2, :2].T + matrix[:2, 2], 224, 90)
    assert [tuple(b) for b in template_boxes(224, 90).tolist()] == [expected[n] for n in AU_REGION_NAMES]

    model = build_model("frl_dgt", 3, "cpu", regions="au-input")
    x = torch.arange(56 * 56, dtype=torch.float32).view(1, 1, 56, 56)
    boxes = torch.zeros(1, NUM_REGIONS, 4)
    boxes[0, :, :2] = torch.tensor([10.0, 4.0]) / 56  # every box: left 10, top 4 (its side is 20 at 56 px)
    boxes[0, :, 2:] = torch.tensor([30.0, 24.0]) / 56
    boxes[0, 8] = torch.tensor([40.0, 40.0, 60.0, 60.0]) / 56  # leaves the image: shifted back inside
    regions = model._regions(x, {"au_boxes": boxes}, repeat=1)
    torch.testing.assert_close(regions[0, 0, 0], x[0, 0, 4:24, 10:30])
    torch.testing.assert_close(regions[0, 8, 0], x[0, 0, 36:56, 36:56])


# --- DGM ------------------------------------------------------------------------------------------------------------

def test_classification_gradient_reaching_the_dgm_is_scaled_by_one_millionth():
    torch.manual_seed(0)
    scaled = build_model("frl_dgt", 3, "cpu")
    with torch.no_grad():  # a non-zero output conv, so that gradients reach every DGM layer
        scaled.dgm.out.weight.normal_(0, 0.05)
    plain = build_model("frl_dgt", 3, "cpu", cls_grad_scale=1.0)
    plain.load_state_dict(scaled.state_dict())
    inputs = pair_inputs(4)
    grads = []
    for model in (scaled, plain):
        model.train()
        model(inputs).logits.sum().backward()  # classification path only, no DGM losses
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    dgm_names = [n for n in grads[1] if n.startswith("dgm.")]
    assert len(dgm_names) == len([n for n, _ in plain.named_parameters() if n.startswith("dgm.")])
    for name in dgm_names:
        assert grads[1][name].abs().max() > 0, name
        torch.testing.assert_close(grads[0][name], grads[1][name] * 1e-6, rtol=1e-4, atol=1e-12)
    torch.testing.assert_close(grads[0]["head.0.weight"], grads[1]["head.0.weight"])


def test_dgm_losses_are_returned_by_name_with_the_papers_weights():
    model = build_model("frl_dgt", 3, "cpu").train()
    inputs = pair_inputs(3)
    out = model(inputs)
    assert set(out.aux_losses) == {"dgm_rec", "dgm_nm", "dgm_sm"}
    onset = inputs["onset"]
    d = model.displacement(onset, inputs["apex"])
    raw = dgm_losses(onset, inputs["apex"], d)
    torch.testing.assert_close(out.aux_losses["dgm_rec"], 10 * raw["rec"])
    torch.testing.assert_close(out.aux_losses["dgm_sm"], 0.2 * raw["sm"])
    assert model.eval()(inputs).aux_losses == {}


def test_warp_moves_a_pixel_by_the_displacement():
    image = torch.zeros(1, 1, 16, 16)
    image[0, 0, 5, 4] = 1.0
    d = torch.zeros(1, 2, 16, 16)
    d[:, 0] = 3 * 2 / 16  # three pixels to the right, in grid units
    moved = warp(image, d)
    assert moved[0, 0, 5, 7] == pytest.approx(1.0) and moved.sum() == pytest.approx(1.0)


def test_dgm_learns_a_known_smooth_displacement_better_than_zero_flow():
    """Self-supervised training (L_DGM only, the paper's weights and DGM learning rate) on synthetic pairs whose apex
    is the onset moved by a known smooth field of up to 1.5 px; endpoint error on new pairs, in pixels."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    side = 32

    def textures(n):
        x = F.interpolate(torch.rand(n, 1, 8, 8, generator=g), size=(side, side), mode="bicubic")
        x = x + 0.5 * F.interpolate(torch.rand(n, 1, 16, 16, generator=g), size=(side, side), mode="bilinear")
        lo, hi = x.amin((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)
        return (x - lo) / (hi - lo)

    def pairs(n):
        field = F.interpolate(torch.randn(n, 2, 3, 3, generator=g), size=(side, side), mode="bicubic")
        field = field / field.abs().amax((1, 2, 3), keepdim=True) * 1.5 * 2 / side  # 1.5 px, grid units
        onset = textures(n)
        return onset, warp(onset, field), field

    dgm = DisplacementGenerator(1, (8, 16, 32), alpha=0.2)
    optimizer = torch.optim.Adam(dgm.parameters(), lr=0.002)
    for _ in range(300):
        onset, apex, _ = pairs(16)
        losses = dgm_losses(onset, apex, dgm(onset, apex))
        loss = 10 * losses["rec"] + losses["nm"] + 0.2 * losses["sm"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    onset, apex, field = pairs(32)
    with torch.no_grad():
        d = dgm.eval()(onset, apex)
    to_px = side / 2
    epe = float(((d - field) * to_px).norm(dim=1).mean())
    zero_flow = float((field * to_px).norm(dim=1).mean())
    assert epe < 0.6 * zero_flow, f"DGM endpoint error {epe:.3f} px vs zero-flow baseline {zero_flow:.3f} px"


# --- model ------------------------------------------------------------------------------------------------------

def test_paper_preset_has_the_papers_sizes():
    model = build_model("frl_dgt", 3, "paper")
    assert model.local[0].pos.shape == (1, 25, 256)  # 90 x 90 boxes of 18 x 18 patches, C = 256
    assert model.local[0].fuse.heads == 8 and len(model.local) == 9
    assert model.in_channels == 2 + 3 + 3  # displacement, onset, apex
    # the full model: self-supervised pairs and AU boxes from landmarks (ablation-m3-template needs neither)
    assert model.input_keys == ("onset", "apex", "ss_onset", "ss_apex", "au_boxes")
    assert build_model("frl_dgt", 3, "ablation-m3-template").input_keys == ("onset", "apex")


@pytest.mark.parametrize("params,keys", [
    ({"displacement": "flow", "frames": ["apex"], "image_channels": 1}, ("flow", "apex")),  # M0 (composite)
    ({"displacement": "flow", "flow_channels": 2}, ("flow", "onset", "apex")),  # M0 as the paper: flow (u, v)
    ({"displacement": "flow_norm"}, ("flow", "onset", "apex")),  # M1
    ({"displacement": "dynamic_image"}, ("dynamic_image", "onset", "apex")),  # M2
    ({"fusion": "fu_a"}, ("onset", "apex")),  # M4
    ({"regions": "grid"}, ("onset", "apex")),  # M5
    ({"face_fusion": False}, ("onset", "apex")),  # M6
    ({"local_fusion": False}, ("onset", "apex")),  # M7
    ({"global_fusion": False}, ("onset", "apex")),  # M8
    ({"self_supervised": True}, ("onset", "apex", "ss_onset", "ss_apex")),
    ({"sequence": True}, ("clip",)),
])
def test_table2_ablations_and_the_sequence_variant_build_and_classify(params, keys):
    torch.manual_seed(0)
    model = build_model("frl_dgt", 4, "cpu", **params).train()
    assert model.input_keys == keys
    g = torch.Generator().manual_seed(0)
    shapes = {"onset": (2, 3, 56, 56), "apex": (2, 3, 56, 56), "flow": (2, 3, 28, 28),
              "dynamic_image": (2, 3, 56, 56), "ss_onset": (2, 2, 3, 56, 56), "ss_apex": (2, 2, 3, 56, 56),
              "clip": (2, 10, 48, 48)}
    if params.get("image_channels") == 1:
        shapes["apex"] = (2, 1, 56, 56)
    out = model({k: torch.rand(shapes[k], generator=g) for k in keys})
    assert out.logits.shape == (2, 4) and torch.isfinite(out.logits).all()
    expected_aux = {"dgm_rec", "dgm_nm", "dgm_sm"} if model.dgm is not None else set()
    if params.get("self_supervised"):
        expected_aux |= {"ss_rec", "ss_nm", "ss_sm"}
    assert set(out.aux_losses) == expected_aux


@pytest.mark.parametrize("depth, lr, steps", [(1, 2e-3, 12), (2, 1e-3, 20)])
def test_a_few_training_steps_reduce_the_loss(depth, lr, steps):
    """Depth 2 fits more slowly and, at lr 2e-3, noisily (its loss after 12 steps was above the first), hence
    its smaller lr and more steps."""
    torch.manual_seed(0)
    model = build_model("frl_dgt", 2, "cpu", depth=depth).train()
    inputs = pair_inputs(8)
    labels = torch.tensor([0, 1] * 4)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    def total_loss():
        out = model(inputs)
        return F.cross_entropy(out.logits, labels) + sum(out.aux_losses.values())

    with torch.no_grad():
        first = float(total_loss())
    for _ in range(steps):
        loss = total_loss()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        assert float(total_loss()) < 0.8 * first


def test_cpu_preset_trains_through_one_loso_unit():
    from merkit.config import config_from_dict
    from merkit.datasets.table import new_sample_table
    from merkit.features import FeatureSet
    from merkit.training.loso import loso_folds
    from merkit.training.runner import run_unit

    rows = [{"dataset": "casme2", "subject": f"sub0{s}", "sample": f"EP0{i}", "emotion": "x"}
            for s in range(3) for i in range(4)]
    table = new_sample_table(rows)
    table["label"] = [i % 2 for i in range(len(table))]
    inputs = pair_inputs(len(table))
    data = FeatureSet(table, inputs, ("a", "b"))
    config = config_from_dict({
        "model": {"name": "frl_dgt", "preset": "cpu"},
        "training": {"epochs": 2, "batch_size": 4, "lr": 2e-3, "scheduler": "cosine",
                     "augment": ["hflip", "random_crop_pad15"]},
    })
    preds = run_unit(config.resolve().protocol, data, loso_folds(table)[0], seed=0)
    assert len(preds) == 4 and set(preds["prediction"]) <= {0, 1}
    assert {"prob_a", "prob_b"} <= set(preds.columns)


def test_cpu_preset_parameter_count():
    assert count_parameters(build_model("frl_dgt", 3, "cpu")) == 284_965  # depth 2, the default
    assert count_parameters(build_model("frl_dgt", 3, "cpu", depth=1)) == 190_981


def encoder_layer_parameters(dim: int, mlp_ratio: float) -> int:
    """Parameters of one pre-norm nn.TransformerEncoderLayer: QKV and output projections 4C^2 + 4C, the MLP
    2rC^2 + rC + C, two LayerNorms 4C, i.e. (4 + 2r) C^2 + (9 + r) C."""
    r = int(mlp_ratio)
    return (4 + 2 * r) * dim ** 2 + (9 + r) * dim


@pytest.mark.parametrize("preset, dim, mlp_ratio", [("cpu", 32, 2.0), ("paper", 256, 4.0)])
def test_attn_depth_defaults_to_two_and_each_layer_adds_one_encoder_layer_per_fusion_module(preset, dim, mlp_ratio):
    """Sec. 3.2.2: the Attn block is "a stack of multiple Transformer layers". Depth is a config value: each added
    layer adds one encoder layer to each of the 11 fusion modules (9 local, global, full face) and, in FRL-DGT-S,
    to the temporal module, whose width is 2C."""
    from merkit.models.frl_dgt import PRESETS

    assert PRESETS[preset].depth == 2
    per_layer = encoder_layer_parameters(dim, mlp_ratio)
    assert encoder_layer_parameters(256, 4.0) == 789_760 and encoder_layer_parameters(32, 2.0) == 8_544
    counts = {d: count_parameters(build_model("frl_dgt", 3, preset, depth=d)) for d in (1, 2, 3)}
    assert counts[2] - counts[1] == counts[3] - counts[2] == 11 * per_layer
    assert count_parameters(build_model("frl_dgt", 3, preset)) == counts[2]
    seq = {d: count_parameters(build_model("frl_dgt", 3, preset, depth=d, sequence=True)) for d in (1, 2)}
    assert seq[2] - seq[1] == 11 * per_layer + encoder_layer_parameters(2 * dim, mlp_ratio)
    assert any("depth 1" in note for note in build_model("frl_dgt", 3, "cpu", depth=1).notes)
    with pytest.raises(ValueError, match="depth"):
        build_model("frl_dgt", 3, "cpu", depth=0)


def test_flow_variant_labels_itself_as_the_table2_m0_ablation():
    from merkit.config import load_config

    config = load_config(Path(__file__).parents[1] / "configs" / "megc2019" / "frl-dgt-flow.yaml")
    model = build_model(config.model.name, 3, config.model.preset, **config.model.params)
    assert model.input_keys == ("flow", "apex", "au_boxes")  # AU boxes from landmarks on the apex crops
    assert any("M0" in note for note in model.notes)
    assert not build_model("frl_dgt", 3, "cpu", self_supervised=True).notes
