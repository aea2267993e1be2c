"""Inputs a hostile user would try, and faults a crash would leave: each must end in an exact, named error or a
counted warning, never in a wrong result reported as success. docs/reliability.md lists every case with its test."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import merkit
from merkit.api import evaluate, report
from merkit.cli import app
from merkit.config import load_config
from merkit.errors import ConfigError, DataError
from merkit.files import write_atomic
from merkit.training.runner import plan_units, run_loso
from tests.helpers import toy_flow_features, write_flow_folder

FAST = ["training.epochs=2", "training.batch_size=16", "protocol.save_checkpoints=false"]
runner = CliRunner()


def _cli(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def _one_line_error(result, *parts: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    for part in parts:
        assert part in lines[0], (part, lines[0])


# ------------------------------------------------------------------------------------------------------- ids

def test_a_subject_with_a_path_separator_is_refused_at_the_table_naming_it(tmp_path):
    data = write_flow_folder(tmp_path / "flows")
    manifest = pd.read_csv(data / "manifest.csv", dtype=str)
    manifest.loc[0, "subject"] = "sub/02"
    manifest.to_csv(data / "manifest.csv", index=False)
    result = _cli("evaluate", "--data", data, "--out", tmp_path / "run", "--quiet")
    _one_line_error(result, "'sub/02'", "path separator")
    assert not (tmp_path / "run").exists()  # refused before any work


@pytest.mark.parametrize("column, value", [("sample", ""), ("subject", " "), ("dataset", "a\\b")])
def test_empty_or_separator_ids_are_refused(tmp_path, column, value):
    from merkit.datasets.table import new_sample_table

    row = dict(dataset="toy", subject="s1", sample="c1", emotion="happiness")
    with pytest.raises(DataError, match=column):
        new_sample_table([{**row, column: value}])


def test_subjects_whose_flattened_names_coincide_get_their_own_units_and_every_sample_one_prediction(tmp_path):
    fs = toy_flow_features(subjects=2, per_class=2)
    table = fs.table.copy()
    # "x/a_b" and "x_a/b" flatten to the same "x_a_b": a slug without the id's hash made them share a unit file.
    table["dataset"] = np.where(table["subject"] == "s00", "x", "x_a")
    table["subject"] = np.where(table["subject"] == "s00", "a_b", "b")
    from merkit.datasets.table import new_sample_table
    from merkit.features import FeatureSet

    rows = new_sample_table(table.drop(columns=["sample_id", "subject_id"]).to_dict("records"))
    data = FeatureSet(rows, fs.inputs, fs.classes)
    config = load_config(None, FAST)
    plans = plan_units(config.resolve().protocol, data, tmp_path)
    assert len({p.path for p in plans}) == 2
    predictions = run_loso(config.resolve(), data, tmp_path)
    assert sorted(predictions["sample_id"]) == sorted(data.table["sample_id"])


# ------------------------------------------------------------------------------------------------- run folders

@pytest.fixture()
def finished_run(tmp_path):
    data = toy_flow_features(subjects=3, per_class=2)
    config = load_config(None, FAST + ["protocol.save_checkpoints=true", "protocol.record_epochs=true"])
    result = evaluate(config, tmp_path / "run", features=data, progress=False)
    return config, data, result


def _unit(run_dir: Path) -> Path:
    return sorted((run_dir / "units" / "seed0").glob("*.csv"))[0]


@pytest.mark.parametrize("damage, reason", [
    (lambda df: df.iloc[:-2], "rows"),
    (lambda df: df.assign(seed=7), "seed"),
    (lambda df: df.assign(prob_negative=np.nan), "finite"),
    (lambda df: df.assign(prob_negative=df["prob_negative"] + 0.5), "sum to 1"),
    (lambda df: df.assign(epoch=99), "epochs"),
    (lambda df: df.assign(label=(df["label"] + 1) % 3), "labels"),
])
def test_a_resumed_run_recomputes_a_unit_file_it_cannot_trust_with_a_counted_warning(finished_run, damage, reason):
    config, data, first = finished_run
    unit = _unit(first.run_dir)
    damage(pd.read_csv(unit)).to_csv(unit, index=False)
    with pytest.warns(UserWarning, match=f"unit-recomputed: .*{unit.name}.*{reason}"):
        again = evaluate(config, first.run_dir, features=data, progress=False)
    pd.testing.assert_frame_equal(again.predictions, first.predictions)
    assert len(again.predictions) == len(data)
    assert again.metrics["diagnostics"]["unit-recomputed"] == 1


@pytest.mark.parametrize("name", ["checkpoint", "curve", "unit", "losses"])
def test_a_torn_unit_checkpoint_or_curve_is_recomputed(finished_run, name):
    config, data, first = finished_run
    run = first.run_dir
    path = {"unit": _unit(run), "checkpoint": sorted((run / "checkpoints").rglob("*.safetensors"))[0],
            "curve": sorted((run / "epochs").rglob("*.csv"))[0],
            "losses": sorted((run / "losses").rglob("*.csv"))[0]}[name]
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.warns(UserWarning, match="unit-recomputed"):
        again = evaluate(config, run, features=data, progress=False)
    pd.testing.assert_frame_equal(again.predictions, first.predictions)


def test_a_torn_run_json_is_an_error_that_names_it_and_says_what_to_do(finished_run):
    config, data, first = finished_run
    path = first.run_dir / "run.json"
    path.write_text(path.read_text()[:20])
    with pytest.raises(ConfigError, match=r"run\.json is damaged.*delete the folder"):
        evaluate(config, first.run_dir, features=data, progress=False)


@pytest.mark.parametrize("name", ["predictions.csv", "data_notes.json", "config.yaml"])
def test_report_on_a_torn_output_names_the_file(finished_run, name):
    _, _, first = finished_run
    path = first.run_dir / name
    path.write_bytes(b"\xff\xfe{[" + path.read_bytes()[:10])
    with pytest.raises(ConfigError, match=name.replace(".", r"\.")):
        report(first.run_dir)


def test_a_write_that_fails_half_way_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")

    def crash(path: Path) -> None:
        path.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, crash)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_every_file_of_a_run_and_a_checkpoint_goes_through_the_atomic_writer():
    """No module writes run, cache or checkpoint files with a bare write: every writing call in the source sits
    inside a function given to write_atomic (or write_text / write_json), writes into a checkpoint's temporary
    folder (``tmp /``, moved into place whole), or is SpotResult.to_csv, which is atomic itself."""
    offenders = []
    for path in Path(merkit.__file__).parent.rglob("*.py"):
        if path.name == "files.py" or path.parent.name == "synthetic":  # the writer; the generator writes a dataset
            continue
        source = path.read_text()
        for line_no, line in enumerate(source.splitlines(), 1):
            text = line.strip()
            bare = any(call in text for call in (".write_text(", ".write_bytes(", "json.dump(", "torch.save("))
            bare |= (".to_csv(" in text or "save_file(" in text or "np.save(" in text or "savefig(" in text) \
                and "lambda" not in text and "def " not in text
            allowed = "write_atomic" in text or "tmp /" in text or text.startswith("result.to_csv(")
            allowed |= ".to_csv(index=False)" in text  # no file: pandas returns the CSV as a string
            if bare and not text.startswith(("#", '"', "'")) and not allowed:
                offenders.append(f"{path.name}:{line_no}: {text}")
    assert offenders == []


# ------------------------------------------------------------------------------------------------- CLI and config

def test_merkit_errors_are_one_line_with_exit_2_and_debug_shows_the_traceback(tmp_path):
    _one_line_error(_cli("evaluate", "--data", tmp_path / "nowhere", "--quiet"), "manifest.csv")
    _one_line_error(_cli("train", "--data", tmp_path, "--out", tmp_path / "ck"), "manifest.csv")
    _one_line_error(_cli("report", tmp_path), "config.yaml not found")
    debug = _cli("--debug", "evaluate", "--data", tmp_path / "nowhere", "--quiet")
    assert debug.exit_code != 0 and isinstance(debug.exception, DataError)


_WARNING_COMMAND = """
import sys
from merkit.cli.app import app
from merkit.errors import Diagnostics, Where

@app.command("warn-once")
def warn_once():
    Diagnostics().warn("face-lost", "window skipped", Where(dataset="video", sample="clip.mp4", frame=438))

app(sys.argv[1:], prog_name="merkit")
"""


@pytest.mark.parametrize("debug", [False, True])
def test_a_counted_warning_prints_one_line_on_the_command_line_and_its_source_under_debug(debug):
    args = [sys.executable, "-c", _WARNING_COMMAND] + (["--debug"] if debug else []) + ["warn-once"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    if debug:
        assert any(": UserWarning: face-lost: window skipped" in line for line in lines)  # file:line: category
        assert not any(line.startswith("warning: ") for line in lines)
    else:
        assert lines == ["warning: face-lost: window skipped [dataset=video, sample=clip.mp4, frame=438]"]


@pytest.mark.parametrize("args, key", [
    (["--seeds", "abc"], "--seeds"),
    (["--set", "protocol.seeds=5"], "protocol.seeds"),
    (["--set", "training.lr=true"], "training.lr"),
    (["--set", "training.epochs=2.5"], "training.epochs"),
    (["--set", "protocol.record_epochs=3"], "protocol.record_epochs"),
    (["--set", "data.face.size=big"], "data.face.size"),
    (["--set", "training.augment=hflip"], "training.augment"),
])
def test_bad_values_fail_at_once_naming_the_key(tmp_path, args, key, monkeypatch):
    data = write_flow_folder(tmp_path / "flows")
    monkeypatch.setattr("merkit.training.runner.run_unit", lambda *a, **k: pytest.fail("training started"))
    _one_line_error(_cli("evaluate", "--data", data, "--out", tmp_path / "run", "--quiet", *args), key)


def test_set_values_keep_their_declared_types():
    config = load_config(None, ["protocol.seeds=[3, 4]", "training.lr=1e-3", "protocol.record_epochs=true",
                                "training.augment=[hflip]", "data.face.size=112"])
    assert config.protocol.seeds == [3, 4] and config.training.lr == 0.001
    assert config.protocol.record_epochs is True and config.training.augment == ["hflip"]
    assert config.data.face.size == 112


# ------------------------------------------------------------------------------------------------- predict

@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    from merkit import api
    from merkit.config import DataConfig, ModelConfig, ProtocolConfig, RunConfig, TrainConfig
    from merkit.face.clip import FaceConfig
    from merkit.inputs import Preprocessing
    from merkit.motion.stage import MotionConfig
    from merkit.predict import Predictor

    record = Preprocessing(FaceConfig(size=112, upsample=0), MotionConfig(method="dis"))
    config = RunConfig(data=DataConfig(face=record.face, motion=record.motion),
                       model=ModelConfig(name="ststnet", preset="cpu"), training=TrainConfig(epochs=1, batch_size=16),
                       protocol=ProtocolConfig(seeds=[0]))
    folder = api.train(config, tmp_path_factory.mktemp("ck") / "ckpt", features=toy_flow_features(2, 2))
    return folder, Predictor.from_checkpoint(folder)


@pytest.fixture(scope="module")
def vanishing(shared_data, tmp_path_factory):
    """Frames 300-329 of the Pexels video in a folder; from frame 318 on, the face is painted over."""
    from merkit.media import read_video

    video = read_video(shared_data / "faces" / "WolfgangLanger_Pexels.mp4", 300, 329)
    folder = tmp_path_factory.mktemp("vanishing")
    for number, frame in zip(video.numbers, video.frames):
        if number >= 318:
            frame = np.full_like(frame, 90)
        cv2.imwrite(str(folder / f"img{number}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder


def test_predict_refuses_a_clip_whose_face_leaves_the_frame(predictor, vanishing):
    from merkit.face.landmarks import FaceLostError

    folder, model = predictor
    with pytest.raises(FaceLostError, match="frame=3[12][0-9]"):
        model.predict(vanishing, onset=306, offset=323)  # the apex would be spotted after the face has gone
    with pytest.raises(FaceLostError, match="frame=320"):
        model.predict(vanishing, onset=306, apex=320)  # a given apex on a faceless frame
    assert model.predict(vanishing, onset=306, offset=317).warnings == {}
    _one_line_error(_cli("predict", vanishing, "--checkpoint", folder, "--onset", 306, "--offset", 323, "--out",
                         vanishing.parent / "o"), "no face where the reference frame's face was")


def test_a_given_onset_without_a_face_is_an_error_not_moved(predictor, vanishing):
    from merkit.face.landmarks import FaceNotFoundError

    _, model = predictor
    with pytest.raises(FaceNotFoundError, match="frame=320"):
        model.predict(vanishing, onset=320, offset=325)


def test_spotting_skips_windows_that_lose_the_face_with_a_counted_warning(predictor, vanishing):
    _, model = predictor
    with pytest.warns(UserWarning):
        result = model.spot(vanishing, fps=24)
    assert set(result.warnings) == {"face-lost", "no-face"}
    assert all(row.offset < 318 for row in result.curve.itertuples())  # no kept window reaches the blank frames
    assert len(result.curve) >= 1 and result.skipped_frames[0] > 300


def test_an_offset_or_apex_past_the_end_is_an_error_not_a_clip(predictor, shared_data):
    _, model = predictor
    video = shared_data / "faces" / "WolfgangLanger_Pexels.mp4"
    with pytest.raises(DataError, match=r"offset \(600\) is not a frame of the input"):
        model.predict(video, onset=460, offset=600)
    with pytest.raises(DataError, match=r"apex frame 600|apex \(600\)"):
        model.predict(video, onset=460, apex=600)


def test_no_torch_load_without_weights_only():
    for path in Path(merkit.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "load" and \
                    getattr(node.func.value, "id", "") == "torch":
                assert any(k.arg == "weights_only" and getattr(k.value, "value", None) is True
                           for k in node.keywords), f"{path.name}:{node.lineno}"


# ------------------------------------------------------------------------------------------------- datasets

@pytest.fixture()
def release(tmp_path):
    from merkit.synthetic import generate

    generate(tmp_path / "release", subjects=2, clips_per_class=1, seed=2, duration=(8, 10))
    return tmp_path / "release"


def _raw(release, tmp_path, *extra):
    return load_config(None, ["data.kind=raw", "data.dataset=synthetic", f"data.path={release}",
                              f"data.cache={tmp_path / 'cache'}", "data.face={size: 64, upsample: 0}",
                              "data.motion={method: dis}", "model.preset=cpu", *FAST, *extra])


def test_a_missing_middle_frame_is_reported_by_check_and_refused_by_evaluate(release, tmp_path):
    from merkit.datasets.registry import load_dataset

    table = load_dataset("synthetic", release)
    row = table.iloc[0]
    middle = sorted(row.frames)[len(row.frames) // 2]
    number = int(Path(middle).stem.removeprefix("img"))
    os.remove(middle)
    checked = _cli("datasets", "check", "casme2", "--root", release)
    assert checked.exit_code == 1 and f"frame gap: casme2/{row.subject}/{row['sample']}: frames {number}" in \
        checked.output
    with pytest.warns(UserWarning, match=f"clip-failed: skipped: frames {number} are missing"):
        result = evaluate(_raw(release, tmp_path), tmp_path / "run", progress=False)
    assert len(result.predictions) == len(table) - 1 and result.metrics["diagnostics"]["clip-failed"] == 1
    with pytest.raises(DataError, match=f"frames {number} are missing.*sample={row['sample']}"):
        evaluate(_raw(release, tmp_path, "data.on_error=raise"), tmp_path / "strict", progress=False)


def test_an_emotion_outside_the_datasets_vocabulary_is_an_error_in_evaluate_as_in_check(release, tmp_path):
    from merkit.synthetic import SHEET_NAME

    sheet = pd.read_excel(release / SHEET_NAME, dtype=object)
    sheet.loc[0, "Estimated Emotion"] = "anger"  # a SAMM emotion; the 3-class scheme would map it silently
    sheet.to_excel(release / SHEET_NAME, index=False)
    checked = _cli("datasets", "check", "casme2", "--root", release)
    assert checked.exit_code == 1 and "unknown emotion" in checked.output
    _one_line_error(_cli("evaluate", "--set", "data.kind=raw", "--set", "data.dataset=synthetic", "--data", release,
                         "--quiet"), "'anger'", "vocabulary")


# ------------------------------------------------------------------------------------------------- Ray, set-up

def test_ray_processes_are_gone_when_a_two_worker_run_returns(tmp_path, monkeypatch):
    import psutil

    from merkit import cluster

    seen: dict[int, psutil.Process] = {}
    original = cluster._node_processes

    def spy():
        found = original()
        seen.update({p.pid: p for p in found})
        return found

    monkeypatch.setattr(cluster, "_node_processes", spy)
    data = toy_flow_features(subjects=3, per_class=1)
    evaluate(load_config(None, FAST + ["protocol.workers=2"]), tmp_path / "run", features=data, progress=False)
    assert len(seen) >= 3  # the raylet, the GCS server and the workers, at least
    alive = [p for p in seen.values() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == []


def test_ray_is_installed_by_the_plain_install_the_readme_starts_with():
    from importlib.metadata import requires

    plain = [r for r in requires("merkit") if "extra ==" not in r]
    assert any(r.startswith("ray") for r in plain) and any(r.startswith("psutil") for r in plain)
