"""``merkit preprocess`` (aligned face clips into a cache) and ``merkit show-face`` (what the face stage sees)."""

from __future__ import annotations

from pathlib import Path

import typer

from merkit.cli.app import app
from merkit.errors import DataError


def _face_config(detector: str, align: str, crop: str, size: int, grey: bool, reference: str, span: str,
                 mode: str, upsample: int, margin: float, stabilise: str = "none", freeze_eyes: bool = False):
    from merkit.face.clip import FaceConfig

    try:
        return FaceConfig(detector=detector, upsample=upsample, align=align, crop=crop, margin=margin, size=size,
                          color="grey" if grey else "rgb", reference=reference, span=span, mode=mode,
                          stabilise=stabilise, freeze_eyes=freeze_eyes)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error


@app.command()
def preprocess(
    name: str = typer.Argument(..., help="dataset name, as merkit.datasets.registry knows it (casme2, samm, ...)"),
    root: Path = typer.Option(..., "--root", help="the dataset's root folder (frames and annotation sheet)"),
    out: Path = typer.Option(..., "--out", help="cache root; clips go under OUT/face-<config hash>/"),
    sheet: Path = typer.Option(None, "--sheet", help="annotation sheet, when the loader cannot find it in ROOT"),
    workers: int = typer.Option(1, "--workers", min=1, help="processes working on clips in parallel"),
    detector: str = typer.Option("hog", help="dlib face detector: hog or cnn"),
    align: str = typer.Option("similarity", help="similarity or piecewise-affine"),
    crop: str = typer.Option("slstt", help="slstt, eyes or landmarks"),
    size: int = typer.Option(224, help="output side in pixels"),
    grey: bool = typer.Option(False, "--grey", help="write grey frames instead of RGB"),
    reference: str = typer.Option("onset", help="frame the face is fitted on: onset, apex or first"),
    span: str = typer.Option("all", help="frames kept: all, onset-offset or onset-apex"),
    mode: str = typer.Option("clip", help="clip (one transform per clip) or per-frame (re-fit every frame)"),
    upsample: int = typer.Option(1, help="dlib upsampling before detection"),
    margin: float = typer.Option(0.1, help="margin of the landmarks crop"),
    stabilise: str = typer.Option("none", help="none, or ecc: register every frame rigidly to the reference frame "
                                  "(removes residual head drift)"),
    freeze_eyes: bool = typer.Option(False, "--freeze-eyes", help="give every frame the reference frame's eye "
                                     "regions (removes blinks)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="recompute clips that are already cached"),
    motion: list[str] = typer.Option([], "--motion", help="also cache this motion representation (repeatable): "
                                     "onset_apex_flow, apex_minus_onset, long_term_flow, dynamic_image, resample_clip"),
    flow_method: str = typer.Option("tvl1", "--flow-method", help="flow backend of onset_apex_flow: tvl1, "
                                    "farneback or dis"),
    motion_size: int = typer.Option(28, "--motion-size", help="side of the motion representations, pixels"),
) -> None:
    """Detect, align and crop the face of every clip of a dataset into a resumable cache; with --motion, also
    compute and cache the motion representations the models request (keyed by their own config hash)."""
    from rich.console import Console
    from rich.table import Table

    from merkit.face.cache import preprocess_dataset

    config = _face_config(detector, align, crop, size, grey, reference, span, mode, upsample, margin, stabilise,
                          freeze_eyes)
    console = Console()
    done = [0]

    def progress(result) -> None:
        done[0] += 1
        mark = {"aligned": "[green]ok[/]", "cached": "[blue]cached[/]", "failed": "[red]FAILED[/]"}[result.status]
        console.print(f"{done[0]:5d} {mark} {result.sample_id} {result.n_frames or ''}", highlight=False)

    try:
        if motion:
            from merkit.motion.stage import MotionConfig, preprocess_motion_dataset

            motion_config = MotionConfig(representations=tuple(motion), method=flow_method, size=motion_size)
            report = preprocess_motion_dataset(name, root, out, motion_config, config, workers=workers,
                                               overwrite=overwrite, progress=progress, sheet=sheet)
        else:
            report = preprocess_dataset(name, root, out, config, workers=workers, overwrite=overwrite,
                                        progress=progress, sheet=sheet)
    except (DataError, KeyError, ValueError) as error:  # the dataset cannot be loaded at all: say why, no traceback
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    summary = report.summary()
    console.print(f"cache: {summary['cache_dir']} ({summary['clips']} clips: {summary['aligned']} aligned, "
                  f"{summary['cached']} from cache, {summary['failed']} failed) in {summary['seconds']:.1f} s "
                  f"with {workers} worker(s)")
    failures = report.failures
    if len(failures):
        table = Table(title=f"{len(failures)} failed clip(s), also in {report.cache_dir / 'failures.csv'}")
        for column in ("sample_id", "error_kind", "message"):
            table.add_column(column)
        for row in failures.itertuples(index=False):
            table.add_row(row.sample_id, row.error_kind, row.message)
        console.print(table)


@app.command("show-face")
def show_face(
    source: Path = typer.Argument(..., help="an image, or a video (then --frame picks the frame)"),
    out: Path = typer.Option(None, "--out", help="PNG to write; default SOURCE-face.png beside the input"),
    frame: int = typer.Option(0, "--frame", min=0, help="frame index of a video, 0-based"),
    detector: str = typer.Option("hog", help="dlib face detector: hog or cnn"),
    align: str = typer.Option("similarity", help="similarity or piecewise-affine"),
    crop: str = typer.Option("slstt", help="slstt, eyes or landmarks"),
    size: int = typer.Option(224, help="output side in pixels"),
    upsample: int = typer.Option(1, help="dlib upsampling before detection"),
    margin: float = typer.Option(0.1, help="margin of the landmarks crop"),
) -> None:
    """Draw the detected face, its 68 landmarks, the crop and the nine AU regions into a PNG."""
    from merkit.face.show import show_face as draw

    config = _face_config(detector, align, crop, size, False, "onset", "all", "clip", upsample, margin)
    out = out or source.with_name(f"{source.stem}-face.png")
    try:
        typer.echo(draw(source, out, config, frame))
    except DataError as error:  # no face, unreadable file: a message, not a traceback
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
