"""Writing files so that a folder is never half written: the one atomic writer of run, cache and checkpoint folders.

Every file merkit writes into a run folder, a checkpoint folder, an inputs cache or an export is written under a
temporary name in the same folder, flushed to the disk (:func:`os.fsync`), and moved into place with
:func:`os.replace`, which is atomic on POSIX and Windows; the folder's entry is then flushed too where the platform
allows it (POSIX). After a crash or a power loss the folder holds either the old file or the new one, never a torn
one; a leftover temporary file starts with a dot and holds ``.tmp`` (:func:`is_temporary`), and no reader looks at
it. A write that fails on the disk (full, read-only, a file where a folder should be) raises
:class:`merkit.errors.OutputError`, one line naming the path.
"""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path
from typing import Any, Callable

from merkit.errors import OutputError

_TEMPORARY = re.compile(r"^\..+\.\d+\.(tmp|old)(\..*)?$")


def is_temporary(name: str) -> bool:
    """Whether ``name`` is one of merkit's temporary names (``.<stem>.<pid>.tmp<suffix>``, or ``.<name>.<pid>.old``
    of a replaced folder)."""
    return bool(_TEMPORARY.match(name))


def sync_file(path: str | Path) -> None:
    """Flush ``path``'s bytes to the disk (:func:`os.fsync`)."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def sync_dir(path: str | Path) -> None:
    """Flush a folder's entries (a rename into it) to the disk; a no-op where the platform cannot (Windows, or a
    file system that refuses to sync a folder)."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def output_error(path: str | Path, error: OSError) -> OutputError:
    """``error`` as one line that names ``path``: what merkit raises when the disk refuses a write."""
    return OutputError(f"cannot write {path}: {error.strerror or error}")


def make_dirs(path: str | Path) -> Path:
    """``mkdir -p path``.

    Raises:
        OutputError: the folder cannot be made (a file in the way, a read-only parent, a full disk).
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise output_error(path, error) from error
    return path


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Write ``path`` by calling ``write(temporary path)``, flush it, then move the temporary file into place.

    The temporary name keeps ``path``'s suffix, so writers that choose a format by suffix (OpenCV, pandas) work.

    Returns:
        ``path``.

    Raises:
        OutputError: the disk refused the write (``write`` or the move raised :class:`OSError`); the message names
            ``path`` and keeps the system's reason. Whatever else ``write`` raises passes through. Either way the
            temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    make_dirs(path.parent)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        sync_file(tmp)
        os.replace(tmp, path)
        sync_dir(path.parent)
    except OutputError:
        raise
    except OSError as error:
        raise output_error(path, error) from error
    finally:
        tmp.unlink(missing_ok=True)
    return path


def text_writer(text: str) -> Callable[[Path], None]:
    """A writer of ``text`` for :func:`write_atomic` (which gives it the temporary path)."""
    return lambda tmp: tmp.write_text(text)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return write_atomic(path, lambda p: p.write_text(text))


def write_json(path: str | Path, value: Any, indent: int | None = 2) -> Path:
    """Write ``value`` as JSON to ``path`` atomically."""
    return write_text(path, json.dumps(value, indent=indent, default=str))
