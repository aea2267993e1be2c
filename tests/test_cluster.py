"""LOSO on an existing Ray cluster: a real two-node cluster on this machine (ray.cluster_utils.Cluster), reached
through its address by a `merkit evaluate` driver process, which is killed and restarted, while a worker node dies
mid-unit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from merkit.runfolder import RunFolder
from tests.helpers import write_flow_folder

pytestmark = pytest.mark.slow

# Units of a few seconds each, so that a driver or a node can be killed while one runs.
SLOW = ["--set", "training.epochs=40", "--set", "training.batch_size=16", "--set", "protocol.save_checkpoints=false"]


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    head = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 1, "include_dashboard": False})
    head.add_node(num_cpus=1)
    yield head
    head.shutdown()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_flow_folder(tmp_path_factory.mktemp("flows") / "flows", subjects=4)


def _merkit(*args, wait: bool = True):
    command = [str(Path(sys.executable).with_name("merkit")), *map(str, args)]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    if not wait:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def sequential(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("seq") / "run"
    _merkit("evaluate", "--data", data, "--out", out, "--quiet", *SLOW)
    return pd.read_csv(out / "predictions.csv")


def _units(run: Path) -> dict[str, int]:
    """The finished units (a driver killed mid-write may leave a temporary file, which is not one)."""
    return {str(p.relative_to(run)): p.stat().st_mtime_ns for p in RunFolder(run).finished_units()}


def _wait_for_units(run: Path, count: int, process, timeout: float = 300) -> None:
    start = time.monotonic()
    while len(_units(run)) < count:
        assert process.poll() is None, process.stdout.read().decode()
        assert time.monotonic() - start < timeout, "no unit finished in time"
        time.sleep(0.2)


def test_loso_on_a_two_node_cluster_equals_the_sequential_run_and_uses_both_nodes(cluster, data, sequential,
                                                                                   tmp_path):
    out = tmp_path / "run"
    _merkit("evaluate", "--data", data, "--out", out, "--quiet", "--address", cluster.address, "--workers", 2, *SLOW)
    pd.testing.assert_frame_equal(pd.read_csv(out / "predictions.csv"), sequential)
    assert len(json.loads((out / "run.json").read_text())["nodes"]) == 2


def test_a_run_without_an_address_starts_its_own_instance_beside_a_running_cluster(cluster):
    """Ray's default ``ray.init()`` joins the cluster last started on this machine (``cluster`` leaves its address
    in Ray's lookup file); merkit's local instance must not: it has its own resources and its own GCS."""
    import ray

    from merkit.cluster import ray_session

    with ray_session(num_cpus=1):
        assert ray.get_runtime_context().gcs_address != cluster.address
        assert ray.cluster_resources()["CPU"] == 1


def test_a_killed_driver_restarted_resumes_without_rerunning_finished_units(cluster, data, sequential, tmp_path):
    out = tmp_path / "run"
    driver = _merkit("evaluate", "--data", data, "--out", out, "--quiet", "--address", cluster.address, *SLOW,
                     wait=False)
    _wait_for_units(out, 1, driver)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    finished = _units(out)
    assert 1 <= len(finished) < 4
    _merkit("evaluate", "--data", data, "--out", out, "--quiet", "--address", cluster.address, *SLOW)
    after = _units(out)
    assert len(after) == 4 and all(after[name] == stamp for name, stamp in finished.items())
    pd.testing.assert_frame_equal(pd.read_csv(out / "predictions.csv"), sequential)


def test_a_worker_node_that_dies_mid_unit_is_retried_and_the_run_completes(cluster, data, sequential, tmp_path):
    out = tmp_path / "run"
    extra = cluster.add_node(num_cpus=1)
    driver = _merkit("evaluate", "--data", data, "--out", out, "--quiet", "--address", cluster.address,
                     "--workers", 3, *SLOW, wait=False)
    _wait_for_units(out, 1, driver)
    cluster.remove_node(extra, allow_graceful=False)  # every node is busy: a unit dies with it
    output = driver.communicate(timeout=600)[0].decode()
    assert driver.returncode == 0, output
    pd.testing.assert_frame_equal(pd.read_csv(out / "predictions.csv"), sequential)
