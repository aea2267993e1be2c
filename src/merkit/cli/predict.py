"""``merkit predict`` and ``merkit models``: thin wrappers over :class:`merkit.predict.Predictor` and
:mod:`merkit.pretrained`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from merkit.cli.app import app


@app.command("predict")
def predict_command(
    input: Path = typer.Argument(..., help="A video file or a folder of frames (sorted by the number in the names)."),
    checkpoint: Optional[str] = typer.Option(
        None, "--checkpoint", "-c", help="A packaged model's name (see `merkit models`), a checkpoint folder written "
        "by merkit train, or a Hugging Face Hub repository id owner/name. Default: the packaged megc2019-ststnet."),
    onset: Optional[int] = typer.Option(None, help="Onset frame number (video frames count from 0)."),
    apex: Optional[int] = typer.Option(None, help="Apex frame number; spotted between onset and offset if not given."),
    offset: Optional[int] = typer.Option(None, help="Last frame of the clip (default: the apex, or the last frame)."),
    out: Path = typer.Option(Path("predict-out"), "--out", help="Output folder."),
    spot: bool = typer.Option(False, "--spot", help="Long video: find candidate intervals, recognise each."),
    first: Optional[int] = typer.Option(None, help="--spot: first frame number to scan."),
    last: Optional[int] = typer.Option(None, help="--spot: last frame number to scan."),
    step: int = typer.Option(1, help="--spot: keep every step-th frame (faster on long videos)."),
    window: float = typer.Option(0.5, help="--spot: window length, seconds."),
    hop: float = typer.Option(0.25, help="--spot: step between windows, seconds."),
    p: float = typer.Option(0.5, help="--spot: threshold = mean + p (max - mean) of the windows' peaks."),
    fps: Optional[float] = typer.Option(None, help="Frame rate of a frame folder (a video's own is read)."),
    figure: bool = typer.Option(True, help="Write the figure (prediction.png or timeline.png)."),
) -> None:
    """Recognise the micro-expression in a clip (JSON + figure), or spot and recognise intervals (--spot: CSV +
    timeline)."""
    from merkit.files import write_json
    from merkit.predict import Predictor, SpotConfig

    predictor = Predictor.from_pretrained(checkpoint)
    # Said once the work has succeeded, so that a failure stays the one line `error: ...`.
    model_line = f"model: {_describe(predictor, default=checkpoint is None)}"
    out.mkdir(parents=True, exist_ok=True)
    if spot:
        result = predictor.spot(input, SpotConfig(window_s=window, hop_s=hop, p=p), first, last, step, fps)
        typer.echo(model_line)
        result.to_csv(out / "intervals.csv")
        write_json(out / "spot.json", result.to_dict())
        if figure:
            result.save_timeline(out / "timeline.png")
        typer.echo(f"{len(result.intervals)} candidate interval(s) in {len(result.curve)} windows "
                   f"(threshold {result.threshold:.2f} px) -> {out / 'intervals.csv'}")
        for row in result.intervals.itertuples(index=False):
            typer.echo(f"  frames {row.onset}-{row.offset} apex {row.apex}: {row.label}")
    else:
        result = predictor.predict(input, onset, apex, offset, fps)
        typer.echo(model_line)
        result.to_json(out / "prediction.json")
        if figure:
            result.save_figure(out / "prediction.png")
        probs = "  ".join(f"{c} {v:.2f}" for c, v in result.probabilities.items())
        typer.echo(f"{result.label} (onset {result.onset}, apex {result.apex} {result.apex_source}; {probs}; "
                   f"{result.timing.total:.2f} s) -> {out / 'prediction.json'}")
    for kind, count in result.warnings.items():
        typer.echo(f"  warning {kind}: {count}")


def _describe(predictor, default: bool) -> str:
    """Which model ``merkit predict`` runs: its source, and for a packaged model what it was trained on, its LOSO
    figure and its licence."""
    from merkit.pretrained import packaged_models

    for model in packaged_models():
        if predictor.source == f"{model.name} (packaged)":
            return f"{model.name} (packaged{', the default' if default else ''}): {model.summary()}"
    return predictor.source


@app.command("models")
def models_command() -> None:
    """List the models that ship with merkit: what each was trained on, its honest LOSO figures, its licence."""
    from merkit.pretrained import CARD_NAME, DEFAULT_MODEL, packaged_models

    for model in packaged_models():
        figures = model.figures
        typer.echo(f"{model.name}{' (default)' if model.name == DEFAULT_MODEL else ''}: {model.meta.get('model')} "
                   f"trained on {model.trained_on()}")
        typer.echo(f"  classes: {', '.join(model.meta.get('classes', []))}")
        typer.echo("  leave-one-subject-out, honest protocol, mean ± std over seeds (the card says how):")
        for part, f in figures.items():
            if {"uf1", "uar"} <= set(f):
                typer.echo(f"    {part:<8} UF1 {f['uf1']:.4f} ± {f.get('uf1_std', 0):.4f}   UAR {f['uar']:.4f} ± "
                           f"{f.get('uar_std', 0):.4f}")
        typer.echo(f"  licence: {model.card.get('license_name') or model.card.get('license')}")
        typer.echo(f"  card: {model.path / CARD_NAME}")
