"""Run reports: ``metrics.json``, ``report.md``, the figures and the MEGC2019 log files.

Everything is regenerated from a run folder's ``config.yaml``, ``predictions.csv`` and unit files (learning
curves, training losses, inner-selection choices) (``merkit report RUN``), so a report can never disagree with
the predictions it summarises. Every table and figure states the selection protocol. Figures (confusion matrices
of the full set and of each dataset, as mean counts per seed and row-normalised; the per-epoch curves) use
matplotlib's object API and are written as PNG at 300 dpi, PDF or SVG (``figure_format``).
"""

from __future__ import annotations

import json
import textwrap
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from merkit.boundary import did_you_mean
from merkit.config import DEFAULT_RECIPE, Plan, TrainConfig
from merkit.errors import ConfigError, DataError
from merkit.evaluation.tables import (data_summary, data_text, part_frame, run_caption, run_latex, scope_text,
                                      subset_text)
from merkit.files import text_writer, write_atomic
from merkit.runfolder import FIGURE_FORMATS, PNG_DPI, RunFolder

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
    optimizer = t.optimizer + (" (fused)" if t.fused_optimizer else "")
    return (f"{optimizer} lr {t.lr:g}, weight decay {t.weight_decay:g}, scheduler {t.scheduler}, {batch}, "
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


#: How a report names each figure format.
FIGURE_NAMES = {"png": f"PNG, {PNG_DPI} dpi", "pdf": "PDF", "svg": "SVG"}


def save_figure(figure, path: str | Path) -> Path:
    """Write a :class:`matplotlib.figure.Figure` atomically in the format of ``path``'s suffix
    (:data:`merkit.runfolder.FIGURE_FORMATS`; PNG at :data:`~merkit.runfolder.PNG_DPI` dpi).

    Raises:
        ConfigError: another suffix. OutputError: the disk refused the write.
    """
    path = Path(path)
    return write_atomic(path, figure_writer(figure, path.suffix.lstrip(".").lower()))


def figure_writer(figure, figure_format: str):
    """A writer of ``figure`` in ``figure_format`` (png, pdf or svg) for :func:`merkit.files.write_atomic`: PNG at
    :data:`~merkit.runfolder.PNG_DPI` dpi; PDF and SVG without a date and with fixed SVG ids, so that the same
    figure gives the same bytes.

    Raises:
        ConfigError: another format.
    """
    if figure_format not in FIGURE_FORMATS:
        raise ConfigError(f"figure format {figure_format!r} is not one of {FIGURE_FORMATS}"
                          f"{did_you_mean(figure_format, FIGURE_FORMATS)}")
    metadata = {"pdf": {"CreationDate": None}, "svg": {"Date": None}}.get(figure_format)
    return lambda path: _fixed_svg_ids(lambda: figure.savefig(path, format=figure_format, dpi=PNG_DPI,
                                                              metadata=metadata))


def _fixed_svg_ids(save) -> None:
    """Run ``save()`` with a fixed salt for the ids of SVG elements (matplotlib draws random ones otherwise)."""
    import matplotlib

    with matplotlib.rc_context({"svg.hashsalt": "merkit"}):
        save()


def mean_confusion(metrics: dict, part: str = "full") -> np.ndarray:
    """The confusion matrix of one part (``"full"`` or a dataset; rows = ground truth) as mean counts per seed,
    float (K, K), so that each row sums to the class's sample count in that part and the matrix to the part's
    sample count, however many seeds the run has (:func:`merkit.evaluation.metrics.summarize_run`'s
    ``per_seed``)."""
    return np.mean([np.asarray(m[part]["confusion"], dtype=float) for m in metrics["per_seed"].values()
                    if part in m], axis=0)


def normalised_confusion(confusion: np.ndarray) -> np.ndarray:
    """``confusion`` with each row divided by its sum (float (K, K)): each row of a class with samples sums to 1,
    the row of a class with none is NaN."""
    counts = np.asarray(confusion, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, counts / np.where(totals > 0, totals, 1), np.nan)


def _count(value: float) -> str:
    """A count as a whole number, or with one decimal where a mean over seeds is not whole."""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def confusion_figure(confusion: np.ndarray, classes: list[str], title: str, normalised: bool = False):
    """A confusion matrix, rows = ground truth (a :class:`matplotlib.figure.Figure`).

    Args:
        confusion: float (K, K) counts, e.g. mean counts per seed (:func:`mean_confusion`; shown with one decimal
            where they are not whole).
        normalised: show each row's shares (:func:`normalised_confusion`, rows sum to 1) instead of the counts.

    Each row's label gives the class's sample count; a class without samples has an empty row ("-").
    """
    from matplotlib.figure import Figure

    counts = np.asarray(confusion, dtype=float)
    values = normalised_confusion(counts) if normalised else counts
    k = len(classes)
    top = 1.0 if normalised else max(float(np.nanmax(values)) if values.size else 1.0, 1.0)
    fig = Figure(figsize=(1.3 * k + 2.8, 1.2 * k + 1.6), dpi=100)
    ax = fig.subplots()
    image = ax.imshow(np.nan_to_num(values), cmap="Blues", vmin=0, vmax=top)
    for i in range(k):
        for j in range(k):
            v = values[i, j]
            text = "-" if np.isnan(v) else (f"{v:.2f}" if normalised else _count(v))
            ax.text(j, i, text, ha="center", va="center", fontsize=9,
                    color="white" if not np.isnan(v) and v > 0.6 * top else "black")
    ax.set_xticks(range(k), classes, rotation=30, ha="right")
    ax.set_yticks(range(k), [f"{c} ({_count(n)})" for c, n in zip(classes, counts.sum(axis=1))])
    ax.set_xlabel("prediction")
    ax.set_ylabel("ground truth (samples)")
    fig.colorbar(image, ax=ax, fraction=0.05, label="share of the row" if normalised else "samples")
    ax.set_title(textwrap.fill(title, 56), fontsize=8)
    fig.tight_layout()
    return fig


def _confusion_figures(folder: RunFolder, plan: Plan, metrics: dict, classes: list[str], label: str,
                       figure_format: str) -> tuple[dict, list[str]]:
    """The confusion matrices of the full set and of each dataset, as mean counts per seed and row-normalised:
    their writers (path -> writer) and the report's lines that show and list them.

    Raises:
        DataError: two parts would write the same file (dataset ids that differ only where a file name cannot).
    """
    seeds = len(metrics["seeds"])
    per_seed = f"mean counts per seed over {seeds} seeds" if seeds > 1 else "counts"
    files, rows = {}, []
    for part in metrics["summary"]:
        names = []
        for normalised in (False, True):
            what = "row-normalised (rows sum to 1)" if normalised else per_seed
            title = f"{plan.name}, {'full set' if part == 'full' else part}: {what}; {label}"
            write = figure_writer(confusion_figure(mean_confusion(metrics, part), classes, title, normalised),
                                  figure_format)
            path = folder.confusion(part, normalised, figure_format)
            if path in files:
                raise DataError(f"the confusion matrices of two parts would both be written to {path.name}; "
                                f"rename the dataset {part!r}")
            files[path] = write
            names.append(path.name)
        rows.append(f"| {part} | [{names[0]}]({names[0]}) | [{names[1]}]({names[1]}) |")
    full = folder.confusion("full", False, figure_format).name
    lines = [f"![confusion matrix of the full set, {per_seed}]({full})", "",
             f"Confusion matrices (rows: ground truth; {FIGURE_NAMES[figure_format]}): {per_seed}, so that a row "
             "sums to the class's samples, and row-normalised, so that a row sums to 1 (its recall on the "
             "diagonal).", "", f"| part | {per_seed} | row-normalised |", "|---|---|---|", *rows, ""]
    return files, lines


def ground_truth_warning(keys: list[str]) -> str:
    return (f"WARNING: oracle input: this run feeds ground-truth annotations ({', '.join(keys)}) to the model at test "
            "time; its figures are not comparable with methods that see only the video.")


LOSS_NOTE = ("Training loss: the mean, over each epoch's training rows, of the loss the optimiser minimised "
             "(cross-entropy, class-weighted where the recipe says so, plus any auxiliary losses of the model), in "
             "training mode with the training augmentations, then averaged over the units (folds x seeds x "
             "ensemble members); the shaded band is its range over the units. It reads no test data.")


def curve_figure(curve: pd.DataFrame | None, title: str, losses: pd.DataFrame | None = None):
    """Per-epoch curves (a matplotlib Figure): UF1 and UAR of :func:`merkit.evaluation.metrics.epoch_curve`
    against the epoch and, beside them, the mean training loss of :func:`merkit.evaluation.metrics.loss_curve`
    (its range over units shaded); either may be ``None``. Epoch ticks are whole numbers."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panels = [name for name, table in (("curve", curve), ("loss", losses)) if table is not None]
    fig = Figure(figsize=(5.5 * len(panels) + 0.5, 3.5), dpi=100)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, name in zip(axes, panels):
        if name == "curve":
            ax.plot(curve["epoch"], curve["uf1"], label="UF1")
            ax.plot(curve["epoch"], curve["uar"], label="UAR")
            ax.set_ylabel("pooled over held-out subjects")
            ax.set_ylim(0, 1)
            ax.set_title("test-set learning curve (diagnostic)", fontsize=9)
        else:
            ax.fill_between(losses["epoch"], losses["train_loss_min"], losses["train_loss_max"], alpha=0.2,
                            color="tab:grey", label="range over units")
            ax.plot(losses["epoch"], losses["train_loss"], color="tab:red", label="mean training loss")
            ax.set_ylabel("training loss")
            ax.set_ylim(bottom=0)
            ax.set_title("training loss", fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def loss_lines(losses: pd.DataFrame, units: int) -> list[str]:
    """What the report says about the training loss (:func:`merkit.evaluation.metrics.loss_curve`), and how many
    of the run's ``units`` ((seed, fold) pairs) recorded it."""
    covered = int(losses["units"].max())
    missing = [f"Only {covered} of the {units} units recorded it (the others finished before merkit recorded the "
               "training loss).", ""] if covered < units else []
    return [LOSS_NOTE, "", *missing]


def render_curve(curve: pd.DataFrame, units: int, figure: str = "epoch_curve.png",
                 losses: pd.DataFrame | None = None, loss_units: int = 0) -> list[str]:
    """The report section for :func:`merkit.evaluation.metrics.epoch_curve` (a run with ``record_epochs``), with
    the mean training loss (:func:`merkit.evaluation.metrics.loss_curve`) where it was recorded; ``units``: folds
    per seed, ``loss_units``: (seed, fold) units of the run, ``figure``: the figure's file name."""
    lines = ["## Test-set learning curve (diagnostic)", "",
             "UF1 and UAR pooled over the held-out subjects after each epoch, the same epoch for every fold (mean "
             "over seeds). **An epoch chosen from this table is chosen on the test subjects**: a recipe picked "
             "with it must be reported on seeds it was not picked on.", ""]
    if int(curve["folds"].min()) < units:
        lines += [f"Some units have no recorded curve (resumed from a run without `record_epochs`); the curve "
                  f"covers as few as {int(curve['folds'].min())} of {units} folds per seed.", ""]
    loss = dict(zip(losses["epoch"], losses["train_loss"])) if losses is not None else {}
    if loss:
        lines += loss_lines(losses, loss_units)
    lines += ["| epoch | UF1 | UAR | accuracy |" + (" training loss |" if loss else ""),
              "|---|---|---|---|" + ("---|" if loss else "")]
    lines += [f"| {r.epoch} | {r.uf1:.4f} | {r.uar:.4f} | {r.accuracy:.4f} |"
              + (f" {loss[r.epoch]:.4f} |" if r.epoch in loss else (" |" if loss else "")) for r in curve.itertuples()]
    return lines + ["", f"![test-set learning curve]({figure})", ""]


def render_training_loss(losses: pd.DataFrame, units: int, figure: str) -> list[str]:
    """The report section on the mean training loss per epoch (:func:`merkit.evaluation.metrics.loss_curve`) of a
    run without a test-set learning curve; ``units`` is the number of (seed, fold) units of the run, ``figure``
    the figure's file name."""
    first, last = losses.iloc[0], losses.iloc[-1]
    return ["## Training loss", "", *loss_lines(losses, units),
            f"Mean training loss after epoch {int(first.epoch)}: {first.train_loss:.4f}; after epoch "
            f"{int(last.epoch)}: {last.train_loss:.4f} (every epoch in `{RunFolder.TRAINING_LOSS}`).", "",
            f"![training loss]({figure})", ""]


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


def run_label(plan: Plan, ensemble: dict | None) -> str | None:
    """An averaged run's name in tables, ``ensemble of a + b`` naming every member's model: the runs of
    :func:`merkit.api.ensemble` (``ensemble``) or the members trained in each fold (``protocol.members``);
    ``None`` for a single model."""
    if ensemble:
        return "ensemble of " + " + ".join(m["model"] for m in ensemble["members"])
    if plan.protocol.members:
        return "ensemble of " + " + ".join(r.model.name for r in plan.protocol.members)
    return None


def render_report(plan: Plan, metrics: dict, notes: list[str], diagnostics: dict[str, int],
                  ground_truth_inputs: list[str] | None = None, curve: list[str] | None = None,
                  choices: list[str] | None = None, ensemble: dict | None = None,
                  figures: list[str] | None = None) -> str:
    """The Markdown report of a run; ``curve`` and ``choices`` are the optional :func:`render_curve` and
    :func:`render_choices` sections; ``ensemble`` as :func:`write_outputs`; ``figures`` the lines that show and
    list the confusion matrices (default: a link to ``confusion.png``). A run on a subset
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
              "", *scope, *(figures or ["![confusion matrix, mean counts per seed](confusion.png)", ""])]
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
    name = run_label(plan, ensemble) or plan.protocol.own.model.name
    lines.append(f"| {name} (merkit) | full | "
                 f"{_fmt(summary['full']['uf1'])} | {_fmt(summary['full']['uar'])} | {label} | this run |")
    return lines + [""]


def write_outputs(run_dir: Path, plan: Plan, preds: pd.DataFrame, classes: tuple[str, ...],
                  notes: list[str], diagnostics: dict[str, int], ground_truth_inputs: list[str] | None = None,
                  ensemble: dict | None = None, subset: dict | None = None, tables: tuple[str, ...] = (),
                  figure_format: str = "png") -> dict:
    """Write ``predictions.csv``, ``metrics.json``, ``per_class.csv``, ``report.md``, the confusion matrices, the
    MEGC logs, the learning curve, the training loss and the paper tables (:func:`render_outputs`), each
    atomically, after all of them are computed; figures in ``figure_format`` (png at 300 dpi, pdf or svg).
    ``ensemble`` describes an averaged run (:func:`merkit.api.ensemble`): how it was combined and its members
    (run, model, preset, seeds, selection); the report names them instead of one model.

    Returns:
        The metrics (what ``metrics.json`` holds).
    """
    metrics, files = render_outputs(run_dir, plan, preds, classes, notes, diagnostics, ground_truth_inputs, ensemble,
                                    subset, tables, figure_format)
    for path, write in files.items():
        write_atomic(path, write)
    return metrics


def render_outputs(run_dir: Path, plan: Plan, preds: pd.DataFrame, classes: tuple[str, ...], notes: list[str],
                   diagnostics: dict[str, int], ground_truth_inputs: list[str] | None = None,
                   ensemble: dict | None = None, subset: dict | None = None, tables: tuple[str, ...] = (),
                   figure_format: str = "png"):
    """Everything :func:`write_outputs` writes, computed and not yet written.

    Args:
        subset: the inputs' subset record (:mod:`merkit.inputs.select`), ``None`` for all the data; it enters
            ``metrics.json``'s ``data`` (:func:`merkit.evaluation.tables.data_summary`) and the report.
        tables: paper tables to write (``latex``: ``tables.tex``, ``csv``: ``tables.csv``); those the folder
            holds already are rewritten too, so that they never lag ``metrics.json``.

    Returns:
        ``(metrics, files)``: the metrics, and for each output file a writer of its temporary path.

    Raises:
        ConfigError: a ``figure_format`` other than png, pdf and svg; a damaged training-loss file.
    """
    from merkit.evaluation.megc_log import megc_log_text
    from merkit.evaluation.metrics import summarize_run

    folder = RunFolder(run_dir)
    folder.figure(RunFolder.CONFUSION, figure_format)  # an unknown format fails before anything is computed
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
    figures, figure_lines = _confusion_figures(folder, plan, metrics, list(classes), label, figure_format)
    files = {folder.file(RunFolder.PREDICTIONS): lambda p: preds.to_csv(p, index=False),
             folder.file(RunFolder.METRICS): text_writer(json.dumps(metrics, indent=2, default=str)),
             folder.file(RunFolder.PER_CLASS): lambda p: per_class.to_csv(p), **figures}
    if list(classes) == ["negative", "positive", "surprise"]:
        for seed, df in preds.groupby("seed"):
            files[folder.megc_log(seed)] = text_writer(megc_log_text(df))
    curve = _learning_curve(folder, plan, preds, classes, files, figure_format)
    report = render_report(plan, metrics, notes, diagnostics, gt, curve, choices, ensemble, figure_lines)
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
        title = f"merkit run {plan.name}: " + (run_label(plan, ensemble) or
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


def _read_unit_tables(files: list[Path], seeds) -> pd.DataFrame | None:
    """The unit files' rows of ``seeds`` (the folder may hold other seeds' units), or ``None`` when there are none.

    Raises:
        ConfigError: a file that does not parse, named.
    """
    tables = []
    for f in files:
        try:
            tables.append(pd.read_csv(f))
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
            raise ConfigError(f"{f} is damaged ({str(error).splitlines()[0]}); rerun merkit evaluate with the same "
                              "--out to recompute its unit") from error
    table = pd.concat(tables, ignore_index=True) if tables else None
    if table is None or "seed" not in table.columns:
        return None
    table = table[table["seed"].isin(seeds)]
    return table if len(table) else None


def _learning_curve(folder: RunFolder, plan: Plan, preds: pd.DataFrame, classes: tuple[str, ...],
                    files: dict, figure_format: str = "png") -> list[str] | None:
    """The report's learning-curve section (test-set curve, with the training loss beside it) or its
    training-loss section (a run without ``record_epochs``), with its tables and figure added to ``files``;
    ``None`` when the run recorded neither for these seeds (e.g. a folder of units finished before merkit recorded
    the training loss)."""
    from merkit.evaluation.metrics import epoch_curve, loss_curve

    seeds = preds["seed"].unique()
    curves = _read_unit_tables(folder.unit_files(RunFolder.EPOCHS), seeds)
    losses = _read_unit_tables(folder.unit_files(RunFolder.LOSSES), seeds)
    if curves is None and losses is None:
        return None
    table = epoch_curve(curves, len(classes)) if curves is not None else None
    loss_table = loss_curve(losses) if losses is not None else None
    figure = curve_figure(table, f"{plan.name}: {protocol_label(plan)}", loss_table)
    path = folder.figure(RunFolder.EPOCH_CURVE_FIGURE, figure_format)
    files[path] = figure_writer(figure, figure_format)
    units = len(preds[["seed", "fold"]].drop_duplicates())
    if loss_table is not None:
        files[folder.file(RunFolder.TRAINING_LOSS)] = lambda p: loss_table.to_csv(p, index=False)
    if table is None:
        return render_training_loss(loss_table, units, path.name)
    files[folder.file(RunFolder.EPOCH_CURVE)] = lambda p: table.to_csv(p, index=False)
    return render_curve(table, preds["fold"].nunique(), path.name, loss_table, units)
