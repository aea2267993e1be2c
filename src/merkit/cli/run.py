"""``merkit evaluate | train | report | compare``: thin wrappers over :mod:`merkit.api`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from merkit.cli.app import ADDRESS_OPTION, CONFIG_OPTION, FIGURE_FORMAT_OPTION, SET_OPTION, app, figure_format, \
    run_config


def _seeds(text: Optional[str]) -> Optional[list[int]]:
    """``"0,1,2"`` -> ``[0, 1, 2]``.

    Raises:
        ConfigError: a seed that is not an integer.
    """
    if text is None:
        return None
    from merkit.errors import ConfigError

    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds must be comma-separated integers such as 0,1,2, got {text!r}") from None


@app.command()
def evaluate(
    config: Optional[Path] = CONFIG_OPTION,
    data: Optional[Path] = typer.Option(None, "--data", help="Data folder (overrides data.path)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder (default runs/<name>)."),
    epochs: Optional[int] = typer.Option(None, help="Override training.epochs."),
    seeds: Optional[str] = typer.Option(None, help="Comma-separated seeds, e.g. 0,1,2,3,4."),
    protocol: Optional[str] = typer.Option(None, help="Selection: 'last' (honest, default), 'inner' (honest, "
                                           "chosen on inner folds) or 'paper' (test-selected)."),
    workers: Optional[int] = typer.Option(None, help="Parallel fold workers (Ray); 1 = sequential."),
    address: Optional[str] = ADDRESS_OPTION,
    set_: list[str] = SET_OPTION,
    quiet: bool = typer.Option(False, help="No progress bar."),
    force: bool = typer.Option(False, "--force", help="Recompute the finished units of --out when they were made "
                               "from other data or by another config (replaces only merkit's own unit files)."),
    figures: str = FIGURE_FORMAT_OPTION,
) -> None:
    """Evaluation: predictions, pooled UF1/UAR per dataset, report (resumes a killed run).

    Splits (--set protocol.split=): loso, one subject out (default);
    lodo, one dataset out; train-test, protocol.train_on -> protocol.test_on.

    Selection (--protocol): last, fixed epochs (honest, default);
    inner, epochs and recipes chosen on inner folds of the training subjects;
    paper, best epoch per test subject (optimistic, labelled).

    Ensembles: --set protocol.ensemble=K averages K seeds per fold;
    merkit ensemble averages finished runs.

    Subsets: --set data.datasets=LIST or --set data.subjects=LIST;
    a subject alone or dataset/subject; its name, report and tables say so.

    --out must be absent, empty, or a run folder of this config on this data; a folder whose data changed is
    refused unless --force."""
    from merkit.api import evaluate as run

    figures = figure_format(figures)
    cfg = run_config(config, set_, **{"data.path": data, "training.epochs": epochs, "protocol.selection": protocol,
                                      "protocol.workers": workers, "protocol.seeds": _seeds(seeds),
                                      "protocol.address": address})
    result = run(cfg, out, progress=not quiet, force=force, figure_format=figures)
    typer.echo(result.summary_line())
    typer.echo(f"report: {result.report_path}")


@app.command()
def train(
    config: Optional[Path] = CONFIG_OPTION,
    data: Optional[Path] = typer.Option(None, "--data", help="Data folder (overrides data.path)."),
    out: Path = typer.Option(..., "--out", "-o", help="Checkpoint folder to write."),
    epochs: Optional[int] = typer.Option(None, help="Override training.epochs."),
    address: Optional[str] = ADDRESS_OPTION,
    set_: list[str] = SET_OPTION,
) -> None:
    """Train on every subject and write a self-contained checkpoint (weights, config, classes, preprocessing)."""
    from merkit.api import train as run

    cfg = run_config(config, set_, **{"data.path": data, "training.epochs": epochs, "protocol.address": address})
    typer.echo(f"checkpoint: {run(cfg, out)}")


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="A run folder written by `merkit evaluate`."),
    latex: bool = typer.Option(False, "--latex", help="Also write RUN/tables.tex: the report's table (UF1, UAR, "
                               "accuracy per part, mean ± std over seeds) for \\input, booktabs, with the "
                               "protocol and any subset in its caption."),
    csv: bool = typer.Option(False, "--csv", help="Also write RUN/tables.csv: the same table in full precision."),
    figures: str = FIGURE_FORMAT_OPTION,
) -> None:
    """Regenerate metrics.json, report.md and figures from a run folder's predictions.

    tables.tex and tables.csv, once written, are rewritten by every later report of the folder."""
    from merkit.api import report as run
    from merkit.runfolder import RunFolder

    typer.echo(f"report: {run(run_dir, figure_format(figures), latex=latex, csv=csv)}")
    for name, wanted in ((RunFolder.TABLES_TEX, latex), (RunFolder.TABLES_CSV, csv)):
        if wanted:
            typer.echo(f"table: {RunFolder(run_dir).file(name)}")


@app.command()
def compare(
    run_dirs: list[Path] = typer.Argument(..., help="Run folders."),
    latex: bool = typer.Option(False, "--latex", help="Print a booktabs LaTeX table instead of Markdown (protocol, "
                               "data and subsets in the caption): merkit compare A B --latex > table.tex"),
    csv: bool = typer.Option(False, "--csv", help="Print CSV instead (one row per run and part, full precision)."),
) -> None:
    """One table over several runs: each run's selection protocol, seeds, samples, subjects and data, then UF1/UAR
    per part.

    A run that is not comparable with the first (other data or samples, a subset beside the full data, another
    split, a test-selected protocol beside an honest one) gets a line 'warning: not comparable: ...' (under the
    Markdown table; on stderr, and in the caption, with --latex or --csv)."""
    from merkit.api import compare_runs
    from merkit.errors import ConfigError

    if latex and csv:
        raise ConfigError("compare: give --latex or --csv, not both")
    comparison = compare_runs(run_dirs)
    if not (latex or csv):
        typer.echo(comparison.markdown())
        return
    typer.echo((comparison.latex() if latex else comparison.csv()).rstrip("\n"))
    for problem in comparison.problems:
        typer.echo(f"warning: not comparable: {problem}", err=True)


@app.command()
def ensemble(
    run_dirs: list[Path] = typer.Argument(..., help="Finished run folders over the same samples."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder to write."),
    collapse_seeds: bool = typer.Option(False, "--collapse-seeds", help="Average each run over its seeds first."),
    last_epochs: Optional[int] = typer.Option(None, "--last-epochs", help="Average each run's last K recorded "
                                              "epochs first (needs protocol.record_epochs)."),
    figures: str = FIGURE_FORMAT_OPTION,
) -> None:
    """Average finished runs' class probabilities (e.g. different models, or one run's seeds) into a new run folder
    whose report says what was averaged."""
    from merkit.api import ensemble as run

    result = run(run_dirs, out, collapse_seeds, last_epochs, figure_format(figures))
    typer.echo(result.summary_line())
    typer.echo(f"report: {result.report_path}")
