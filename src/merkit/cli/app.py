"""The typer application object, its one error handler, and the config options the commands share.

Command modules register themselves on :data:`app`. Every command runs inside :class:`MerkitGroup`, so merkit's own
errors (:class:`~merkit.errors.MerkitError`: bad data, config, checkpoint, leakage) print one line, ``error: ...``
naming the dataset, subject, sample and file where known, and exit with code 2. Any other exception is a bug and
keeps its traceback. ``merkit --debug ...`` (or ``MERKIT_DEBUG=1``) shows the traceback of merkit's errors too.
Warnings (merkit's counted ones among them) print as one line, ``warning: ...``; ``--debug`` restores Python's
format, with the file and source line that raised them.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Optional

import click
import typer
from typer.core import TyperGroup

from merkit.errors import MerkitError


class MerkitGroup(TyperGroup):
    """Runs a command and turns merkit's errors into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MerkitError as error:
            if (ctx.obj or {}).get("debug") or os.environ.get("MERKIT_DEBUG"):
                raise
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2) from None


app = typer.Typer(
    name="merkit",
    help="Facial micro-expression recognition: loaders, preprocessing, models and honest LOSO evaluation.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    cls=MerkitGroup,
)


@app.callback()
def options(ctx: typer.Context,
            debug: bool = typer.Option(False, "--debug", help="Show the traceback of merkit's own errors too "
                                                               "(also MERKIT_DEBUG=1).")) -> None:
    """Facial micro-expression recognition: loaders, preprocessing, models and honest LOSO evaluation."""
    ctx.obj = {"debug": debug}
    if not (debug or os.environ.get("MERKIT_DEBUG")):
        warnings.formatwarning = one_line_warning


def one_line_warning(message, category, filename, lineno, line=None) -> str:
    """``warnings.formatwarning`` for the command line: ``warning: MESSAGE``, without the source line that a
    counted warning (:meth:`merkit.errors.Diagnostics.warn`) would otherwise print under it."""
    return f"warning: {message}\n"


def run_config(config: Optional[Path], overrides: list[str], **named):
    """The run config of a command: ``config`` (YAML, or the defaults), then ``named`` values (``key=value`` for
    each value that is not ``None``), then ``overrides`` (``--set``, parsed as YAML).

    ``named`` values (paths, names, numbers from typed options) are set as they are, never parsed as YAML, so that
    a path such as ``/data/a #1`` keeps its `` #1``.

    Raises:
        ConfigError: see :func:`merkit.config.load_config`.
    """
    from merkit.config import load_config

    return load_config(config, list(overrides), {key: value for key, value in named.items() if value is not None})


CONFIG_OPTION = typer.Option(None, "--config", "-c", help="YAML run config: a file, or a shipped config's name "
                             "(e.g. megc2019/ststnet); default: merkit's defaults.")
ADDRESS_OPTION = typer.Option(None, "--address", help="A Ray cluster to run on (protocol.address; default "
                                                         "$RAY_ADDRESS, else a local instance).")
SET_OPTION = typer.Option([], "--set", help="Any config override key.sub=value (repeatable), e.g. "
                                           "data.face.size=112.")
FIGURE_FORMAT_OPTION = typer.Option("png", "--figure-format", help="Format of the figures: png (300 dpi), pdf or "
                                                                   "svg.")


def figure_format(value: str) -> str:
    """The ``--figure-format`` value, checked.

    Raises:
        ConfigError: ``--figure-format must be one of ('png', 'pdf', 'svg'), got 'pnd' (did you mean 'png'?)``.
    """
    from merkit.boundary import check
    from merkit.runfolder import FigureFormat

    check(**{"--figure-format": (FigureFormat, value)})
    return value
