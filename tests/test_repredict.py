"""docs/scripts/repredict.py scores a finished run's saved fold models again: with the run's own settings it must
give the run's own figures, so that what it says a part contributed is measured on the same models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from merkit import api
from merkit.config import load_config

from helpers import write_flow_folder

pytestmark = pytest.mark.usefixtures("one_thread")

SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "scripts" / "repredict.py"


def _score(run: Path, data: Path, *options: str) -> str:
    done = subprocess.run([sys.executable, str(SCRIPT), str(run), "--data", str(data), *options],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_the_runs_own_settings_give_its_figures_and_fewer_members_or_no_flip_another(tmp_path):
    data = write_flow_folder(tmp_path / "flows", subjects=3)
    config = load_config(None, [f"data.path={data}", "training.epochs=3", "training.batch_size=8",
                                "protocol.ensemble=2", "protocol.tta=flip", "protocol.seeds=[0]"])
    api.evaluate(config, tmp_path / "run", progress=False)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    overall = metrics["per_seed"]["0"]["full"]
    own = _score(tmp_path / "run", data, "--out", str(tmp_path / "again.csv"))
    assert own.startswith("tta flip, 2 of 2 members:")
    assert f"UF1 {overall['uf1']:.4f}" in own and f"UAR {overall['uar']:.4f}" in own, (own, overall)
    saved = pd.read_csv(tmp_path / "run" / "predictions.csv").set_index(["seed", "sample_id"]).sort_index()
    again = pd.read_csv(tmp_path / "again.csv").set_index(["seed", "sample_id"]).sort_index()
    columns = [c for c in saved.columns if c.startswith("prob_")]
    assert list(again.index) == list(saved.index)
    np.testing.assert_allclose(again[columns].to_numpy(), saved[columns].to_numpy(), rtol=0, atol=1e-6)
    assert _score(tmp_path / "run", data, "--tta", "none", "--members", "1").startswith("tta none, 1 of 2 members:")
