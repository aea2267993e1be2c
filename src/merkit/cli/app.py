"""The typer application object; command modules register themselves on it."""

import typer

app = typer.Typer(
    name="merkit",
    help="Facial micro-expression recognition: loaders, preprocessing, models and honest LOSO evaluation.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
