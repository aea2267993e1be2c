"""merkit's integrity promises, stated once and tested on generated inputs (Hypothesis).

For ``merkit evaluate`` on a generated flow folder, with generated settings and a generated output folder:

1. exit 0 implies that the metrics recomputed from ``predictions.csv`` equal ``metrics.json``, that every sample has
   one prediction per seed, and that the folds are subject-disjoint;
2. any other outcome is exit 2 with one line, ``error: ...``;
3. every file merkit did not write keeps its bytes: the data folder, and whatever the output folder held before.

The generated data mixes valid samples with the faults a careful new user makes: ids that differ only by
whitespace or Unicode normal form, one subject, 16-bit or resized images, empty and unknown labels, missing files.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score, recall_score
from typer.testing import CliRunner

from merkit.cli import app

EMOTIONS = ("negative", "positive", "surprise")
FAULTS = ("none", "none", "none", "none", "spaced-id", "nfd-id", "label-nan", "label-unknown", "missing-file", "bit16",
          "resized")
OUT_KINDS = ("absent", "absent", "empty", "foreign-file", "is-a-file", "data-folder")
runner = CliRunner()


def _snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (relative path -> digest)."""
    if root.is_file():
        return {".": hashlib.sha256(root.read_bytes()).hexdigest()}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@st.composite
def flow_folders(draw):
    """A manifest (rows of dataset, subject, sample, label, emotion) with images and at most one fault."""
    subjects = draw(st.integers(1, 4))
    rows = []
    for s in range(subjects):
        for k in range(draw(st.integers(1, 3))):
            label = draw(st.integers(0, 2))
            rows.append({"dataset": "toy", "subject": f"Sé{s}", "sample": f"c{k}", "label": label,
                         "emotion": EMOTIONS[label]})
    fault = draw(st.sampled_from(FAULTS))
    where = draw(st.integers(0, len(rows) - 1))
    pixels = draw(st.integers(0, 2**31 - 1))
    return rows, fault, where, pixels


def _write_folder(root: Path, rows: list[dict], fault: str, where: int, pixels: int) -> None:
    rng = np.random.default_rng(pixels)
    (root / "flow").mkdir(parents=True)
    out = []
    for i, row in enumerate(rows):
        row = dict(row)
        name = f"flow/{i:03d}.png"
        image = rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)
        if i == where:
            if fault == "spaced-id":
                row["subject"] = row["subject"] + " "
            elif fault == "nfd-id":
                row["subject"] = unicodedata.normalize("NFD", row["subject"])
            elif fault == "label-nan":
                row["label"], row["emotion"] = "", ""
            elif fault == "label-unknown":
                row["emotion"] = "joy"
            elif fault == "bit16":
                image = image.astype(np.uint16) * 257
            elif fault == "resized":
                image = cv2.resize(image, (32, 32))
        if not (i == where and fault == "missing-file"):
            cv2.imwrite(str(root / name), image)
        out.append({**row, "flow": name})
    pd.DataFrame(out).to_csv(root / "manifest.csv", index=False)


def _prepare_out(kind: str, base: Path, data: Path) -> Path:
    if kind == "data-folder":
        return data
    out = base / "out"
    if kind == "empty":
        out.mkdir()
    elif kind == "foreign-file":
        out.mkdir()
        (out / "manifest.csv").write_text("someone else's notes\n")
        (out / "report.md").write_text("a report merkit did not write\n")
    elif kind == "is-a-file":
        out.write_text("a file, not a folder\n")
    return out


def _recomputed(preds: pd.DataFrame, classes: list[str]) -> dict[int, tuple[float, float, float]]:
    """UF1, UAR and accuracy per seed, pooled over folds (MEGC2019), computed here with scikit-learn."""
    out = {}
    for seed, df in preds.groupby("seed"):
        present = sorted(set(df["label"]))
        out[int(seed)] = (f1_score(df["label"], df["prediction"], labels=present, average="macro", zero_division=0),
                          recall_score(df["label"], df["prediction"], labels=present, average="macro",
                                       zero_division=0),
                          float((df["label"] == df["prediction"]).mean()))
    return out


def _check_success(out: Path, rows: list[dict], seeds: list[int]) -> None:
    preds = pd.read_csv(out / "predictions.csv", dtype={"subject": str, "sample": str, "sample_id": str})
    metrics = json.loads((out / "metrics.json").read_text())
    # one prediction per sample and seed
    ids = {unicodedata.normalize("NFC", f"{r['dataset']}/{r['subject'].strip()}/{r['sample']}") for r in rows}
    for seed in seeds:
        mine = preds[preds["seed"] == seed]
        assert sorted(mine["sample_id"]) == sorted(ids), "not one prediction per sample"
    # subject-disjoint folds: each (normalised) subject is tested in exactly one fold, and one subject per fold
    for _, df in preds.groupby("seed"):
        assert (df.groupby("subject_id")["fold"].nunique() == 1).all()
        assert (df.groupby("fold")["subject_id"].nunique() == 1).all()
    # the metrics follow the predictions
    for seed, (uf1, uar, acc) in _recomputed(preds, metrics["classes"]).items():
        full = metrics["per_seed"][str(seed)]["full"]
        assert full["uf1"] == pytest.approx(uf1, abs=1e-9)
        assert full["uar"] == pytest.approx(uar, abs=1e-9)
        assert full["accuracy"] == pytest.approx(acc, abs=1e-9)
    assert metrics["summary"]["full"]["uf1"]["mean"] == pytest.approx(
        np.mean([v[0] for v in _recomputed(preds, metrics["classes"]).values()]), abs=1e-9)


SETTINGS = st.fixed_dictionaries({
    "lr": st.sampled_from(["0.001", "0.001", "0.001", "0", "-1", ".nan"]),
    "batch_size": st.sampled_from(["4", "4", "4", "0"]),
    "seeds": st.sampled_from(["0", "0,1"]),
    "out": st.sampled_from(OUT_KINDS),
})


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(folder=flow_folders(), options=SETTINGS)
def test_evaluate_keeps_the_promises_on_generated_folders(tmp_path_factory, folder, options):
    base = tmp_path_factory.mktemp("promise")
    rows, fault, where, pixels = folder
    data = base / "data"
    _write_folder(data, rows, fault, where, pixels)
    out = _prepare_out(options["out"], base, data)
    before_data, before_out = _snapshot(data), (_snapshot(out) if out.exists() else {})
    config = base / "tiny.yaml"
    config.write_text("name: tiny\nmodel: {name: ststnet, preset: cpu}\ntraining: {epochs: 1}\n")
    result = runner.invoke(app, ["evaluate", "--config", str(config), "--data", str(data), "--out", str(out),
                                 "--quiet", "--seeds", options["seeds"],
                                 "--set", f"training.lr={options['lr']}",
                                 "--set", f"training.batch_size={options['batch_size']}"])
    # 3. nothing merkit did not write changed (the data folder, and the output folder's earlier files)
    after_data = _snapshot(data)
    assert {k: v for k, v in after_data.items() if k in before_data} == before_data
    if out != data and options["out"] != "is-a-file":
        after_out = _snapshot(out) if out.exists() else {}
        assert {k: after_out.get(k) for k in before_out} == before_out
    if options["out"] == "is-a-file":
        assert _snapshot(out) == before_out
    event(f"exit {result.exit_code}")  # --hypothesis-show-statistics shows how many examples succeeded
    subjects = {r["subject"] for r in rows}
    valid = (fault in ("none", "spaced-id", "nfd-id") and len(subjects) >= 2 and options["lr"] == "0.001"
             and options["batch_size"] == "4" and options["out"] in ("absent", "empty"))
    assert (result.exit_code == 0) == valid, (fault, options, len(subjects), result.output[-2000:])
    if result.exit_code == 0:
        # 1. a success is a correct result
        _check_success(out, rows, [int(s) for s in options["seeds"].split(",")])
    else:
        # 2. a failure is one line with exit 2
        assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
        lines = [line for line in result.output.splitlines() if line.strip() and not line.startswith("warning:")]
        assert len(lines) == 1 and lines[0].startswith("error: "), result.output
