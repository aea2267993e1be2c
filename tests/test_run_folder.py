"""merkit's output folders (merkit.runfolder): merkit writes only into an empty folder or one of its own kind and
config, checks before it writes, never deletes what it did not write, and changed data never yields old results."""

from __future__ import annotations

import ast
import errno
import hashlib
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from skimage import data as skdata
from typer.testing import CliRunner

import merkit
from merkit import api
from merkit.cli import app
from merkit.config import load_config
from merkit.datasets.table import new_sample_table
from merkit.errors import ConfigError
from merkit.face.clip import FaceConfig
from merkit.inputs import Preprocessing
from merkit.motion.stage import MotionConfig
from tests.helpers import toy_flow_features, write_flow_folder

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = ["training.epochs=1", "training.batch_size=8", "protocol.save_checkpoints=false"]
CLI_FAST = ["--epochs", "1", "--quiet", "--set", "training.batch_size=8", "--set", "protocol.save_checkpoints=false"]


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (relative path -> SHA-256 of its bytes)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def cli(*args) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def one_line_error(code: int, output: str, *needles: str) -> None:
    lines = [line for line in output.splitlines() if line.strip()]
    assert code == 2, output
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    assert "Traceback" not in output
    for needle in needles:
        assert needle in lines[0], output


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path]:
    """A flow folder on disk and a finished evaluation of it (two subjects, one epoch)."""
    root = tmp_path_factory.mktemp("finished")
    flows = write_flow_folder(root / "flows", subjects=2)
    code, output = cli("evaluate", "--data", flows, "--out", root / "run", *CLI_FAST)
    assert code == 0, output
    return flows, root / "run"


# ------------------------------------------------------------------------------------------ 1. train --out

@pytest.mark.parametrize("target", ["run", "flows"])
def test_train_refuses_an_out_that_is_a_finished_run_or_the_dataset_and_leaves_it_untouched(finished, target):
    flows, run = finished
    out = {"run": run, "flows": flows}[target]
    before = snapshot(out)
    code, output = cli("train", "--data", flows, "--out", out, "--epochs", "1")
    one_line_error(code, output, str(out))
    assert snapshot(out) == before


def test_train_replaces_its_own_checkpoint_and_a_damaged_one(tmp_path):
    config = load_config(None, FAST)
    data = toy_flow_features(subjects=2, per_class=2)
    first = api.train(config, tmp_path / "ck", features=data)
    assert json.loads((first / "checkpoint.json").read_text())["kind"] == "checkpoint"
    (first / "checkpoint.json").write_text("{torn")
    again = api.train(config, tmp_path / "ck", features=data)
    assert json.loads((again / "checkpoint.json").read_text())["kind"] == "checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]  # no temporary or replaced folder left


@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(st.characters(categories=("L", "N"), include_characters="._- "), min_size=1, max_size=12)
       .filter(lambda n: n.strip() not in ("", ".", "..") and not n.startswith(".")
               and n not in ("checkpoint.json", "model.safetensors", "config.yaml")))
def test_a_checkpoint_holding_a_file_merkit_did_not_write_is_not_replaced(tmp_path_factory, name):
    """A checkpoint is replaced whole; one beside a file of the user's is refused, and that file kept."""
    folder = tmp_path_factory.mktemp("ck") / "ck"
    config = load_config(None, FAST)
    data = toy_flow_features(subjects=2, per_class=2)
    api.train(config, folder, features=data)
    (folder / name).write_text("the user's notes\n")
    before = snapshot(folder)
    with pytest.raises(ConfigError, match="holds files merkit did not write"):
        api.train(config, folder, features=data)
    assert snapshot(folder) == before


# ------------------------------------------------------------------------------------------ 2. ensemble

def test_ensemble_refuses_an_output_that_is_one_of_its_runs(finished):
    _, run = finished
    before = snapshot(run)
    code, output = cli("ensemble", run, run.parent / "." / run.name, "--out", run)
    one_line_error(code, output)
    code, output = cli("ensemble", run, "--out", run)
    one_line_error(code, output, "one of the runs")
    assert snapshot(run) == before


def test_ensemble_refuses_a_run_listed_twice(finished, tmp_path):
    _, run = finished
    code, output = cli("ensemble", run, run.parent / "." / run.name, "--out", tmp_path / "ens")
    one_line_error(code, output, "listed twice")
    assert not (tmp_path / "ens").exists()


# ------------------------------------------------------------------------------------------ 3, 8. export-flow

def _two_frame_clip(folder: Path, stretch: float) -> pd.DataFrame:
    """One sample: the astronaut, then the same face stretched by ``stretch`` (a micro-movement)."""
    face = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR)
    h, w = face.shape[:2]
    m = np.float32([[1 + stretch, 0, -stretch * w / 2], [0, 1 - stretch, stretch * h / 2]])
    apex = cv2.warpAffine(face, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    clip = folder / "s1" / "clip1"
    clip.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(clip / "img1.png"), face)
    cv2.imwrite(str(clip / "img2.png"), apex)
    return new_sample_table([dict(dataset="toy", subject="s1", sample="clip1", emotion="happiness", onset=1,
                                  apex=2, offset=2, frames=[str(clip / "img1.png"), str(clip / "img2.png")])])


RECORD = Preprocessing(FaceConfig(size=112), MotionConfig(method="farneback"))


def test_export_flow_refuses_a_folder_with_a_foreign_manifest(tmp_path, monkeypatch):
    table = _two_frame_clip(tmp_path / "raw", 0.02)
    monkeypatch.setattr("merkit.datasets.registry.load_dataset", lambda *args, **kwargs: table)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "manifest.csv").write_text("dataset,subject,sample,label,emotion,flow\nmy,own,notes,0,negative,x.png\n")
    before = snapshot(out)
    code, output = cli("export-flow", "synthetic", "--data", tmp_path / "raw", "--out", out,
                       "--set", "data.motion.method=farneback", "--set", "data.face.size=112")
    one_line_error(code, output, str(out), "did not write")
    assert snapshot(out) == before


def test_re_export_after_a_source_frame_changed_recomputes_that_sample(tmp_path):
    from merkit.errors import Diagnostics
    from merkit.inputs.composite import write_composite

    table = _two_frame_clip(tmp_path / "raw", 0.02)
    write_composite(table, tmp_path / "out", RECORD)
    image = tmp_path / "out" / "flow" / "toy_s1_clip1.png"
    old = image.read_bytes()
    write_composite(table, tmp_path / "out", RECORD)  # unchanged frames: the image is reused as it was
    assert image.read_bytes() == old
    _two_frame_clip(tmp_path / "raw", 0.04)  # the apex frame changes on disk
    diagnostics = Diagnostics()
    with pytest.warns(UserWarning, match="flow-export-recomputed"):
        write_composite(table, tmp_path / "out", RECORD, diagnostics=diagnostics)
    assert image.read_bytes() != old
    fresh = tmp_path / "fresh"
    write_composite(table, fresh, RECORD)
    assert image.read_bytes() == (fresh / "flow" / "toy_s1_clip1.png").read_bytes()  # as if exported anew
    assert diagnostics.summary() == {"flow-export-recomputed": 1}


# ------------------------------------------------------------------------------------------ 4. check before write

def test_an_evaluate_refused_for_another_config_leaves_the_folder_byte_for_byte(finished):
    flows, run = finished
    before = snapshot(run)
    code, output = cli("evaluate", "--data", flows, "--out", run, *CLI_FAST, "--set", "training.lr=0.5")
    one_line_error(code, output, "another config")
    assert snapshot(run) == before


def test_a_run_folder_without_finished_units_may_be_restamped_by_another_config(tmp_path):
    data = toy_flow_features(subjects=2, per_class=2)
    api.evaluate(load_config(None, FAST), tmp_path / "run", features=data, progress=False)
    for unit in (tmp_path / "run" / "units").rglob("*.csv"):
        unit.unlink()
    other = load_config(None, FAST + ["training.lr=0.5"])
    result = api.evaluate(other, tmp_path / "run", features=data, progress=False)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["result_hash"] == other.result_hash()
    assert len(result.predictions) == len(data)


# ------------------------------------------------------------------------------------------ 5. unwritable --out

def test_an_out_that_is_a_file_is_one_line_naming_it(finished, tmp_path):
    flows, _ = finished
    target = tmp_path / "a-file"
    target.write_text("mine")
    for command in (["evaluate", "--data", flows, "--out", target, *CLI_FAST],
                    ["train", "--data", flows, "--out", target, "--epochs", "1"]):
        one_line_error(*cli(*command), str(target))
    assert target.read_text() == "mine"


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EROFS])
def test_a_full_disk_or_a_read_only_folder_is_one_line_naming_the_path(finished, tmp_path, monkeypatch, code):
    flows, _ = finished
    real_replace = os.replace

    def refusing(src, dst, *args, **kwargs):
        if str(tmp_path) in str(dst):
            raise OSError(code, os.strerror(code))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", refusing)
    one_line_error(*cli("evaluate", "--data", flows, "--out", tmp_path / "run", *CLI_FAST), str(tmp_path / "run"),
                   os.strerror(code))
    one_line_error(*cli("train", "--data", flows, "--out", tmp_path / "ck", "--epochs", "1"), str(tmp_path / "ck"))
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and ".tmp" in p.name]
    assert leftovers == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_really_read_only_folder_is_one_line_naming_it(finished, tmp_path):
    flows, _ = finished
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        one_line_error(*cli("evaluate", "--data", flows, "--out", locked / "run", *CLI_FAST), str(locked))
    finally:
        locked.chmod(0o700)


# ------------------------------------------------------------------------------------------ 6. compare names

def _fake_metrics(folder: Path, uf1: float) -> Path:
    folder.mkdir(parents=True)
    cell = {"mean": uf1, "std": 0.0, "values": [uf1]}
    (folder / "metrics.json").write_text(json.dumps({"summary": {"full": {"uf1": cell, "uar": cell}},
                                                     "protocol": "honest", "seeds": [0]}))
    return folder


def test_compare_names_two_runs_of_the_same_name_by_their_parents(tmp_path):
    a, b = _fake_metrics(tmp_path / "x" / "run", 0.5), _fake_metrics(tmp_path / "y" / "run", 0.6)
    code, output = cli("compare", a, b)
    assert code == 0, output
    names = [line.split("|")[1].strip() for line in output.splitlines() if line.startswith("|")][2:]
    assert names == ["x/run", "y/run"]


parts = st.lists(st.sampled_from(["a", "b", "run", "x"]), min_size=1, max_size=4)


@settings(max_examples=100)
@given(st.lists(parts, min_size=1, max_size=5, unique_by=tuple))
def test_compare_names_are_distinct_shortest_path_suffixes(folders):
    base = Path("/base")
    paths = [base.joinpath(*p) for p in folders]
    names = api.distinct_names(paths)
    assert len(set(names)) == len(names)
    for path, name in zip(paths, names):
        assert path.as_posix() == name or path.as_posix().endswith("/" + name)
        shorter = "/".join(Path(name).parts[1:])
        if shorter:  # one part fewer would clash with another folder
            assert any(o != path and o.as_posix().endswith("/" + shorter) for o in paths)


# ------------------------------------------------------------------------------------------ 7. content fingerprint

@settings(max_examples=100)
@given(st.integers(0, 11), st.integers(0, 3 * 28 * 28 - 1), st.floats(1e-6, 1.0))
def test_the_fingerprint_sees_a_change_of_any_input_value(row, position, delta):
    data = toy_flow_features(subjects=1, per_class=4)
    before = data.fingerprint()
    data.inputs["flow"].view(len(data), -1)[row, position] += delta
    assert data.fingerprint() != before
    assert data.shape_fingerprint() == toy_flow_features(subjects=1, per_class=4).shape_fingerprint()


def test_the_fingerprint_sees_classes_labels_and_dtypes():
    data = toy_flow_features(subjects=1, per_class=2)
    base = data.fingerprint()
    assert data.fingerprint() == toy_flow_features(subjects=1, per_class=2).fingerprint()  # deterministic
    renamed = type(data)(data.table, data.inputs, ("a", "b", "c"))
    relabelled = type(data)(data.table.assign(label=(data.table["label"] + 1) % 3), data.inputs, data.classes)
    doubled = type(data)(data.table, {"flow": data.inputs["flow"].double()}, data.classes)
    assert len({base, renamed.fingerprint(), relabelled.fingerprint(), doubled.fingerprint()}) == 4


def _change_one_image(flows: Path) -> None:
    path = flows / pd.read_csv(flows / "manifest.csv")["flow"].iloc[0]
    img = cv2.imread(str(path))
    cv2.imwrite(str(path), 255 - img)


def test_evaluate_after_the_images_changed_refuses_and_force_recomputes(tmp_path):
    flows = write_flow_folder(tmp_path / "flows", subjects=2)
    run = tmp_path / "run"
    assert cli("evaluate", "--data", flows, "--out", run, *CLI_FAST)[0] == 0
    _change_one_image(flows)
    before = snapshot(run)
    code, output = cli("evaluate", "--data", flows, "--out", run, *CLI_FAST)
    one_line_error(code, output, str(run), "data changed", "--force")
    assert snapshot(run) == before
    code, output = cli("evaluate", "--data", flows, "--out", run, *CLI_FAST, "--force")
    assert code == 0, output
    assert cli("evaluate", "--data", flows, "--out", tmp_path / "fresh", *CLI_FAST)[0] == 0
    forced, fresh = (pd.read_csv(d / "predictions.csv") for d in (run, tmp_path / "fresh"))
    pd.testing.assert_frame_equal(forced, fresh)  # the new data's results, not the old ones
    assert json.loads((run / "metrics.json").read_text())["diagnostics"]["units-replaced"] == 1


def test_force_leaves_files_merkit_did_not_write(tmp_path):
    data = toy_flow_features(subjects=2, per_class=2)
    config = load_config(None, FAST)
    api.evaluate(config, tmp_path / "run", features=data, progress=False)
    (tmp_path / "run" / "my-notes.txt").write_text("mine")
    (tmp_path / "run" / "units" / "keep.txt").write_text("mine too")
    data.inputs["flow"][0] += 0.5
    with pytest.raises(ConfigError, match="data changed"):
        api.evaluate(config, tmp_path / "run", features=data, progress=False)
    api.evaluate(config, tmp_path / "run", features=data, progress=False, force=True)
    assert (tmp_path / "run" / "my-notes.txt").read_text() == "mine"
    assert (tmp_path / "run" / "units" / "keep.txt").read_text() == "mine too"


def test_a_folder_stamped_with_the_old_fingerprint_resumes_with_a_counted_warning(tmp_path):
    data = toy_flow_features(subjects=2, per_class=2)
    config = load_config(None, FAST)
    first = api.evaluate(config, tmp_path / "run", features=data, progress=False)
    stamp_path = tmp_path / "run" / "run.json"
    stamp = json.loads(stamp_path.read_text())
    old = {k: v for k, v in stamp.items() if k not in ("kind", "fingerprint_version")}
    stamp_path.write_text(json.dumps({**old, "data_fingerprint": data.shape_fingerprint()}))
    units = snapshot(tmp_path / "run" / "units")
    with pytest.warns(UserWarning, match="run-stamp-upgraded"):
        again = api.evaluate(config, tmp_path / "run", features=data, progress=False)
    pd.testing.assert_frame_equal(again.predictions, first.predictions)
    assert snapshot(tmp_path / "run" / "units") == units  # reused, not recomputed
    assert again.metrics["diagnostics"]["run-stamp-upgraded"] == 1
    upgraded = json.loads(stamp_path.read_text())
    assert upgraded["data_fingerprint"] == data.fingerprint() and upgraded["fingerprint_version"] == 2
    # A legacy stamp whose ids, labels or shapes differ is other data: refused like any other.
    stamp_path.write_text(json.dumps({**old, "data_fingerprint": "0" * 16}))
    with pytest.raises(ConfigError, match="data changed"):
        api.evaluate(config, tmp_path / "run", features=data, progress=False)


# ------------------------------------------------------------------------------------------ the owner itself

names = st.text(st.characters(whitelist_categories=("Ll", "Nd")), min_size=1, max_size=8)


@settings(max_examples=100)
@given(st.lists(st.tuples(names, st.binary(max_size=32)), min_size=1, max_size=4, unique_by=lambda t: t[0]),
       st.sampled_from(["evaluate", "ensemble", "checkpoint", "export-flow", "preprocess"]))
def test_a_folder_merkit_did_not_write_is_refused_for_every_kind_and_left_as_it_was(tmp_path_factory, files, kind):
    from merkit.runfolder import check_target

    root = tmp_path_factory.mktemp("foreign")
    for name, content in files:
        (root / name).write_bytes(content)
    before = snapshot(root)
    with pytest.raises(ConfigError, match="did not write"):
        check_target(root, kind)
    assert snapshot(root) == before


def test_the_run_folder_module_imports_only_errors_files_and_libraries():
    tree = ast.parse((Path(merkit.__file__).parent / "runfolder.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert {m for m in imported if m and m.startswith("merkit")} <= {"merkit.errors", "merkit.files"}


def test_no_module_but_the_owner_spells_the_layout():
    """The file names of run, checkpoint, export and cache folders are written in merkit.runfolder alone (the
    readers of other helpers' modules aside: the composite reader and the predictor's packaged models)."""
    layout = [f'"{name}"' for name in ("run.json", "config.yaml", "predictions.csv", "metrics.json", "report.md",
                                         "confusion.png", "data_notes.json", "preprocessing.json", "per_class.csv",
                                         "provenance.csv", "sources.csv", "record.json", "meta.json", "inputs.npz",
                                         "model.safetensors", "checkpoint.json")]
    layout += [f'/ "{name}"' for name in ("units", "checkpoints", "epochs", "choices", "flow", "apex")]
    owners = ("api.py", "runner.py", "checkpoint.py", "build.py", "report.py", "ensemble.py")
    offenders = [f"{p.name}: {name}" for p in Path(merkit.__file__).parent.rglob("*.py") if p.name in owners
                 for name in layout if name in p.read_text()]
    assert offenders == []


def test_write_atomic_flushes_the_file_before_the_move(tmp_path, monkeypatch):
    from merkit import files

    order = []
    monkeypatch.setattr(files.os, "fsync", lambda fd: order.append("fsync"))
    real_replace = os.replace
    monkeypatch.setattr(files.os, "replace", lambda a, b: (order.append("replace"), real_replace(a, b)))
    files.write_text(tmp_path / "x.txt", "data")
    assert order[:2] == ["fsync", "replace"] and (tmp_path / "x.txt").read_text() == "data"


# ------------------------------------------------------------------------------------------ checked before any byte

@pytest.mark.parametrize("bad, needle", [
    (["--set", "model.name=resnet"], "known"),
    (["--set", "model.name=ststnt"], "did you mean 'ststnet'"),
    (["--set", "model.preset=cpuu"], "did you mean 'cpu'"),
    (["--set", "model.params={dropot: 0.5}"], "did you mean 'dropout'"),
    (["--set", "training.epoch=3"], "did you mean 'epochs'"),
    (["--set", "protocol.selction=inner"], "did you mean 'selection'"),
    (["--set", "data.kind=flow_foldr"], "did you mean 'flow_folder'"),
    (["--config", "megc2019/ststnett"], "ststnet"),
])
def test_a_typo_leaves_no_folder_behind_and_the_corrected_command_then_runs(finished, tmp_path, bad, needle):
    """Issue 35: `--set model.name=resnet --out runs/x` used to write config and stamp into runs/x before failing,
    and the corrected command was then refused ("holds results of another config")."""
    flows, _ = finished
    out = tmp_path / "runs" / "x"
    code, output = cli("evaluate", "--data", flows, "--out", out, *CLI_FAST, *bad)
    one_line_error(code, output, needle)
    assert not out.exists() and not out.parent.exists()
    code, output = cli("evaluate", "--data", flows, "--out", out, *CLI_FAST)
    assert code == 0, output
    assert (out / "report.md").is_file()


def test_data_that_cannot_be_read_leaves_no_folder_behind(tmp_path):
    flows = write_flow_folder(tmp_path / "flows", subjects=2)
    victim = sorted((flows / "flow").glob("*.png"))[0]
    victim.write_bytes(b"not a png")
    out = tmp_path / "runs" / "x"
    code, output = cli("evaluate", "--data", flows, "--out", out, *CLI_FAST)
    one_line_error(code, output, victim.name)
    assert not out.exists()
