"""``merkit datasets check`` on a composite-format flow folder (:mod:`merkit.inputs.check`): the real composite
passes, a copy of it with a missing or damaged image fails naming the file, and generated small folders with a
wrong size, a missing column or a wrong label fail naming what is wrong (Hypothesis)."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from merkit.cli import app
from merkit.datasets.megc2019 import COMPOSITE, read_sheet
from merkit.inputs.check import check_flow_folder

runner = CliRunner()
EMOTIONS = ("negative", "positive", "surprise")
FIRST = "casme2_sub01_EP02_01f"


def _check(*args: str):
    return runner.invoke(app, ["datasets", "check", *args])


# ------------------------------------------------------------------------------------------------ the real folder

def test_the_benchmark_counts_are_those_of_the_official_list(shared_data):
    listed = read_sheet(shared_data / "annotations" / "megc2019" / "combined_3class_gt.csv")
    assert len(listed) == COMPOSITE.total.samples
    assert listed.groupby(["dataset", "subject"]).ngroups == COMPOSITE.total.subjects
    assert listed["emotion"].value_counts().to_dict() == COMPOSITE.total.per_class
    for part, counts in COMPOSITE.parts.items():
        rows = listed[listed["dataset"] == part]
        assert (len(rows), rows["subject"].nunique()) == (counts.samples, counts.subjects), part
        assert rows["emotion"].value_counts().to_dict() == counts.per_class, part


def test_the_real_composite_folder_passes_against_the_benchmark_and_the_official_list(composite_dir, shared_data):
    sheet = shared_data / "annotations" / "megc2019" / "combined_3class_gt.csv"
    result = _check("megc2019-composite", "--root", str(composite_dir), "--sheet", str(sheet))
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("OK")
    assert "442 of the folder's 442 samples found" in result.output
    report = check_flow_folder(composite_dir)
    assert report.ok and report.samples == 442
    assert ("casme2 samples", 145, 145) in report.counts and ("all surprise", 83, 83) in report.counts


def test_the_composite_folder_agrees_with_the_casme2_coding_sheet_under_the_scheme(composite_dir, shared_data):
    report = check_flow_folder(composite_dir, sheet=shared_data / "annotations" / "casme2" /
                               "CASME2-coding-20190701.xlsx")
    assert report.ok, report.problems[:5]
    # the 3-class rule keeps 156 samples of the sheet; the official list selects 145 of them
    assert "145 of the folder's 145 samples found; 11 more in the sheet" in report.sheet


def test_megc2019_with_a_flow_folder_root_checks_the_folder_instead_of_asking_for_sheets(composite_dir):
    result = _check("megc2019", "--root", str(composite_dir))
    assert result.exit_code == 0, result.output
    assert "checked as a flow folder of megc2019-composite" in result.output


def _broken_copy(composite_dir: Path, tmp_path: Path, fault: str) -> tuple[Path, str]:
    """A copy of the composite in ``tmp_path`` with one fault; the file (relative to the copy) it is in."""
    copy = tmp_path / "composite"
    shutil.copytree(composite_dir, copy)
    if fault == "missing flow":
        relative = f"flow/{FIRST}.png"
        (copy / relative).unlink()
    elif fault == "truncated apex":  # OpenCV decodes this without an error
        relative = f"apex/{FIRST}.jpg"
        data = (copy / relative).read_bytes()
        (copy / relative).write_bytes(data[: len(data) // 2])
    else:  # "garbage flow"
        relative = "flow/samm_006_006_1_2.png"
        (copy / relative).write_bytes(b"this is not a PNG file")
    return copy, relative


@pytest.mark.parametrize("fault", ["missing flow", "truncated apex", "garbage flow"])
def test_a_copy_with_a_missing_or_damaged_image_fails_naming_the_file(composite_dir, tmp_path, fault):
    copy, relative = _broken_copy(composite_dir, tmp_path, fault)
    result = _check("megc2019-composite", "--root", str(copy))
    assert result.exit_code == 1, result.output
    kind = "missing file" if fault.startswith("missing") else "damaged file"
    lines = [line for line in result.output.splitlines() if line.strip().startswith(f"- {kind}: ")]
    assert len(lines) == 1 and relative in lines[0], result.output
    assert "1 problem(s)" in result.output


# ------------------------------------------------------------------------------------------- generated folders

FAULTS = ("none", "flow-size", "apex-size", "flow-grey", "no-column", "label", "duplicate")


@st.composite
def small_folders(draw, datasets=("casme2",)):
    """A small composite-format folder: 2-6 rows of (dataset, subject, sample, label), image sizes and at most one
    fault, in a row after the first (without a benchmark, the first image sets the size the others must have)."""
    count = draw(st.integers(2, 6))
    subjects = draw(st.lists(st.integers(0, 2), min_size=count, max_size=count))
    rows = [{"dataset": draw(st.sampled_from(datasets)), "subject": f"p{s}", "sample": f"c{k}",
             "label": draw(st.integers(0, 2))} for k, s in enumerate(subjects)]
    return {"rows": rows, "flow": draw(st.integers(8, 32)), "apex": draw(st.integers(16, 64)),
            "fault": draw(st.sampled_from(FAULTS)), "where": draw(st.integers(1, count - 1)),
            "column": draw(st.sampled_from(("dataset", "subject", "sample", "label", "emotion", "flow"))),
            "seed": draw(st.integers(0, 2**16))}


def _write(root: Path, spec: dict) -> str:
    """Write ``spec``'s folder into ``root``; return what the fault's finding must name ("" for no fault)."""
    rng = np.random.default_rng(spec["seed"])
    (root / "flow").mkdir(parents=True)
    (root / "apex").mkdir()
    rows, named = [], ""
    for i, row in enumerate(spec["rows"]):
        stem = f"{row['dataset']}_{row['subject']}_{row['sample']}"
        flow_side, apex_side = spec["flow"], spec["apex"]
        flow = rng.integers(0, 256, (flow_side, flow_side, 3), dtype=np.uint8)
        here = i == spec["where"]
        if here and spec["fault"] == "flow-size":
            flow, named = cv2.resize(flow, (flow_side + 1, flow_side)), f"flow/{stem}.png"
        if here and spec["fault"] == "flow-grey":
            flow, named = flow[..., 0], f"flow/{stem}.png"
        if here and spec["fault"] == "apex-size":
            apex_side, named = apex_side + 2, f"apex/{stem}.jpg"
        cv2.imwrite(str(root / f"flow/{stem}.png"), flow)
        cv2.imwrite(str(root / f"apex/{stem}.jpg"), rng.integers(0, 256, (apex_side, apex_side), dtype=np.uint8))
        label, emotion = row["label"], EMOTIONS[row["label"]]
        if here and spec["fault"] == "label":
            emotion, named = EMOTIONS[(label + 1) % 3], f"{row['dataset']}/{row['subject']}/{row['sample']}"
        rows.append({**row, "label": label, "emotion": emotion, "flow": f"flow/{stem}.png", "apex": f"apex/{stem}.jpg"})
    if spec["fault"] == "duplicate":
        rows.append(dict(rows[spec["where"]]))
        named = "{dataset}/{subject}/{sample}".format(**rows[-1])
    table = pd.DataFrame(rows)
    if spec["fault"] == "no-column":
        table, named = table.drop(columns=spec["column"]), f"'{spec['column']}' is absent"
    table.to_csv(root / "manifest.csv", index=False)
    return named


KIND = {"flow-size": "wrong size", "apex-size": "wrong size", "flow-grey": "damaged file", "no-column": "manifest",
        "label": "label", "duplicate": "duplicate id"}


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=small_folders())
def test_a_generated_folder_fails_exactly_when_it_has_a_fault_and_names_it(tmp_path_factory, spec):
    root = tmp_path_factory.mktemp("folder")
    named = _write(root, spec)
    report = check_flow_folder(root, benchmark=None, datasets={"casme2"})
    result = _check("casme2", "--root", str(root))  # a flow folder of CASME II samples, no benchmark
    if spec["fault"] == "none":
        assert report.ok, report.problems
        assert report.counts[0] == ("all samples", len(spec["rows"]), None)
        assert result.exit_code == 0, result.output
        return
    assert [k for k, _, _ in report.problems] == [KIND[spec["fault"]]], report.problems
    kind, what, message = report.problems[0]
    assert named in f"{what}: {message}"
    assert result.exit_code == 1 and f"- {kind}: {what}: {message}" in result.output, result.output


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=small_folders(("casme2", "samm", "smic")))
def test_a_small_folder_against_the_benchmark_reports_each_count_with_both_numbers(tmp_path_factory, spec):
    root = tmp_path_factory.mktemp("folder")
    spec = {**spec, "fault": "none", "flow": COMPOSITE.flow_size, "apex": COMPOSITE.apex_size}
    _write(root, spec)
    report = check_flow_folder(root)
    assert {what: m for what, _, m in report.counts}["all samples"] == 442
    problems = {f"{what}: {message}" for kind, what, message in report.problems if kind == "count"}
    assert f"all: samples: {len(spec['rows'])} in the folder, 442 in megc2019-composite" in problems
    assert {k for k, _, _ in report.problems} == {"count"}  # right sizes, labels and files: only the counts differ
    for part, expected in COMPOSITE.parts.items():
        n = sum(r["dataset"] == part for r in spec["rows"])
        assert f"{part}: samples: {n} in the folder, {expected.samples} in megc2019-composite" in problems


def test_against_the_official_list_a_label_that_differs_and_a_listed_sample_missing_are_named(tmp_path):
    root = tmp_path / "folder"
    _write(root, {"rows": [{"dataset": "smic", "subject": "s01", "sample": "s01_ne_01", "label": 0},
                           {"dataset": "samm", "subject": "006", "sample": "006_1_2", "label": 1}],
                  "flow": 28, "apex": 224, "fault": "none", "where": 0, "column": "flow", "seed": 0})
    sheet = tmp_path / "combined_3class_gt.csv"
    sheet.write_text("smic,s01,s01_ne_01,0\nsamm,6,006_1_2,0\ncasme2,sub01,EP02_01f,1\n")
    report = check_flow_folder(root, sheet=sheet)
    sheet_lines = {f"{what}: {message}" for kind, what, message in report.problems if kind == "sheet"}
    assert sheet_lines == {"samm/006/006_1_2: label 1 in the folder, combined_3class_gt.csv gives label 0 "
                           "(label 0 under megc2019-3class)",
                           "casme2/sub01/EP02_01f: listed in combined_3class_gt.csv but not in the folder"}
    assert "2 of the folder's 2 samples found" in report.sheet  # s01_ne_01 meets the list's spelling s1_ne_01


def test_a_sheet_whose_name_names_no_dataset_is_refused_with_the_names_expected(tmp_path):
    root = tmp_path / "folder"
    _write(root, {"rows": [{"dataset": "casme2", "subject": "sub01", "sample": "EP02_01f", "label": 1}],
                  "flow": 28, "apex": 224, "fault": "none", "where": 0, "column": "flow", "seed": 0})
    (tmp_path / "labels.csv").write_text("x\n")
    result = _check("megc2019-composite", "--root", str(root), "--sheet", str(tmp_path / "labels.csv"))
    assert result.exit_code == 2 and "combined_3class_gt.csv" in result.output and "CASME2-coding" in result.output


def test_a_folder_without_manifest_is_one_line_and_exit_2(tmp_path):
    result = _check("megc2019-composite", "--root", str(tmp_path))
    assert result.exit_code == 2 and f"no manifest.csv in {tmp_path}" in result.output
