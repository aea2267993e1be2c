import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from merkit.evaluation.megc_log import read_megc_log, write_megc_log
from merkit.evaluation.metrics import metrics_by_part, pooled_metrics, summarize_run


def test_pooled_metrics_reproduce_ststnet_reference_log(shared_data):
    preds = read_megc_log(shared_data / "reference" / "ststnet-megc2019-log.txt")
    assert len(preds) == 442 and preds["subject_id"].nunique() == 68
    m = metrics_by_part(preds, 3)
    expected = {"full": (0.7353, 0.7186, 0.7692), "smic": (0.6801, 0.6703, None),
                "casme2": (0.8382, 0.8190, None), "samm": (0.6588, 0.6415, None)}
    for part, (uf1, uar, acc) in expected.items():
        assert round(m[part]["uf1"], 4) == uf1, part
        assert round(m[part]["uar"], 4) == uar, part
        if acc is not None:
            assert round(m[part]["accuracy"], 4) == acc


def test_uar_is_mean_recall_not_mean_precision():
    # 2 classes: recall (1.0, 0.5) -> UAR 0.75; precision (2/3, 1.0) -> 0.8333 would be the wrong figure.
    m = pooled_metrics(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 0]), 2)
    assert m["uar"] == pytest.approx(0.75)
    assert m["uf1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert m["confusion"] == [[2, 0], [1, 1]]


def test_class_absent_from_a_part_is_excluded_and_reported():
    m = pooled_metrics(np.array([0, 0, 1]), np.array([0, 2, 1]), 3)
    assert m["absent_classes"] == [2]
    assert m["uar"] == pytest.approx((0.5 + 1.0) / 2)


def test_labels_outside_scheme_raise():
    with pytest.raises(ValueError):
        pooled_metrics(np.array([0, 3]), np.array([0, 1]), 3)


def test_metrics_are_pooled_not_averaged_per_fold():
    import pandas as pd

    # fold A: 1 sample right; fold B: 3 samples, 1 right. Pooled accuracy 2/4, per-fold mean (1 + 1/3) / 2.
    preds = pd.DataFrame({"seed": 0, "dataset": "d", "fold": ["A", "B", "B", "B"],
                          "label": [0, 0, 1, 1], "prediction": [0, 1, 0, 1]})
    s = summarize_run(preds, ("a", "b"))
    assert s["summary"]["full"]["accuracy"]["mean"] == pytest.approx(0.5)
    assert s["per_fold_mean"][0]["accuracy"] == pytest.approx((1 + 1 / 3) / 2)


def test_megc_log_round_trip(tmp_path, shared_data):
    preds = read_megc_log(shared_data / "reference" / "ststnet-megc2019-log.txt")
    write_megc_log(preds, tmp_path / "log.txt")
    again = read_megc_log(tmp_path / "log.txt")
    assert again.equals(preds)


@settings(max_examples=100)
@given(seeds=st.integers(1, 5), n=st.integers(1, 40), data=st.data())
def test_the_reported_confusion_counts_per_seed_sum_to_the_sample_count(seeds, n, data):
    """The report's confusion matrix is the mean over seeds: each row sums to the class's samples, not seeds x
    that (it used to add the seeds' counts up)."""
    from merkit.evaluation.metrics import summarize_run
    from merkit.evaluation.report import mean_confusion

    labels = data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    rows = []
    for seed in range(seeds):
        predictions = data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
        rows += [{"seed": seed, "dataset": "d", "fold": f"d/s{i % 3}", "label": y, "prediction": p}
                 for i, (y, p) in enumerate(zip(labels, predictions))]
    confusion = mean_confusion(summarize_run(pd.DataFrame(rows), ("negative", "positive", "surprise")))
    assert np.allclose(confusion.sum(axis=1), np.bincount(labels, minlength=3))
    assert np.isclose(confusion.sum(), n)


def test_the_learning_curve_has_whole_epoch_ticks():
    from merkit.evaluation.report import curve_figure

    figure = curve_figure(pd.DataFrame({"epoch": [1, 2, 3], "uf1": [.2, .4, .5], "uar": [.3, .35, .5]}), "t")
    ticks = figure.axes[0].get_xticks()
    assert len(ticks) and all(float(t).is_integer() for t in ticks)
