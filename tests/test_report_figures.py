"""Paper-ready report figures (issue 35): confusion matrices of the full set and of each dataset, as mean counts per
seed and row-normalised; ``--figure-format png|pdf|svg`` (PNG at 300 dpi); the training loss recorded per epoch and
drawn beside the learning curve; whole-number epoch ticks; the spotting timeline drawn in time order."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from merkit.api import evaluate, report
from merkit.cli import app
from merkit.config import TrainConfig, load_config
from merkit.errors import ConfigError
from merkit.evaluation.metrics import summarize_run
from merkit.evaluation.report import (LOSS_NOTE, confusion_figure, curve_figure, mean_confusion, normalised_confusion,
                                      render_outputs, write_outputs)
from merkit.models import build_model
from merkit.runfolder import FIGURE_FORMATS, RunFolder
from merkit.training.engine import fit
from tests.helpers import toy_flow_features

pytestmark = pytest.mark.usefixtures("one_thread")
CLASSES = ("negative", "positive", "surprise")
FAST = ["training.epochs=3", "training.batch_size=16", "protocol.save_checkpoints=false", "protocol.seeds=[0,1]"]
runner = CliRunner()


@st.composite
def prediction_tables(draw):
    """A predictions table: 1 to 3 datasets (one id with a space), 1 to 5 seeds, every sample predicted once per
    seed, any labels and predictions."""
    datasets = draw(st.lists(st.sampled_from(["casme2", "samm", "smic", "my set"]), min_size=1, max_size=3,
                             unique=True))
    samples = [(d, i, draw(st.integers(0, 2))) for d in datasets for i in range(draw(st.integers(1, 12)))]
    rows = [{"seed": seed, "dataset": d, "fold": f"{d}/s{i % 3}", "sample_id": f"{d}/s{i % 3}/c{i}", "label": y,
             "prediction": draw(st.integers(0, 2))}
            for seed in range(draw(st.integers(1, 5))) for d, i, y in samples]
    return pd.DataFrame(rows)


@settings(max_examples=100)
@given(preds=prediction_tables())
def test_confusion_counts_per_seed_sum_to_each_parts_sample_count(preds):
    """For the full set and for each dataset: the mean counts per seed sum, row by row, to the part's samples of
    each class (not seeds x that), and the normalised rows of the classes present sum to 1."""
    metrics = summarize_run(preds, CLASSES)
    one_seed = preds[preds["seed"] == 0]
    parts = [("full", one_seed), *one_seed.groupby("dataset")]
    assert sorted(p for p, _ in parts) == sorted(metrics["summary"])
    for part, rows in parts:
        confusion = mean_confusion(metrics, part)
        assert np.allclose(confusion.sum(axis=1), np.bincount(rows["label"], minlength=3))
        assert np.isclose(confusion.sum(), len(rows))
        shares = normalised_confusion(confusion)
        present = confusion.sum(axis=1) > 0
        assert np.allclose(shares[present].sum(axis=1), 1.0) and np.isnan(shares[~present]).all()


def _numbers(figure) -> np.ndarray:
    """The numbers drawn in a confusion figure's cells, row by row ("-" for an empty row's cells: NaN)."""
    return np.array([float("nan") if t.get_text() == "-" else float(t.get_text()) for t in figure.axes[0].texts])


def test_the_drawn_confusion_counts_are_the_mean_per_seed_and_the_normalised_rows_sum_to_1():
    rows = [{"seed": s, "dataset": "d", "fold": "d/a", "label": y, "prediction": (y + s) % 3 if i % 2 else y}
            for s in range(3) for i, y in enumerate([0, 0, 0, 1, 1, 0, 0])]  # 5 negative, 2 positive, 0 surprise
    confusion = mean_confusion(summarize_run(pd.DataFrame(rows), CLASSES))
    assert confusion.sum(axis=1) == pytest.approx([5, 2, 0]) and not np.array_equal(confusion, np.round(confusion))
    counts = _numbers(confusion_figure(confusion, list(CLASSES), "t")).reshape(3, 3)
    assert counts == pytest.approx(np.round(confusion, 1))  # drawn with one decimal where not whole
    shares = _numbers(confusion_figure(confusion, list(CLASSES), "t", normalised=True)).reshape(3, 3)
    assert shares[:2] == pytest.approx(np.round(confusion[:2] / [[5], [2]], 2)) and np.isnan(shares[2]).all()


def _two_dataset_predictions() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for seed in (0, 1, 2):
        for d, n in (("casme2", 7), ("my set", 5)):
            rows += [{"sample_id": f"{d}/s{i % 2}/c{i}", "dataset": d, "subject": f"s{i % 2}",
                      "subject_id": f"{d}/s{i % 2}", "sample": f"c{i}", "fold": f"{d}/s{i % 2}", "seed": seed,
                      "epoch": 3, "label": i % 3, "prediction": int(rng.integers(0, 3))} for i in range(n)]
    preds = pd.DataFrame(rows)
    for k, name in enumerate(("a", "b", "c")):  # other class names than the MEGC2019 ones: no MEGC log
        preds[f"prob_{name}"] = (preds["prediction"] == k).astype(float)
    return preds


def test_every_part_has_a_counts_and_a_normalised_confusion_figure_listed_in_the_report(tmp_path):
    plan = load_config(None).resolve()
    _, files = render_outputs(tmp_path, plan, _two_dataset_predictions(), ("a", "b", "c"), [], {},
                              figure_format="svg")
    folder = RunFolder(tmp_path)
    odd = folder.confusion("my set", figure_format="svg").name  # a dataset id with a space: a file-name-safe form
    assert odd.startswith("confusion_my_set-") and odd.endswith(".svg")
    expected = {"confusion.svg", "confusion_normalised.svg", "confusion_casme2.svg", "confusion_casme2_normalised.svg",
                odd, odd.replace(".svg", "_normalised.svg")}
    assert expected <= {p.name for p in files}
    text = files[folder.file(RunFolder.REPORT)]
    text(tmp_path / "report.md")
    written = (tmp_path / "report.md").read_text()
    assert "![confusion matrix of the full set, mean counts per seed over 3 seeds](confusion.svg)" in written
    assert all(f"]({name})" in written for name in expected)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished 2-seed LOSO run on 3 toy subjects, with its learning curve recorded."""
    out = tmp_path_factory.mktemp("figures") / "run"
    config = load_config(None, FAST + ["protocol.record_epochs=true"])
    data = toy_flow_features(subjects=3)
    return config, data, evaluate(config, out, features=data, progress=False)


def _copy(run, tmp_path):
    return shutil.copytree(run.run_dir, tmp_path / "run")


@pytest.mark.parametrize("figure_format", FIGURE_FORMATS)
def test_figures_are_written_in_the_asked_format_png_at_300_dpi_and_the_same_figure_gives_the_same_bytes(
        finished_run, tmp_path, figure_format):
    run = _copy(finished_run[2], tmp_path)
    report(run, figure_format=figure_format)
    names = ["confusion", "confusion_normalised", "confusion_toy", "confusion_toy_normalised", "epoch_curve"]
    paths = [run / f"{name}.{figure_format}" for name in names]
    first = [p.read_bytes() for p in paths]
    magic = {"png": b"\x89PNG", "pdf": b"%PDF", "svg": b"<?xml"}[figure_format]
    assert all(b.startswith(magic) for b in first)
    if figure_format == "svg":
        assert all(b"<svg" in b for b in first)
    if figure_format == "png":
        with Image.open(paths[0]) as image:
            assert image.info["dpi"] == pytest.approx((300, 300), abs=0.01)
            assert image.size == (2010, 1560)  # the figure's 6.7 x 5.2 inches at 300 dpi
    assert f"](confusion.{figure_format})" in (run / "report.md").read_text()
    report(run, figure_format=figure_format)
    assert [p.read_bytes() for p in paths] == first


def test_an_unknown_figure_format_is_one_line_with_did_you_mean_and_writes_nothing(finished_run, tmp_path):
    run = _copy(finished_run[2], tmp_path)
    before = {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}
    result = runner.invoke(app, ["report", str(run), "--figure-format", "pnd"])
    assert result.exit_code == 2
    assert result.output == "error: --figure-format must be one of ('png', 'pdf', 'svg'), got 'pnd' (did you mean " \
                            "'png'?)\n"
    with pytest.raises(ConfigError, match=r"report: figure_format must be one of .* got 'SVG' \(did you mean 'svg'\?\)"):
        report(run, figure_format="SVG")
    assert {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()} == before
    out = tmp_path / "new"
    result = runner.invoke(app, ["evaluate", "--out", str(out), "--epochs", "1", "--figure-format", "jpeg"])
    assert result.exit_code == 2 and result.output.startswith("error: --figure-format must be one of")
    with pytest.raises(ConfigError, match="evaluate: figure_format"):
        evaluate(finished_run[0], out, features=finished_run[1], progress=False, figure_format="eps")
    assert not out.exists()


# ------------------------------------------------------------------------------------------------ training loss


def _train(cfg: TrainConfig, record: bool):
    fs = toy_flow_features(subjects=2, per_class=3)
    torch.manual_seed(0)
    model = build_model("ststnet", 3, "cpu")
    generator = torch.Generator().manual_seed(0)
    losses: list[tuple[int, float]] = []
    fit(model, fs, cfg, generator, on_train_loss=(lambda e, loss: losses.append((e, loss))) if record else None)
    return model, generator, torch.rand(3), losses


def test_fit_reports_each_epochs_mean_training_loss_and_changes_no_weight_and_no_random_draw():
    cfg = TrainConfig(epochs=3, batch_size=4, augment=["hflip"], class_weighted=True)
    plain, recorded = _train(cfg, False), _train(cfg, True)
    for name, tensor in plain[0].state_dict().items():
        assert torch.equal(tensor, recorded[0].state_dict()[name]), name
    assert torch.equal(plain[1].get_state(), recorded[1].get_state())  # the batch order and augmentation draws
    assert torch.equal(plain[2], recorded[2])  # torch's global generator (dropout)
    assert [e for e, _ in recorded[3]] == [1, 2, 3] and all(np.isfinite(loss) for _, loss in recorded[3])


def test_the_first_epochs_training_loss_is_the_cross_entropy_the_optimiser_minimised():
    """With one batch per epoch the first epoch's loss is the cross-entropy of the initial model in training mode
    on the shuffled training rows."""
    fs = toy_flow_features(subjects=2, per_class=3)
    losses = _train(TrainConfig(epochs=2, batch_size=64), True)[3]
    torch.manual_seed(0)
    model = build_model("ststnet", 3, "cpu").train()
    order = torch.randperm(len(fs), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(model(fs.batch(order, model.input_keys)).logits, fs.labels[order])
    assert losses[0][1] == pytest.approx(expected.item(), rel=1e-6)


def test_every_unit_records_its_training_loss_and_the_report_draws_it_beside_the_learning_curve(finished_run):
    run = finished_run[2].run_dir
    units = [pd.read_csv(f) for f in RunFolder(run).unit_files(RunFolder.LOSSES)]
    assert len(units) == 6  # 3 folds x 2 seeds
    assert all(u["epoch"].tolist() == [1, 2, 3] and (u["member"] == 0).all() for u in units)
    table = pd.read_csv(run / "training_loss.csv")
    expected = pd.concat(units).groupby("epoch")["train_loss"].mean()
    assert table["train_loss"].to_numpy() == pytest.approx(expected.to_numpy())
    assert (table["units"] == 6).all()
    text = (run / "report.md").read_text()
    assert LOSS_NOTE in text and "| epoch | UF1 | UAR | accuracy | training loss |" in text
    assert f"| 3 | {float(pd.read_csv(run / 'epoch_curve.csv')['uf1'].iloc[-1]):.4f} |" in text
    figure = curve_figure(pd.read_csv(run / "epoch_curve.csv"), "t", table)
    assert [ax.get_ylabel() for ax in figure.axes] == ["pooled over held-out subjects", "training loss"]


def test_a_run_without_a_learning_curve_reports_the_training_loss_alone(tmp_path):
    run = evaluate(load_config(None, FAST), tmp_path / "run", features=toy_flow_features(subjects=3),
                   progress=False)
    text = run.report_path.read_text()
    assert "## Training loss" in text and LOSS_NOTE in text and "![training loss](epoch_curve.png)" in text
    assert "learning curve" not in text and not (tmp_path / "run" / "epoch_curve.csv").exists()
    assert (tmp_path / "run" / "training_loss.csv").is_file()


def test_a_run_folder_from_before_the_training_loss_reports_and_resumes_without_it(finished_run, tmp_path):
    config, data, first = finished_run
    run = _copy(first, tmp_path)
    # What a folder written before merkit recorded the loss holds: no losses/, no training_loss.csv.
    shutil.rmtree(run / "losses")
    (run / "training_loss.csv").unlink()
    report(run)
    text = (run / "report.md").read_text()
    assert "Training loss" not in text and "| epoch | UF1 | UAR | accuracy |" in text
    assert not (run / "training_loss.csv").exists()
    again = evaluate(config, run, features=data, progress=False)  # resumes: every unit is trusted as it is
    pd.testing.assert_frame_equal(again.predictions, first.predictions)
    assert "unit-recomputed" not in again.metrics["diagnostics"]
    assert not (run / "losses").exists() and "Training loss" not in again.report_path.read_text()


def test_a_report_says_how_many_units_recorded_the_training_loss(finished_run, tmp_path):
    run = _copy(finished_run[2], tmp_path)
    RunFolder(run).unit_files(RunFolder.LOSSES)[0].unlink()
    report(run)
    assert "Only 5 of the 6 units recorded it" in (run / "report.md").read_text()


# ------------------------------------------------------------------------------------------------ epoch ticks


def test_every_per_epoch_panel_has_whole_epoch_ticks():
    curve = pd.DataFrame({"epoch": [1, 2, 3], "uf1": [.2, .4, .5], "uar": [.3, .35, .5]})
    losses = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [1.1, .8, .6], "train_loss_min": [1., .7, .5],
                           "train_loss_max": [1.2, .9, .7], "units": [4, 4, 4]})
    for figure in (curve_figure(curve, "t", losses), curve_figure(None, "t", losses)):
        for ax in figure.axes:
            ticks = ax.get_xticks()
            assert len(ticks) and all(float(t).is_integer() for t in ticks)


# ------------------------------------------------------------------------------------------------ spotting


def test_the_spotting_timeline_is_drawn_in_time_order(tmp_path, monkeypatch):
    """Overlapping windows can peak out of the order of their starts (the first at its end, the second near its
    start); the timeline's line must still run forwards in time, through every window's peak."""
    from matplotlib.figure import Figure

    from merkit.predict.results import SpotResult, Timing

    drawn = []
    save = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: (drawn.append(self), save(self, *a, **k))[1])
    curve = pd.DataFrame({"onset": [0, 6, 12, 18], "peak": [11, 7, 17, 13], "offset": [11, 17, 23, 29],
                          "score": [1.0, 0.4, 2.0, 0.3], "interior": [False, True, False, True]})
    SpotResult(pd.DataFrame({"onset": [12], "apex": [17], "offset": [23], "label": ["pos"]}), curve, 1.5, [],
               list(range(30)), ("neg", "pos"), Timing(), fps=30.0).save_timeline(tmp_path / "timeline.png")
    line = drawn[0].axes[0].lines[0]
    x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
    assert (np.diff(x) >= 0).all()
    assert sorted(zip(x, y)) == sorted(zip(curve["peak"] / 30.0, curve["score"]))
