"""``merkit predict`` and ``merkit models``: thin wrappers over :class:`merkit.predict.Predictor` and
:mod:`merkit.pretrained`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from merkit.cli.app import app


def spot_config(**given):
    """SpotConfig with the options the user gave (``None``: SpotConfig's default; ``size=0``: the checkpoint's
    crop), validated by :func:`merkit.boundary.validate`.

    Raises:
        ConfigError: a value outside its range or choices, named by its option (``--window must be > 0, got 0``).
    """
    from merkit.boundary import validate
    from merkit.motion.spotting import SpotConfig

    names = {"window": "window_s", "hop": "hop_s"}
    options = {v: k for k, v in names.items()}
    changes = {names.get(k, k): v for k, v in given.items() if v is not None}
    if changes.get("size") == 0:
        changes["size"] = None
    for key, value in changes.items():  # each option alone, so that the error names the option
        validate(SpotConfig, {key: value}, f"--{options.get(key, key)}: ")
    return validate(SpotConfig, changes)


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
    window: Optional[float] = typer.Option(None, help="--spot: window length, seconds (default 0.5)."),
    hop: Optional[float] = typer.Option(None, help="--spot: step between windows, seconds (default 0.25)."),
    p: Optional[float] = typer.Option(None, help="--spot: threshold = mean + p (max - mean) of the windows' peaks "
                                                 "(default 0.05)."),
    fps: Optional[float] = typer.Option(None, help="Frame rate of a frame folder (a video's own is read)."),
    min_confidence: Optional[float] = typer.Option(
        None, "--min-confidence", help="Abstain: answer 'uncertain' when the top (calibrated) probability is "
        "below this fraction in [0, 1]."),
    label_macro: bool = typer.Option(False, "--label-macro", help="--spot: label macro-expression intervals "
                                     "(over 0.5 s) too; the model knows micro-expressions only."),
    figure: bool = typer.Option(True, help="Write the figure (prediction.png or timeline.png)."),
) -> None:
    """Recognise the micro-expression in a clip (JSON + figure), or spot and recognise intervals (--spot: CSV +
    timeline). Each answer carries named domain warnings where the input lies outside what the model was trained
    on (a clip longer than a micro-expression, times outside the training clips'), and --min-confidence abstains."""
    from merkit.files import write_json
    from merkit.predict import Predictor

    predictor = Predictor.from_pretrained(checkpoint)
    # Said once the work has succeeded, so that a failure stays the one line `error: ...`.
    model_line = f"model: {_describe(predictor, default=checkpoint is None)}"
    out.mkdir(parents=True, exist_ok=True)
    if spot:
        with _progress_bar() as progress:
            result = predictor.spot(input, spot_config(window=window, hop=hop, p=p), first, last, step, fps,
                                    min_confidence=min_confidence, label_macro=label_macro, progress=progress)
        typer.echo(model_line)
        result.to_csv(out / "intervals.csv")
        write_json(out / "spot.json", result.to_dict())
        if figure:
            result.save_timeline(out / "timeline.png")
        typer.echo(f"{len(result.intervals)} candidate interval(s) in {len(result.curve)} windows "
                   f"(threshold {result.threshold:.2f} px) -> {out / 'intervals.csv'}")
        for row in result.intervals.to_dict("records"):
            typer.echo(f"  frames {row['onset']}-{row['offset']} apex {row['apex']}: {_interval_answer(row)}")
    else:
        result = predictor.predict(input, onset, apex, offset, fps, min_confidence=min_confidence)
        typer.echo(model_line)
        result.to_json(out / "prediction.json")
        if figure:
            result.save_figure(out / "prediction.png")
        probs = "  ".join(f"{c} {v:.2f}" for c, v in result.probabilities.items())
        answer = f"uncertain (top {result.top_class}, below {min_confidence})" if result.uncertain else result.label
        typer.echo(f"{answer} (onset {result.onset}, apex {result.apex} {result.apex_source}; {probs}; "
                   f"{result.timing.total:.2f} s) -> {out / 'prediction.json'}")
        for finding in result.domain_warnings:
            typer.echo(f"  domain warning {finding.name} ({finding.basis}): {finding.message}")
    for kind, count in result.warnings.items():
        typer.echo(f"  warning {kind}: {count}")


def _interval_answer(row: dict) -> str:
    """One interval of --spot on the CLI line: its kind, duration, label and domain warnings."""
    duration = "" if row.get("duration_s") is None else f" ({row['duration_s']:.2f} s)"
    label = row.get("label")
    if row["kind"] == "macro" and not label:
        return f"macro-expression{duration}, not labelled (a micro-expression model; --label-macro labels it)"
    warnings = f"; domain warnings: {row['domain_warnings']}" if row.get("domain_warnings") else ""
    return f"{row['kind']}{duration}: {label if label is not None else 'unlabelled'}{warnings}"


class _progress_bar:
    """A rich progress bar with the time left for --spot's window scan, on stderr; ``progress(done, total)``."""

    def __enter__(self):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("scanning windows"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("time left"), TimeRemainingColumn(), transient=True,
                            console=Console(stderr=True))
        self.bar.__enter__()
        self.task = None
        return self.update

    def update(self, done: int, total: int) -> None:
        if self.task is None:
            self.task = self.bar.add_task("spot", total=total)
        self.bar.update(self.task, completed=done)

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)


def _describe(predictor, default: bool) -> str:
    """Which model ``merkit predict`` runs: its source, and for a packaged model what it was trained on, its LOSO
    figure and its licence."""
    from merkit.pretrained import packaged_models

    for model in packaged_models():
        if predictor.source == f"{model.name} (packaged)":
            return f"{model.name} (packaged{', the default' if default else ''}): {model.summary()}"
    return predictor.source


@app.command("models")
def models_command(architectures: bool = typer.Option(False, "--architectures", help="List the registered model "
                                                      "architectures, their presets and inputs, instead.")) -> None:
    """List the models that ship with merkit: what each was trained on, its honest LOSO figures, its licence."""
    if architectures:
        from merkit.cli.models import architecture_lines

        typer.echo("\n".join(architecture_lines()))
        return
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


@app.command("evaluate-spotting")
def evaluate_spotting_command(
    data: Path = typer.Argument(..., help="A set of long videos: videos.csv + intervals.csv (merkit synth OUT "
                                          "--long-videos N writes one)."),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", "-c", help="A packaged model's name, a "
                                             "checkpoint folder or a Hub id: its face settings, and a label per "
                                             "interval. Spotting itself needs no model."),
    out: Path = typer.Option(Path("spotting-out"), "--out", help="Output folder."),
    step: int = typer.Option(1, help="Keep every step-th frame."),
    window: Optional[float] = typer.Option(None, help="Window length, seconds (default 0.5)."),
    hop: Optional[float] = typer.Option(None, help="Step between windows, seconds (default 0.25)."),
    p: Optional[float] = typer.Option(None, help="Threshold = mean + p (max - mean) of the windows' peaks "
                                                 "(default 0.05)."),
    size: Optional[int] = typer.Option(None, help="Side of the face crop the motion is measured on, px "
                                                  "(default 112; 0 = the checkpoint's crop)."),
    method: Optional[str] = typer.Option(None, help="Flow method of the motion curve: dis (default), farneback "
                                                    "or tvl1."),
    interval: Optional[str] = typer.Option(None, help="'extent' (default: the motion's extent around its peak) or "
                                                      "'window' (the whole window)."),
    kind: list[str] = typer.Option(["micro"], "--kind", help="Ground-truth kinds to find (repeatable); the others "
                                                            "are distractors."),
    iou: float = typer.Option(0.5, help="IoU of a hit (MEGC: 0.5)."),
) -> None:
    """Score --spot on long videos with ground truth: MEGC spotting protocol (a hit is IoU >= 0.5, each ground truth
    matched once), precision, recall and F1 pooled over the videos, and a precision-recall sweep over p."""
    from merkit import api

    config = spot_config(window=window, hop=hop, p=p, size=size, method=method, interval=interval)
    run = api.evaluate_spotting(data, out, checkpoint, config, tuple(kind), step, iou, log=typer.echo)
    typer.echo(run.summary_line())
    speed = run.summary["speed"]
    typer.echo(f"{speed['frames']} frames in {speed['wall_seconds']:.1f} s: {speed['frames_per_second']:.1f} "
               f"frames/s, {speed['realtime_ratio']:.2f}x real time")
    overlaps = run.summary["false_positives_overlap"]
    if overlaps:
        typer.echo("false positives overlapping: " + ", ".join(f"{k} {v}" for k, v in overlaps.items()))
    decision = run.summary.get("kinds_decision")
    if decision and decision["counted"]:
        parts = []
        for kind in ("micro", "macro"):
            d = decision[kind]
            fmt = (lambda v: "n/a" if v is None else f"{v:.3f}")
            parts.append(f"{kind} precision {fmt(d['precision'])} recall {fmt(d['recall'])} ({d['right']} right of "
                         f"{d['called']} called, {d['true']} true)")
        typer.echo(f"micro/macro decision on the {decision['counted']} intervals on an expression: " + "; ".join(parts))
    if run.summary["labels"]:
        labels = run.summary["labels"]
        typer.echo(f"labels right on {labels['correct']} of {labels['hits']} hits")
    typer.echo(f"-> {out / 'spotting.json'}, spotted.csv, pr.csv")


@app.command("calibrate")
def calibrate_command(
    run: Path = typer.Argument(..., help="A finished `merkit evaluate` LOSO run of the checkpoint's recipe (honest "
                                         "selection): its predictions.csv holds out-of-fold predictions."),
    checkpoint: Path = typer.Option(..., "--checkpoint", "-c", help="The checkpoint folder to calibrate."),
    annotations: Optional[Path] = typer.Option(
        None, "--annotations", help="The official sheets folder (../shared/data/annotations): record the MEGC2019 "
        "composite's clip durations as the checkpoint's domain statistics."),
) -> None:
    """Fit a temperature on a LOSO run's out-of-fold predictions and store it in the checkpoint (checkpoint.json;
    the weights are not touched), with a reliability diagram (calibration.png) and the ECE before and after."""
    from merkit import api

    record = api.calibrate(run, checkpoint, annotations)
    fitted = record["fitted_on"]
    typer.echo(f"temperature {record['temperature']:.4f} from {fitted['rows']} out-of-fold predictions "
               f"({fitted['subjects']} subjects, seeds {', '.join(map(str, fitted['seeds']))}): ECE "
               f"{record['ece_before']:.4f} -> {record['ece_after']:.4f}, NLL {record['nll_before']:.4f} -> "
               f"{record['nll_after']:.4f}")
    typer.echo(f"-> {checkpoint / 'checkpoint.json'}, {checkpoint / 'calibration.png'}")
