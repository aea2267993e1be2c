import torch

from merkit.models import build_model, count_parameters


def test_ststnet_shapes_and_parameter_count():
    model = build_model("ststnet", 3)
    feats = model.forward_features({"flow": torch.rand(2, 3, 28, 28)})
    assert feats.shape == (2, 16, 5, 5)
    assert model({"flow": torch.rand(2, 3, 28, 28)}).logits.shape == (2, 3)
    # convs 3*27+3 + 5*27+5 + 8*27+8 = 448, batch norm 32, fc 400*3+3 = 1203
    assert count_parameters(model) == 448 + 32 + 1203


def _authors_forward(model, x: torch.Tensor) -> torch.Tensor:
    """The authors' main.py forward (github.com/christy1206/STSTNet), branch by branch, in eval mode, with the
    model's weights: cv2.imread's BGR 0-255 image, then per branch conv (padding 2) -> ReLU -> its own batch norm
    -> max pool 3/3 (padding 1) -> dropout; concatenation -> average pool 2/2 -> fc."""
    x = x.flip(1) * 255.0
    start, outs = 0, []
    for branch in model.branches:
        n = branch.out_channels
        y = torch.relu(torch.nn.functional.conv2d(x, branch.weight, branch.bias, padding=2))
        norm = model.norm
        y = torch.nn.functional.batch_norm(y, norm.running_mean[start:start + n], norm.running_var[start:start + n],
                                           norm.weight[start:start + n], norm.bias[start:start + n], False, 0.0,
                                           norm.eps)
        outs.append(torch.nn.functional.max_pool2d(y, 3, 3, padding=1))
        start += n
    return torch.nn.functional.avg_pool2d(torch.cat(outs, 1), 2, 2)


def test_paper_preset_computes_the_authors_three_branches_on_bgr_0_255_input():
    torch.manual_seed(0)
    model = build_model("ststnet", 3).eval()
    model.norm.running_mean.uniform_(0, 50)  # statistics of the 0-255 scale, so a wrong scale shows
    model.norm.running_var.uniform_(100, 2000)
    x = torch.rand(4, 3, 28, 28)
    assert torch.allclose(model.forward_features({"flow": x}), _authors_forward(model, x), rtol=1e-5, atol=1e-4)


def test_cpu_preset_keeps_merkits_network_padding_1_on_0_1_input():
    model = build_model("ststnet", 3, "cpu").eval()
    x = torch.rand(4, 3, 28, 28)
    branches = torch.cat([torch.relu(b(x)) for b in model.branches], dim=1)
    expected = model.avg_pool(model.max_pool(model.norm(branches)))
    assert all(b.padding == (1, 1) for b in model.branches)
    assert torch.allclose(model.forward_features({"flow": x}), expected, atol=1e-6)


def test_paper_preset_drops_out_inside_the_branches_in_training_only():
    torch.manual_seed(0)
    model = build_model("ststnet", 3).train()
    features = model.forward_features({"flow": torch.rand(8, 3, 28, 28)})
    # dropout 0.5 before the average pool zeroes whole 2x2 windows now and then; the cpu preset never does
    assert (features == 0).float().mean() > 0.01
    cpu = build_model("ststnet", 3, "cpu").train()
    assert (cpu.forward_features({"flow": torch.rand(8, 3, 28, 28) + 0.1}) == 0).float().mean() < 0.01


def test_missing_input_key_is_named():
    import pytest

    with pytest.raises(KeyError, match="flow"):
        build_model("ststnet", 3)({"apex": torch.rand(1, 1, 28, 28)})
