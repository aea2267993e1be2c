"""``merkit synth`` and ``merkit demo``: thin wrappers over :mod:`merkit.synthetic` and :mod:`merkit.demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from merkit.cli.app import app


@app.command()
def synth(
    out: Path = typer.Argument(..., help="Output folder (CASME II layout: subXX/EPyy_zz/img<N>.jpg + coding sheet)."),
    subjects: int = typer.Option(5, help="Number of pseudo-subjects."),
    clips_per_class: int = typer.Option(4, help="Clips of each class (negative, positive, surprise) per subject."),
    seed: int = typer.Option(0, help="Random seed; the same seed gives byte-identical files."),
    faces: list[Path] = typer.Option([], "--faces", help="Face image or folder of images (repeatable); "
                                     "default: skimage's astronaut photo."),
    amplitude_scale: float = typer.Option(1.0, help="Multiplies the expression amplitude (0 = control set)."),
    long_videos: int = typer.Option(0, help="Write this many long videos (for evaluate-spotting) instead of clips."),
    video_seconds: float = typer.Option(20.0, help="Long videos: length, seconds."),
    fps: float = typer.Option(30.0, help="Long videos: frames per second."),
    micro: int = typer.Option(3, help="Long videos: micro-expressions per video."),
    macro: int = typer.Option(1, help="Long videos: macro-expressions (distractors) per video."),
    workers: int = typer.Option(1, help="Clips: processes rendering subjects in parallel (Ray); the files do not "
                                "depend on it."),
) -> None:
    """Write a synthetic micro-expression dataset made from real face photos: clips in the CASME II layout, or
    with --long-videos, long videos with micro-expressions at known intervals (videos.csv, intervals.csv)."""
    from merkit.synthetic import INTERVALS_NAME, SHEET_NAME, TABLE_NAME, VIDEOS_NAME, generate, generate_long_videos

    if long_videos:
        videos, intervals = generate_long_videos(out, long_videos, video_seconds, seed, fps, micro, macro,
                                                 faces or None, amplitude_scale)
        counts = intervals["kind"].value_counts()
        typer.echo(f"wrote {len(videos)} videos of {video_seconds:g} s at {fps:g} fps to {out}: "
                   + ", ".join(f"{counts.get(k, 0)} {k}" for k in ("micro", "macro", "blink", "head")))
        typer.echo(f"ground truth: {out / INTERVALS_NAME}; videos: {out / VIDEOS_NAME}")
        return
    table = generate(out, subjects=subjects, clips_per_class=clips_per_class, seed=seed, faces=faces or None,
                     amplitude_scale=amplitude_scale, workers=workers)
    counts = table["label_class"].value_counts().sort_index()
    typer.echo(f"wrote {len(table)} clips of {table['subject'].nunique()} subjects to {out} "
               f"({', '.join(f'{k} {v}' for k, v in counts.items())})")
    typer.echo(f"coding sheet: {out / SHEET_NAME}; sample table: {out / TABLE_NAME}")


@app.command()
def demo(
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folders (default ./merkit-demo)."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Cache folder (default ~/.cache/merkit)."),
    subjects: int = typer.Option(5, help="Pseudo-subjects (LOSO folds)."),
    clips_per_class: int = typer.Option(4, help="Clips of each class per subject."),
    seed: int = typer.Option(0, help="Seed of the data and of training."),
    epochs: int = typer.Option(60, help="Training epochs per fold."),
    quiet: bool = typer.Option(False, help="No progress bar."),
) -> None:
    """End to end on synthetic micro-expressions: data -> face -> TV-L1 flow -> LOSO with STSTNet -> report."""
    from rich.console import Console
    from rich.table import Table

    from merkit.demo import run_demo

    console = Console()
    result = run_demo(out, cache, subjects=subjects, clips_per_class=clips_per_class, seed=seed, epochs=epochs,
                      progress=not quiet, log=console.print)
    for model, run in result.runs.items():
        table = Table(title=f"{model}: per-class results, LOSO pooled over {run.predictions['fold'].nunique()} folds")
        for col in ("class", "precision", "recall", "F1", "samples"):
            table.add_column(col, justify="left" if col == "class" else "right")
        for name, r in result.per_class[model].iterrows():
            table.add_row(name, f"{r.precision:.3f}", f"{r.recall:.3f}", f"{r.f1:.3f}", str(int(r.support)))
        console.print(table)
        console.print(run.summary_line())
        console.print(f"report: {run.report_path}")
    console.print(f"took {result.seconds['total']:.0f} s (data {result.seconds['dataset']:.0f} s, "
                  f"inputs and LOSO {result.seconds['loso']:.0f} s)")
