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
