"""``merkit datasets list | check``: inspect raw dataset releases (thin wrappers over
:mod:`merkit.datasets.registry` and :func:`merkit.datasets.check.check_dataset`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from merkit.cli.app import MerkitGroup, app

datasets_app = typer.Typer(help="Raw dataset releases: list the loaders, validate a release on disk.",
                           no_args_is_help=True, cls=MerkitGroup)
app.add_typer(datasets_app, name="datasets")


@datasets_app.command("list")
def list_datasets() -> None:
    """List the dataset loaders and the class schemes made for each."""
    from merkit.datasets.registry import DATASETS

    for entry in DATASETS.values():
        typer.echo(f"{entry.name:<10} {entry.title:<48} {', '.join(entry.schemes) or '-'}")


@datasets_app.command("check")
def check(
    name: str = typer.Argument(..., help="Dataset: casme2, samm, smic, casme3, mmew, 4dme, megc2019."),
    root: Path = typer.Option(..., "--root", "-r", help="Release folder (or its parent)."),
    sheet: Optional[Path] = typer.Option(None, "--sheet", "-s", help="Annotation sheet (default: found in root)."),
    layout: str = typer.Option("auto", help="auto, raw or cropped (when both releases are under --root)."),
    variant: Optional[str] = typer.Option(None, help="SMIC only: HS (default), VIS or NIR."),
    max_listed: int = typer.Option(20, help="List at most this many problems."),
) -> None:
    """Validate a release: missing frames, onset/apex/offset out of range or order, unknown emotions, duplicate
    ids, repairs applied, per-class and per-subject counts. Exits with 1 when a problem is found."""
    from merkit.datasets.check import check_dataset

    options: dict[str, object] = {} if layout == "auto" else {"layout": layout}
    if variant is not None:
        options["variant"] = variant
    report = check_dataset(name, root, sheet, **options)
    typer.echo(report.to_text(max_listed))
    if not report.ok:
        raise typer.Exit(1)
