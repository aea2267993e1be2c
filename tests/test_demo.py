"""``merkit demo`` and ``merkit synth``: end to end on a tiny synthetic set, cached between runs."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from merkit.cli import app
from merkit.synthetic import SHEET_NAME
from merkit.demo import demo_config, run_demo


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One tiny demo (3 pseudo-subjects x 3 classes x 2 clips, 3 epochs), run from an empty working directory so
    that nothing from the repository (configs/) can be used."""
    root = tmp_path_factory.mktemp("demo")
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        result = run_demo(root / "runs", root / "cache", subjects=3, clips_per_class=2, epochs=3, progress=False,
                          log=lines.append)
    return root, result, lines


def test_demo_runs_loso_over_the_pseudo_subjects_and_reports_per_class_results(demo_run):
    root, result, _ = demo_run
    run = result.runs["ststnet"]
    assert run.report_path == root / "runs" / "ststnet" / "report.md"
    assert sorted(run.predictions["fold"].unique()) == ["synthetic/sub01", "synthetic/sub02", "synthetic/sub03"]
    assert len(run.predictions) == 18
    per_class = pd.read_csv(run.run_dir / "per_class.csv", index_col="class")
    assert list(per_class.index) == ["negative", "positive", "surprise"]
    assert list(per_class["support"]) == [6, 6, 6]
    report = run.report_path.read_text()
    assert "Per class (full set" in report
    for name, r in per_class.iterrows():
        assert f"| {name} | {r.precision:.4f} | {r.recall:.4f} | {r.f1:.4f} | 6 |" in report


def test_second_demo_run_reuses_the_cached_dataset_flow_and_folds(demo_run):
    root, first, _ = demo_run
    stamp = (first.dataset_dir / "samples.csv").stat().st_mtime_ns
    lines: list[str] = []
    again = run_demo(root / "runs", root / "cache", subjects=3, clips_per_class=2, epochs=3, progress=False,
                     log=lines.append)
    assert again.dataset_dir == first.dataset_dir
    assert (again.dataset_dir / "samples.csv").stat().st_mtime_ns == stamp
    assert any("synthetic dataset: cached" in line for line in lines)
    pd.testing.assert_frame_equal(again.runs["ststnet"].predictions, first.runs["ststnet"].predictions)


def test_the_demo_runs_through_the_normal_raw_path_and_its_config_re_runs(demo_run, tmp_path):
    """The saved config.yaml is a plain raw-data config: evaluate gives the same predictions from it, in a new
    folder, with the inputs read from the demo's cache."""
    from merkit.api import evaluate
    from merkit.config import load_config

    root, first, _ = demo_run
    config = load_config(first.runs["ststnet"].run_dir / "config.yaml")
    assert (config.data.kind, config.data.dataset) == ("raw", "synthetic")
    rerun = evaluate(config, tmp_path / "rerun", progress=False)
    pd.testing.assert_frame_equal(rerun.predictions, first.runs["ststnet"].predictions)
    result = CliRunner().invoke(app, ["evaluate", "--config", str(first.runs["ststnet"].run_dir / "config.yaml"),
                                      "--out", str(tmp_path / "cli"), "--quiet"])
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "cli" / "predictions.csv"),
                                  pd.read_csv(first.runs["ststnet"].run_dir / "predictions.csv"))


def test_demo_config_is_built_in_code_with_honest_last_epoch_selection():
    config = demo_config("ststnet", epochs=7)
    assert config.protocol.selection == "last" and config.data.kind == "raw"
    assert config.training.epochs == 7
    assert config.model.name == "ststnet" and config.model.preset == "cpu"


def test_synth_command_writes_a_casme2_layout_dataset(tmp_path):
    out = tmp_path / "syn"
    result = CliRunner().invoke(app, ["synth", str(out), "--subjects", "1", "--clips-per-class", "1",
                                      "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert "wrote 3 clips of 1 subjects" in result.output
    assert (out / SHEET_NAME).is_file()
    assert len(list(out.glob("sub01/EP*_*/img*.jpg"))) >= 3 * 15


def test_demo_command_is_registered():
    result = CliRunner().invoke(app, ["demo", "--help"])
    assert result.exit_code == 0
    assert "--cache" in result.output
