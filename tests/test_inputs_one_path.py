"""One path from clips to model inputs: every entry point reaches :func:`merkit.inputs.clip.clip_inputs`, and the
stages keep their import order (datasets and face never import each other)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from typer.testing import CliRunner

import merkit
from merkit.cli import app
from merkit.config import load_config
from merkit.inputs import clip as clip_module

SRC = Path(merkit.__file__).parent


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    from merkit.synthetic import generate

    root = tmp_path_factory.mktemp("release")
    generate(root, subjects=2, clips_per_class=1, seed=4, duration=(6, 8))
    return root


@pytest.fixture()
def calls(monkeypatch):
    """Every call of clip_inputs, by the sample id it was given."""
    seen: list[str] = []
    original = clip_module.clip_inputs

    def spy(*args, **kwargs):
        seen.append(kwargs.get("sample_id", ""))
        return original(*args, **kwargs)

    monkeypatch.setattr(clip_module, "clip_inputs", spy)
    return seen


def _config(release, tmp_path):
    return load_config(None, ["data.kind=raw", "data.dataset=synthetic", f"data.path={release}",
                              f"data.cache={tmp_path / 'cache'}", "data.face={size: 64, upsample: 0}",
                              "data.motion={method: dis}", "model.preset=cpu", "training.epochs=1",
                              "training.batch_size=4", "protocol.save_checkpoints=false"])


def test_evaluate_train_predict_export_and_the_demo_all_call_clip_inputs(release, tmp_path, calls, shared_data):
    from merkit import api
    from merkit.demo import run_demo
    from merkit.predict import Predictor

    api.evaluate(_config(release, tmp_path), tmp_path / "run", progress=False)
    assert len(calls) == 6 and all(s.startswith("synthetic/") for s in calls)
    calls.clear()
    ckpt = api.train(_config(release, tmp_path / "fresh"), tmp_path / "ckpt")
    assert len(calls) == 6
    calls.clear()
    Predictor.from_checkpoint(ckpt).predict(shared_data / "faces" / "WolfgangLanger_Pexels.mp4", onset=300, apex=305)
    assert calls == ["video/input/300"]
    calls.clear()
    result = CliRunner().invoke(app, ["export-flow", "synthetic", "--data", str(release), "--out",
                                      str(tmp_path / "export"), "--set", "data.motion.method=dis",
                                      "--set", "data.face.size=64"])
    assert result.exit_code == 0, result.output
    assert len(calls) == 6
    calls.clear()
    run_demo(tmp_path / "demo", tmp_path / "demo-cache", subjects=2, clips_per_class=1, epochs=1, progress=False,
             log=lambda line: None)
    assert len(calls) == 6 and all(s.startswith("synthetic/") for s in calls)


def _merkit_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("merkit"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("merkit"))
    return found


@pytest.mark.parametrize("package, forbidden", [("datasets", "merkit.face"), ("face", "merkit.datasets"),
                                                ("face", "merkit.inputs"), ("motion", "merkit.inputs"),
                                                ("datasets", "merkit.inputs"), ("motion", "merkit.datasets")])
def test_a_stage_never_imports_a_later_or_unrelated_one(package, forbidden):
    offenders = {str(p.relative_to(SRC)): sorted(m for m in _merkit_imports(p) if m.startswith(forbidden))
                 for p in (SRC / package).glob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}
