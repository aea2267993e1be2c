"""The import structure: the layer contract (import-linter, from pyproject.toml) and no import circles."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]


def test_the_layer_contract_holds():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    done = subprocess.run([lint, str(REPO / "pyproject.toml")], capture_output=True, text=True, cwd=REPO,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "1 kept, 0 broken" in done.stdout


def test_every_top_level_module_is_in_the_contract():
    import tomllib

    layers = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]["layers"]
    named = {m.strip() for layer in layers for m in layer.split("|")}
    src = REPO / "src" / "merkit"
    top = {f"merkit.{p.stem}" for p in src.glob("*.py") if p.stem != "__init__"}
    top |= {f"merkit.{p.name}" for p in src.iterdir() if (p / "__init__.py").is_file()}
    assert top - named == set(), "add these to the layers contract in pyproject.toml"
    assert named - top == set(), "the contract names modules that do not exist"


def test_no_module_of_merkit_imports_itself_back():
    graph = grimp.build_graph("merkit", exclude_type_checking_imports=True)
    circles = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back:
                circles.append(" -> ".join((module, *back)))
    assert circles == [], "import circles:\n" + "\n".join(circles[:20])


@pytest.mark.parametrize("module, heavy", [("merkit", {"torch", "cv2", "ray"})])
def test_importing_the_package_loads_no_heavy_library(module, heavy):
    done = subprocess.run([sys.executable, "-c", f"import sys, {module}; print(sorted(set(sys.modules) & {heavy!r}))"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_here_or_on_ray_is_decided_by_the_executor_alone():
    """Only merkit.cluster starts or joins Ray; every parallel loop asks it for an executor."""
    src = REPO / "src" / "merkit"
    offenders = [f"{p.relative_to(src)}:{i}" for p in src.rglob("*.py") if p.name != "cluster.py"
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if any(word in line for word in ("ray_session(", "run_tasks(", "ray.init(", "ray.put("))]
    assert offenders == []


def test_the_in_process_executor_runs_calls_in_order_and_lets_errors_through(monkeypatch):
    from merkit.cluster import InProcess, executor

    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")  # would be joined by a Ray executor; never reached here
    with executor(4, None, tasks=1) as ex:
        assert isinstance(ex, InProcess)
    monkeypatch.delenv("RAY_ADDRESS")
    got = []
    with executor(1) as ex:
        assert isinstance(ex, InProcess) and ex.share(got) is got
        assert ex.run(pow, [(2, 3), (3, 2)], ["a", "b"], lambda i, r, node: got.append((i, r, node))) == []
    assert got == [(0, 8, None), (1, 9, None)]
    with pytest.raises(ZeroDivisionError), executor(1) as ex:
        ex.run(divmod, [(1, 0)], ["x"], lambda *a: None)


def test_no_function_is_longer_than_80_lines():
    """Long functions hide their steps; split them into named ones (docstrings count)."""
    import ast

    long = [f"{p.relative_to(REPO)}:{n.lineno} {n.name} ({n.end_lineno - n.lineno + 1} lines)"
            for p in (REPO / "src").rglob("*.py") for n in ast.walk(ast.parse(p.read_text()))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > 80]
    assert long == []


def test_nothing_below_the_api_takes_a_run_config():
    """The API resolves a RunConfig once (RunConfig.resolve -> Plan); the layers below take the plan or its parts.
    checkpoint.py keeps a RunConfig only to save and reload a checkpoint's config.yaml."""
    src = REPO / "src" / "merkit"
    above = {"api.py", "config.py", "demo.py", "checkpoint.py", "__init__.py", "boundary.py"}
    offenders = [f"{p.relative_to(src)}:{i}" for p in src.rglob("*.py")
                 if p.name not in above and p.parent.name != "cli"
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if any(word in line for word in ("RunConfig", "config_from_dict", "load_config(", "with_overrides"))]
    assert offenders == []


def test_the_config_climbs_back_up_at_most_four_times():
    """docs/architecture.md, "Counting how often the config climbs back up": the count stays at 4 or fewer."""
    done = subprocess.run([sys.executable, str(REPO / "docs" / "scripts" / "config_climbs.py"), "-v"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    stays, climbs = int(last.split()[0]), int(last.split()[2])
    assert stays > 10 and "merkit.training.runner" in done.stdout and "merkit.evaluation.report" in done.stdout
    assert climbs <= 4, done.stdout
    assert sum(" UP" in line for line in done.stdout.splitlines()) == climbs


def test_the_climb_count_sees_a_climb(tmp_path):
    """The counter on a three-module tree: api hands config down to config, which hands it up to training (one
    climb by a call), and api then hands it to training again after a trip down to files (a second, by a
    return); a warning about it in an f-string is no hand-on."""
    src = tmp_path / "src" / "merkit"
    (src / "training").mkdir(parents=True)
    for name in ("__init__.py", "training/__init__.py"):
        (src / name).write_text("")
    (src / "api.py").write_text(
        "from merkit.config import check\nfrom merkit.training.runner import run\n"
        "from merkit.files import write\n\n"
        "def evaluate(config):\n    check(config)\n    write(config.name)\n    run(config)\n")
    (src / "config.py").write_text("def check(config):\n    from merkit.training.runner import run\n"
                                   "    run(config.protocol)\n    print(f'{helper(config)}')\n\n"
                                   "def helper(x):\n    return x\n")
    (src / "training" / "runner.py").write_text("def run(protocol):\n    return protocol\n")
    (src / "files.py").write_text("def write(text):\n    return text\n")
    done = subprocess.run([sys.executable, str(REPO / "docs" / "scripts" / "config_climbs.py"), "--root",
                           str(tmp_path), "-v"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    modules = [line.split()[3] for line in done.stdout.splitlines()[:-1]]
    assert modules == ["merkit.api", "merkit.config", "merkit.training.runner", "merkit.files",
                       "merkit.training.runner"], done.stdout
    assert done.stdout.strip().splitlines()[-1] == "5 stays, 2 climbs back up"
