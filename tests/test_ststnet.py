import torch

from merkit.models import build_model, count_parameters


def test_ststnet_shapes_and_parameter_count():
    model = build_model("ststnet", 3)
    feats = model.forward_features({"flow": torch.rand(2, 3, 28, 28)})
    assert feats.shape == (2, 16, 5, 5)
    assert model({"flow": torch.rand(2, 3, 28, 28)}).logits.shape == (2, 3)
    # convs 3*27+3 + 5*27+5 + 8*27+8 = 448, batch norm 32, fc 400*3+3 = 1203
    assert count_parameters(model) == 448 + 32 + 1203


def test_stacked_convolution_equals_three_parallel_branches_with_relu():
    model = build_model("ststnet", 3).eval()
    x = torch.rand(4, 3, 28, 28)
    branches = torch.cat([torch.relu(b(x)) for b in model.branches], dim=1)
    expected = model.avg_pool(model.max_pool(model.norm(branches)))
    assert torch.allclose(model.forward_features({"flow": x}), expected, atol=1e-6)


def test_missing_input_key_is_named():
    import pytest

    with pytest.raises(KeyError, match="flow"):
        build_model("ststnet", 3)({"apex": torch.rand(1, 1, 28, 28)})
