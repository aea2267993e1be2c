"""Test-time flip (``protocol.tta: flip``) and the small-data regularisers (label smoothing, mixup, CutMix): each
changes a run only when it is on, reads no label it must not, and is selectable as an inner-selected recipe."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from merkit.config import LATER_KEYS, load_config
from merkit.errors import ConfigError
from merkit.models import build_model
from merkit.training import engine
from merkit.training.augment import hflip, mirror
from merkit.training.engine import fit, predict_proba
from merkit.training.loso import make_folds
from merkit.training.mixing import mix_batch
from merkit.training.runner import compute_unit
from tests.helpers import toy_flow_features
from tests.test_protocols import GuardedFeatureSet

pytestmark = pytest.mark.usefixtures("one_thread")
FAST = ["training.epochs=2", "training.batch_size=16", "protocol.save_checkpoints=false"]


def _trained_ststnet(fs, overrides=(), seed: int = 0):
    torch.manual_seed(seed)
    model = build_model("ststnet", 3)
    cfg = load_config(None, ["training.epochs=2", "training.batch_size=8", *overrides]).training
    return fit(model, fs, cfg, torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------------ test-time flip

def test_flip_tta_is_exactly_the_mean_of_the_input_and_mirrored_forward_passes():
    fs = toy_flow_features(subjects=2, per_class=3)
    model = _trained_ststnet(fs)
    flow = fs.inputs["flow"]
    mirrored = flow.flip(-1).clone()
    mirrored[:, 0] = 1.0 - mirrored[:, 0]  # u is channel 0 (meta flow_channels): u -> 1 - u, v and strain as images
    with torch.no_grad():
        plain = torch.softmax(model({"flow": flow}).logits.double(), dim=1)
        flipped = torch.softmax(model({"flow": mirrored}).logits.double(), dim=1)
    got = predict_proba(model, fs, batch_size=len(fs), tta="flip")
    np.testing.assert_array_equal(got, ((plain + flipped) / 2).numpy())
    assert not np.array_equal(got, plain.numpy())  # the mirror changed something
    np.testing.assert_array_equal(predict_proba(model, fs, batch_size=len(fs)), plain.numpy())


def test_the_hflip_augmentation_and_flip_tta_share_one_mirror():
    fs = toy_flow_features(subjects=1, per_class=4)
    inputs = {"flow": fs.inputs["flow"]}
    drawn = torch.rand(len(fs), generator=torch.Generator().manual_seed(3)) < 0.5
    augmented = hflip(inputs, fs.meta, torch.Generator().manual_seed(3))
    assert torch.equal(augmented["flow"], mirror(inputs, fs.meta, drawn)["flow"])
    assert drawn.any() and not drawn.all()
    whole = mirror(inputs, fs.meta)["flow"]
    assert torch.equal(whole[drawn], augmented["flow"][drawn])
    twice = mirror({"flow": whole}, fs.meta)["flow"]
    assert torch.allclose(twice, inputs["flow"], atol=1e-6)  # a mirror twice is the identity (1 - (1 - u) rounds)
    two = {"flow": fs.inputs["flow"][:, 1:]}  # [v, strain]: no u to negate
    assert torch.equal(mirror(two, {"flow_channels": ["v", "strain"]})["flow"], two["flow"].flip(-1))


def test_flip_tta_reads_no_label_of_the_test_subject_and_is_recorded_in_the_config():
    fs = toy_flow_features(subjects=3, per_class=2)
    config = load_config(None, FAST + ["protocol.tta=flip"])
    fold = make_folds(fs.table)[0]
    guarded = GuardedFeatureSet(fs.table, fs.inputs, fs.classes, meta=fs.meta)
    guarded.forbidden = frozenset(fs.table["sample_id"].iloc[fold.test_index])
    flipped = compute_unit(config.resolve().protocol, guarded, fold, seed=0).predictions
    plain = compute_unit(load_config(None, FAST).resolve().protocol, fs, fold, seed=0).predictions
    assert not np.array_equal(flipped.filter(like="prob_").to_numpy(), plain.filter(like="prob_").to_numpy())
    assert config.to_dict()["protocol"]["tta"] == "flip"
    assert config.result_hash() != load_config(None, FAST).result_hash()


def test_flip_tta_is_validated_at_the_boundary():
    with pytest.raises(ConfigError, match="protocol.tta"):
        load_config(None, ["protocol.tta=flop"])
    with pytest.raises(ConfigError, match=r"protocol.tta flip mirrors .* also reads \['action_units'\]"):
        load_config(None, ["model.name=cva_fpf", "model.preset=cpu", "model.params.au_source=annotation",
                           "protocol.tta=flip"])


def test_the_default_path_neither_mirrors_nor_mixes_and_its_predictions_are_unchanged(monkeypatch):
    fs = toy_flow_features(subjects=3, per_class=2)
    fold = make_folds(fs.table)[0]
    explicit = FAST + ["protocol.tta=none", "training.label_smoothing=0", "training.mixup_alpha=0",
                       "training.cutmix_alpha=0"]
    reference = compute_unit(load_config(None, explicit).resolve().protocol, fs, fold, seed=0).predictions

    def refuse(*args, **kwargs):
        raise AssertionError("the default path called it")

    monkeypatch.setattr(engine, "mirror", refuse)
    monkeypatch.setattr(engine, "_mirror_averaged", refuse)
    monkeypatch.setattr("merkit.training.mixing.np.random.default_rng", refuse)
    default = load_config(None, FAST)
    predictions = compute_unit(default.resolve().protocol, fs, fold, seed=0).predictions
    assert predictions.equals(reference)
    assert load_config(None, explicit).to_dict() == default.to_dict()  # defaults: the keys stay out of config.yaml
    assert all(key not in default.to_dict()[section] for section, key in LATER_KEYS)


# ------------------------------------------------------------------------------------------------ regularisers

def test_label_smoothing_changes_training_only_when_on():
    fs = toy_flow_features(subjects=2, per_class=3)
    base = _trained_ststnet(fs).state_dict()
    off = _trained_ststnet(fs, ["training.label_smoothing=0.0"]).state_dict()
    on = _trained_ststnet(fs, ["training.label_smoothing=0.2"]).state_dict()
    assert all(torch.equal(base[k], off[k]) for k in base)
    assert not torch.equal(base["fc.weight"], on["fc.weight"])


@pytest.mark.parametrize("key", ["mixup_alpha", "cutmix_alpha"])
def test_mixing_changes_training_only_when_on(key):
    fs = toy_flow_features(subjects=2, per_class=3)
    base = _trained_ststnet(fs).state_dict()
    off = _trained_ststnet(fs, [f"training.{key}=0"]).state_dict()
    on = _trained_ststnet(fs, [f"training.{key}=0.4"]).state_dict()
    assert all(torch.equal(base[k], off[k]) for k in base)
    assert not torch.equal(base["fc.weight"], on["fc.weight"])


def test_mixup_mixes_every_input_with_one_weight_and_cutmix_pastes_one_box():
    x = {"flow": torch.rand(6, 3, 28, 28), "apex": torch.rand(6, 3, 56, 56), "au": torch.rand(6, 12)}
    assert mix_batch(x, 0.0, 0.0, torch.Generator()) is None
    mixed = mix_batch(x, 0.4, 0.0, torch.Generator().manual_seed(1))
    lam, p = mixed.lam, mixed.partner
    assert 0 < lam < 1 and sorted(p.tolist()) == list(range(6))
    for k in x:
        assert torch.allclose(mixed.inputs[k], lam * x[k] + (1 - lam) * x[k][p])
    cut = mix_batch(x, 0.0, 1.0, torch.Generator().manual_seed(2))
    changed = (cut.inputs["flow"] != x["flow"]).any(dim=(0, 1))  # (28, 28): the pasted box
    rows, cols = changed.any(dim=1).nonzero().flatten(), changed.any(dim=0).nonzero().flatten()
    box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    assert changed.sum() == box  # one rectangle
    assert cut.lam == pytest.approx(1 - float(box) / 28 ** 2)
    same = cut.partner == torch.arange(6)
    assert torch.equal(cut.inputs["flow"][same], x["flow"][same])
    assert torch.equal(cut.inputs["au"], x["au"])  # not an image: the sample's own
    big = (cut.inputs["apex"] != x["apex"]).any(dim=(0, 1))
    assert abs(float(big.sum()) / 56 ** 2 - float(box) / 28 ** 2) < 0.06  # the same relative box


@pytest.mark.parametrize("alphas", [(0.4, 0.0), (0.0, 1.0)])
def test_mixing_keeps_a_device_batch_on_its_device(alphas):
    x = {"flow": torch.rand(4, 3, 28, 28).to("meta"), "face_points": torch.rand(4, 5, 2).to("meta")}
    mixed = mix_batch(x, *alphas, torch.Generator().manual_seed(0))
    assert {v.device.type for v in mixed.inputs.values()} == {"meta"}


def test_regularisers_are_validated():
    for bad in ("training.label_smoothing=1.0", "training.label_smoothing=-0.1", "training.mixup_alpha=-1",
                "training.cutmix_alpha=nan"):
        with pytest.raises(ConfigError):
            load_config(None, [bad])


def test_recipe_selection_among_regularisers_reads_only_the_inner_folds():
    fs = toy_flow_features(subjects=6, per_class=2)
    recipes = ("protocol.recipes={plain: [], smooth: [training.label_smoothing=0.1], "
               "mix: [training.mixup_alpha=0.4], cut: ['training.cutmix_alpha=1.0', 'training.label_smoothing=0.1']}")
    config = load_config(None, FAST + ["protocol.selection=inner", "protocol.inner_folds=3", "protocol.tta=flip",
                                       recipes])
    protocol = config.resolve().protocol
    assert [r.name for r in protocol.recipes] == ["plain", "smooth", "mix", "cut"]
    assert protocol.recipe("cut").training.cutmix_alpha == 1.0
    fold = make_folds(fs.table)[0]
    guarded = GuardedFeatureSet(fs.table, fs.inputs, fs.classes, meta=fs.meta)
    guarded.forbidden = frozenset(fs.table["sample_id"].iloc[fold.test_index])
    result = compute_unit(protocol, guarded, fold, seed=0)  # selection, training and flip never read them
    assert result.choice["recipe"] in {"plain", "smooth", "mix", "cut"}
    assert set(result.choice["inner_uf1"]) == {"plain", "smooth", "mix", "cut"}
    assert len(result.predictions) == len(fold.test_index)
