"""Ray for merkit: start a local instance for one command, and leave nothing of it behind.

:func:`ray_session` is the one place merkit starts Ray. A local instance started here is stopped when the block
ends, and every process it started (the raylet, the GCS server, the workers, the dashboard and runtime-env agents
and their children) is waited for and, if still alive after a few seconds, terminated, so that no Ray process
outlives the command. An instance that was already running when the block began (a notebook's) is left alone.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from merkit.errors import ConfigError

#: Seconds Ray's processes get to exit by themselves after ``ray.shutdown()`` before they are terminated.
EXIT_GRACE_S = 5.0


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
    for process in alive:
        try:
            process.terminate()
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(alive, timeout=EXIT_GRACE_S)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            continue


@contextmanager
def ray_session(num_cpus: int) -> Iterator[None]:
    """Ray, initialised for the block: a local instance with ``num_cpus`` CPUs unless one is running already.

    Raises:
        ConfigError: Ray is not installed.
    """
    try:
        import ray
    except ImportError as error:
        raise ConfigError("protocol.workers > 1 runs folds on Ray, which is not installed: pip install ray") from error
    if ray.is_initialized():
        yield
        return
    ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    processes = _node_processes()
    try:
        yield
    finally:
        ray.shutdown()
        _reap(processes)
