"""``merkit evaluate | train | report | compare``: thin wrappers over :mod:`merkit.api`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from merkit.cli.app import app


def _config(config: Optional[Path], data: Optional[Path], overrides: list[str], **named) -> "RunConfig":  # noqa: F821
    from merkit.config import load_config

    extra = list(overrides)
    if data is not None:
        extra.append(f"data.path={data}")
    for key, value in named.items():
        if value is not None:
            extra.append(f"{key}={value}")
    return load_config(config, extra)


@app.command()
def evaluate(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML run config (configs/...)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Data folder (overrides data.path)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder (default runs/<name>)."),
    epochs: Optional[int] = typer.Option(None, help="Override training.epochs."),
    seeds: Optional[str] = typer.Option(None, help="Comma-separated seeds, e.g. 0,1,2,3,4."),
    protocol: Optional[str] = typer.Option(None, help="'last' (honest, default) or 'paper' (test-selected)."),
    workers: Optional[int] = typer.Option(None, help="Parallel fold workers (Ray); 1 = sequential."),
    set_: list[str] = typer.Option([], "--set", help="Any config override key.sub=value (repeatable)."),
    quiet: bool = typer.Option(False, help="No progress bar."),
) -> None:
    """Leave-one-subject-out evaluation: predictions, pooled UF1/UAR, report (resumes a killed run)."""
    from merkit.api import evaluate as run

    cfg = _config(config, data, set_, **{
        "training.epochs": epochs, "protocol.selection": protocol, "protocol.workers": workers,
        "protocol.seeds": f"[{seeds}]" if seeds else None})
    result = run(cfg, out, progress=not quiet)
    typer.echo(result.summary_line())
    typer.echo(f"report: {result.report_path}")


@app.command()
def train(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML run config."),
    data: Optional[Path] = typer.Option(None, "--data", help="Data folder (overrides data.path)."),
    out: Path = typer.Option(..., "--out", "-o", help="Checkpoint folder to write."),
    epochs: Optional[int] = typer.Option(None, help="Override training.epochs."),
    set_: list[str] = typer.Option([], "--set", help="Any config override key.sub=value (repeatable)."),
) -> None:
    """Train on every subject and write a self-contained checkpoint (weights, config, class names)."""
    from merkit.api import train as run

    typer.echo(f"checkpoint: {run(_config(config, data, set_, **{'training.epochs': epochs}), out)}")


@app.command()
def report(run_dir: Path = typer.Argument(..., help="A run folder written by `merkit evaluate`.")) -> None:
    """Regenerate metrics.json, report.md and figures from a run folder's predictions."""
    from merkit.api import report as run

    typer.echo(f"report: {run(run_dir)}")


@app.command()
def compare(run_dirs: list[Path] = typer.Argument(..., help="Run folders.")) -> None:
    """One table over several runs (UF1/UAR per part, with each run's selection protocol)."""
    from merkit.api import compare as run

    typer.echo(run(run_dirs))
