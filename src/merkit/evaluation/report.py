"""Run reports: ``metrics.json``, ``report.md``, the confusion-matrix figure and the MEGC2019 log files.

Everything is regenerated from a run folder's ``config.yaml`` and ``predictions.csv`` (``merkit report RUN``), so
a report can never disagree with the predictions it summarises. Every table states the selection protocol.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from merkit.config import DEFAULT_RECIPE, Plan, TrainConfig
from merkit.evaluation.tables import (data_summary, data_text, part_frame, run_caption, run_latex, scope_text,
                                      subset_text)
from merkit.files import text_writer, write_atomic
from merkit.runfolder import RunFolder

PAPER_PROTOCOL_LABEL = "PAPER PROTOCOL: best epoch chosen on each test subject (test-selected, optimistic)"


def protocol_label(plan: Plan) -> str:
    """The selection protocol in one line, as every table of a report states it."""
    p = plan.protocol
    if p.selection == "paper":
        return PAPER_PROTOCOL_LABEL
    if p.selection == "inner":
        recipes = f" and the recipe among {[r.name for r in p.candidates]}" if p.candidates else ""
        label = (f"honest: epoch count{recipes} chosen on {p.inner_folds} inner folds of the training subjects "
                 "(pooled inner UF1), outer test labels never read")
    elif p.members:
        return f"honest: each member's fixed epochs, last epoch evaluated; {members_weighting(plan)}"
    else:
        label = f"honest: fixed {p.own.training.epochs} epochs, last epoch evaluated"
    return label + (f"; mean of {p.ensemble} models (seeds) per fold" if p.ensemble > 1 else "")


def members_weighting(plan: Plan) -> str:
    """How an ensemble across architectures (``protocol.members``) weighs its members, in one phrase."""
    p = plan.protocol
    names = " + ".join(r.name for r in p.members)
    if p.member_weights == "equal":
        return f"ensemble of {names}, equal weights fixed in advance"
    return (f"ensemble of {names}, weights chosen per fold by stacking on the out-of-fold predictions of "
            f"{p.inner_folds} inner folds of the training subjects (log loss), outer test labels never read")


def members_lines(plan: Plan) -> list[str]:
    """The report's model lines of an ensemble across architectures: every member's model and training."""
    lines = [f"- model: {members_weighting(plan)}"]
    for r in plan.protocol.members:
        params = f", params {dict(r.model.params)}" if r.model.params else ""
        lines.append(f"  - member `{r.name}`: `{r.model.name}` (preset `{r.model.preset or 'paper'}`){params}; "
                     f"training: {training_recipe(r.training)}")
    return lines


def split_label(plan: Plan) -> str:
    """The fold protocol in one line."""
    p = plan.protocol
    if p.split == "lodo":
        return ("leave-one-dataset-out: each dataset held out in turn, trained on the others (a part's row is "
                "its held-out fold)")
    if p.split == "train-test":
        return f"cross-dataset: trained on {list(p.train_on)}, tested on {list(p.test_on)}"
    return "leave-one-subject-out"


def render_choices(choices: list[dict]) -> list[str]:
    """The report section on what inner selection chose (``choices/seed<S>/<fold>.json``), or on the member
    weights of an ensemble across architectures."""
    table = pd.DataFrame(choices)
    if "weights" in table.columns:
        return render_member_weights(table)
    lines = ["## Inner selection", "",
             f"What the inner folds chose, over {len(table)} units (folds x seeds). The outer test subject's labels "
             "were never read to choose.", "", "| chosen epochs | units |", "|---|---|"]
    lines += [f"| {epochs} | {count} |" for epochs, count in table["epochs"].value_counts().sort_index().items()]
    lines += ["", f"Median {int(table['epochs'].median())}, range {int(table['epochs'].min())}-"
                  f"{int(table['epochs'].max())}.", ""]
    if table["recipe"].nunique() > 1 or table["recipe"].iloc[0] != DEFAULT_RECIPE:
        lines += ["| recipe | units |", "|---|---|"]
        lines += [f"| {recipe} | {count} |" for recipe, count in table["recipe"].value_counts().items()]
        lines.append("")
    return lines


def render_member_weights(table: pd.DataFrame) -> list[str]:
    """The report section on the member weights of ``protocol.members`` units (one row per unit)."""
    weights = pd.DataFrame(list(table["weights"]))
    inner = table["weighting"].iloc[0] == "inner"
    lines = ["## Member weights", "",
             (f"Chosen per unit (folds x seeds, {len(table)} units) by stacking on the inner folds' out-of-fold "
              "predictions; the outer test subject's labels were never read." if inner else
              f"Equal, fixed in advance ({len(table)} units)."), "",
             "| member | mean weight | min | max |", "|---|---|---|---|"]
    lines += [f"| {m} | {weights[m].mean():.3f} | {weights[m].min():.3f} | {weights[m].max():.3f} |"
              for m in weights.columns]
    return lines + [""]


def training_recipe(t: TrainConfig) -> str:
    """One line for reports: the optimiser, schedule, batch, epochs and every training augmentation with its
    parameters, so that a report says, for example, that a recipe adds a random crop its paper does not list."""
    batch = f"batch {t.batch_size}" + (f" x {t.grad_accumulation} accumulated" if t.grad_accumulation > 1 else "")
    hooks = [name + (f" {t.augment_params[name]}" if name in t.augment_params else "") for name in t.augment]
    return (f"{t.optimizer} lr {t.lr:g}, weight decay {t.weight_decay:g}, scheduler {t.scheduler}, {batch}, "
            f"{t.epochs} epochs" + (", class-weighted loss" if t.class_weighted else "")
            + f"; augmentation (training only): {', '.join(hooks) if hooks else 'none'}")


def published_results(benchmark: str | None = None) -> pd.DataFrame:
    """Published figures kept in the package (``resources/published_results.csv``), optionally for one benchmark.

    Columns: method, source, selection (how the paper chose its model), input, benchmark, classes, scope,
    acc, f1, uf1, uar.
    """
    with resources.files("merkit.resources").joinpath("published_results.csv").open() as fh:
        df = pd.read_csv(fh)
    return df if benchmark is None else df[df["benchmark"] == benchmark].reset_index(drop=True)


def _fmt(stat: dict) -> str:
    if stat["mean"] != stat["mean"]:  # nan
        return "n/a"
    if len(stat["values"]) > 1:
        return f"{stat['mean']:.4f} ± {stat['std']:.4f}"
    return f"{stat['mean']:.4f}"


def save_confusion_png(confusion: np.ndarray, classes: list[str], path: Path, title: str) -> None:
    """Write :func:`confusion_figure` as a PNG, atomically."""
    fig = confusion_figure(confusion, classes, title)
    write_atomic(path, lambda p: fig.savefig(p))


def mean_confusion(metrics: dict) -> np.ndarray:
    """The full set's confusion matrix (rows = ground truth) as mean counts per seed, so that each row sums to the
    class's sample count however many seeds the run has (:func:`merkit.evaluation.metrics.summarize_run`'s
    ``per_seed``)."""
    return np.mean([np.asarray(m["full"]["confusion"], dtype=float) for m in metrics["per_seed"].values()], axis=0)


def confusion_figure(confusion: np.ndarray, classes: list[str], title: str):
    """Row-normalised confusion matrix with counts, rows = ground truth (a :class:`matplotlib.figure.Figure`).
    ``confusion`` may hold mean counts over seeds (:func:`mean_confusion`); they are shown with one decimal where
    they are not whole."""
    from matplotlib.figure import Figure

    counts = np.asarray(confusion, dtype=float)
    rates = counts / np.clip(counts.sum(axis=1, keepdims=True), 1, None)
    fig = Figure(figsize=(1.3 * len(classes) + 2, 1.2 * len(classes) + 1.5), dpi=100)
    ax = fig.subplots()
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            count = f"{counts[i, j]:.0f}" if float(counts[i, j]).is_integer() else f"{counts[i, j]:.1f}"
            ax.text(j, i, f"{rates[i, j]:.2f}\n({count})", ha="center", va="center",
                    color="white" if rates[i, j] > 0.6 else "black", fontsize=9)
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("prediction")
    ax.set_ylabel("ground truth")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def ground_truth_warning(keys: list[str]) -> str:
    return (f"WARNING: oracle input: this run feeds ground-truth annotations ({', '.join(keys)}) to the model at test "
            "time; its figures are not comparable with methods that see only the video.")


def save_curve_png(curve: pd.DataFrame, path: Path, title: str) -> None:
    """Write :func:`curve_figure` as a PNG, atomically."""
    fig = curve_figure(curve, title)
    write_atomic(path, lambda p: fig.savefig(p))


def curve_figure(curve: pd.DataFrame, title: str):
    """UF1 and UAR of :func:`merkit.evaluation.metrics.epoch_curve` against the epoch (a matplotlib Figure)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(6, 3.5), dpi=100)
    ax = fig.subplots()
    ax.plot(curve["epoch"], curve["uf1"], label="UF1")
    ax.plot(curve["epoch"], curve["uar"], label="UAR")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.set_ylabel("pooled over held-out subjects")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def render_curve(curve: pd.DataFrame, units: int) -> list[str]:
    """The report section for :func:`merkit.evaluation.metrics.epoch_curve` (a run with ``record_epochs``)."""
    lines = ["## Test-set learning curve (diagnostic)", "",
             "UF1 and UAR pooled over the held-out subjects after each epoch, the same epoch for every fold (mean "
             "over seeds). **An epoch chosen from this table is chosen on the test subjects**: a recipe picked "
             "with it must be reported on seeds it was not picked on.", ""]
    if int(curve["folds"].min()) < units:
        lines += [f"Some units have no recorded curve (resumed from a run without `record_epochs`); the curve "
                  f"covers as few as {int(curve['folds'].min())} of {units} folds per seed.", ""]
    lines += ["| epoch | UF1 | UAR | accuracy |", "|---|---|---|---|"]
    lines += [f"| {r.epoch} | {r.uf1:.4f} | {r.uar:.4f} | {r.accuracy:.4f} |" for r in curve.itertuples()]
    return lines + ["", "![test-set learning curve](epoch_curve.png)", ""]


def ensemble_lines(ensemble: dict) -> list[str]:
    """The report's header lines of an averaged run: how it was combined, then each member."""
    lines = [f"- model: ensemble of {len(ensemble['members'])} runs ({ensemble['combined']})"]
    lines += [f"  - member `{m['model']}` (preset `{m['preset']}`), seeds {m['seeds']}, selection {m['selection']}: "
              f"`{m['run']}`" for m in ensemble["members"]]
    return lines


def seed_line(seeds: list, ensemble: dict | None) -> str:
    """The report's seed line; an ensemble with collapsed seeds has one averaged prediction per sample."""
    if ensemble and ensemble.get("collapse_seeds"):
        return (f"- seeds: each member's seeds averaged into one prediction per sample (numbered seed {seeds[0]} "
                "in predictions.csv)")
    return f"- seeds: {seeds} (figures are mean ± sample std over seeds)" if len(seeds) > 1 else f"- seed: {seeds[0]}"


def run_label(model: str, ensemble: dict | None) -> str:
    """A run's name in tables: its model, or ``ensemble of a + b`` naming every member's model."""
    return "ensemble of " + " + ".join(m["model"] for m in ensemble["members"]) if ensemble else model


def render_report(plan: Plan, metrics: dict, notes: list[str], diagnostics: dict[str, int],
                  ground_truth_inputs: list[str] | None = None, curve: list[str] | None = None,
                  choices: list[str] | None = None, ensemble: dict | None = None) -> str:
    """The Markdown report of a run; ``curve`` and ``choices`` are the optional :func:`render_curve` and
    :func:`render_choices` sections; ``ensemble`` as :func:`write_outputs`. A run on a subset
    (``metrics["data"]["subset"]``) says so in its header and above every table."""
    summary = metrics["summary"]
    seeds = metrics["seeds"]
    data = metrics.get("data") or {}
    scope = _subset_lines(data)
    lines = _header(plan, metrics, notes, ground_truth_inputs, ensemble)
    lines += ["", "## Results", "", *scope, "| part | UF1 | UAR | accuracy | samples |", "|---|---|---|---|---|"]
    first = metrics["per_seed"][seeds[0]]
    for part, stat in summary.items():
        lines.append(f"| {part} | {_fmt(stat['uf1'])} | {_fmt(stat['uar'])} | {_fmt(stat['accuracy'])} | "
                     f"{first[part]['n']} |")
    absent = {p: m["absent_classes"] for p, m in first.items() if m["absent_classes"]}
    for part, cls in absent.items():
        names = [metrics["classes"][c] for c in cls]
        lines.append(f"\n{part}: classes {names} have no sample there; its macro averages run over the others.")
    lines += ["", "Per class (full set, pooled over folds" + (", mean over seeds" if len(seeds) > 1 else "") + "):",
              "", *scope, "| class | precision | recall | F1 | samples |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {c['precision']:.4f} | {c['recall']:.4f} | {c['f1']:.4f} | {c['support']} |"
              for name, c in metrics["per_class"].items()]
    fold_mean = np.mean([m["uf1"] for m in metrics["per_fold_mean"].values()])
    lines += ["", f"Secondary figure, not comparable with the pooled ones: per-fold mean UF1 {fold_mean:.4f}.",
              "", "![confusion matrix, mean counts per seed](confusion.png)", ""]
    lines += _published_section(plan, summary, data, ensemble)
    lines += _under_heading(choices or [], scope)
    lines += _under_heading(curve or [], scope)
    lines += ["## Data problems", ""]
    if diagnostics:
        lines += [f"- {kind}: {count}" for kind, count in sorted(diagnostics.items())]
    else:
        lines.append("- none recorded")
    lines.append("")
    return "\n".join(lines)


def _header(plan: Plan, metrics: dict, notes: list[str], ground_truth_inputs: list[str] | None,
            ensemble: dict | None) -> list[str]:
    """The report's title and its list of what was run: model (or an ensemble's members), data (with its counts,
    and the subset in bold), training, protocol, selection, seeds and notes."""
    seeds, data = metrics["seeds"], metrics.get("data") or {}
    lines = [f"# merkit run: {plan.name}", ""]
    model, config = plan.protocol.own.model, plan.data
    if ground_truth_inputs:
        lines += [f"> **{ground_truth_warning(ground_truth_inputs)}**", ""]
    lines += ensemble_lines(ensemble) if ensemble else members_lines(plan) if plan.protocol.members else [
        f"- model: `{model.name}` (preset `{model.preset or 'paper'}`)"
        + (f", params {dict(model.params)}" if model.params else "")]
    lines.append(f"- data: `{config.kind}`" + (f" ({config.benchmark})" if config.benchmark else "")
                 + f", class scheme `{config.scheme}` ({', '.join(metrics['classes'])})"
                 + (f"; {scope_text(data)} ({', '.join(data['datasets'])})" if data else ""))
    if subset_text(data):
        lines.append(f"- **{subset_text(data)}**")
    lines += [
        *([] if ensemble or plan.protocol.members else
          [f"- training: {training_recipe(plan.protocol.own.training)}"]),
        f"- protocol: {split_label(plan)}, metrics pooled over all folds (MEGC2019 definitions)",
        f"- **selection: {protocol_label(plan)}**",
        seed_line(seeds, ensemble),
    ]
    return lines + [f"- note: {n}" for n in notes]


def _subset_lines(data: dict) -> list[str]:
    """The line a subset run puts above each table of its report (none for a run on all the data)."""
    return [f"*Subset: {scope_text(data)}, not the whole {data_text(data)}.*", ""] if data.get("subset") else []


def _under_heading(section: list[str], scope: list[str]) -> list[str]:
    """``section`` (a ``## heading``, a blank line, then text and tables) with ``scope`` under its heading."""
    return section[:2] + scope + section[2:] if section and scope else section


def _published_section(plan: Plan, summary: dict, data: dict, ensemble: dict | None) -> list[str]:
    """The published figures of ``data.benchmark`` beside this run's, only for a run on the whole benchmark; a run
    on a subset says why they are absent."""
    benchmark = plan.data.benchmark
    published = published_results(benchmark) if benchmark else pd.DataFrame()
    if not len(published):
        return []
    if data.get("subset"):
        return ["## Published results on this benchmark", "",
                f"Not shown: this run is on a subset of {benchmark} ({scope_text(data)}), and the published "
                "figures are on the whole benchmark, so they are not comparable with this run's.", ""]
    label = protocol_label(plan)
    lines = ["## Published results on this benchmark", "",
             "Selection says how each paper chose the reported model: a number picked on the test subject "
             "is optimistic and not comparable with an honest last-epoch figure.", "",
             "| method | scope | UF1 | UAR | selection | source |", "|---|---|---|---|---|---|"]
    for r in published.itertuples(index=False):
        uf1 = "" if pd.isna(r.uf1) else f"{r.uf1:.4f}"
        uar = "" if pd.isna(r.uar) else f"{r.uar:.4f}"
        lines.append(f"| {r.method} | {r.scope} | {uf1} | {uar} | {r.selection} | {r.source} |")
    lines += ["", f"This run ({label}):", ""]
    name = ("ensemble of " + " + ".join(r.model.name for r in plan.protocol.members) if plan.protocol.members
            else run_label(plan.protocol.own.model.name, ensemble))
    lines.append(f"| {name} (merkit) | full | "
                 f"{_fmt(summary['full']['uf1'])} | {_fmt(summary['full']['uar'])} | {label} | this run |")
    return lines + [""]


def write_outputs(run_dir: Path, plan: Plan, preds: pd.DataFrame, classes: tuple[str, ...],
                  notes: list[str], diagnostics: dict[str, int], ground_truth_inputs: list[str] | None = None,
                  ensemble: dict | None = None, subset: dict | None = None, tables: tuple[str, ...] = ()) -> dict:
    """Write ``predictions.csv``, ``metrics.json``, ``per_class.csv``, ``report.md``, ``confusion.png``, the MEGC
    logs, the learning curve and the paper tables (:func:`render_outputs`), each atomically, after all of them are
    computed. ``ensemble`` describes an averaged run (:func:`merkit.api.ensemble`): how it was combined and its
    members (run, model, preset, seeds, selection); the report names them instead of one model.

    Returns:
        The metrics (what ``metrics.json`` holds).
    """
    metrics, files = render_outputs(run_dir, plan, preds, classes, notes, diagnostics, ground_truth_inputs, ensemble,
                                    subset, tables)
    for path, write in files.items():
        write_atomic(path, write)
    return metrics


def render_outputs(run_dir: Path, plan: Plan, preds: pd.DataFrame, classes: tuple[str, ...], notes: list[str],
                   diagnostics: dict[str, int], ground_truth_inputs: list[str] | None = None,
                   ensemble: dict | None = None, subset: dict | None = None, tables: tuple[str, ...] = ()):
    """Everything :func:`write_outputs` writes, computed and not yet written.

    Args:
        subset: the inputs' subset record (:mod:`merkit.inputs.select`), ``None`` for all the data; it enters
            ``metrics.json``'s ``data`` (:func:`merkit.evaluation.tables.data_summary`) and the report.
        tables: paper tables to write (``latex``: ``tables.tex``, ``csv``: ``tables.csv``); those the folder
            holds already are rewritten too, so that they never lag ``metrics.json``.

    Returns:
        ``(metrics, files)``: the metrics, and for each output file a writer of its temporary path.
    """
    from merkit.evaluation.megc_log import megc_log_text
    from merkit.evaluation.metrics import summarize_run

    folder = RunFolder(run_dir)
    metrics = summarize_run(preds, classes)
    gt = list(ground_truth_inputs or [])
    label = protocol_label(plan)
    metrics.update(selection=plan.protocol.selection, protocol=label, split=plan.protocol.split,
                   ensemble=plan.protocol.ensemble, notes=notes, diagnostics=diagnostics, ground_truth_inputs=gt,
                   ground_truth_warning=ground_truth_warning(gt) if gt else None,
                   data=data_summary(preds, plan.data.kind, plan.data.benchmark, subset))
    if ensemble:
        metrics["members"] = ensemble["members"]
    choices = None
    kept = [c for c in (json.loads(f.read_text()) for f in folder.unit_files(RunFolder.CHOICES))
            if c.get("seed") in set(preds["seed"])]  # the folder may hold other seeds' units
    if kept:
        metrics["inner_selection"] = [{k: c[k] for k in ("seed", "fold", "recipe", "epochs", "weights") if k in c}
                                      for c in kept]
        choices = render_choices(kept)
    per_class = pd.DataFrame(metrics["per_class"]).T.rename_axis("class")
    seeds = f", mean counts over {len(metrics['seeds'])} seeds" if len(metrics["seeds"]) > 1 else ""
    figure = confusion_figure(mean_confusion(metrics), list(classes), f"{plan.name}: {label}{seeds}")
    files = {folder.file(RunFolder.PREDICTIONS): lambda p: preds.to_csv(p, index=False),
             folder.file(RunFolder.METRICS): text_writer(json.dumps(metrics, indent=2, default=str)),
             folder.file(RunFolder.PER_CLASS): lambda p: per_class.to_csv(p),
             folder.file(RunFolder.CONFUSION): lambda p: figure.savefig(p)}
    if list(classes) == ["negative", "positive", "surprise"]:
        for seed, df in preds.groupby("seed"):
            files[folder.megc_log(seed)] = text_writer(megc_log_text(df))
    curve = _learning_curve(folder, plan, preds, classes, files)
    report = render_report(plan, metrics, notes, diagnostics, gt, curve, choices, ensemble)
    files.update(_paper_tables(folder, plan, metrics, tables, ensemble))
    files[folder.file(RunFolder.REPORT)] = text_writer(report)
    return metrics, files


def _paper_tables(folder: RunFolder, plan: Plan, metrics: dict, tables: tuple[str, ...],
                  ensemble: dict | None = None) -> dict:
    """Writers of the paper tables asked for in ``tables`` and of those the folder already holds: ``tables.tex``
    (:func:`merkit.evaluation.tables.run_latex`, the protocol and subset in its caption) and ``tables.csv``
    (:func:`merkit.evaluation.tables.part_frame`)."""
    tex, csv = folder.file(RunFolder.TABLES_TEX), folder.file(RunFolder.TABLES_CSV)
    latex, frame, files = None, None, {}
    if "latex" in tables or tex.is_file():
        model = plan.protocol.own.model
        title = f"merkit run {plan.name}: " + (run_label(model.name, ensemble) if ensemble else
                                                f"{model.name} (preset {model.preset or 'paper'})")
        over = "each member's seeds averaged into one prediction per sample" if (ensemble or {}).get(
            "collapse_seeds") else None
        latex = run_latex(metrics, run_caption(metrics, title, split_label(plan), over), f"tab:merkit-{plan.name}")
    if "csv" in tables or csv.is_file():
        frame = part_frame(metrics)
        files[csv] = lambda p: frame.to_csv(p, index=False)
    if latex is not None:
        files[tex] = text_writer(latex)
    return files


def _learning_curve(folder: RunFolder, plan: Plan, preds: pd.DataFrame, classes: tuple[str, ...],
                    files: dict) -> list[str] | None:
    """The report's learning-curve section, with its table and figure added to ``files``; ``None`` when the run
    recorded no epochs of these seeds."""
    curve_files = folder.unit_files(RunFolder.EPOCHS)
    if not curve_files:
        return None
    from merkit.evaluation.metrics import epoch_curve

    curves = pd.concat([pd.read_csv(f) for f in curve_files], ignore_index=True)
    curves = curves[curves["seed"].isin(preds["seed"].unique())]  # the folder may hold other seeds' units
    if not len(curves):
        return None
    table = epoch_curve(curves, len(classes))
    figure = curve_figure(table, f"{plan.name}: test-set learning curve (diagnostic)")
    files[folder.file(RunFolder.EPOCH_CURVE)] = lambda p: table.to_csv(p, index=False)
    files[folder.file(RunFolder.EPOCH_CURVE_PNG)] = lambda p: figure.savefig(p)
    return render_curve(table, preds["fold"].nunique())
