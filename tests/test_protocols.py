"""Evaluation protocols beyond last-epoch LOSO: inner-fold selection, ensembles, leave-one-dataset-out and
train-on/test-on splits."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from merkit.api import ensemble, evaluate
from merkit.config import load_config
from merkit.datasets.table import new_sample_table
from merkit.errors import ConfigError, LeakageError
from merkit.features import FeatureSet
from merkit.training.loso import make_folds
from merkit.training.runner import compute_unit, run_loso
from merkit.training.selection import choose, inner_splits
from tests.helpers import toy_flow_features

pytestmark = pytest.mark.usefixtures("one_thread")
FAST = ["training.epochs=3", "training.batch_size=16", "protocol.save_checkpoints=false"]
PROBS = ["prob_negative", "prob_positive", "prob_surprise"]


def _three_datasets(subjects: int = 6) -> FeatureSet:
    """Toy features whose subjects belong to three datasets, two subjects each."""
    fs = toy_flow_features(subjects=subjects, per_class=2)
    rows = fs.table.drop(columns=["sample_id", "subject_id"]).assign(
        dataset=[f"d{int(s[1:]) % 3}" for s in fs.table["subject"]])
    return FeatureSet(new_sample_table(rows.to_dict("records")), fs.inputs, fs.classes, meta=fs.meta)


class GuardedFeatureSet(FeatureSet):
    """A feature set whose labels raise when read on any row of ``forbidden`` (the outer test subject)."""

    forbidden: frozenset = frozenset()

    def subset(self, index):
        out = super().subset(index)
        guarded = GuardedFeatureSet(out.table, out.inputs, out.classes, out.notes, out.meta)
        guarded.forbidden = self.forbidden
        return guarded

    @property
    def labels(self) -> torch.Tensor:
        if set(self.table["sample_id"]) & self.forbidden:
            raise AssertionError("the outer test subject's labels were read")
        return super().labels


def test_inner_selection_never_reads_the_outer_test_labels():
    fs = toy_flow_features(subjects=6, per_class=2)
    config = load_config(None, FAST + ["protocol.selection=inner", "protocol.inner_folds=3"])
    fold = make_folds(fs.table)[0]
    guarded = GuardedFeatureSet(fs.table, fs.inputs, fs.classes)
    guarded.forbidden = frozenset(fs.table["sample_id"].iloc[fold.test_index])
    with pytest.raises(AssertionError, match="labels were read"):
        guarded.subset(fold.test_index).labels  # the guard works
    result = compute_unit(config.resolve().protocol, guarded, fold, seed=0)  # selection and training never touch them
    assert len(result.predictions) == len(fold.test_index)
    assert 1 <= result.choice["epochs"] <= 3 and result.choice["recipe"] == "config"
    with pytest.raises(LeakageError, match="test samples"):
        choose(config.resolve().protocol, fs.subset(fold.train_index.tolist() + fold.test_index[:1].tolist()), 0,
               fold.name, set(fs.table["sample_id"].iloc[fold.test_index]))


def test_inner_folds_are_subject_disjoint_and_cover_every_training_subject_once():
    fs = toy_flow_features(subjects=7, per_class=2)
    splits = inner_splits(fs, 5, seed=3)
    subjects = fs.table["subject_id"].to_numpy()
    assert len(splits) == 5
    scored = np.concatenate([score for _, score in splits])
    assert sorted(scored) == list(range(len(fs)))  # every row scored exactly once
    for fit_rows, score_rows in splits:
        assert not set(subjects[fit_rows]) & set(subjects[score_rows])
        assert set(subjects[fit_rows]) | set(subjects[score_rows]) == set(subjects)
    with pytest.raises(ValueError, match="at least 5 training subjects"):
        inner_splits(toy_flow_features(subjects=3), 5, seed=0)


def test_inner_selection_runs_resumes_and_reports_its_choices(tmp_path):
    fs = toy_flow_features(subjects=4, per_class=2)
    config = load_config(None, FAST + ["protocol.selection=inner", "protocol.inner_folds=2",
                                       "protocol.recipes={slow: [training.lr=1e-4], fast: [training.lr=3e-3]}"])
    first = evaluate(config, tmp_path / "run", features=fs, progress=False)
    choices = sorted((tmp_path / "run" / "choices").rglob("*.json"))
    assert len(choices) == 4
    chosen = json.loads(choices[0].read_text())
    assert chosen["recipe"] in ("slow", "fast") and set(chosen["inner_uf1"]) == {"slow", "fast"}
    assert first.predictions.groupby("fold")["epoch"].nunique().eq(1).all()
    report = first.report_path.read_text()
    assert "## Inner selection" in report and "outer test labels never read" in report
    assert len(first.metrics["inner_selection"]) == 4
    again = evaluate(config, tmp_path / "run", features=fs, progress=False)  # resumes: nothing recomputed
    pd.testing.assert_frame_equal(again.predictions, first.predictions)
    choices[0].write_text("{")  # a torn choice file makes its unit untrusted
    with pytest.warns(UserWarning, match="unit-recomputed.*choice"):
        evaluate(config, tmp_path / "run", features=fs, progress=False)


def test_an_ensemble_of_identical_runs_equals_each_run(tmp_path):
    fs = toy_flow_features(subjects=3, per_class=2)
    config = load_config(None, FAST + ["protocol.seeds=[0, 1]"])
    a = evaluate(config, tmp_path / "a", features=fs, progress=False)
    evaluate(config, tmp_path / "b", features=fs, progress=False)
    both = ensemble([tmp_path / "a", tmp_path / "b"], tmp_path / "ab")
    pd.testing.assert_frame_equal(both.predictions[a.predictions.columns], a.predictions, check_exact=False,
                                  rtol=0, atol=1e-12)
    assert both.metrics["summary"] == a.metrics["summary"]
    assert "averaged per seed, over the runs" in both.report_path.read_text()
    collapsed = ensemble([tmp_path / "a"], tmp_path / "seeds", collapse_seeds=True)
    mean = a.predictions.groupby("sample_id")[PROBS].mean()
    np.testing.assert_allclose(collapsed.predictions.set_index("sample_id")[PROBS].to_numpy(),
                               mean.loc[collapsed.predictions["sample_id"]].to_numpy(), atol=1e-12)
    name = a.config.name
    assert (both.config.name, collapsed.config.name) == (f"ensemble-{name}+{name}", f"ensemble-{name}-seeds")
    assert collapsed.report_path.read_text().startswith(f"# merkit run: ensemble-{name}-seeds\n")


def test_an_ensemble_refuses_runs_over_other_samples_or_seeds(tmp_path):
    config = load_config(None, FAST)
    evaluate(config, tmp_path / "a", features=toy_flow_features(subjects=3), progress=False)
    evaluate(config, tmp_path / "b", features=toy_flow_features(subjects=4), progress=False)
    evaluate(load_config(None, FAST + ["protocol.seeds=[5]"]), tmp_path / "c", features=toy_flow_features(subjects=3),
             progress=False)
    with pytest.raises(ConfigError, match="does not hold the samples"):
        ensemble([tmp_path / "a", tmp_path / "b"], tmp_path / "ab")
    with pytest.raises(ConfigError, match=r"has seeds \[[05]\], .* has \[[05]\]; pair runs") as error:
        ensemble([tmp_path / "c", tmp_path / "a"], tmp_path / "ca")
    assert "np.int64" not in str(error.value)  # plain values, as a user typed them


def test_protocol_ensemble_averages_k_member_models_and_one_member_is_the_single_model(tmp_path):
    fs = toy_flow_features(subjects=3, per_class=2)
    fold = make_folds(fs.table)[0]
    single = compute_unit(load_config(None, FAST).resolve().protocol, fs, fold, 0).predictions
    one = compute_unit(load_config(None, FAST + ["protocol.ensemble=1"]).resolve().protocol, fs, fold, 0).predictions
    pd.testing.assert_frame_equal(one, single)
    two = compute_unit(load_config(None, FAST + ["protocol.ensemble=2"]).resolve().protocol, fs, fold, 0).predictions
    assert not np.allclose(two[PROBS], single[PROBS])
    np.testing.assert_allclose(two[PROBS].sum(axis=1), 1.0, atol=1e-9)
    assert "mean of 2 models" in evaluate(load_config(None, FAST + ["protocol.ensemble=2"]), tmp_path / "run",
                                          features=fs, progress=False).report_path.read_text()


def test_lodo_trains_on_exactly_the_other_datasets_and_reports_the_split(tmp_path):
    fs = _three_datasets()
    folds = make_folds(fs.table, "lodo")
    datasets = fs.table["dataset"].to_numpy()
    assert [f.name for f in folds] == ["dataset:d0", "dataset:d1", "dataset:d2"]
    for fold in folds:
        held = fold.name.split(":")[1]
        assert set(datasets[fold.test_index]) == {held}
        assert set(datasets[fold.train_index]) == {"d0", "d1", "d2"} - {held}
        assert len(fold.train_index) + len(fold.test_index) == len(fs)
    result = evaluate(load_config(None, FAST + ["protocol.split=lodo"]), tmp_path / "run", features=fs,
                      progress=False)
    assert sorted(result.predictions["fold"].unique()) == ["dataset:d0", "dataset:d1", "dataset:d2"]
    assert set(result.metrics["summary"]) == {"full", "d0", "d1", "d2"}
    assert "leave-one-dataset-out" in result.report_path.read_text()
    with pytest.raises(ConfigError, match="at least two datasets"):
        make_folds(toy_flow_features(subjects=3).table, "lodo")


def test_train_on_test_on_makes_one_fold_and_is_checked(tmp_path):
    fs = _three_datasets()
    (fold,) = make_folds(fs.table, "train-test", ["d0", "d1"], ["d2"])
    assert set(fs.table["dataset"].iloc[fold.train_index]) == {"d0", "d1"}
    assert set(fs.table["dataset"].iloc[fold.test_index]) == {"d2"}
    predictions = run_loso(load_config(None, FAST + ["protocol.split=train-test", "protocol.train_on=[d0, d1]",
                                                     "protocol.test_on=[d2]"]).resolve(), fs, tmp_path)
    assert set(predictions["dataset"]) == {"d2"} and set(predictions["fold"]) == {"train-test"}
    with pytest.raises(ConfigError, match="does not hold"):
        make_folds(fs.table, "train-test", ["d0"], ["casme3"])
    for bad in (["protocol.split=train-test"], ["protocol.train_on=[d0]"],
                ["protocol.recipes={a: [training.lr=0.1]}"], ["protocol.selection=inner",
                                                               "protocol.recipes={a: [protocol.seeds=[1]]}"]):
        with pytest.raises(ConfigError):
            load_config(None, bad)



def test_an_ensemble_of_two_architectures_names_every_member_and_how_they_were_combined(tmp_path):
    """Issue 35: a STSTNet + HTNet average with collapsed seeds was headed "model: ststnet", "seed: 6" and labelled
    "ststnet (merkit)". The report, metrics.json and `merkit report` on the folder now name both members."""
    fs = toy_flow_features(subjects=3, per_class=2)
    points = torch.tensor([[0.3, 0.35], [0.7, 0.35], [0.5, 0.55], [0.35, 0.75], [0.65, 0.75]])
    fs = FeatureSet(fs.table, {**fs.inputs, "face_points": points.expand(len(fs.table), 5, 2).clone()}, fs.classes,
                    meta=fs.meta)
    base = FAST + ["data.benchmark=megc2019-composite"]
    evaluate(load_config(None, base + ["protocol.seeds=[6, 7]"]), tmp_path / "s", features=fs, progress=False)
    evaluate(load_config(None, base + ["model.name=htnet", "model.preset=cpu", "protocol.seeds=[0]"]),
             tmp_path / "h", features=fs, progress=False)
    both = ensemble([tmp_path / "s", tmp_path / "h"], tmp_path / "sh", collapse_seeds=True)
    text = both.report_path.read_text()
    header = text.split("## Results")[0]
    assert "- model: ensemble of 2 runs (class probabilities averaged over each run's seeds, then over the runs, " \
           "with equal weights; no label was read to form it)" in header
    assert "member `ststnet` (preset `paper`), seeds [6, 7], selection last:" in header
    assert "member `htnet` (preset `cpu`), seeds [0], selection last:" in header
    assert "- model: `ststnet`" not in header and "- seed: 6" not in header and "- training:" not in header
    assert "| ensemble of ststnet + htnet (merkit) | full |" in text
    assert [m["model"] for m in both.metrics["members"]] == ["ststnet", "htnet"]
    from merkit.api import report

    assert report(tmp_path / "sh").read_text() == text  # regenerating keeps the members
