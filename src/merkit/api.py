"""merkit's Python API; the CLI is a thin layer over these functions.

* :func:`evaluate` (config) -> :class:`RunResult`: leave-one-subject-out evaluation into one run folder.
* :func:`train` (config) -> checkpoint folder: one model on every subject.
* :func:`report` (run folder) -> report path: regenerate metrics and report from saved predictions.
* :func:`ensemble` (run folders) -> :class:`RunResult`: average finished runs into a new run folder.
* :func:`compare` (run folders) -> a Markdown, LaTeX or CSV table, with a warning for rows that are not comparable;
  :func:`compare_runs` -> the :class:`~merkit.evaluation.tables.Comparison` itself.
* :func:`evaluate_spotting` (a set of long videos) -> :class:`~merkit.evaluation.spotting.SpottingRun`: spotting
  scored by the MEGC protocol.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from merkit.config import Plan, RunConfig, dump_config, load_config
from merkit.errors import ConfigError, Diagnostics
from merkit.files import write_json
from merkit.runfolder import CheckpointFolder, FigureFormat, RunFolder

if TYPE_CHECKING:
    import pandas as pd

    from merkit.evaluation.spotting import SpottingRun
    from merkit.features import FeatureSet

__all__ = ["RunResult", "compare", "compare_runs", "ensemble", "evaluate", "evaluate_spotting", "load_features",
           "model_facts", "report", "train"]


@dataclass
class RunResult:
    """What :func:`evaluate` produced: the run folder and its contents, loaded."""

    run_dir: Path
    config: RunConfig
    predictions: pd.DataFrame
    metrics: dict
    report_path: Path
    seconds: float

    def __repr__(self) -> str:
        try:
            full = self.metrics["summary"]["full"]
            scores = f"UF1 {full['uf1']['mean']:.4f}, UAR {full['uar']['mean']:.4f}, "
        except (KeyError, TypeError):  # a repr never raises: an unfinished metrics dict shows no scores
            scores = ""
        return (f"RunResult(run_dir={str(self.run_dir)!r}, config={self.config.name!r}, {scores}"
                f"protocol={self.metrics.get('protocol')!r}, seeds={self.metrics.get('seeds')}, "
                f"{len(self.predictions)} predictions, {self.seconds:.1f} s)")

    def summary_line(self) -> str:
        from merkit.evaluation.tables import scope_text

        full = self.metrics["summary"]["full"]
        data = self.metrics.get("data") or {}
        subset = f"; subset: {scope_text(data)}" if data.get("subset") else ""
        oracle = self.metrics.get("ground_truth_inputs") or []
        flag = f"; ORACLE INPUT: ground-truth {', '.join(oracle)} at test time" if oracle else ""
        return (f"{self.config.run_name}: UF1 {full['uf1']['mean']:.4f}  UAR {full['uar']['mean']:.4f}  "
                f"acc {full['accuracy']['mean']:.4f}  ({self.metrics['protocol']}; seeds {self.metrics['seeds']}"
                f"{subset}{flag})")


def _pandas():
    """pandas, imported where a function needs it (0.5 s), so that ``import merkit.api`` stays light."""
    import pandas

    return pandas


def load_features(config: RunConfig) -> FeatureSet:
    """The model inputs that ``config.data`` describes (:func:`merkit.inputs.load_inputs`), restricted to
    ``data.subjects`` and ``data.datasets``.

    Raises:
        ConfigError: unknown ``data.kind``, or a missing ``data.path`` / ``data.dataset``; a subject or dataset the
            data does not hold.
        DataError: the data cannot be loaded, or no sample yields inputs.
    """
    from merkit.inputs import load_inputs

    return load_inputs(config.data, address=config.protocol.address)


def _inputs(plan: Plan, features: FeatureSet | None) -> FeatureSet:
    """The inputs a run takes: ``features`` (restricted to ``data.subjects`` and ``data.datasets``, as loaded
    inputs are), else what ``plan.data`` describes (:func:`merkit.inputs.load_inputs`)."""
    from merkit.inputs import load_inputs, select_inputs

    if features is not None:
        return select_inputs(features, plan.data.subjects, plan.data.datasets)
    return load_inputs(plan.data, address=plan.resources.address)


def model_facts(config: RunConfig) -> tuple[list[str], list[str]]:
    """What the configured model declares about itself, for the report, read from the model registry without
    building it (:func:`merkit.models.model_info`).

    Returns:
        ``(ground_truth_inputs, notes)``: input keys it takes from annotations (``uses_ground_truth_inputs``,
        e.g. CVA+FPF's AUs) and its ``notes`` (e.g. SLSTT's "F = 1", "not ImageNet-pretrained").
    """
    from merkit.config import ModelSpec

    spec = ModelSpec.of(config.model)
    return list(spec.ground_truth_inputs), list(spec.notes)


def _progress(total: int, enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("LOSO units"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        disable=not enabled, transient=False)
    return progress


def evaluate(config: RunConfig, out_dir: str | Path | None = None, features: FeatureSet | None = None,
             progress: bool = True, force: bool = False, figure_format: FigureFormat = "png") -> RunResult:
    """Leave-one-subject-out evaluation of ``config`` into ``out_dir`` (default ``runs/<config.name>``).

    Finished (seed, fold) units already in ``out_dir`` are reused, so an interrupted run resumes. The folder
    (:class:`merkit.runfolder.RunFolder`) receives ``run.json``, ``config.yaml``, ``predictions.csv``,
    ``metrics.json``, ``report.md``, the figures (confusion matrices of the full set and of each dataset, the
    per-epoch curves), the MEGC2019 log of each seed (3-class runs), each unit's training loss and per-fold
    checkpoints. ``out_dir`` must be absent, empty, or a run folder of this config on this data (the data's
    content fingerprint, :meth:`merkit.features.FeatureSet.fingerprint`); nothing is written before that is
    checked.

    With ``data.subjects`` or ``data.datasets`` the run is on that part of the data (:mod:`merkit.inputs.select`):
    its default folder is ``runs/<config.run_name>`` (the name with a ``-subset-...`` suffix), and ``run.json``,
    ``metrics.json`` and every table of the report say "62 of 442 samples, 5 of 68 subjects".

    Args:
        features: evaluate this FeatureSet instead of loading ``config.data`` (the demo and notebooks); the config's
            ``data.subjects`` and ``data.datasets`` select from it too.
        force: recompute a folder's finished units made from other data (or by another config), replacing only
            merkit's own unit files and outputs.
        figure_format: ``png`` (300 dpi), ``pdf`` or ``svg``, the format of the figures.

    Raises:
        ConfigError: invalid config or ``figure_format``; ``out_dir`` is a file, a folder merkit did not write, or holds finished units
            of another config or of other data (without ``force``).
        DataError: bad input data (the message names the sample).
        OutputError: the disk refused a write (full, read-only); the message names the path.
        LeakageError: a fold's train and test share a subject (cannot happen with the built-in folds).
    """
    from merkit.boundary import check
    from merkit.evaluation.report import write_outputs
    from merkit.training.runner import run_loso

    check("evaluate", figure_format=(FigureFormat, figure_format))
    plan = config.resolve()  # the one place the config is resolved: nothing below takes a RunConfig
    start = time.perf_counter()
    run_dir = Path(out_dir) if out_dir is not None else Path("runs") / plan.name
    data = _inputs(plan, features)
    run_diagnostics = Diagnostics()
    with _progress(None, progress) as bar:
        task = bar.add_task("units", total=None)
        preds = run_loso(plan, data, run_dir, on_unit_done=lambda _unit: bar.advance(task),
                         diagnostics=run_diagnostics, force=force,
                         on_units_planned=lambda total: bar.update(task, total=total))
    diagnostics = dict(data.meta.get("diagnostics", {}))
    for kind, count in run_diagnostics.summary().items():
        diagnostics[kind] = diagnostics.get(kind, 0) + count
    models = [r.model for r in plan.protocol.members or (plan.protocol.own,)]  # an ensemble's every member
    model_gt = [k for m in models for k in m.ground_truth_inputs]
    model_notes = list(dict.fromkeys(n for m in models for n in m.notes))
    folder = RunFolder(run_dir)
    devices = f"trained on: {', '.join(folder.provenance())}"
    machines = f"machine and software: {'; '.join(folder.provenance('environments'))}"
    side = {"notes": data.notes + model_notes + [devices, machines], "diagnostics": diagnostics,
            "ground_truth_inputs": sorted(set(data.ground_truth_inputs) | set(model_gt))}
    metrics = write_outputs(run_dir, plan, preds, data.classes, **side, subset=data.meta.get("subset"),
                            figure_format=figure_format)
    write_json(folder.file(RunFolder.DATA_NOTES), side)
    write_json(folder.file(RunFolder.PREPROCESSING), data.meta.get("preprocessing"))
    return RunResult(run_dir, config, preds, metrics, folder.file(RunFolder.REPORT), time.perf_counter() - start)


def report(run_dir: str | Path, figure_format: FigureFormat = "png", latex: bool = False, csv: bool = False) -> Path:
    """Regenerate ``metrics.json``, ``report.md``, the figures (in ``figure_format``: ``png`` at 300 dpi, ``pdf``
    or ``svg``) and logs from a run folder's predictions and unit files. A folder whose units finished before
    merkit recorded the training loss is reported without it.

    Args:
        latex: also write ``tables.tex``: the report's table (pooled UF1, UAR and accuracy per part, mean ± std
            over seeds, samples and subjects) as a booktabs LaTeX table whose caption gives the protocol and the
            subset, ready to ``\\input`` (:func:`merkit.evaluation.tables.run_latex`).
        csv: also write ``tables.csv``, the same table in full precision (:func:`merkit.evaluation.tables.part_frame`).
            Either file, once in the folder, is rewritten by every later report of the folder.

    Raises:
        ConfigError: an unknown ``figure_format``; the folder is not a merkit run folder (evaluate or ensemble),
            lacks ``config.yaml`` or ``predictions.csv``, or one of them (or a unit's file) is damaged.
        OutputError: the disk refused a write.
    """
    from merkit.boundary import check
    from merkit.evaluation.report import write_outputs

    check("report", figure_format=(FigureFormat, figure_format))
    folder = RunFolder(run_dir)
    for name in (RunFolder.CONFIG, RunFolder.PREDICTIONS):
        if not folder.file(name).is_file():
            raise ConfigError(f"{folder.file(name)} not found: is {folder.path} a merkit run folder?")
    folder.require()
    config = load_config(folder.file(RunFolder.CONFIG))
    preds = _read_saved(folder.file(RunFolder.PREDICTIONS),
                        lambda p: _pandas().read_csv(p, dtype={"subject": str, "sample": str}))
    classes = tuple(c[len("prob_"):] for c in preds.columns if c.startswith("prob_"))
    side = folder.file(RunFolder.DATA_NOTES)
    extra = _read_saved(side, lambda p: json.loads(p.read_text())) if side.is_file() else {}
    tables = tuple(kind for kind, wanted in (("latex", latex), ("csv", csv)) if wanted)
    write_outputs(folder.path, config.resolve(), preds, classes, extra.get("notes", []), extra.get("diagnostics", {}),
                  extra.get("ground_truth_inputs", []), ensemble=extra.get("ensemble"),
                  subset=folder.data_record().get("subset"), tables=tables, figure_format=figure_format)
    return folder.file(RunFolder.REPORT)


def _ensemble_members(run_dirs: list[str | Path], out_dir: str | Path) -> list[Path]:
    """The member folders, each a merkit run folder, none listed twice nor the output (by resolved path).

    Raises:
        ConfigError: naming the folder.
    """
    runs = [Path(r) for r in run_dirs]
    seen: dict[Path, Path] = {}
    for run in runs:
        key = run.resolve()
        if key in seen:
            raise ConfigError(f"{run} is listed twice (as {seen[key]} and {run}): an ensemble would average a run "
                              "with itself; name each run once")
        seen[key] = run
    out = Path(out_dir).resolve()
    for run in runs:
        if run.resolve() == out:
            raise ConfigError(f"the output {out_dir} is one of the runs to average ({run}): writing there would "
                              "replace that run; choose another --out")
    for run in runs:
        RunFolder(run).require()
    return runs


def ensemble(run_dirs: list[str | Path], out_dir: str | Path, collapse_seeds: bool = False,
             last_epochs: int | None = None, figure_format: FigureFormat = "png") -> RunResult:
    """Average finished runs' class probabilities (:mod:`merkit.evaluation.ensemble`) into a normal run folder:
    ``config.yaml`` (the first run's, renamed), ``predictions.csv``, metrics and a report that says what was
    averaged. Runs under the paper protocol make a test-selected ensemble, and its report says so. ``out_dir``
    must be absent, empty, or an ensemble folder of the same members and options (checked before any write).
    Figures are written in ``figure_format`` (``png`` at 300 dpi, ``pdf`` or ``svg``).

    Raises:
        ConfigError: an unknown ``figure_format``; runs that cannot be averaged (another sample set, folds, labels, classes or seeds), a
            folder that is not a finished run, a run listed twice, an output that is one of the runs, or an
            output folder that is not absent, empty or this ensemble's.
        OutputError: the disk refused a write.
    """
    from merkit.boundary import check
    from merkit.evaluation.ensemble import average_runs
    from merkit.evaluation.report import write_outputs

    check("ensemble", figure_format=(FigureFormat, figure_format))
    start = time.perf_counter()
    runs = _ensemble_members(run_dirs, out_dir)
    folder = RunFolder(out_dir)
    identity = {"members": [str(r.resolve()) for r in runs], "collapse_seeds": collapse_seeds,
                "last_epochs": last_epochs}
    data = RunFolder(runs[0]).data_record()  # average_runs checks that every member has the same samples
    opening = folder.check_run("ensemble", identity, about={"data": data} if data else None)
    preds = average_runs(runs, collapse_seeds, last_epochs)
    configs = [load_config(RunFolder(r).file(RunFolder.CONFIG)) for r in runs]
    config = configs[0]
    config.name = "ensemble-" + "+".join(c.name for c in configs) + ("-seeds" if collapse_seeds else "")
    if any(c.protocol.selection == "paper" for c in configs):
        config.protocol.selection = "paper"  # a test-selected member makes the ensemble test-selected
    classes = tuple(c[len("prob_"):] for c in preds.columns if c.startswith("prob_"))
    how = ("over each run's seeds, then over the runs" if collapse_seeds else "per seed, over the runs")
    how += (f", each run's last {last_epochs} recorded epochs first" if last_epochs else "")
    members = [{"run": str(r), "model": c.model.name, "preset": c.model.preset or "paper",
                "seeds": sorted(int(s) for s in c.protocol.seeds), "selection": c.protocol.selection}
               for r, c in zip(runs, configs)]
    described = {"combined": f"class probabilities averaged {how}, with equal weights; no label was read to form it",
                 "collapse_seeds": collapse_seeds, "members": members}
    side = {"notes": [], "diagnostics": {}, "ground_truth_inputs": [], "ensemble": described}
    folder.claim(opening, {RunFolder.CONFIG: lambda p: dump_config(config, p)})
    write_json(folder.file(RunFolder.DATA_NOTES), side)
    metrics = write_outputs(folder.path, config.resolve(), preds, classes, **side, subset=data.get("subset"),
                            figure_format=figure_format)
    return RunResult(folder.path, config, preds, metrics, folder.file(RunFolder.REPORT), time.perf_counter() - start)


def _read_saved(path: Path, read):
    """``read(path)`` of a file a run wrote, a damaged one reported as a :class:`ConfigError` naming it."""
    try:
        return read(path)
    except (ValueError, UnicodeDecodeError, _pandas().errors.ParserError) as error:  # JSONDecodeError is a ValueError
        raise ConfigError(f"{path} is damaged ({str(error).splitlines()[0]}); rerun merkit evaluate with the same "
                          "--out to rebuild it from the run's units") from error


def distinct_names(paths: list[str | Path]) -> list[str]:
    """Row names for run folders: each folder's shortest path suffix that no other folder shares (``x/run`` and
    ``y/run`` for two folders named ``run``; ``run`` alone when it is unique). A folder listed twice, or one that
    only its whole path tells apart, is named by its absolute path."""
    parts = [Path(p).absolute().parts for p in paths]
    names = []
    for i, mine in enumerate(parts):
        others = [p for j, p in enumerate(parts) if j != i and p != mine]
        for k in range(1, len(mine)):  # the root part aside
            if all(p[-k:] != mine[-k:] for p in others):
                names.append("/".join(mine[-k:]))
                break
        else:
            names.append(str(Path(paths[i]).absolute()))
    return names


def compare_runs(run_dirs: list[str | Path]):
    """Several run folders side by side (:class:`merkit.evaluation.tables.Comparison`): each run's metrics, rows
    named by :func:`distinct_names`, and why rows are not comparable (``problems``: other data or samples, a subset
    beside all the data, another split, a test-selected protocol beside an honest one).

    Raises:
        ConfigError: a folder without ``metrics.json``, or a damaged one.
    """
    from merkit.evaluation.tables import Comparison

    if not run_dirs:
        raise ConfigError("compare needs at least one run folder")
    rows = []
    for name, d in zip(distinct_names(run_dirs), run_dirs):
        path = RunFolder(d).file(RunFolder.METRICS)
        if not path.is_file():
            raise ConfigError(f"{path} not found: run `merkit report {d}` first")
        rows.append((name, _read_saved(path, lambda p: json.loads(p.read_text()))))
    return Comparison(rows)


def compare(run_dirs: list[str | Path], format: str = "markdown") -> str:
    """One table over several run folders (:func:`compare_runs`): per run its protocol, seeds, samples, subjects
    and data, then full-set and per-part UF1/UAR (mean ± std over seeds).

    Args:
        format: ``markdown`` (a ``warning: not comparable: ...`` line under the table for each run that is not
            comparable with the first), ``latex`` (booktabs; protocol, data, subsets and those warnings in the
            caption) or ``csv`` (one row per run and part, full precision).

    Raises:
        ConfigError: a folder without ``metrics.json``, or a damaged one; an unknown format.
    """
    from merkit.boundary import check

    check("compare", format=(Literal["markdown", "latex", "csv"], format))
    comparison = compare_runs(run_dirs)
    return {"markdown": comparison.markdown, "latex": comparison.latex, "csv": comparison.csv}[format]()


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

    The checkpoint records the training clips' onset->apex and onset->offset times (``domain``,
    :func:`merkit.evaluation.domain.table_domain`) where the samples carry frame annotations from datasets of known
    frame rate, so that predictions are checked against them.

    Returns:
        The checkpoint folder.

    Raises:
        ConfigError: the config lists ``protocol.members`` (an ensemble, not one model).
        ConfigError, DataError: as :func:`evaluate`; ``out_dir`` is a file or a folder other than a merkit
            checkpoint (checked before the data is loaded). OutputError: the disk refused a write. UnitError: the
            training task failed on the cluster.
    """
    from safetensors.torch import load

    from merkit.checkpoint import Checkpoint
    from merkit.inputs import Preprocessing

    plan = config.resolve()
    if plan.protocol.members:
        raise ConfigError("merkit train makes one model's checkpoint; protocol.members is an ensemble of several: "
                          "train each member's config on its own")
    CheckpointFolder(out_dir).check()  # before the data is loaded and the model trained
    data = _inputs(plan, features)
    seed = plan.protocol.seeds[0] if seed is None else seed
    weights, device, keys, environment = _train_task(plan, data, seed)
    summary = {
        "samples": len(data), "subjects": int(data.table["subject_id"].nunique()),
        "per_class": {c: int((data.table["label"] == i).sum()) for i, c in enumerate(data.classes)},
        "datasets": sorted(map(str, data.table["dataset"].unique())), "fingerprint": data.fingerprint(),
        "notes": data.notes,
    }
    if data.meta.get("subset"):
        summary["subset"] = data.meta["subset"]
    record = Preprocessing.from_dict(data.meta["preprocessing"], "training data") if data.meta.get(
        "preprocessing") else config.data.preprocessing
    from merkit.evaluation.domain import table_domain

    checkpoint = Checkpoint(config.model.name, config.model.preset, dict(config.model.params), tuple(data.classes),
                            keys, record, config, seed, device, environment, summary,
                            domain=table_domain(data.table))
    return checkpoint.save(out_dir, load(weights))


def _train_task(plan: Plan, data: FeatureSet, seed: int):
    """:func:`merkit.training.final.train_model` on the executor (:func:`merkit.cluster.executor`): in this
    process, or as one task on the cluster at ``protocol.address`` asking for ``threads_per_fold`` CPUs and, on
    CUDA, one GPU (at most)."""
    from merkit.cluster import cluster_address, executor, gpu_share
    from merkit.errors import UnitError
    from merkit.training.final import train_model

    r, got = plan.resources, []
    with executor(1, r.address, r.threads_per_fold) as ex:
        gpus = 0.0 if ex.in_process else min(1.0, gpu_share(r.device, r.gpus_per_fold, r.workers,
                                                               ex.cluster_gpus) * r.workers)
        failures = ex.run(train_model, [(plan.protocol.own, data, seed, r.threads_per_fold)], ["training"],
                          lambda i, result, node: got.append(result), num_cpus=r.threads_per_fold, num_gpus=gpus,
                          max_retries=r.max_retries)
    if failures:
        raise UnitError(f"training failed on the cluster at {cluster_address(r.address)}: {failures[0][1]}")
    return got[0]


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
            one, :data:`merkit.predict.scan.SPOT_FACE` and no labels.
        config: the spotting settings (:class:`merkit.motion.spotting.SpotConfig`; default its defaults).
        kinds: the ground-truth kinds to find (the others, e.g. ``macro``, are distractors).
        step: keep every ``step``-th frame.
        iou: the IoU of a hit.
        log: a callable that receives one line per video.

    Returns:
        :class:`merkit.evaluation.spotting.SpottingRun`.

    Raises:
        DataError: see :func:`merkit.evaluation.spotting.load_spotting_set` and
            :func:`merkit.predict.scan.spot_video`; CheckpointError: see :meth:`Predictor.from_pretrained`.
    """
    from merkit.evaluation.spotting import load_spotting_set, score_spotting_set
    from merkit.files import write_atomic
    from merkit.motion.spotting import SpotConfig
    from merkit.predict.scan import SPOT_FACE, spot_video

    config = config or SpotConfig()
    dataset = load_spotting_set(data)
    dataset.ground_truth(kinds)  # a kind the set lacks is an error before any output, not zero ground truths
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    predictor, face = None, SPOT_FACE
    if checkpoint is not None:
        from merkit.predict import Predictor

        predictor = Predictor.from_pretrained(checkpoint)
        face = predictor.preprocessing.face

    def spot(video):
        if predictor is not None:
            return predictor.spot(video.path, config, step=step, fps=video.fps)
        return spot_video(video.path, config, face, step=step, fps=video.fps)

    settings = {"checkpoint": None if checkpoint is None else str(checkpoint), "face": face.to_dict(), "step": step}
    run = score_spotting_set(dataset, spot, config, kinds, iou, labelled=predictor is not None, settings=settings,
                             log=log)
    write_json(out / "spotting.json", run.summary)
    for name, table in (("spotted.csv", run.spotted), ("matches.csv", run.matches), ("pr.csv", run.pr),
                        ("windows.csv", run.windows)):
        write_atomic(out / name, lambda p, t=table: t.to_csv(p, index=False))
    run.out_dir = out
    return run


def calibrate(run_dir: str | Path, checkpoint: str | Path, annotations: str | Path | None = None) -> dict:
    """Complete a checkpoint's trust record: the temperature fitted on a LOSO run's out-of-fold predictions of
    the same recipe, and (with ``annotations``) the composite's clip durations as its domain statistics.

    Only ``CKPT/checkpoint.json`` is rewritten (atomically, its other keys kept) and ``CKPT/calibration.png``
    (the reliability diagram before and after) written; the weights are not touched.

    Args:
        run_dir: a finished ``merkit evaluate`` LOSO run folder with an honest selection
            (:func:`merkit.evaluation.calibration.read_out_of_fold`).
        checkpoint: a checkpoint folder (``merkit train``), e.g. the packaged model's.
        annotations: the official sheets folder (``../shared/data/annotations``): records
            :func:`merkit.evaluation.domain.composite_domain` as the checkpoint's ``domain``.

    Returns:
        The checkpoint's new ``calibration`` record.

    Raises:
        ConfigError: a run that is not LOSO, a test-selected one, in-sample predictions, or classes that differ
            from the checkpoint's. CheckpointError: not a checkpoint folder. DataError: from the sheets.
    """
    from merkit.checkpoint import Checkpoint
    from merkit.evaluation.calibration import calibrate_run, reliability_figure

    folder = Path(checkpoint)
    meta = Checkpoint.read_record(folder)
    record, oof = calibrate_run(run_dir)
    if tuple(meta["classes"]) != oof.classes:
        raise ConfigError(f"{run_dir} predicts classes {list(oof.classes)}, the checkpoint {folder} "
                          f"{list(meta['classes'])}: calibrate a checkpoint with a run of its own recipe")
    domain = None
    if annotations is not None:
        from merkit.evaluation.domain import composite_domain

        domain = composite_domain(annotations)
    reliability_figure(oof, record, folder / "calibration.png")
    Checkpoint.update_record(folder, calibration=record, **({"domain": domain} if domain else {}))
    return record
