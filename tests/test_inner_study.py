"""docs/scripts/inner_study.py: issue 32's choices are made on inner folds, so the study must never hand an outer
test subject's rows to training or scoring, and must pair its candidates."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from merkit.errors import LeakageError

pytestmark = pytest.mark.usefixtures("one_thread")

SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "scripts" / "inner_study.py"


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("inner_study", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_task_handed_an_outer_test_row_refuses_before_training(study, composite_dir):
    from merkit.api import load_features
    from merkit.config import load_config

    cfg = load_config("megc2019/ststnet", [f"data.path={composite_dir}", "training.epochs=1"])
    data = load_features(cfg)
    test_id = data.table["sample_id"].iloc[0]
    with pytest.raises(LeakageError, match="outer test rows"):
        study.inner_task(cfg.resolve().protocol.own, data, frozenset([test_id]), 0, "f", 5, False)


def test_the_study_trains_and_scores_only_training_subjects_pairs_candidates_and_resumes(study, composite_dir,
                                                                                        tmp_path, monkeypatch):
    seen = []
    real = study.inner_task

    def spy(recipe, train, test_ids, seed, fold, k, flip):
        seen.append((fold, len(train), set(train.table["subject_id"]), set(train.table["sample_id"]) & test_ids))
        return real(recipe, train, test_ids, seed, fold, k, flip)

    monkeypatch.setattr(study, "inner_task", spy)
    out = tmp_path / "study"
    argv = ["inner_study.py", "--data", str(composite_dir), "--out", str(out), "--outer-folds", "1", "--seeds", "3",
            "--inner-folds", "3", "--candidate", "a=megc2019/ststnet,training.epochs=1",
            "--candidate", "b=megc2019/ststnet,training.epochs=1", "--ensemble", "a+b"]
    monkeypatch.setattr(sys, "argv", argv)
    study.main()
    assert len(seen) == 2
    for fold, rows, subjects, leaked in seen:
        assert fold not in subjects and not leaked and len(subjects) == 67  # LOSO: the other 67 subjects
    a, b = (np.load(next((out / "probas").glob(f"3-*-{n}.npz"))) for n in "ab")
    assert len(a["sample_id"]) == seen[0][1]
    assert np.allclose(a["none"].sum(1), 1) and np.allclose(a["flip"].sum(1), 1)
    # two candidates with the same config get the same inner splits and seeds, hence the same predictions
    assert list(a["sample_id"]) == list(b["sample_id"]) and np.array_equal(a["none"], b["none"])
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["candidate"]) == {"a", "b", "a+b"} and set(summary["tta"]) == {"none", "flip"}
    seen.clear()
    study.main()  # every task's file is there: nothing is trained again
    assert seen == []
