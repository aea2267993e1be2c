import numpy as np
import pandas as pd
import pytest

from merkit.api import evaluate, report
from merkit.config import load_config
from merkit.errors import ConfigError, LeakageError
from merkit.training.loso import Fold, loso_folds
from merkit.training.runner import run_loso, run_unit
from tests.helpers import toy_flow_features

FAST = ["training.epochs=4", "training.batch_size=16", "protocol.save_checkpoints=false"]


def test_one_fold_per_subject_and_folds_are_subject_disjoint():
    fs = toy_flow_features(subjects=4)
    folds = loso_folds(fs.table)
    assert [f.name for f in folds] == ["toy/s00", "toy/s01", "toy/s02", "toy/s03"]
    for f in folds:
        assert set(fs.table["subject_id"].iloc[f.test_index]) == {f.name}
        assert f.name not in set(fs.table["subject_id"].iloc[f.train_index])
    assert sorted(np.concatenate([f.test_index for f in folds])) == list(range(len(fs)))


def test_fold_with_leaked_subject_raises():
    fs = toy_flow_features(subjects=3)
    good = loso_folds(fs.table)[0]
    leaked = Fold(0, good.name, np.concatenate([good.train_index, good.test_index[:1]]), good.test_index)
    with pytest.raises(LeakageError, match="toy/s00"):
        run_unit(load_config(None, FAST).resolve().protocol, fs, leaked, seed=0)


def test_same_seed_gives_identical_predictions_and_another_seed_differs(tmp_path):
    fs = toy_flow_features(subjects=3)
    cfg = load_config(None, FAST)
    fold = loso_folds(fs.table)[1]
    a = run_unit(cfg.resolve().protocol, fs, fold, seed=0)
    b = run_unit(cfg.resolve().protocol, fs, fold, seed=0)
    c = run_unit(cfg.resolve().protocol, fs, fold, seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["prob_negative"], c["prob_negative"])


def test_ema_of_weights_predicts_with_the_average(tmp_path):
    fs = toy_flow_features(subjects=3)
    fold = loso_folds(fs.table)[0]
    probs = lambda df: df[["prob_negative", "prob_positive", "prob_surprise"]].to_numpy()  # noqa: E731
    plain = probs(run_unit(load_config(None, FAST).resolve().protocol, fs, fold, seed=0))
    # A decay of ~0 makes the average the last weights; a long one averages over many steps and predicts otherwise.
    nearly_last = probs(run_unit(load_config(None, FAST + ["training.ema_decay=1e-9"]).resolve().protocol, fs, fold,
                                 seed=0))
    averaged = probs(run_unit(load_config(None, FAST + ["training.ema_decay=0.9"]).resolve().protocol, fs, fold,
                              seed=0))
    np.testing.assert_allclose(nearly_last, plain, atol=1e-6)
    assert np.abs(averaged - plain).max() > 1e-3
    with pytest.raises(ConfigError, match="ema_decay"):
        load_config(None, FAST + ["training.ema_decay=1.0"])


def test_killed_run_resumes_to_identical_predictions(tmp_path):
    fs = toy_flow_features(subjects=4)
    cfg = load_config(None, FAST + ["protocol.seeds=[0,1]"])
    full = run_loso(cfg.resolve(), fs, tmp_path / "uninterrupted")

    done = []

    def kill_after_three(plan):
        done.append(plan)
        if len(done) == 3:
            raise KeyboardInterrupt  # what Ctrl-C or a kill does mid-run

    with pytest.raises(KeyboardInterrupt):
        run_loso(cfg.resolve(), fs, tmp_path / "killed", on_unit_done=kill_after_three)
    finished = sorted((tmp_path / "killed" / "units").rglob("*.csv"))
    assert len(finished) == 3  # finished folds were written at once

    ran_again = []
    resumed = run_loso(cfg.resolve(), fs, tmp_path / "killed", on_unit_done=ran_again.append)
    assert len(ran_again) == 8  # 3 reused + 5 run
    pd.testing.assert_frame_equal(resumed, full)


def test_resuming_with_another_config_is_refused(tmp_path):
    fs = toy_flow_features(subjects=3)
    run_loso(load_config(None, FAST).resolve(), fs, tmp_path / "run")
    with pytest.raises(ConfigError, match="another config"):
        run_loso(load_config(None, FAST + ["training.lr=0.5"]).resolve(), fs, tmp_path / "run")


def test_ray_workers_give_the_same_predictions_as_sequential(tmp_path):
    pytest.importorskip("ray")
    fs = toy_flow_features(subjects=4)
    seq = run_loso(load_config(None, FAST).resolve(), fs, tmp_path / "seq")
    par = run_loso(load_config(None, FAST + ["protocol.workers=2"]).resolve(), fs, tmp_path / "par")
    pd.testing.assert_frame_equal(seq, par)


def test_paper_protocol_selects_on_test_subject_and_says_so(tmp_path):
    fs = toy_flow_features(subjects=3, signal=0.0)
    honest = evaluate(load_config(None, FAST + ["training.epochs=6"]), tmp_path / "honest", features=fs,
                      progress=False)
    paper = evaluate(load_config(None, FAST + ["training.epochs=6", "protocol.selection=paper"]),
                     tmp_path / "paper", features=fs, progress=False)
    assert (honest.predictions["epoch"] == 6).all()
    assert paper.predictions.groupby("fold")["epoch"].nunique().eq(1).all()
    # Picking the best epoch per test subject can only raise per-fold accuracy on noise: that is its bias.
    acc = lambda r: r.predictions.groupby("fold").apply(lambda d: (d.label == d.prediction).mean())  # noqa: E731
    assert (acc(paper) >= acc(honest) - 1e-12).all()
    text = paper.report_path.read_text()
    assert "PAPER PROTOCOL" in text and "test-selected" in text
    assert "PAPER PROTOCOL" not in honest.report_path.read_text()


def test_recorded_learning_curve_leaves_predictions_unchanged_and_reports_each_epoch(tmp_path):
    fs = toy_flow_features(subjects=3)
    cfg = FAST + ["training.epochs=5", "protocol.seeds=[0,1]"]
    plain = evaluate(load_config(None, cfg), tmp_path / "plain", features=fs, progress=False)
    rec = evaluate(load_config(None, cfg + ["protocol.record_epochs=true"]), tmp_path / "rec", features=fs,
                   progress=False)
    pd.testing.assert_frame_equal(plain.predictions, rec.predictions)
    curves = pd.concat([pd.read_csv(f, dtype={"subject": str, "sample": str})
                        for f in sorted((tmp_path / "rec" / "epochs").rglob("*.csv"))], ignore_index=True)
    assert len(curves) == 5 * len(rec.predictions)  # every held-out sample after each of the 5 epochs
    last = curves[curves["epoch"] == 5].sort_values(["seed", "sample_id"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(last, rec.predictions.astype(last.dtypes.to_dict()), check_exact=False)
    table = pd.read_csv(tmp_path / "rec" / "epoch_curve.csv")
    assert table["epoch"].tolist() == [1, 2, 3, 4, 5] and (table["folds"] == 3).all()
    assert table["uf1"].iloc[-1] == pytest.approx(rec.metrics["summary"]["full"]["uf1"]["mean"])
    assert table["uf1_std"].iloc[-1] == pytest.approx(rec.metrics["summary"]["full"]["uf1"]["std"])
    text = rec.report_path.read_text()
    assert "Test-set learning curve" in text and "chosen on the test subjects" in text
    assert (tmp_path / "rec" / "epoch_curve.png").stat().st_size > 0
    assert "learning curve" not in plain.report_path.read_text()
    assert not (tmp_path / "plain" / "epochs").exists()


def test_run_folder_holds_all_outputs_and_report_regenerates(tmp_path):
    fs = toy_flow_features(subjects=3)
    res = evaluate(load_config(None, FAST + ["training.epochs=20", "training.lr=0.01"]), tmp_path / "run",
                   features=fs, progress=False)
    for name in ("config.yaml", "predictions.csv", "metrics.json", "report.md", "confusion.png",
                 "megc2019_log_seed0.txt"):
        assert (tmp_path / "run" / name).is_file(), name
    preds = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert {"sample_id", "dataset", "subject", "fold", "seed", "label", "prediction", "prob_negative",
            "prob_positive", "prob_surprise"} <= set(preds.columns)
    assert np.allclose(preds[["prob_negative", "prob_positive", "prob_surprise"]].sum(axis=1), 1.0)
    before = (tmp_path / "run" / "metrics.json").read_text()
    (tmp_path / "run" / "metrics.json").unlink()
    report(tmp_path / "run")
    assert (tmp_path / "run" / "metrics.json").read_text() == before
    assert res.metrics["summary"]["full"]["uf1"]["mean"] > 0.9  # the toy blobs are easy


def test_the_report_lists_the_recipe_and_every_augmentation_with_its_parameters(tmp_path):
    """A recipe's augmentations (e.g. a random crop that the paper does not list) are visible in the report."""
    from merkit.evaluation.report import training_recipe

    config = load_config(None, FAST + ["training.augment=[hflip, random_crop]",
                                       "training.augment_params={random_crop: {padding: 4}}"])
    line = training_recipe(config.training)
    assert "augmentation (training only): hflip, random_crop {'padding': 4}" in line
    assert f"{config.training.epochs} epochs" in line and f"batch {config.training.batch_size}" in line
    assert training_recipe(load_config(None, FAST).training).endswith("augmentation (training only): none")
    res = evaluate(config, tmp_path / "run", features=toy_flow_features(subjects=3), progress=False)
    assert f"- training: {line}" in res.report_path.read_text()


def test_ground_truth_inputs_are_flagged_in_every_report(tmp_path):
    import json

    import torch

    fs = toy_flow_features(subjects=3)
    fs.inputs["action_units"] = torch.zeros(len(fs), 21)
    fs.meta["ground_truth_inputs"] = ["action_units"]
    evaluate(load_config(None, FAST), tmp_path / "gt", features=fs, progress=False)
    assert "ground-truth annotations (action_units)" in (tmp_path / "gt" / "report.md").read_text()
    assert json.loads((tmp_path / "gt" / "metrics.json").read_text())["ground_truth_inputs"] == ["action_units"]
    report(tmp_path / "gt")  # a regenerated report keeps the flag
    assert "ground-truth annotations" in (tmp_path / "gt" / "report.md").read_text()
    clean = evaluate(load_config(None, FAST), tmp_path / "clean", features=toy_flow_features(subjects=3),
                     progress=False)
    assert "ground-truth" not in clean.report_path.read_text()
