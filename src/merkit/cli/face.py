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
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="Draw the face settings of this "
                                             "checkpoint's preprocessing record, what predict feeds its model: a "
                                             "packaged model's name (merkit models), a checkpoint folder or a "
                                             "Hugging Face Hub id. Not with --config or --set."),
    config: Optional[Path] = CONFIG_OPTION,
    set_: list[str] = SET_OPTION,
) -> None:
    """Draw the detected face, its 68 landmarks, the crop and the nine AU regions into a PNG. The face settings are
    the config's data.face (default: merkit's, the crop of the packaged model's record and of export-flow), or with
    --checkpoint the checkpoint's own record."""
    from merkit.errors import ConfigError
    from merkit.face.show import show_face as draw

    if checkpoint is not None:
        if config is not None or set_:
            raise ConfigError("--checkpoint draws the checkpoint's own face settings; leave out --config and --set "
                              "(or drop --checkpoint to draw a config's data.face)")
        from merkit.predict import Predictor

        predictor = Predictor.from_pretrained(checkpoint)
        face, source_of = predictor.preprocessing.face, f"the record of {predictor.source}"
    else:
        face = run_config(config, set_).data.face
        where = str(config) if config is not None else "merkit's defaults"
        source_of = f"data.face of {where}" + (" with --set" if set_ else "")
    typer.echo(draw(source, out or source.with_name(f"{source.stem}-face.png"), face, frame))
    margin = f", margin {face.margin:g}" if face.crop == "landmarks" else ""
    typer.echo(f"face: {face.align} alignment, {face.crop} crop{margin}, {face.size} px {face.color} ({source_of})")
