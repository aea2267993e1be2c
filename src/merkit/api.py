"""merkit's Python API; the CLI is a thin layer over these functions.

* :func:`evaluate` (config) -> :class:`RunResult`: leave-one-subject-out evaluation into one run folder.
* :func:`train` (config) -> checkpoint folder: one model on every subject.
* :func:`report` (run folder) -> report path: regenerate metrics and report from saved predictions.
* :func:`ensemble` (run folders) -> :class:`RunResult`: average finished runs into a new run folder.
* :func:`compare` (run folders) -> Markdown table.
* :func:`evaluate_spotting` (a set of long videos) -> :class:`SpottingRun`: spotting scored by the MEGC protocol.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from merkit.config import RunConfig, dump_config, load_config
from merkit.errors import ConfigError, Diagnostics
from merkit.features import FeatureSet
from merkit.files import write_json


@dataclass
class RunResult:
    """What :func:`evaluate` produced: the run folder and its contents, loaded."""

    run_dir: Path
    config: RunConfig
    predictions: pd.DataFrame
    metrics: dict
    report_path: Path
    seconds: float

    def summary_line(self) -> str:
        full = self.metrics["summary"]["full"]
        return (f"{self.config.name}: UF1 {full['uf1']['mean']:.4f}  UAR {full['uar']['mean']:.4f}  "
                f"acc {full['accuracy']['mean']:.4f}  ({self.metrics['protocol']}; seeds {self.metrics['seeds']})")


def load_features(config: RunConfig) -> FeatureSet:
    """The model inputs that ``config.data`` describes (:func:`merkit.inputs.load_inputs`).

    Raises:
        ConfigError: unknown ``data.kind``, or a missing ``data.path`` / ``data.dataset``.
        DataError: the data cannot be loaded, or no sample yields inputs.
    """
    from merkit.inputs import load_inputs

    return load_inputs(config.data, address=config.protocol.address)


def model_facts(config: RunConfig, data: FeatureSet) -> tuple[list[str], list[str]]:
    """What the configured model declares about itself, for the report.

    Returns:
        ``(ground_truth_inputs, notes)``: input keys it takes from annotations (``uses_ground_truth_inputs``,
        e.g. CVA+FPF's AUs) and its ``notes`` (e.g. SLSTT's "F = 1", "not ImageNet-pretrained").
    """
    from merkit.models import build_model

    model = build_model(config.model.name, len(data.classes), config.model.preset, **config.model.params)
    return list(model.uses_ground_truth_inputs), list(model.notes)


def _progress(total: int, enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("LOSO units"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        disable=not enabled, transient=False)
    return progress


def evaluate(config: RunConfig, out_dir: str | Path | None = None, features: FeatureSet | None = None,
             progress: bool = True) -> RunResult:
    """Leave-one-subject-out evaluation of ``config`` into ``out_dir`` (default ``runs/<config.name>``).

    Finished (seed, fold) units already in ``out_dir`` are reused, so an interrupted run resumes. The folder
    receives ``config.yaml``, ``predictions.csv``, ``metrics.json``, ``report.md``, ``confusion.png``, the MEGC2019
    log of each seed (3-class runs) and per-fold checkpoints.

    Args:
        features: evaluate this FeatureSet instead of loading ``config.data`` (the demo and notebooks).

    Raises:
        ConfigError: invalid config, or ``out_dir`` holds a run of another config or dataset.
        DataError: bad input data (the message names the sample).
        LeakageError: a fold's train and test share a subject (cannot happen with the built-in folds).
    """
    from merkit.evaluation.report import write_outputs
    from merkit.training.runner import plan_units, run_provenance, run_loso

    config.validate()
    start = time.perf_counter()
    run_dir = Path(out_dir) if out_dir is not None else Path("runs") / config.name
    data = features if features is not None else load_features(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    dump_config(config, run_dir / "config.yaml")
    total = len(plan_units(config, data, run_dir))
    run_diagnostics = Diagnostics()
    with _progress(total, progress) as bar:
        task = bar.add_task("units", total=total)
        preds = run_loso(config, data, run_dir, on_unit_done=lambda _plan: bar.advance(task),
                         diagnostics=run_diagnostics)
    diagnostics = dict(data.meta.get("diagnostics", {}))
    for kind, count in run_diagnostics.summary().items():
        diagnostics[kind] = diagnostics.get(kind, 0) + count
    model_gt, model_notes = model_facts(config, data)
    devices = f"trained on: {', '.join(run_provenance(run_dir))}"
    machines = f"machine and software: {'; '.join(run_provenance(run_dir, 'environments'))}"
    side = {"notes": data.notes + model_notes + [devices, machines], "diagnostics": diagnostics,
            "ground_truth_inputs": sorted(set(data.ground_truth_inputs) | set(model_gt))}
    write_json(run_dir / "data_notes.json", side)
    write_json(run_dir / "preprocessing.json", data.meta.get("preprocessing"))
    metrics = write_outputs(run_dir, config, preds, data.classes, **side)
    return RunResult(run_dir, config, preds, metrics, run_dir / "report.md", time.perf_counter() - start)


def report(run_dir: str | Path) -> Path:
    """Regenerate ``metrics.json``, ``report.md``, ``confusion.png`` and logs from a run folder's predictions.

    Raises:
        ConfigError: the folder lacks ``config.yaml`` or ``predictions.csv``, or one of them is damaged.
    """
    from merkit.evaluation.report import write_outputs

    run_dir = Path(run_dir)
    for name in ("config.yaml", "predictions.csv"):
        if not (run_dir / name).is_file():
            raise ConfigError(f"{run_dir / name} not found: is {run_dir} a merkit run folder?")
    config = load_config(run_dir / "config.yaml")
    preds = _read_saved(run_dir / "predictions.csv",
                        lambda p: pd.read_csv(p, dtype={"subject": str, "sample": str}))
    classes = tuple(c[len("prob_"):] for c in preds.columns if c.startswith("prob_"))
    side = run_dir / "data_notes.json"
    extra = _read_saved(side, lambda p: json.loads(p.read_text())) if side.is_file() else {}
    write_outputs(run_dir, config, preds, classes, extra.get("notes", []), extra.get("diagnostics", {}),
                  extra.get("ground_truth_inputs", []))
    return run_dir / "report.md"


def ensemble(run_dirs: list[str | Path], out_dir: str | Path, collapse_seeds: bool = False,
             last_epochs: int | None = None) -> RunResult:
    """Average finished runs' class probabilities (:mod:`merkit.evaluation.ensemble`) into a normal run folder:
    ``config.yaml`` (the first run's, renamed), ``predictions.csv``, metrics and a report that says what was
    averaged. Runs under the paper protocol make a test-selected ensemble, and its report says so.

    Raises:
        ConfigError: runs that cannot be averaged (another sample set, folds, labels, classes or seeds), or a
            folder that is not a finished run.
    """
    from merkit.evaluation.ensemble import average_runs
    from merkit.evaluation.report import write_outputs

    start = time.perf_counter()
    runs = [Path(r) for r in run_dirs]
    preds = average_runs(runs, collapse_seeds, last_epochs)
    configs = [load_config(r / "config.yaml") for r in runs]
    config = configs[0]
    config.name = "ensemble-" + "+".join(c.name for c in configs) + ("-seeds" if collapse_seeds else "")
    if any(c.protocol.selection == "paper" for c in configs):
        config.protocol.selection = "paper"  # a test-selected member makes the ensemble test-selected
    classes = tuple(c[len("prob_"):] for c in preds.columns if c.startswith("prob_"))
    how = ("over the runs' seeds, then over the runs" if collapse_seeds else "per seed, over the runs")
    notes = [f"ensemble: class probabilities averaged {how}"
             + (f", each run's last {last_epochs} recorded epochs first" if last_epochs else "")
             + "; no label was read to form it",
             *[f"member: {r} ({c.model.name}, {c.protocol.selection}, seeds {c.protocol.seeds})"
               for r, c in zip(runs, configs)]]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dump_config(config, out / "config.yaml")
    side = {"notes": notes, "diagnostics": {}, "ground_truth_inputs": []}
    write_json(out / "data_notes.json", side)
    metrics = write_outputs(out, config, preds, classes, **side)
    return RunResult(out, config, preds, metrics, out / "report.md", time.perf_counter() - start)


def _read_saved(path: Path, read):
    """``read(path)`` of a file a run wrote, a damaged one reported as a :class:`ConfigError` naming it."""
    try:
        return read(path)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as error:  # JSONDecodeError is a ValueError
        raise ConfigError(f"{path} is damaged ({str(error).splitlines()[0]}); rerun merkit evaluate with the same "
                          "--out to rebuild it from the run's units") from error


def compare(run_dirs: list[str | Path]) -> str:
    """One Markdown table over several run folders: full-set and per-part UF1/UAR, with each run's protocol."""
    rows, parts = [], []
    for d in run_dirs:
        d = Path(d)
        path = d / "metrics.json"
        if not path.is_file():
            raise ConfigError(f"{path} not found: run `merkit report {d}` first")
        m = _read_saved(path, lambda p: json.loads(p.read_text()))
        rows.append((d.name, m))
        parts += [p for p in m["summary"] if p not in parts]
    head = "| run | selection | seeds | " + " | ".join(f"{p} UF1 | {p} UAR" for p in parts) + " |"
    lines = [head, "|" + "---|" * (3 + 2 * len(parts))]
    for name, m in rows:
        cells = []
        for p in parts:
            s = m["summary"].get(p)
            cells += ["" if s is None else f"{s[k]['mean']:.4f}" + (f" ± {s[k]['std']:.4f}" if len(s[k]["values"]) > 1
                                                                     else "") for k in ("uf1", "uar")]
        lines.append(f"| {name} | {m['protocol']} | {len(m['seeds'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def train_model(config_dict: dict, data: FeatureSet, seed: int) -> tuple[bytes, str, tuple[str, ...], str]:
    """Train one model on every row of ``data`` (``config_dict``: :meth:`RunConfig.to_dict`): its weights as
    safetensors bytes (CPU tensors), the device it trained on, its input keys and the machine and software that
    trained it (:func:`merkit.training.engine.describe_environment`). Pure, so that it runs the same in
    this process or as a Ray task on a cluster node."""
    import torch
    from safetensors.torch import save

    from merkit.config import config_from_dict
    from merkit.features import check_features
    from merkit.models import build_model
    from merkit.training.engine import cpu_state_dict, describe_device, describe_environment, fit, module_device
    from merkit.training.runner import unit_seed

    config = config_from_dict(config_dict)
    torch.set_num_threads(max(1, config.protocol.threads_per_fold))
    s = unit_seed(seed, "all-subjects")
    torch.manual_seed(s)
    model = build_model(config.model.name, len(data.classes), config.model.preset, **config.model.params)
    check_features(data, model.input_keys)
    fit(model, data, config.training, torch.Generator().manual_seed(s))
    return (save(cpu_state_dict(model)), describe_device(module_device(model)), tuple(model.input_keys),
            describe_environment())


def train(config: RunConfig, out_dir: str | Path, features: FeatureSet | None = None, seed: int | None = None
          ) -> Path:
    """Train one model on every sample (no held-out subject) and save a self-contained checkpoint folder
    (:class:`merkit.checkpoint.Checkpoint`: weights, config, classes and the preprocessing record that
    ``merkit predict`` reproduces on new videos).

    With ``protocol.address`` (or ``$RAY_ADDRESS``) the preprocessing and the training run on that Ray cluster
    (the training as one task asking for ``threads_per_fold`` CPUs and, on CUDA, one GPU); this process writes the
    checkpoint.

    Args:
        features: train on these instead of loading ``config.data``; their ``meta["preprocessing"]`` is recorded.
        seed: the training seed (default the first of ``protocol.seeds``).

    Returns:
        The checkpoint folder.

    Raises:
        ConfigError, DataError: as :func:`evaluate`. UnitError: the training task failed on the cluster.
    """
    from safetensors.torch import load

    from merkit.checkpoint import Checkpoint
    from merkit.cluster import cluster_address
    from merkit.inputs import Preprocessing

    config.validate()
    data = features if features is not None else load_features(config)
    seed = config.protocol.seeds[0] if seed is None else seed
    address = cluster_address(config.protocol.address)
    if address is None:
        weights, device, keys, environment = train_model(config.to_dict(), data, seed)
    else:
        weights, device, keys, environment = _train_on_cluster(config, data, seed, address)
    summary = {
        "samples": len(data), "subjects": int(data.table["subject_id"].nunique()),
        "per_class": {c: int((data.table["label"] == i).sum()) for i, c in enumerate(data.classes)},
        "datasets": sorted(map(str, data.table["dataset"].unique())), "fingerprint": data.fingerprint(),
        "notes": data.notes,
    }
    record = Preprocessing.from_dict(data.meta["preprocessing"], "training data") if data.meta.get(
        "preprocessing") else config.data.preprocessing
    checkpoint = Checkpoint(config.model.name, config.model.preset, dict(config.model.params), tuple(data.classes),
                            keys, record, config, seed, device, environment, summary)
    return checkpoint.save(out_dir, load(weights))


def _train_on_cluster(config: RunConfig, data: FeatureSet, seed: int, address: str):
    import ray

    from merkit.cluster import ray_session, run_tasks
    from merkit.errors import UnitError
    from merkit.training.runner import gpus_per_unit

    got = []
    with ray_session(config.protocol.threads_per_fold, address):
        gpus = min(1.0, gpus_per_unit(config, ray.cluster_resources().get("GPU", 0.0)) * config.protocol.workers)
        failures = run_tasks(train_model, [(config.to_dict(), data, seed)], ["training"],
                             lambda i, result, node: got.append(result), num_cpus=config.protocol.threads_per_fold,
                             num_gpus=gpus, max_retries=config.protocol.max_retries)
    if failures:
        raise UnitError(f"training failed on the cluster at {address}: {failures[0][1]}")
    return got[0]


@dataclass
class SpottingRun:
    """What :func:`evaluate_spotting` produced (every table is also a file of ``out_dir``).

    Attributes:
        out_dir: the output folder.
        summary: the content of ``spotting.json``: the set, the settings, the pooled score at the config's ``p``,
            per-video scores, what the false positives overlapped, label accuracy on the hits (with a
            checkpoint), speed and warnings.
        spotted: ``spotted.csv``, one row per reported interval with its ``outcome`` (TP or FP), ``iou`` and
            ``overlaps`` (the kind of event it overlaps most).
        matches: ``matches.csv``, one row per reported interval and per missed ground truth.
        pr: ``pr.csv``, precision, recall and F1 for each ``p`` of :data:`merkit.evaluation.spotting.P_GRID`.
        windows: ``windows.csv``, every scored window of every video.
    """

    out_dir: Path
    summary: dict
    spotted: pd.DataFrame
    matches: pd.DataFrame
    pr: pd.DataFrame
    windows: pd.DataFrame

    def summary_line(self) -> str:
        s = self.summary["score"]
        return (f"precision {s['precision']:.3f}  recall {s['recall']:.3f}  F1 {s['f1']:.3f}  (TP {s['tp']}, "
                f"FP {s['fp']}, FN {s['fn']}; IoU >= {self.summary['iou_threshold']}, p = "
                f"{self.summary['spot_config']['p']})")


def evaluate_spotting(data: str | Path, out_dir: str | Path, checkpoint: str | Path | None = None,
                      config=None, kinds: tuple[str, ...] = ("micro",), step: int = 1, iou: float = 0.5,
                      log=None) -> SpottingRun:
    """Spot every long video of a set and score the intervals with the MEGC spotting protocol.

    Each video goes through :func:`merkit.predict.scan.spot_video` (:meth:`merkit.predict.Predictor.spot` with a
    checkpoint, which also labels each interval). The reported intervals are matched one-to-one to the ground truth
    of ``kinds``: a hit is an IoU >= ``iou`` (MEGC2019-2022: 0.5), and precision, recall and F1 come from TP, FP
    and FN pooled over the videos (:mod:`merkit.evaluation.spotting`). The threshold sweep reuses the scored
    windows, so it costs no second pass.

    Args:
        data: a folder with ``videos.csv`` and ``intervals.csv`` (``merkit synth OUT --long-videos N``).
        out_dir: output folder: ``spotting.json``, ``spotted.csv``, ``matches.csv``, ``pr.csv``, ``windows.csv``.
        checkpoint: what :meth:`merkit.predict.Predictor.from_pretrained` takes (a packaged model's name, a
            checkpoint folder or a Hub id): its face settings are used and each interval is recognised; without
            one, the default :class:`merkit.face.clip.FaceConfig` and no labels.
        config: the spotting settings (:class:`merkit.motion.spotting.SpotConfig`; default its defaults).
        kinds: the ground-truth kinds to find (the others, e.g. ``macro``, are distractors).
        step: keep every ``step``-th frame.
        iou: the IoU of a hit.
        log: a callable that receives one line per video.

    Returns:
        :class:`SpottingRun`.

    Raises:
        DataError: see :func:`merkit.evaluation.spotting.load_spotting_set` and
            :func:`merkit.predict.scan.spot_video`; CheckpointError: see :meth:`Predictor.from_pretrained`.
    """
    import dataclasses
    import os

    from merkit.evaluation.spotting import (attribute_misses, load_spotting_set, score_intervals, score_video,
                                            sweep_threshold)
    from merkit.face.clip import FaceConfig
    from merkit.files import write_atomic
    from merkit.motion.spotting import SpotConfig
    from merkit.predict.scan import spot_video

    config = config or SpotConfig()
    dataset = load_spotting_set(data)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    predictor = None
    face = FaceConfig()
    if checkpoint is not None:
        from merkit.predict import Predictor

        predictor = Predictor.from_pretrained(checkpoint)
        face = predictor.preprocessing.face
    truth = dataset.intervals[dataset.intervals["kind"].isin(kinds)].reset_index(drop=True)
    spotted_parts, window_parts, per_video, warnings = [], [], {}, {}
    timing = {"read": 0.0, "face": 0.0, "motion": 0.0, "model": 0.0}
    wall, frames, seconds = 0.0, 0, 0.0
    for video in dataset.videos.itertuples(index=False):
        t0 = time.perf_counter()
        if predictor is not None:
            result = predictor.spot(video.path, config, step=step, fps=video.fps)
        else:
            result = spot_video(video.path, config, face, step=step, fps=video.fps)
        took = time.perf_counter() - t0
        wall += took
        frames += len(result.frame_numbers)
        span = (result.frame_numbers[-1] - result.frame_numbers[0] + 1) / video.fps
        seconds += span
        for stage in timing:
            timing[stage] += getattr(result.timing, stage)
        for kind, count in result.warnings.items():
            warnings[kind] = warnings.get(kind, 0) + count
        part = result.intervals.assign(video=video.video)
        spotted_parts.append(part)
        window_parts.append(result.curve.assign(video=video.video))
        mine = truth[truth["video"] == video.video]
        score = score_video(list(zip(part["onset"], part["offset"])), list(zip(mine["onset"], mine["offset"])), iou)
        per_video[video.video] = {**score.to_dict(), "windows": len(result.curve), "seconds": round(took, 3),
                                  "skipped_windows": len(result.skipped_frames)}
        if log:
            log(f"{video.video}: {len(part)} interval(s), TP {score.tp} FP {score.fp} FN {score.fn} "
                f"({took:.1f} s for {span:.1f} s of video)")
    spotted = pd.concat(spotted_parts, ignore_index=True)
    windows = pd.concat(window_parts, ignore_index=True)
    score, matches = score_intervals(spotted, truth, iou)
    spotted["outcome"], spotted["iou"] = "FP", 0.0
    for row in matches.itertuples(index=False):
        if not pd.isna(row.spotted):
            spotted.loc[row.spotted, ["outcome", "iou"]] = [row.outcome, row.iou]
    spotted["overlaps"] = attribute_misses(spotted, dataset.intervals)
    matches = matches.assign(
        spotted_onset=[None if pd.isna(i) else int(spotted.at[i, "onset"]) for i in matches["spotted"]],
        spotted_offset=[None if pd.isna(i) else int(spotted.at[i, "offset"]) for i in matches["spotted"]],
        truth_onset=[None if pd.isna(j) else int(truth.at[j, "onset"]) for j in matches["truth"]],
        truth_offset=[None if pd.isna(j) else int(truth.at[j, "offset"]) for j in matches["truth"]])
    pr = sweep_threshold(windows, truth, config, threshold=iou)
    false = spotted[spotted["outcome"] == "FP"]
    labels = None
    if predictor is not None and "label_class" in truth.columns:
        hits = matches[matches["outcome"] == "TP"]
        correct = sum(spotted.at[i, "label"] == truth.at[j, "label_class"] for i, j in zip(hits["spotted"],
                                                                                             hits["truth"]))
        labels = {"hits": len(hits), "correct": int(correct),
                  "accuracy": (int(correct) / len(hits)) if len(hits) else None}
    summary = {
        "data": str(dataset.root), "videos": len(dataset.videos), "kinds": list(kinds),
        "ground_truth": len(truth), "iou_threshold": iou, "checkpoint": None if checkpoint is None else str(checkpoint),
        "spot_config": dataclasses.asdict(config), "face": face.to_dict(), "step": step,
        "score": score.to_dict(), "per_video": per_video,
        "false_positives_overlap": {k: int(v) for k, v in false["overlaps"].value_counts().items()},
        "labels": labels,
        "speed": {"frames": frames, "video_seconds": round(seconds, 3), "wall_seconds": round(wall, 3),
                  "frames_per_second": round(frames / wall, 2) if wall else None,
                  "realtime_ratio": round(seconds / wall, 3) if wall else None,
                  "timing": {k: round(v, 3) for k, v in timing.items()}, "load_average": os.getloadavg()[0],
                  "cpu_count": os.cpu_count()},
        "warnings": warnings,
    }
    write_json(out / "spotting.json", summary)
    for name, table in (("spotted.csv", spotted), ("matches.csv", matches), ("pr.csv", pr),
                        ("windows.csv", windows)):
        write_atomic(out / name, lambda p, t=table: t.to_csv(p, index=False))
    return SpottingRun(out, summary, spotted, matches, pr, windows)
