"""``check_dataset`` / ``merkit datasets check`` report every kind of problem, and a synthetic CASME II-layout
dataset loads through the CASME II loader unchanged."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from merkit.cli import app
from merkit.datasets import casme2
from merkit.datasets.check import check_dataset
from merkit.datasets.registry import load_dataset
from merkit.datasets.schemes import get_scheme
from test_datasets_loaders import CASME2_HEADER, CASME2_ROWS, build_casme2, touch_image, write_xlsx


@pytest.fixture()
def broken_casme2(tmp_path: Path) -> Path:
    rows = CASME2_ROWS + [
        ("03", "EP07_01", None, 5, 6, 8, None, "4", "contempt"),      # not a CASME II emotion
        ("03", "EP08_02", None, 10, 12, 11, None, "4", "disgust"),    # apex after offset
        ("03", "EP08_02", None, 10, 11, 12, None, "4", "disgust"),    # duplicate id
        ("04", "EP09_01", None, 1, 2, 3, None, "12", "happiness"),    # no frame folder
        ("04", "EP10_01", None, 40, 60, 45, None, "12", "happiness"),  # apex out of order
    ]
    build_casme2(tmp_path, rows=CASME2_ROWS)
    for n in range(5, 9):
        touch_image(tmp_path / "CASME2_RAW_selected" / "sub03" / "EP07_01" / f"img{n}.jpg")
    for n in range(10, 13):
        touch_image(tmp_path / "CASME2_RAW_selected" / "sub03" / "EP08_02" / f"img{n}.jpg")
    # apex 99 of EP01_11f is not among its frames (95..102 exist, so make a gap)
    (tmp_path / "CASME2_RAW_selected" / "sub02" / "EP01_11f" / "img98.jpg").unlink()
    write_xlsx(tmp_path / "CASME2-coding-20190701.xlsx", [CASME2_HEADER, *rows])
    return tmp_path


def test_check_reports_every_kind_of_problem_with_counts(broken_casme2):
    report = check_dataset("casme2", broken_casme2)
    counts = {kind: report.count(kind) for kind in ("missing frames", "annotation out of range",
                                                    "annotation out of order", "duplicate id", "unknown emotion")}
    assert counts == {"missing frames": 1, "annotation out of range": 1, "annotation out of order": 2,
                      "duplicate id": 1, "unknown emotion": 1}
    assert not report.ok
    assert report.repairs == {"apex-midpoint": 1}
    assert report.layout == "raw"
    assert report.per_subject == {"sub01": 2, "sub02": 1, "sub03": 1, "sub04": 1}
    text = report.to_text()
    assert "casme2/sub04/EP09_01" in text and "apex 98 is not a frame" in text


def test_check_counts_a_duplicate_id_when_the_first_row_is_valid(tmp_path):
    rows = CASME2_ROWS + [CASME2_ROWS[0]]
    build_casme2(tmp_path, rows=CASME2_ROWS)
    write_xlsx(tmp_path / "CASME2-coding-20190701.xlsx", [CASME2_HEADER, *rows])
    report = check_dataset("casme2", tmp_path)
    assert report.count("duplicate id") == 1 and report.samples == 3


def test_cli_check_prints_the_report_and_exits_1_on_problems(broken_casme2):
    result = CliRunner().invoke(app, ["datasets", "check", "casme2", "--root", str(broken_casme2)])
    assert result.exit_code == 1, result.output
    assert "missing frames" in result.output and "release   raw" in result.output


def test_cli_check_of_a_clean_cropped_tree_exits_0(tmp_path):
    build_casme2(tmp_path, cropped=True)
    result = CliRunner().invoke(app, ["datasets", "check", "casme2", "--root", str(tmp_path / "Cropped"),
                                      "--sheet", str(tmp_path / "CASME2-coding-20190701.xlsx")])
    assert result.exit_code == 0, result.output
    assert "release   cropped" in result.output and result.output.rstrip().endswith("OK")


def test_cli_check_of_a_wrong_root_exits_2_with_the_reason(tmp_path):
    result = CliRunner().invoke(app, ["datasets", "check", "casme2", "--root", str(tmp_path)])
    assert result.exit_code == 2
    assert "no casme2 release" in result.output


def test_synthetic_casme2_layout_dataset_loads_through_the_casme2_loader(tmp_path):
    from merkit import synthetic
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        truth = synthetic.generate(tmp_path / "synth", subjects=1, clips_per_class=1, seed=3, duration=(5, 7))
    table = casme2.load(tmp_path / "synth")
    assert table.attrs["layout"] == "raw"
    assert list(table["subject"]) == list(truth["subject"])
    assert list(table["sample"]) == list(truth["sample"])
    assert list(table["emotion"]) == list(truth["emotion"])
    for column in ("onset", "apex", "offset"):
        assert list(table[column]) == list(truth[column])
    assert [[Path(f).resolve() for f in fr] for fr in table["frames"]] == \
        [[Path(f) for f in fr] for fr in truth["frames"]]
    assert check_dataset("casme2", tmp_path / "synth").ok
    # The registry's "synthetic" name is the same loader, renamed, with the generator's ground truth joined.
    named = load_dataset("synthetic", tmp_path / "synth")
    assert set(named["dataset"]) == {"synthetic"} and list(named["sample"]) == list(table["sample"])
    labels = get_scheme("megc2019-3class").apply(named)
    assert list(labels["label_class"]) == \
        [get_scheme("megc2019-3class").classes[i] for i in labels["label"]]


def test_check_of_the_composite_reports_per_part_layouts(tmp_path):
    from test_datasets_loaders import build_composite

    build_composite(tmp_path)
    report = check_dataset("megc2019", tmp_path, parts=("casme2", "smic"))
    assert report.ok and report.samples == 4
    assert report.layout == "casme2: raw, smic: raw"
    assert set(report.per_subject) == {"casme2/sub01", "casme2/sub02", "smic/s1", "smic/s3"}


def test_cli_check_passes_the_smic_variant(tmp_path):
    from test_datasets_loaders import touch_image as touch

    for n in range(10, 14):
        touch(tmp_path / "VIS" / "s2" / "micro" / "positive" / "s2_po_05" / f"image{n}.bmp")
    result = CliRunner().invoke(app, ["datasets", "check", "smic", "--root", str(tmp_path), "--variant", "VIS"])
    assert result.exit_code == 0, result.output
    assert "samples   1 from 1 subjects" in result.output
    assert "release   raw" in result.output and "VIS" in result.output
