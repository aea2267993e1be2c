"""Where merkit's units of work run: in this process, or as Ray tasks on a local instance or an existing cluster.

:func:`executor` is the one place that decides "here or on Ray". Every parallel loop of merkit (LOSO units,
preprocessing clips, export samples, the all-subjects training of ``merkit train``) hands its calls to the executor
it gets, in the style of scikit-learn handing ``cross_validate`` to a joblib backend:

* :class:`InProcess` runs the calls one after the other in this process; an exception propagates at once, as it
  would from a plain loop;
* :class:`OnRay` runs them as Ray tasks (:func:`run_tasks`), inside :func:`ray_session`.

Both hand each result to the driver's ``on_result`` as it arrives, so the driver alone writes files.

:func:`ray_session` is the one place merkit starts or joins Ray:

* with an address (``--address``, ``protocol.address``, or Ray's own ``RAY_ADDRESS``) it connects to that cluster
  and asks for no resources at connection time; the cluster's own nodes run the tasks;
* without one it starts a new local instance with ``num_cpus`` CPUs, even where another Ray instance on this
  machine has left its address for Ray's default lookup (``ray start``, Ray's test clusters); when the block ends
  it stops it and reaps every process it started (raylet, GCS server, workers, dashboard and runtime-env agents
  and their children), so that nothing outlives the command;
* an instance already running in this process (a notebook's) is used and left alone.

:func:`run_tasks` runs one function over many arguments as Ray tasks, each asking for its CPU and GPU share,
retried on worker or node failure (``max_retries``), and hands each result to the driver as it arrives, so that the
driver alone writes files (atomically). A task that fails for good does not stop the others; the failures come back
by name, with their errors.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from merkit.errors import ConfigError

#: Seconds Ray's processes get to exit by themselves after ``ray.shutdown()`` before they are terminated.
EXIT_GRACE_S = 5.0


def cluster_address(address: str | None = None) -> str | None:
    """The Ray cluster to join: ``address``, else ``$RAY_ADDRESS``, else ``None`` (start a local instance)."""
    return address or os.environ.get("RAY_ADDRESS") or None


def _node_processes():
    """The processes of the local Ray node this driver started, with all their descendants (psutil)."""
    import psutil
    import ray

    node = getattr(ray._private.worker, "_global_node", None)
    found = []
    for infos in (getattr(node, "all_processes", None) or {}).values():
        for info in infos:
            try:
                process = psutil.Process(info.process.pid)
                found += [process, *process.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
    return found


def _reap(processes) -> None:
    """Wait for ``processes`` to exit; terminate, then kill, what is left."""
    import psutil

    _, alive = psutil.wait_procs(processes, timeout=EXIT_GRACE_S)
    for stop in (psutil.Process.terminate, psutil.Process.kill):
        for process in alive:
            try:
                stop(process)
            except psutil.NoSuchProcess:
                continue
        _, alive = psutil.wait_procs(alive, timeout=EXIT_GRACE_S)


@contextmanager
def ray_session(num_cpus: int, address: str | None = None) -> Iterator[None]:
    """Ray for the block: the cluster at ``address`` (or ``$RAY_ADDRESS``), else a local instance with
    ``num_cpus`` CPUs, unless Ray is running in this process already.

    Raises:
        ConfigError: Ray is not installed, or the cluster cannot be reached (the message names the address).
    """
    try:
        import ray
    except ImportError as error:
        raise ConfigError("running on several workers needs Ray, which is not installed: pip install ray") from error
    if ray.is_initialized():
        yield
        return
    address = cluster_address(address)
    if address is not None:
        try:
            ray.init(address=address, logging_level="ERROR", log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise ConfigError(f"cannot connect to the Ray cluster at {address!r}: {error}") from error
        try:
            yield
        finally:
            ray.shutdown()
        return
    # address="local": Ray's default (no address) would join the cluster last started on this machine.
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, logging_level="ERROR",
             log_to_driver=False)
    started = _node_processes()
    try:
        yield
    finally:
        # Workers and agents start after init too: take the node's process tree again before stopping it.
        processes = {p.pid: p for p in started + _node_processes()}
        ray.shutdown()
        _reap(list(processes.values()))


def _call(function, *args):
    """``function(*args)`` on a worker, with the id of the node it ran on. The arguments arrive one by one, so Ray
    resolves object references among them."""
    import ray

    return function(*args), ray.get_runtime_context().get_node_id()


def run_tasks(function: Callable, calls: Sequence[tuple], names: Sequence[str],
              on_result: Callable[[int, Any, str], None], num_cpus: float = 1, num_gpus: float = 0,
              max_retries: int = 3) -> list[tuple[str, str]]:
    """Run ``function(*calls[i])`` for every ``i`` as Ray tasks (inside :func:`ray_session`).

    Args:
        function: a module-level function (picklable); its arguments may hold ``ray.put`` references, which Ray
            resolves on the worker, so shared data travels through the object store once.
        names: one name per call, for errors.
        on_result: called on the driver as ``on_result(i, result, node_id)`` when call ``i`` finishes.
        num_cpus, num_gpus: the resources each task asks for (a fractional GPU share lets tasks share one GPU).
        max_retries: times a task is rerun after its worker process or node dies.

    Returns:
        ``[(name, error)]`` of the calls that failed for good; the others have been handed to ``on_result``.
    """
    import ray

    remote = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=max_retries)(_call)
    pending = {remote.remote(function, *args): i for i, args in enumerate(calls)}
    failures = []
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        i = pending.pop(done[0])
        try:
            result, node = ray.get(done[0])
        except (ray.exceptions.RayError, OSError) as error:  # RayTaskError wraps the task's own exception
            failures.append((names[i], str(error).strip().splitlines()[-1][:300]))
            continue
        on_result(i, result, node)
    return failures


@dataclass(frozen=True)
class InProcess:
    """Runs calls one after the other in this process (``--workers 1`` and no cluster)."""

    in_process: bool = True
    cluster_gpus: float | None = None

    def share(self, value: Any) -> Any:
        """``value`` itself: nothing to put in an object store."""
        return value

    def run(self, function: Callable, calls: Sequence[tuple], names: Sequence[str],
            on_result: Callable[[int, Any, str | None], None], num_cpus: float = 1, num_gpus: float = 0,
            max_retries: int = 3) -> list[tuple[str, str]]:
        """``function(*calls[i])`` for each ``i`` in order, each result handed to ``on_result(i, result, None)``.

        Returns:
            ``[]``: a call that raises stops the loop with its own exception, as a plain loop would.
        """
        for i, args in enumerate(calls):
            on_result(i, function(*args), None)
        return []


@dataclass(frozen=True)
class OnRay:
    """Runs calls as Ray tasks (inside :func:`ray_session`); see :func:`run_tasks`.

    Attributes:
        cluster_gpus: the GPUs of the cluster joined by address; ``None`` on a local instance, where
            ``training.device`` is resolved on this machine.
    """

    in_process: bool = False
    cluster_gpus: float | None = None

    def share(self, value: Any) -> Any:
        """A reference to ``value`` in Ray's object store, so that it travels to the workers once."""
        import ray

        return ray.put(value)

    def run(self, function: Callable, calls: Sequence[tuple], names: Sequence[str],
            on_result: Callable[[int, Any, str | None], None], num_cpus: float = 1, num_gpus: float = 0,
            max_retries: int = 3) -> list[tuple[str, str]]:
        """:func:`run_tasks`."""
        return run_tasks(function, calls, names, on_result, num_cpus, num_gpus, max_retries)


def gpu_share(device: str, gpus_per_fold: float, workers: int, cluster_gpus: float | None = None) -> float:
    """The GPU share a Ray unit asks for: 0 on the CPU; else ``gpus_per_fold``, or ``1 / workers`` when that is 0
    (the workers share one GPU).

    Args:
        device: ``training.device`` (``cpu``, ``cuda``, ``cuda:N`` or ``auto``).
        cluster_gpus: the GPUs of the Ray cluster the units run on; ``None`` for a local instance, where the
            device is looked for on this machine. ``auto`` asks for GPUs only where there are some.

    Raises:
        ConfigError: a local run names a CUDA device this machine does not have.
    """
    if device == "cpu":
        return 0.0
    if cluster_gpus is not None:
        has_gpu = cluster_gpus > 0
    else:
        import torch

        has_gpu = torch.cuda.is_available()
        if not has_gpu and device != "auto":
            raise ConfigError(f"training.device is {device!r} but PyTorch sees no CUDA device here; use "
                              "training.device=cpu or auto")
    if device == "auto" and not has_gpu:
        return 0.0
    return gpus_per_fold or 1.0 / workers


def runs_in_process(workers: int, address: str | None = None, tasks: int | None = None) -> bool:
    """Whether :func:`executor` gives :class:`InProcess` for these arguments: ``workers <= 1`` and no cluster named
    (``address``, else ``$RAY_ADDRESS``), or fewer than two ``tasks``. Callers ask it to check, before anything
    is written, what only an in-process run can check here (e.g. that the training device exists)."""
    return (workers <= 1 and cluster_address(address) is None) or (tasks is not None and tasks < 2)


@contextmanager
def executor(workers: int, address: str | None = None, num_cpus: int | None = None,
             tasks: int | None = None) -> Iterator[InProcess | OnRay]:
    """The executor for a loop of calls: :class:`InProcess` when ``workers <= 1`` and no cluster is named
    (``address``, else ``$RAY_ADDRESS``), or when the caller has fewer than two ``tasks`` to run (it passes
    ``tasks`` where starting Ray for one call is not worth it); else :class:`OnRay` for the block (a local instance
    with ``num_cpus`` CPUs, default ``workers``, or the named cluster).

    Raises:
        ConfigError: see :func:`ray_session`.
    """
    if runs_in_process(workers, address, tasks):
        yield InProcess()
        return
    address = cluster_address(address)
    with ray_session(num_cpus or workers, address):
        gpus = None
        if address is not None:
            import ray

            gpus = ray.cluster_resources().get("GPU", 0.0)
        yield OnRay(cluster_gpus=gpus)
