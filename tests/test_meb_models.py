"""The MEB toolbox's benchmark models (SSSNet, OFF-ApexNet) and the flow + linear SVM baseline: shapes, parameter
counts pinned to MEB's definitions, and the SVM's closed-form fit through the LOSO runner.

MEB is github.com/tvaranka/meb at f731b0a981683a24f6be2e026208811849dee3ad; its model file is
``meb/models/me_networks.py``. The counts below were also checked by building MEB's classes from that file (outside
this repository) and loading their state dicts into merkit's models: every key matched and the eval-mode outputs
agreed to 1e-6.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

from merkit.config import load_config
from merkit.errors import ConfigError
from merkit.models import build_model, count_parameters, model_info
from merkit.models.layers import resize
from merkit.training.engine import fit, predict_proba
from merkit.training.loso import make_folds
from merkit.training.runner import compute_unit
from merkit.training.seeds import member_seed
from tests.helpers import toy_flow_features

pytestmark = pytest.mark.usefixtures("one_thread")
PROBS = ["prob_negative", "prob_positive", "prob_surprise"]

#: MEB's SSSNet(num_classes=3): meb/models/me_networks.py l. 50-62 (conv1 3->32 k5, bn1, conv2 32->64 k3, bn2,
#: fc1 9**2*64 -> 256, fc 256 -> 3): 2,432 + 64 + 18,496 + 128 + 1,327,360 + 771.
SSSNET_PARAMETERS = 1_349_251
#: MEB's OffApexNet(num_classes=3): meb/models/me_networks.py l. 152-164 (conv1 2->6 k3, conv2 6->16 k3,
#: fc1 7**2*16 -> 1024, fc 1024 -> 3): 114 + 880 + 803,840 + 3,075.
OFF_APEXNET_PARAMETERS = 807_909


def test_sssnet_shapes_and_parameter_count_are_mebs():
    model = build_model("sssnet", 3).eval()
    assert count_parameters(model) == SSSNET_PARAMETERS
    assert [n for n, _ in model.named_parameters()] == [
        "conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "conv2.weight", "conv2.bias", "bn2.weight",
        "bn2.bias", "fc1.weight", "fc1.bias", "fc.weight", "fc.bias"]  # MEB's names: its state dict loads as is
    assert model.fc1.in_features == 64 * 9 * 9  # 64 -> conv5 60 -> pool3 20 -> conv3 18 -> pool2 9 (MEB l. 60)
    for side in (28, 64):  # the composite's 28 px images are resized to the 64 px MEB feeds it
        flow = torch.rand(2, 3, side, side)
        assert model.forward_features({"flow": flow}).shape == (2, 256)
        out = model({"flow": flow}).logits
        assert out.shape == (2, 3)
        assert torch.allclose(out.sum(dim=1), torch.ones(2))  # the paper preset ends in MEB's softmax
    plain = build_model("sssnet", 3, softmax_output=False).eval()
    assert not torch.allclose(plain({"flow": torch.rand(2, 3, 64, 64)}).logits.sum(dim=1), torch.ones(2))
    assert model_info("sssnet").notes and not model_info("sssnet", softmax_output=False).notes
    assert count_parameters(build_model("sssnet", 5)) == SSSNET_PARAMETERS + 2 * 257


def test_sssnet_resizes_the_composite_image_to_64_pixels_before_its_first_convolution():
    model = build_model("sssnet", 3).eval()
    seen = []
    model.conv1.register_forward_hook(lambda module, args, out: seen.append(args[0].shape))
    model({"flow": torch.rand(1, 3, 28, 28)})
    assert seen == [(1, 3, 64, 64)]


def _sssnet_features_in_mebs_order(model, flow: torch.Tensor) -> torch.Tensor:
    """MEB's order (me_networks.py l. 64-75): ReLU, then max pool, on merkit's modules and parameters."""
    x = resize(flow, model.config.input_size)
    x = model.drop1(model.bn1(model.pool(F.relu(model.conv1(x)))))
    x = model.drop2(model.bn2(model.pool2(F.relu(model.conv2(x)))))
    return F.relu(model.fc1(x.flatten(1)))


@settings(max_examples=12)
@given(seed=st.integers(0, 2**31 - 1), batch=st.integers(1, 4), side=st.sampled_from([28, 64]),
       shift=st.sampled_from([0.0, -0.5, -1.0]))
def test_sssnet_pooling_before_relu_is_mebs_relu_before_pooling_bit_for_bit(seed, batch, side, shift):
    """merkit pools before the ReLU; MEB applies it first. Values and every parameter's gradient are equal bit for
    bit, in training mode (batch norm's batch statistics, dropout with the same generator state), on inputs shifted
    down so that whole pooling windows are negative or zero."""
    torch.manual_seed(seed)
    model = build_model("sssnet", 3).train()
    flow = torch.rand(batch, 3, side, side) + shift
    grads = []
    for features in (model.forward_features, lambda x: _sssnet_features_in_mebs_order(model, x["flow"])):
        torch.manual_seed(seed + 1)
        model.zero_grad()
        out = features({"flow": flow})
        out.square().sum().backward()
        grads.append((out.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    assert torch.equal(grads[0][0], grads[1][0])
    assert len(grads[0][1]) == 10 and grads[0][1].keys() == grads[1][1].keys()  # all but the head's fc
    assert all(torch.equal(grads[0][1][n], grads[1][1][n]) for n in grads[0][1])


def test_sssnet_channels_last_computes_the_same_values_in_another_layout():
    default = build_model("sssnet", 3).eval()
    fast = build_model("sssnet", 3, channels_last=True).eval()
    fast.load_state_dict(default.state_dict())
    assert fast.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert not default.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert count_parameters(fast) == SSSNET_PARAMETERS
    flow = torch.rand(4, 3, 28, 28)
    a, b = default({"flow": flow}).logits, fast({"flow": flow}).logits
    assert torch.allclose(a, b, atol=1e-5) and b.is_contiguous()


def test_off_apexnet_shapes_and_parameter_count_are_mebs():
    model = build_model("off_apexnet", 3).eval()
    assert count_parameters(model) == OFF_APEXNET_PARAMETERS
    assert [n for n, _ in model.named_parameters()] == [
        "conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias", "fc.weight", "fc.bias"]
    assert model.conv1.in_channels == 2 and model.fc1.in_features == 16 * 7 * 7
    flow = torch.rand(2, 2, 28, 28)
    assert model.forward_features({"flow": flow}).shape == (2, 1024)
    assert model({"flow": flow}).logits.shape == (2, 3)
    with pytest.raises(ValueError, match=r"2 channels \(u, v\).*data.channels: \[u, v\]"):
        model({"flow": torch.rand(2, 3, 28, 28)})  # u, v and strain: the config must pick u and v


def _fitted_svm(fs, classes: int = 3):
    model = build_model("linear_svm", classes)
    cfg = load_config(None, ["model.name=linear_svm", "training.epochs=1"]).training
    return fit(model, fs, cfg, torch.Generator().manual_seed(0))


def test_linear_svm_is_sklearns_linear_svc_and_its_probabilities_are_the_softmax_of_its_decisions():
    from sklearn.svm import LinearSVC

    fs = toy_flow_features(subjects=3, per_class=3)
    model = _fitted_svm(fs)
    x = fs.inputs["flow"].flatten(1).double().numpy()
    seed = int(torch.randint(0, 2 ** 31 - 1, (1,), generator=torch.Generator().manual_seed(0)))
    reference = LinearSVC(C=1.0, dual=False, max_iter=10000, random_state=seed).fit(x, fs.labels.numpy())
    decisions = model({"flow": fs.inputs["flow"]}).logits.double()
    np.testing.assert_allclose(decisions.numpy(), reference.decision_function(x), rtol=1e-4, atol=1e-4)
    proba = predict_proba(model, fs)
    np.testing.assert_allclose(proba, torch.softmax(decisions, dim=1).numpy(), atol=1e-12)
    assert (proba.argmax(axis=1) == reference.predict(x)).all()


def test_linear_svm_with_two_classes_or_an_absent_class_still_gives_one_probability_per_class():
    fs = toy_flow_features(subjects=3, per_class=3)
    two = fs.subset(np.flatnonzero(fs.table["label"].to_numpy() != 1))  # class 1 absent from training
    model = _fitted_svm(two)
    proba = predict_proba(model, fs)
    assert proba.shape == (len(fs), 3) and np.allclose(proba.sum(axis=1), 1.0)
    assert (proba[:, 1] == 0).all()  # an absent class gets decision -inf
    d = model({"flow": fs.inputs["flow"]}).logits.double()
    np.testing.assert_allclose(d[:, 0].numpy(), -d[:, 2].numpy())  # one decision d split as (-d/2, d/2)


def test_linear_svm_runs_through_the_loso_runner_and_writes_the_same_predictions_table():
    fs = toy_flow_features(subjects=4, per_class=3)
    config = load_config(None, ["model.name=linear_svm", "training.epochs=1", "protocol.save_checkpoints=true"])
    fold = make_folds(fs.table)[0]
    result = compute_unit(config.resolve().protocol, fs, fold, seed=0)
    table = result.predictions
    assert list(table.columns)[-3:] == PROBS
    assert len(table) == len(fold.test_index) and (table["epoch"] == 1).all()
    assert result.weights is not None  # the decision function is saved like any network's weights
    model = build_model("linear_svm", 3)  # the unit's fit: the fold's training rows, the unit's generator
    fit(model, fs.subset(fold.train_index), config.training,
        torch.Generator().manual_seed(member_seed(0, fold.name, 0)))
    expected = predict_proba(model, fs.subset(fold.test_index))
    assert not np.allclose(expected, expected[:, :1])  # a fitted model, not the all-zero one
    np.testing.assert_array_equal(table[PROBS].to_numpy(), expected)
    np.testing.assert_array_equal(table["prediction"].to_numpy(), expected.argmax(axis=1))


def test_linear_svm_refuses_augmentation_and_mixing():
    fs = toy_flow_features(subjects=2, per_class=2)
    model = build_model("linear_svm", 3)
    for overrides, named in ((["training.augment=[hflip]"], "training.augment"),
                             (["training.mixup_alpha=0.2"], "training.mixup_alpha"),
                             (["training.label_smoothing=0.1"], "training.label_smoothing")):
        cfg = load_config(None, ["model.name=linear_svm", *overrides]).training
        with pytest.raises(ConfigError, match=f"closed form and takes no {named}"):
            fit(model, fs, cfg, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", ["sssnet", "off-apexnet", "linear-svm"])
def test_the_composite_configs_follow_their_sources(name):
    config = load_config(f"configs/megc2019/{name}.yaml")
    plan = config.resolve()
    t = plan.protocol.own.training
    if name == "linear-svm":
        assert config.model.name == "linear_svm" and t.epochs == 1 and not t.augment
        return
    # MEB's recipe: Adam lr 1e-4, weight decay 1e-3, batch 32, no schedule, no augmentation, last epoch
    assert (t.optimizer, t.lr, t.weight_decay, t.batch_size, t.scheduler, t.augment, t.class_weighted) == \
        ("adam", 1e-4, 1e-3, 32, "none", [], False)
    assert plan.protocol.selection == "last"
    assert t.epochs == {"sssnet": 200, "off-apexnet": 3000}[name]
    assert config.data.channels == {"sssnet": ["u", "v", "strain"], "off-apexnet": ["u", "v"]}[name]
