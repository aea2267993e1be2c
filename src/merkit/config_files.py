"""The run configs shipped inside the package, found by name.

merkit's recipes live in ``merkit/configs/<dataset>/<recipe>.yaml`` (the repository's ``configs/`` folder is a link
to them), so that an installed merkit has them too. :func:`merkit.config.load_config` takes a path, or the name of
a shipped config: its path under ``configs/`` without the suffix, e.g. ``megc2019/ststnet``.
"""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path

from merkit.errors import ConfigError

#: Suffixes of config files; a path with one of them is a path, never a name.
CONFIG_SUFFIXES: tuple[str, ...] = (".yaml", ".yml")


def packaged_root() -> Path:
    """The folder of the shipped configs inside the installed package."""
    return Path(str(resources.files("merkit") / "configs"))


def packaged_configs() -> dict[str, Path]:
    """Every shipped config: name (``megc2019/ststnet``) -> file, sorted by name."""
    root = packaged_root()
    files = [p for p in root.rglob("*") if p.suffix in CONFIG_SUFFIXES and p.is_file()] if root.is_dir() else []
    return {p.relative_to(root).with_suffix("").as_posix(): p for p in sorted(files)}


def resolve_config(path_or_name: str | Path) -> Path:
    """The config file that ``path_or_name`` means: an existing file, or any path with a YAML suffix, is itself
    (a missing one is reported by the loader); anything else is the name of a shipped config.

    Returns:
        The file's path.

    Raises:
        ConfigError: neither a file nor a shipped config's name; the message offers the closest shipped names.
    """
    path = Path(path_or_name)
    if path.is_file() or path.suffix in CONFIG_SUFFIXES:
        return path
    shipped = packaged_configs()
    name = path.as_posix().removeprefix("configs/")
    if name in shipped:
        return shipped[name]
    close = difflib.get_close_matches(name, list(shipped), n=3, cutoff=0.6)
    hint = (f"did you mean {', '.join(close)}?" if close
            else f"shipped configs are under {', '.join(sorted({n.split('/')[0] + '/' for n in shipped}))}")
    raise ConfigError(f"config {str(path_or_name)!r} is neither a file nor a shipped config; {hint}")
