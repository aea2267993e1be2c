"""Subsets of a benchmark (data.subjects, data.datasets), comparable rows in `merkit compare`, and tables for papers
(`merkit report --latex/--csv`, `merkit compare --latex/--csv`): issue 35.

The runs here are on a small flow folder of two datasets (alpha: s00, s01; beta: s02, s03; 9 samples each) trained
for one epoch, so that the whole module takes seconds."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from merkit import api
from merkit.cli import app
from merkit.config import load_config
from merkit.datasets.table import new_sample_table
from merkit.errors import ConfigError
from merkit.inputs import select_inputs, select_table
from tests.helpers import toy_flow_features, write_flow_folder

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = ["--epochs", "1", "--quiet", "--set", "training.batch_size=8", "--set", "protocol.save_checkpoints=false",
        "--set", "data.benchmark=megc2019-composite"]
SUBSET = "data.subjects=[s00, alpha/s01, s02]"
SCOPE = "27 of 36 samples, 3 of 4 subjects"


def cli(*args) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def two_dataset_folder(root: Path) -> Path:
    """The toy flow folder with subjects s00, s01 in dataset alpha and s02, s03 in dataset beta."""
    flows = write_flow_folder(root, subjects=4)
    manifest = pd.read_csv(flows / "manifest.csv", dtype=str)
    manifest["dataset"] = np.where(manifest["subject"].isin(["s00", "s01"]), "alpha", "beta")
    manifest.to_csv(flows / "manifest.csv", index=False)
    return flows


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """The flow folder, a full run (seeds 0, 1), a second full run (seed 2) and a subset run (seeds 0, 1)."""
    root = tmp_path_factory.mktemp("subsets")
    flows = two_dataset_folder(root / "flows")
    made = {"flows": flows}
    for name, extra in (("full", ["--seeds", "0,1"]), ("again", ["--seeds", "2"]),
                        ("subset", ["--seeds", "0,1", "--set", SUBSET])):
        code, output = cli("evaluate", "--data", flows, "--out", root / name, *FAST, *extra)
        assert code == 0, output
        made[name] = root / name
    return made


# ------------------------------------------------------------------------------------------ a subset says so

def _tables(report: str) -> list[tuple[int, str]]:
    """(line number, header) of every Markdown table in a report."""
    lines = report.splitlines()
    return [(i, line) for i, line in enumerate(lines[:-1]) if line.startswith("| ") and lines[i + 1].startswith("|---")]


def test_a_subset_run_names_the_subset_in_its_name_run_json_metrics_report_and_every_table(runs):
    run = runs["subset"]
    stamp = json.loads((run / "run.json").read_text())
    assert stamp["data"]["samples"] == 27 and stamp["data"]["subjects"] == 3
    assert stamp["data"]["subset"] == {"subjects": ["alpha/s00", "alpha/s01", "beta/s02"], "datasets": [],
                                       "of_samples": 36, "of_subjects": 4, "of_datasets": ["alpha", "beta"]}
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["data"]["subset"] == stamp["data"]["subset"] and metrics["data"]["samples"] == 27
    assert metrics["data"]["parts"] == {"full": {"samples": 27, "subjects": 3}, "alpha": {"samples": 18, "subjects": 2},
                                        "beta": {"samples": 9, "subjects": 1}}
    report = (run / "report.md").read_text()
    title = report.splitlines()[0]
    assert re.fullmatch(r"# merkit run: run-subset-3subjects-[0-9a-f]{6}", title), title
    header = report.split("## Results")[0]
    assert SCOPE in header and "alpha/s00, alpha/s01, beta/s02" in header
    lines = report.splitlines()
    tables = _tables(report)
    assert len(tables) >= 2
    for i, head in tables:  # the subset line stands between the table and the heading or table before it
        before = lines[max(j for j in [0, *(k for k, _ in tables if k < i)]):i]
        assert any(f"*Subset: {SCOPE}" in line for line in before), (head, before)
    full = (runs["full"] / "report.md").read_text()
    assert "Subset" not in full and "subset" not in full.split("## Results")[0]
    assert "36 samples, 4 subjects" in full.split("## Results")[0]


def test_published_figures_are_shown_only_beside_a_run_on_the_whole_benchmark(runs):
    full = (runs["full"] / "report.md").read_text()
    subset = (runs["subset"] / "report.md").read_text()
    assert "| STSTNet |" in full  # a published figure of megc2019-composite
    assert "| STSTNet |" not in subset and "| LBP-TOP |" not in subset
    section = subset.split("## Published results on this benchmark")[1].split("##")[0]
    assert f"Not shown: this run is on a subset of megc2019-composite ({SCOPE})" in section


def test_subsets_work_from_python_with_the_same_record_as_the_command_line(runs, tmp_path):
    config = load_config(None, ["training.epochs=1", "training.batch_size=8", "protocol.save_checkpoints=false"],
                         {"data.path": runs["flows"], "data.datasets": ["beta"]})
    assert config.run_name == "run-subset-beta"
    result = api.evaluate(config, tmp_path / "beta", progress=False)
    assert sorted(result.predictions["subject_id"].unique()) == ["beta/s02", "beta/s03"]
    assert result.metrics["data"]["subset"]["datasets"] == ["beta"]
    assert "subset: 18 of 36 samples, 2 of 4 subjects" in result.summary_line()
    features = toy_flow_features(subjects=3, per_class=1)  # given inputs are selected from too
    given = api.evaluate(load_config(None, ["training.epochs=1", "protocol.save_checkpoints=false",
                                            "data.subjects=[s00, s01]"]), tmp_path / "given", features=features,
                         progress=False)
    assert set(given.predictions["subject"]) == {"s00", "s01"}
    assert "6 of 9 samples, 2 of 3 subjects" in given.report_path.read_text()


# ------------------------------------------------------------------------------------------ the one-line errors

@pytest.mark.parametrize("setting, needles", [
    ("data.subjects=[s09]", ["no subject 's09' in alpha, beta", "close: alpha/s00"]),
    ("data.subjects=[alpha/s03]", ["alpha has no subject 's03'", "close: s00", "alpha has 2 subjects: s00, s01"]),
    ("data.subjects=[alfa/s00]", ["dataset 'alfa'", "close: alpha"]),
    ("data.datasets=[betta]", ["no dataset 'betta'", "did you mean 'beta'?", "the data holds alpha, beta"]),
    ("data.subjects=[006]", ["data.subjects[0] must be a string", "'006'"]),
])
def test_an_unknown_subject_or_dataset_is_one_line_naming_it_with_the_closest_and_no_folder(runs, tmp_path, setting,
                                                                                              needles):
    out = tmp_path / "run"
    code, output = cli("evaluate", "--data", runs["flows"], "--out", out, *FAST, "--set", setting)
    lines = [line for line in output.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert not out.exists()


def _table(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return new_sample_table([{"dataset": d, "subject": s, "sample": f"x{i}", "emotion": "negative"}
                             for i, (d, s) in enumerate(rows)])


def test_a_plain_subject_in_two_datasets_is_ambiguous_unless_data_datasets_decides():
    table = _table([("casme2", "s01"), ("smic", "s01"), ("smic", "s02")])
    with pytest.raises(ConfigError, match=r"subject 's01' is in 2 datasets; name one of casme2/s01, smic/s01"):
        select_table(table, ["s01"])
    positions, record = select_table(table, ["s01"], ["smic"])
    assert positions.tolist() == [1] and record["subjects"] == ["smic/s01"]
    with pytest.raises(ConfigError, match=r"names casme2/s01 twice \('s01' and 'casme2/s01'\)"):
        select_table(table, ["s01", "casme2/s01"], ["casme2"])
    with pytest.raises(ConfigError, match=r"'casme2/s01' is in casme2, which data.datasets \['smic'\] leaves out"):
        select_table(table, ["casme2/s01"], ["smic"])


names = st.sampled_from(["a", "b", "c"])


@settings(max_examples=100)
@given(st.lists(st.tuples(names, st.sampled_from(["s1", "s2", "s3"])), min_size=1, max_size=12),
       st.data())
def test_a_selection_keeps_exactly_the_rows_of_the_named_subjects_and_datasets(rows, draw):
    table = _table(rows)
    ids = sorted(table["subject_id"].unique())
    subjects = draw.draw(st.lists(st.sampled_from(ids), unique=True, max_size=len(ids)))
    datasets = draw.draw(st.lists(st.sampled_from(sorted(table["dataset"].unique())), unique=True, max_size=3))
    if any(s.split("/")[0] not in datasets for s in subjects) and datasets:
        with pytest.raises(ConfigError, match="leaves out"):
            select_table(table, subjects, datasets)
        return
    positions, record = select_table(table, subjects, datasets)
    keep = [i for i, r in enumerate(table.itertuples()) if (not subjects or r.subject_id in subjects)
            and (not datasets or r.dataset in datasets)]
    assert positions.tolist() == keep
    if len(keep) == len(table):
        assert record is None
    else:
        assert record["of_samples"] == len(table) and record["of_subjects"] == len(ids)
        assert record["subjects"] == sorted(subjects) and record["datasets"] == datasets


def test_selecting_from_inputs_already_selected_keeps_the_totals_of_the_whole_data():
    features = toy_flow_features(subjects=4, per_class=1)
    once = select_inputs(features, ["s00", "s01", "s02"])
    twice = select_inputs(once, ["s00"])
    assert len(twice) == 3 and twice.meta["subset"]["of_samples"] == 12 and twice.meta["subset"]["of_subjects"] == 4
    assert "subset" not in features.meta and select_inputs(features) is features


# ------------------------------------------------------------------------------------------ compare

def _compare(*args) -> tuple[list[str], list[str]]:
    code, output = cli("compare", *args)
    assert code == 0, output
    lines = output.splitlines()
    return [line for line in lines if line.startswith("|")], [line for line in lines if line.startswith("warning:")]


def test_compare_shows_samples_subjects_and_data_and_flags_a_subset_beside_a_full_run(runs):
    table, warnings = _compare(runs["full"], runs["again"])
    assert table[0].startswith("| run | selection | seeds | samples | subjects | data | full UF1 | full UAR |")
    assert [row.split(" | ")[3:6] for row in table[2:]] == [["36", "4", "flow_folder (megc2019-composite)"]] * 2
    assert warnings == []  # the same data, other seeds: comparable
    table, warnings = _compare(runs["full"], runs["subset"])
    assert table[3].split(" | ")[3:6] == ["27 of 36", "3 of 4", "flow_folder (megc2019-composite) subset"]
    assert len(warnings) == 1 and warnings[0].startswith("warning: not comparable: subset is not comparable with full")
    assert "subset is a subset (27 of 36 samples, 3 of 4 subjects), full is on all the data" in warnings[0]
    assert "27 samples, full 36" in warnings[0]


def _variant(run: Path, to: Path, change) -> Path:
    shutil.copytree(run, to)
    metrics = json.loads((to / "metrics.json").read_text())
    change(metrics)
    (to / "metrics.json").write_text(json.dumps(metrics))
    return to


def _alpha_only(metrics: dict) -> None:
    """A run on data.datasets [alpha] of the same folder (its counts as such a run records them)."""
    metrics["data"].update(datasets=["alpha"], samples=18, subjects=2, subset={
        "subjects": [], "datasets": ["alpha"], "of_samples": 36, "of_subjects": 4, "of_datasets": ["alpha", "beta"]})


@pytest.mark.parametrize("change, reason", [
    (lambda m: m["data"].update(kind="flow_folder", benchmark=None, datasets=["synthetic"]),
     "other data (flow_folder (synthetic): synthetic; full: flow_folder (megc2019-composite): alpha, beta)"),
    (_alpha_only, "x is a subset (18 of 36 samples, 2 of 4 subjects), full is on all the data; 18 samples, full 36"),
    (lambda m: m["data"].update(sample_set="0" * 16), "other samples (the same count, 36, other sample ids)"),
    (lambda m: m.update(selection="paper"), "x is test-selected (paper protocol), the other honest"),
    (lambda m: m.update(split="lodo"), "split lodo, full loso"),
    (lambda m: m.pop("data"), "x: its metrics.json does not record its data"),
])
def test_compare_flags_other_data_samples_protocols_and_unrecorded_data(runs, tmp_path, change, reason):
    other = _variant(runs["full"], tmp_path / "x", change)
    _, warnings = _compare(runs["full"], other)
    assert len(warnings) == 1 and reason in warnings[0], warnings
    assert ("other data" in warnings[0]) == ("other data" in reason)  # a part of the same data is no other data


# ------------------------------------------------------------------------------------------ tables for papers

def _latex_rows(tex: str) -> list[list[str]]:
    body = tex.split("\\midrule\n")[1].split("\\bottomrule")[0]
    return [[cell.strip() for cell in row.rstrip().removesuffix("\\\\").split(" & ")] for row in body.splitlines()]


def _stat(cell: str) -> tuple[float, float | None]:
    """``0.4861\\,$\\pm$\\,0.3208`` -> (0.4861, 0.3208); ``0.5556`` -> (0.5556, None)."""
    mean, _, std = cell.partition("\\,$\\pm$\\,")
    return float(mean), float(std) if std else None


def test_every_cell_of_the_latex_table_matches_metrics_json_with_one_row_per_part(runs):
    run = runs["full"]
    code, output = cli("report", run, "--latex", "--csv")
    assert code == 0, output
    tex = (run / "tables.tex").read_text()
    metrics = json.loads((run / "metrics.json").read_text())
    assert "\\toprule" in tex and "\\begin{tabular}" in tex and "\\usepackage" not in tex
    assert "\\caption{" in tex and metrics["protocol"] in tex and "36 samples, 4 subjects" in tex
    assert tex.split("\\toprule\n")[1].splitlines()[0] == "Part & UF1 & UAR & Accuracy & Samples & Subjects \\\\"
    rows = _latex_rows(tex)
    assert [r[0] for r in rows] == list(metrics["summary"]) == ["full", "alpha", "beta"]
    for part, uf1, uar, acc, samples, subjects in rows:
        for cell, key in ((uf1, "uf1"), (uar, "uar"), (acc, "accuracy")):
            stat = metrics["summary"][part][key]
            assert _stat(cell) == (round(stat["mean"], 4), round(stat["std"], 4)), (part, key, cell)
        assert (int(samples), int(subjects)) == tuple(metrics["data"]["parts"][part].values())
    csv = pd.read_csv(run / "tables.csv")
    assert csv["part"].tolist() == ["full", "alpha", "beta"]
    assert np.allclose(csv["uf1_mean"], [metrics["summary"][p]["uf1"]["mean"] for p in csv["part"]], atol=1e-12)


def test_a_subset_runs_tables_name_the_subset(runs):
    run = runs["subset"]
    assert cli("report", run, "--latex", "--csv")[0] == 0
    caption = (run / "tables.tex").read_text().split("\\caption{")[1].split("}\n")[0]
    assert f"subset of flow\\_folder (megc2019-composite): {SCOPE}" in caption
    assert "data.subjects alpha/s00, alpha/s01, beta/s02" in caption
    csv = pd.read_csv(run / "tables.csv")
    assert (csv["subset"].str.contains(SCOPE)).all() and csv["samples"].tolist() == [27, 18, 9]


def test_compare_latex_and_csv_cells_match_each_runs_metrics(runs):
    code, output = cli("compare", runs["full"], runs["subset"], "--latex")
    assert code == 0, output
    tex = output.split("warning:")[0]
    assert "Not comparable: subset is not comparable with full" in tex
    for row, name in zip(_latex_rows(tex), ("full", "subset")):
        metrics = json.loads((runs[name] / "metrics.json").read_text())
        assert row[0] == name
        cells = row[-6:]  # full, alpha, beta: UF1, UAR
        for cell, (part, key) in zip(cells, [(p, k) for p in ("full", "alpha", "beta") for k in ("uf1", "uar")]):
            stat = metrics["summary"][part][key]
            assert _stat(cell) == (round(stat["mean"], 4), round(stat["std"], 4)), (name, part, key)
    code, output = cli("compare", runs["full"], runs["subset"], "--csv")
    frame = pd.read_csv(pd.io.common.StringIO("\n".join(line for line in output.splitlines()
                                                         if not line.startswith("warning:"))))
    assert frame.groupby("run").size().to_dict() == {"full": 3, "subset": 3}


def test_the_tables_a_folder_holds_are_rewritten_by_a_resumed_run(runs, tmp_path):
    run = tmp_path / "run"
    assert cli("evaluate", "--data", runs["flows"], "--out", run, *FAST, "--seeds", "0")[0] == 0
    assert cli("report", run, "--latex")[0] == 0
    assert "seed 0." in (run / "tables.tex").read_text()
    assert cli("evaluate", "--data", runs["flows"], "--out", run, *FAST, "--seeds", "0,1")[0] == 0
    assert "over 2 seeds (0, 1)" in (run / "tables.tex").read_text()
    assert not (run / "tables.csv").exists()  # never asked for
