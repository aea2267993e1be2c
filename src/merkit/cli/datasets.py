"""``merkit datasets list | check``: inspect raw dataset releases and composite-format flow folders (thin wrappers
over :mod:`merkit.datasets.registry`, :func:`merkit.datasets.check.check_dataset` and
:func:`merkit.inputs.check.check_flow_folder`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from merkit.cli.app import MerkitGroup, app

datasets_app = typer.Typer(help="Raw dataset releases and flow folders: list the loaders, validate a release or a "
                           "composite-format flow folder on disk.",
                           no_args_is_help=True, cls=MerkitGroup)
app.add_typer(datasets_app, name="datasets")


@datasets_app.command("list")
def list_datasets() -> None:
    """List the dataset loaders and the class schemes made for each, then the benchmarks whose flow folders
    `merkit datasets check` checks."""
    from merkit.datasets.registry import DATASETS
    from merkit.inputs.check import BENCHMARKS

    for entry in DATASETS.values():
        typer.echo(f"{entry.name:<10} {entry.title:<48} {', '.join(entry.schemes) or '-'}")
    for bench in BENCHMARKS.values():
        title = f"flow folder of {bench.total.samples} samples ({', '.join(bench.parts)})"
        typer.echo(f"{bench.name:<10} {title:<48} {bench.scheme}")


@datasets_app.command("check")
def check(
    name: str = typer.Argument(..., help="Dataset: casme2, samm, smic, casme3, mmew, 4dme, megc2019; or "
                                         "megc2019-composite, the composite's flow folder."),
    root: Path = typer.Option(..., "--root", "-r", help="Release folder (or its parent), or a flow folder "
                                                        "(manifest.csv, flow/, apex/)."),
    sheet: Optional[Path] = typer.Option(None, "--sheet", "-s", help="Annotation sheet (default: found in root). "
                                         "For a flow folder: an official sheet to compare it with."),
    layout: str = typer.Option("auto", help="auto, raw or cropped (when both releases are under --root)."),
    variant: Optional[str] = typer.Option(None, help="SMIC only: HS (default), VIS or NIR."),
    max_listed: int = typer.Option(20, help="List at most this many problems."),
) -> None:
    """Validate a release: missing frames, onset/apex/offset out of range or order, unknown emotions, duplicate
    ids, repairs applied, per-class and per-subject counts. With megc2019-composite, or a --root that holds
    manifest.csv, validate a composite-format flow folder instead: manifest columns, every image present,
    decodable and of the right size, labels, and counts against the benchmark (or an official --sheet). Exits
    with 1 when a problem is found."""
    from merkit.inputs.check import BENCHMARKS

    if name.lower() in BENCHMARKS or (root / "manifest.csv").is_file():
        _check_flow_folder(name.lower(), root, sheet, layout, variant, max_listed)
        return
    from merkit.datasets.check import check_dataset

    options: dict[str, object] = {} if layout == "auto" else {"layout": layout}
    if variant is not None:
        options["variant"] = variant
    report = check_dataset(name, root, sheet, **options)
    typer.echo(report.to_text(max_listed))
    if not report.ok:
        raise typer.Exit(1)


def _check_flow_folder(name: str, root: Path, sheet: Optional[Path], layout: str, variant: Optional[str],
                       max_listed: int) -> None:
    """``merkit datasets check`` of a flow folder: against the benchmark ``name`` names (``megc2019`` names the
    composite's), else as a folder of dataset ``name``'s samples."""
    from merkit.datasets.megc2019 import COMPOSITE
    from merkit.datasets.registry import get_dataset
    from merkit.errors import ConfigError
    from merkit.inputs.check import BENCHMARKS, check_flow_folder

    if layout != "auto" or variant is not None:
        raise ConfigError("--layout and --variant are for raw releases; a flow folder (manifest.csv) has neither")
    benchmark, datasets = name if name in BENCHMARKS else None, None
    if name == "megc2019":
        benchmark = COMPOSITE.name
        typer.echo(f"{root} holds manifest.csv: checked as a flow folder of {benchmark}\n")
    elif benchmark is None:
        datasets = {get_dataset(name).name}
    report = check_flow_folder(root, benchmark, sheet, datasets)
    typer.echo(report.to_text(max_listed))
    if not report.ok:
        raise typer.Exit(1)
