"""``merkit preprocess`` (model inputs of a raw release into the cache) and ``merkit show-face`` (what the face
stage sees)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from merkit.cli.app import ADDRESS_OPTION, CONFIG_OPTION, SET_OPTION, app, run_config


@app.command()
def preprocess(
    dataset: Optional[str] = typer.Argument(None, help="Dataset name: casme2, samm, smic, synthetic, ... "
                                                       "(default: the config's data.dataset)."),
    data: Path = typer.Option(..., "--data", help="Folder of the raw release."),
    config: Optional[Path] = CONFIG_OPTION,
    cache: Optional[Path] = typer.Option(None, "--cache", help="Cache root (data.cache; default "
                                         "~/.cache/merkit/preprocess/<release>)."),
    workers: Optional[int] = typer.Option(None, help="Parallel Ray workers (data.preprocess_workers)."),
    address: Optional[str] = ADDRESS_OPTION,
    set_: list[str] = SET_OPTION,
) -> None:
    """Compute the model inputs the config describes (face fitted once per clip, then its motion representations)
    for every clip of a raw release, into a resumable cache that `merkit evaluate` and `merkit train` then read."""
    from merkit.errors import ConfigError, Diagnostics
    from merkit.inputs import load_inputs

    cfg = run_config(config, set_, **{"data.kind": "raw", "data.dataset": dataset, "data.path": data,
                                      "data.cache": cache, "data.preprocess_workers": workers,
                                      "protocol.address": address})
    if not cfg.data.dataset:
        raise ConfigError("name the dataset (merkit preprocess NAME ...) or set data.dataset in the config")
    diagnostics = Diagnostics()
    features = load_inputs(cfg.data, diagnostics, address=cfg.protocol.address)
    clips = features.meta["clips"]
    typer.echo(f"{len(features)} samples: {clips['computed']} computed, {clips['cached']} from the cache, "
               f"{clips['failed']} failed, in {clips['seconds']:.1f} s with {clips['workers']} worker(s)")
    typer.echo(f"inputs {sorted(features.inputs)}: {cfg.data.preprocessing.describe()}")
    for kind, count in diagnostics.summary().items():
        typer.echo(f"  {kind}: {count}")


@app.command("show-face")
def show_face(
    source: Path = typer.Argument(..., help="an image, or a video (then --frame picks the frame)"),
    out: Path = typer.Option(None, "--out", help="PNG to write; default SOURCE-face.png beside the input"),
    frame: int = typer.Option(0, "--frame", min=0, help="frame index of a video, 0-based"),
    config: Optional[Path] = CONFIG_OPTION,
    set_: list[str] = SET_OPTION,
) -> None:
    """Draw the detected face, its 68 landmarks, the crop (the config's data.face) and the nine AU regions into a
    PNG."""
    from merkit.face.show import show_face as draw

    face = run_config(config, set_).data.face
    typer.echo(draw(source, out or source.with_name(f"{source.stem}-face.png"), face, frame))
