"""``merkit export-flow``: a thin wrapper over :func:`merkit.inputs.composite.write_composite`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from merkit.cli.app import CONFIG_OPTION, SET_OPTION, app, run_config


@app.command("export-flow")
def export_flow_command(
    dataset: Optional[str] = typer.Argument(None, help="Dataset name: casme2, samm, smic, synthetic, ... "
                                                       "(default: the config's data.dataset)."),
    data: Path = typer.Option(..., "--data", help="Folder of the raw release."),
    out: Path = typer.Option(..., "--out", help="Output folder (flow/, apex/, manifest.csv)."),
    config: Optional[Path] = CONFIG_OPTION,
    workers: Optional[int] = typer.Option(None, help="Parallel processes (data.preprocess_workers)."),
    overwrite: bool = typer.Option(False, help="Replace an export made with other preprocessing."),
    set_: list[str] = SET_OPTION,
) -> None:
    """Write composite-style 28x28 u/v/strain PNGs and manifest.csv (MEGC2019 composite format) from raw clips,
    with the config's data.face and data.motion (default: the composite's recipe, the packaged model's record: a
    224 px grey face, landmarks crop with no margin, onset->apex TV-L1 at 28 px, min-max stretched)."""
    from rich.progress import Progress

    from merkit.datasets.registry import load_dataset
    from merkit.errors import ConfigError, Diagnostics
    from merkit.inputs.composite import write_composite

    cfg = run_config(config, set_, **{"data.kind": "raw", "data.dataset": dataset, "data.path": data,
                                      "data.preprocess_workers": workers})
    if not cfg.data.dataset:
        raise ConfigError("name the dataset (merkit export-flow NAME ...) or set data.dataset in the config")
    diagnostics = Diagnostics()
    table = load_dataset(cfg.data.dataset, data, diagnostics=diagnostics)
    source = {"dataset": cfg.data.dataset, "path": str(data.resolve())}
    if (data / "generator.json").is_file():  # a merkit synth release: its seed and settings
        source["generator"] = json.loads((data / "generator.json").read_text())
    with Progress(transient=True) as bar:
        task = bar.add_task("flow", total=None)
        manifest = write_composite(table, out, cfg.data.preprocessing, cfg.data.scheme, cfg.data.preprocess_workers,
                                   cfg.data.on_error, diagnostics, overwrite,
                                   progress=lambda done, total: bar.update(task, completed=done, total=total),
                                   source=source)
    typer.echo(f"wrote {len(manifest)} samples to {out} (preprocessing {cfg.data.preprocessing.config_hash()})")
    for kind, count in diagnostics.summary().items():
        typer.echo(f"  {kind}: {count}")
