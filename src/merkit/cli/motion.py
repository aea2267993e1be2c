"""``merkit export-flow``: a thin wrapper over :func:`merkit.motion.export.export_dataset_flow`."""

from __future__ import annotations

from pathlib import Path

import typer

from merkit.cli.app import app


def _params(items: list[str]) -> dict:
    import yaml

    params = {}
    for item in items:
        if "=" not in item:
            raise typer.BadParameter(f"{item!r} must look like name=value", param_hint="--param")
        name, value = item.split("=", 1)
        params[name.strip()] = yaml.safe_load(value)
    return params


@app.command("export-flow")
def export_flow_command(
    name: str = typer.Argument(..., help="Dataset name: casme2, samm, smic, synthetic, ..."),
    root: Path = typer.Option(..., "--root", help="Folder of the raw release."),
    out: Path = typer.Option(..., "--out", help="Output folder (flow/, apex/, manifest.csv)."),
    scheme: str = typer.Option("megc2019-3class", help="Class scheme giving label and emotion."),
    method: str = typer.Option("tvl1", help="Flow backend: tvl1 (the composite's), farneback or dis."),
    param: list[str] = typer.Option([], "--param", help="Flow parameter name=value (repeatable), e.g. warps=3."),
    size: int = typer.Option(28, help="Side of the flow images, pixels."),
    apex: str = typer.Option("annotated-or-spot", help="annotated, spot, or annotated-or-spot (spot if missing)."),
    face_size: int = typer.Option(224, help="Side of the aligned face crop that flow is computed on."),
    workers: int = typer.Option(1, help="Parallel processes."),
    skip_failed: bool = typer.Option(False, help="Skip (and count) samples without a face or frames."),
    overwrite: bool = typer.Option(False, help="Replace an export made with another config."),
) -> None:
    """Write composite-style 28x28 u/v/strain PNGs and manifest.csv (MEGC2019 composite format) from raw clips."""
    from rich.progress import Progress

    from merkit.errors import DataError, Diagnostics
    from merkit.motion.export import FlowExportConfig, export_dataset_flow

    try:
        config = FlowExportConfig(size=size, method=method, flow_params=_params(param), apex=apex,
                                  face_size=face_size)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    diagnostics = Diagnostics()
    try:
        with Progress(transient=True) as bar:
            task = bar.add_task("flow", total=None)
            manifest = export_dataset_flow(
                name, root, out, config=config, scheme=scheme, workers=workers, diagnostics=diagnostics,
                skip_failed=skip_failed, overwrite=overwrite,
                progress=lambda done, total: bar.update(task, completed=done, total=total))
    except (DataError, KeyError) as error:  # bad data or an unknown dataset: a message naming it, no traceback
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {len(manifest)} samples to {out} (config {config.config_hash()})")
    for kind, count in diagnostics.summary().items():
        typer.echo(f"  {kind}: {count}")
