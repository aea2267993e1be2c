"""Ensembles across architectures inside each unit (``protocol.members``): equal weights are the plain mean of the
members' own runs, and inner (stacking) weights are chosen on the training subjects' inner folds alone."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from merkit.api import evaluate, train
from merkit.config import load_config
from merkit.errors import ConfigError, LeakageError
from merkit.training.loso import make_folds
from merkit.training.members import inner_weights, simplex_weights
from merkit.training.runner import compute_unit
from tests.helpers import toy_flow_features
from tests.test_protocols import GuardedFeatureSet

pytestmark = pytest.mark.usefixtures("one_thread")
FAST = ["training.epochs=2", "training.batch_size=16", "protocol.save_checkpoints=false"]
MEMBERS = "protocol.members={ststnet: [], svm: [model.name=linear_svm, training.epochs=1]}"
PROBS = ["prob_negative", "prob_positive", "prob_surprise"]


def test_equal_weights_are_the_mean_of_each_members_own_run_with_the_same_seed():
    fs = toy_flow_features(subjects=3, per_class=2)
    config = load_config(None, FAST + [MEMBERS])
    fold = make_folds(fs.table)[1]
    unit = compute_unit(config.resolve().protocol, fs, fold, seed=4)
    alone = [compute_unit(config.member_config(name).resolve().protocol, fs, fold, seed=4).predictions[PROBS]
             for name in ("ststnet", "svm")]
    np.testing.assert_array_equal(unit.predictions[PROBS].to_numpy(), np.mean([a.to_numpy() for a in alone], axis=0))
    assert unit.choice["weighting"] == "equal" and unit.choice["weights"] == {"ststnet": 0.5, "svm": 0.5}
    assert not np.allclose(alone[0].to_numpy(), alone[1].to_numpy())  # two different members


def test_stacking_weights_are_chosen_on_inner_folds_only():
    fs = toy_flow_features(subjects=6, per_class=2)
    config = load_config(None, FAST + [MEMBERS, "protocol.member_weights=inner", "protocol.inner_folds=3"])
    protocol = config.resolve().protocol
    fold = make_folds(fs.table)[0]
    guarded = GuardedFeatureSet(fs.table, fs.inputs, fs.classes, meta=fs.meta)
    guarded.forbidden = frozenset(fs.table["sample_id"].iloc[fold.test_index])
    unit = compute_unit(protocol, guarded, fold, seed=0)  # raises if the outer test labels are read
    weights = unit.choice["weights"]
    assert set(weights) == {"ststnet", "svm"} and sum(weights.values()) == pytest.approx(1.0, abs=1e-5)
    assert min(weights.values()) >= 0 and unit.choice["weighting"] == "inner"
    assert unit.choice["inner_nll_chosen"] <= unit.choice["inner_nll_equal"] + 1e-6
    np.testing.assert_allclose(unit.predictions[PROBS].to_numpy().sum(axis=1), 1.0)
    with pytest.raises(LeakageError, match="test samples"):
        inner_weights(protocol, fs.subset(fold.train_index.tolist() + fold.test_index[:1].tolist()), 0, fold.name,
                      set(fs.table["sample_id"].iloc[fold.test_index]))


def test_simplex_weights_favour_the_member_that_predicts_the_labels():
    labels = np.array([0, 1, 2, 0, 1, 2])
    good = np.eye(3)[labels] * 0.9 + 0.1 / 3
    uniform = np.full((6, 3), 1 / 3)
    wrong = np.eye(3)[(labels + 1) % 3] * 0.9 + 0.1 / 3
    w = simplex_weights([uniform, good, wrong], labels)
    assert w.sum() == pytest.approx(1.0) and (w >= 0).all()
    assert w[1] > 0.95
    assert simplex_weights([good], labels).tolist() == [1.0]


def test_members_are_validated():
    for overrides, message in (
            (["protocol.members={a: []}"], "two or more"),
            (["protocol.member_weights=inner"], "list two or more members"),
            ([MEMBERS, "protocol.selection=inner"], "selection last"),
            ([MEMBERS, "protocol.ensemble=2"], "ensemble 1"),
            (["protocol.members={a: [], b: [data.scheme=x]}"], "model.\\* and training.\\* only"),
            (["protocol.members={a: [], b: [model.name=nothing]}"], "unknown model"),
            ([MEMBERS, "protocol.tta=flip", "protocol.members.c=[model.name=cva_fpf, model.preset=cpu, "
              "model.params.au_source=annotation]"], "protocol.tta flip")):
        with pytest.raises(ConfigError, match=message):
            load_config(None, overrides)
    member = load_config(None, ["model.params.dropout=0.5", MEMBERS]).member_config("svm")
    assert member.model.name == "linear_svm" and member.model.params == {}  # a new model starts from its defaults
    with pytest.raises(ConfigError, match=r"reads other inputs than this run \(data.channels"):
        load_config("megc2019/ststnet", ["protocol.members={a: [], b: [config=megc2019/off-apexnet]}"])
    with pytest.raises(ConfigError, match="may name a config first"):
        load_config(None, ["protocol.members={a: [], b: [training.lr=0.1, config=megc2019/sssnet]}"])


def test_a_member_can_be_a_shipped_config_with_its_own_model_and_training():
    config = load_config("megc2019/ststnet", ["protocol.members={ststnet: [config=megc2019/ststnet], "
                                              "sssnet: [config=megc2019/sssnet, training.epochs=2]}"])
    members = {r.name: r for r in config.resolve().protocol.members}
    sssnet, shipped = members["sssnet"], load_config("megc2019/sssnet")
    assert (sssnet.model.name, sssnet.training.lr, sssnet.training.batch_size, sssnet.training.epochs) == \
        ("sssnet", shipped.training.lr, 32, 2)  # the named config's recipe, then the overrides
    assert members["ststnet"].training == load_config("megc2019/ststnet").training


def test_a_members_run_writes_its_weights_reports_how_they_were_chosen_and_resumes(tmp_path):
    fs = toy_flow_features(subjects=4, per_class=2)
    config = load_config(None, FAST + [MEMBERS, "protocol.member_weights=inner", "protocol.inner_folds=2",
                                       "data.benchmark=megc2019-composite"])
    first = evaluate(config, tmp_path / "run", features=fs, progress=False)
    choices = sorted((tmp_path / "run" / "choices").rglob("*.json"))
    assert len(choices) == 4 and set(json.loads(choices[0].read_text())["weights"]) == {"ststnet", "svm"}
    report = first.report_path.read_text()
    assert "stacking on the out-of-fold predictions of 2 inner folds" in report
    assert "member `svm`: `linear_svm`" in report and "## Member weights" in report
    assert "| ensemble of ststnet + linear_svm (merkit) |" in report
    assert len(first.metrics["inner_selection"]) == 4 and "weights" in first.metrics["inner_selection"][0]
    again = evaluate(config, tmp_path / "run", features=fs, progress=False)  # resumes: nothing recomputed
    pd.testing.assert_frame_equal(again.predictions, first.predictions)
    equal = evaluate(load_config(None, FAST + [MEMBERS.replace("linear_svm, training.epochs=1",
                                                                "sssnet, model.params.input_size=28")]),
                     tmp_path / "equal", features=fs, progress=False)
    assert "equal weights fixed in advance" in equal.report_path.read_text()
    assert "SSSNet ends in a softmax" in equal.report_path.read_text()  # every member's notes reach the report


def test_train_refuses_an_ensemble_of_members(tmp_path):
    with pytest.raises(ConfigError, match="train each member's config on its own"):
        train(load_config(None, FAST + [MEMBERS]), tmp_path / "model", features=toy_flow_features(2, 2))
    assert not (tmp_path / "model").exists()
