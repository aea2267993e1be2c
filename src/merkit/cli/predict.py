"""``merkit predict``: a thin wrapper over :class:`merkit.predict.Predictor`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from merkit.cli.app import app


@app.command("predict")
def predict_command(
    input: Path = typer.Argument(..., help="A video file or a folder of frames (sorted by the number in the names)."),
    checkpoint: Path = typer.Option(..., "--checkpoint", "-c", help="Checkpoint folder written by merkit train."),
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

    predictor = Predictor.from_checkpoint(checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    if spot:
        result = predictor.spot(input, SpotConfig(window_s=window, hop_s=hop, p=p), first, last, step, fps)
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
        result.to_json(out / "prediction.json")
        if figure:
            result.save_figure(out / "prediction.png")
        probs = "  ".join(f"{c} {v:.2f}" for c, v in result.probabilities.items())
        typer.echo(f"{result.label} (onset {result.onset}, apex {result.apex} {result.apex_source}; {probs}; "
                   f"{result.timing.total:.2f} s) -> {out / 'prediction.json'}")
    for kind, count in result.warnings.items():
        typer.echo(f"  warning {kind}: {count}")
