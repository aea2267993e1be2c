"""merkit's command line: a thin layer over :mod:`merkit.api`. Each module below registers its commands on
:data:`merkit.cli.app.app`; add a command group by adding its module here."""

from merkit.cli import run as _run  # noqa: F401  evaluate, train, report, compare
from merkit.cli import datasets as _datasets  # noqa: F401  datasets list, datasets check
from merkit.cli import face as _face  # noqa: F401  preprocess, show-face
from merkit.cli import motion as _motion  # noqa: F401  export-flow
from merkit.cli import synth as _synth  # noqa: F401  synth, demo
from merkit.cli import predict as _predict  # noqa: F401  predict, models
from merkit.cli.app import app


def main() -> None:
    app()
