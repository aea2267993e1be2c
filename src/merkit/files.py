"""Writing files so that a folder is never half written: the one atomic writer of run, cache and checkpoint folders.

Every file merkit writes into a run folder, a checkpoint folder, an inputs cache or an export is written under a
temporary name in the same folder and moved into place with :func:`os.replace`, which is atomic on POSIX and
Windows. After a crash the folder holds either the old file or the new one, never a torn one; a leftover temporary
file starts with a dot and ends in ``.tmp<suffix>``, and no reader looks at it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Write ``path`` by calling ``write(temporary path)``, then move the temporary file into place.

    The temporary name keeps ``path``'s suffix, so writers that choose a format by suffix (OpenCV, pandas) work.

    Returns:
        ``path``.

    Raises:
        Whatever ``write`` raises; the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return write_atomic(path, lambda p: p.write_text(text))


def write_json(path: str | Path, value: Any, indent: int | None = 2) -> Path:
    """Write ``value`` as JSON to ``path`` atomically."""
    return write_text(path, json.dumps(value, indent=indent, default=str))
