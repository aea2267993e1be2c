"""Tables for papers, and what data a run saw: the report's table as LaTeX and CSV, and ``merkit compare``.

Everything here reads a run's ``metrics.json`` (:func:`merkit.evaluation.metrics.summarize_run` plus what
:func:`merkit.evaluation.report.render_outputs` adds), so that a table can never disagree with the metrics.

* :func:`data_summary`: ``metrics.json``'s ``data``: the samples, subjects and datasets the predictions cover, a hash
  of the sample ids, and the subset record (:mod:`merkit.inputs.select`), so that a subset says so everywhere.
* :func:`part_frame`, :func:`run_latex`: the report's table (pooled UF1, UAR and accuracy per part, mean ± sample
  std over seeds) as a DataFrame (``tables.csv``) and as a booktabs LaTeX table (``tables.tex``) whose caption
  states the protocol and the subset; it needs ``\\usepackage{booktabs}`` and nothing else.
* :class:`Comparison`: several runs side by side (``merkit compare``), with the reasons their rows are not
  comparable (other data, other samples, a subset beside a full run, another split or a test-selected protocol).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import pandas as pd

METRICS = ("uf1", "uar", "accuracy")
HEADS = {"uf1": "UF1", "uar": "UAR", "accuracy": "Accuracy"}
#: mean and std in a LaTeX cell: thin spaces, so that a table of ``0.7353\,$\pm$\,0.0113`` fits a page.
LATEX_PM = r"\,$\pm$\,"
_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                   "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$",
                   "×": r"$\times$"}


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped, and ± and × as math (pandas escapes cells, not
    captions)."""
    return "".join(_LATEX_SPECIALS.get(c, c) for c in str(text))


# ---------------------------------------------------------------------------------------------------- the data

def data_summary(preds: pd.DataFrame, kind: str, benchmark: str | None, subset: dict | None) -> dict:
    """What data a run's predictions cover (``metrics.json``'s ``data``).

    Args:
        preds: the predictions table (``sample_id``, ``subject_id``, ``dataset``; every seed).
        kind, benchmark: the config's ``data.kind`` and ``data.benchmark``.
        subset: the subset record of the inputs (:mod:`merkit.inputs.select`), ``None`` for all the data.

    Returns:
        ``{"kind", "benchmark", "datasets", "samples", "subjects", "parts": {part: {"samples", "subjects"}},
        "sample_set" (16 hex digits of SHA-256 over the sorted sample ids), "subset"}``.
    """
    rows = preds.drop_duplicates("sample_id")
    parts = {"full": rows, **{str(d): df for d, df in rows.groupby("dataset", sort=True)}}
    ids = "\n".join(sorted(map(str, rows["sample_id"])))
    return {"kind": kind, "benchmark": benchmark, "datasets": sorted(map(str, rows["dataset"].unique())),
            "samples": int(len(rows)), "subjects": int(rows["subject_id"].nunique()),
            "parts": {p: {"samples": int(len(df)), "subjects": int(df["subject_id"].nunique())}
                      for p, df in parts.items()},
            "sample_set": hashlib.sha256(ids.encode()).hexdigest()[:16], "subset": subset}


def scope_text(data: dict) -> str:
    """``"62 of 442 samples, 5 of 68 subjects"`` for a subset, ``"442 samples, 68 subjects"`` for all the data."""
    subset = data.get("subset")
    if subset:
        return (f"{data['samples']} of {subset['of_samples']} samples, {data['subjects']} of "
                f"{subset['of_subjects']} subjects")
    return f"{data['samples']} samples, {data['subjects']} subjects"


def data_text(data: dict) -> str:
    """The data in a few words: ``"flow_folder (megc2019-composite)"``, ``"raw (casme2)"``."""
    name = data.get("benchmark") or ", ".join(data.get("datasets", []))
    return f"{data.get('kind', '?')}" + (f" ({name})" if name else "")


def subset_text(data: dict, most: int = 8) -> str | None:
    """What a subset keeps, in one line (``None`` for all the data): ``"subset of flow_folder (megc2019-composite):
    62 of 442 samples, 5 of 68 subjects; data.subjects casme2/sub01, ..."``."""
    subset = data.get("subset")
    if not subset:
        return None
    chosen = []
    if subset.get("datasets"):
        chosen.append(f"data.datasets {', '.join(subset['datasets'])} (of {', '.join(subset['of_datasets'])})")
    if subset.get("subjects"):
        names = subset["subjects"]
        chosen.append(f"data.subjects {', '.join(names[:most])}" + (f", ... ({len(names)})" if len(names) > most
                                                                      else ""))
    return f"subset of {data_text(data)}: {scope_text(data)}; " + "; ".join(chosen)


# ---------------------------------------------------------------------------------------------------- one run

def _cell(stat: dict, seeds: int, digits: int = 4, pm: str = " ± ") -> str:
    if stat["mean"] != stat["mean"]:  # nan
        return "n/a"
    return f"{stat['mean']:.{digits}f}" + (f"{pm}{stat['std']:.{digits}f}" if seeds > 1 else "")


def part_frame(metrics: dict) -> pd.DataFrame:
    """The report's table, one row per part (``full`` first, then each dataset), in full precision: ``part``,
    ``<metric>_mean`` and ``<metric>_std`` for UF1, UAR and accuracy (std: sample std over seeds, 0 with one),
    ``seeds``, ``samples`` and ``subjects`` (per part), ``selection``, ``protocol``, ``data`` and ``subset`` (the
    subset in words, empty for all the data). What ``tables.csv`` holds."""
    data = metrics.get("data") or {}
    rows = []
    for part, stat in metrics["summary"].items():
        row = {"part": part}
        for m in METRICS:
            row.update({f"{m}_mean": stat[m]["mean"], f"{m}_std": stat[m]["std"]})
        counts = (data.get("parts") or {}).get(part, {})
        row.update(seeds=len(metrics["seeds"]), samples=counts.get("samples"), subjects=counts.get("subjects"),
                   selection=metrics.get("selection"), protocol=metrics.get("protocol"), data=data_text(data),
                   subset=subset_text(data) or "")
        rows.append(row)
    return pd.DataFrame(rows)


def latex_table(frame: pd.DataFrame, caption: str, label: str, text_columns: list) -> str:
    """``frame`` (cells already formatted) as a booktabs LaTeX table (:meth:`pandas.io.formats.style.Styler.to_latex`):
    the header and ``text_columns`` escaped, the caption escaped, the label reduced to letters, digits and
    ``:+.-``, the index hidden, in ``\\small`` type with 4 pt between columns; text columns left-aligned, the others
    right-aligned."""
    styler = frame.style.hide(axis="index").format_index(escape="latex", axis=1)
    styler = styler.set_table_styles([{"selector": "small", "props": ":;"},  # \small and \setlength{\tabcolsep}{4pt}:
                                      {"selector": "setlength", "props": ":{\\tabcolsep}{4pt};"}])  # fits a page
    styler = styler.format(escape="latex", subset=text_columns)
    align = "".join("l" if c in text_columns else "r" for c in frame.columns)
    return styler.to_latex(hrules=True, caption=latex_escape(caption), label=re.sub(r"[^A-Za-z0-9:+.-]", "-", label),
                           environment="table", position_float="centering", multicol_align="c", column_format=align)


def run_caption(metrics: dict, title: str, split: str, over: str | None = None) -> str:
    """The caption of a run's table: what was run, the split, the seeds (``over`` says it instead, e.g. for an
    ensemble that averaged its members' seeds), the selection protocol and the data (with the subset, if any)."""
    data = metrics.get("data") or {}
    seeds = metrics["seeds"]
    over = over or (f"mean ± sample std over {len(seeds)} seeds ({', '.join(map(str, seeds))})" if len(seeds) > 1
                    else f"seed {seeds[0]}")
    where = subset_text(data) or (f"{data_text(data)}, {scope_text(data)}" if data else "data not recorded")
    return (f"{title}. UF1, UAR and accuracy pooled over all folds ({split}; MEGC2019 definitions), {over}. "
            f"Selection: {metrics.get('protocol')}. Data: {where}.")


def run_latex(metrics: dict, caption: str, label: str) -> str:
    """The report's table as LaTeX (``tables.tex``): one row per part, UF1, UAR and accuracy as ``mean\\,$\\pm$\\,std``
    over seeds to 4 decimals, samples and subjects."""
    seeds = len(metrics["seeds"])
    frame = part_frame(metrics)
    cells = pd.DataFrame({"Part": frame["part"]})
    for m in METRICS:
        cells[HEADS[m]] = [_cell(metrics["summary"][p][m], seeds, pm=LATEX_PM) for p in frame["part"]]
    cells["Samples"] = [_count(v) for v in frame["samples"]]
    cells["Subjects"] = [_count(v) for v in frame["subjects"]]
    return latex_table(cells, caption, label, ["Part"])


def _count(value) -> str:
    return "" if value is None or value != value else str(int(value))


# ---------------------------------------------------------------------------------------------------- compare

def _whole(data: dict) -> tuple[str, tuple[str, ...]]:
    """The data a run's samples were taken from: its kind and benchmark, and its datasets before any subset."""
    subset = data.get("subset")
    return data_text(data), tuple(subset["of_datasets"] if subset else data.get("datasets", []))


@dataclass
class Comparison:
    """Runs side by side (``merkit compare``): each run's name and ``metrics.json``.

    Attributes:
        runs: ``[(name, metrics)]``, in the order given.
        problems: why rows are not comparable with the first (one line per run that differs; :meth:`check`).
    """

    runs: list[tuple[str, dict]]
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.problems = self.check()

    @property
    def parts(self) -> list[str]:
        parts: list[str] = []
        for _, m in self.runs:
            parts += [p for p in m["summary"] if p not in parts]
        return parts

    def check(self) -> list[str]:
        """One line for each run that is not comparable with the first, naming every difference: its data or
        benchmark, its class scheme, its sample count or sample set, a subset beside all the data (or another
        subset), its split, or a test-selected protocol beside an honest one. A run whose ``metrics.json``
        predates the data record is named as unchecked."""
        problems = []
        (first, base), *others = self.runs
        for name, m in self.runs:
            if not m.get("data"):
                problems.append(f"{name}: its metrics.json does not record its data (written by an older merkit); "
                                f"run `merkit report` on it to check it against the others")
        if not base.get("data"):
            return problems
        for name, m in others:
            why = self._differences(first, base, name, m) if m.get("data") else []
            if why:
                problems.append(f"{name} is not comparable with {first}: " + "; ".join(why))
        return problems

    @staticmethod
    def _differences(first: str, a: dict, name: str, b: dict) -> list[str]:
        """How run ``name`` (metrics ``b``) differs from run ``first`` (metrics ``a``) in what decides whether their
        figures compare."""
        da, db = a["data"], b["data"]
        why = []
        if _whole(da) != _whole(db):
            why.append(f"other data ({data_text(db)}: {', '.join(_whole(db)[1])}; {first}: {data_text(da)}: "
                       f"{', '.join(_whole(da)[1])})")
        if a.get("classes") != b.get("classes"):
            why.append(f"other classes ({b.get('classes')}; {first}: {a.get('classes')})")
        if bool(da.get("subset")) != bool(db.get("subset")):
            part, whole = (name, first) if db.get("subset") else (first, name)
            why.append(f"{part} is a subset ({scope_text(db if db.get('subset') else da)}), {whole} is on all "
                       "the data")
        elif da.get("subset") and da["subset"] != db["subset"]:
            why.append("another subset")
        if da["samples"] != db["samples"]:
            why.append(f"{db['samples']} samples, {first} {da['samples']}")
        elif da.get("sample_set") != db.get("sample_set"):
            why.append(f"other samples (the same count, {db['samples']}, other sample ids)")
        if a.get("split") != b.get("split"):
            why.append(f"split {b.get('split')}, {first} {a.get('split')}")
        if (a.get("selection") == "paper") != (b.get("selection") == "paper"):
            paper = name if b.get("selection") == "paper" else first
            why.append(f"{paper} is test-selected (paper protocol), the other honest")
        return why

    def frame(self) -> pd.DataFrame:
        """The runs in long form, one row per run and part (``run`` + :func:`part_frame`'s columns): what
        ``merkit compare --csv`` prints."""
        frames = [part_frame(m).assign(run=name) for name, m in self.runs]
        table = pd.concat(frames, ignore_index=True)
        return table[["run", *[c for c in table.columns if c != "run"]]]

    def _cells(self, pm: str) -> list[dict]:
        """Per run: name, selection, seeds, samples, subjects, data and ``(part, metric)`` cells."""
        rows = []
        for name, m in self.runs:
            data = m.get("data") or {}
            subset = data.get("subset")
            samples = "" if not data else (f"{data['samples']} of {subset['of_samples']}" if subset
                                           else str(data["samples"]))
            subjects = "" if not data else (f"{data['subjects']} of {subset['of_subjects']}" if subset
                                            else str(data["subjects"]))
            row = {"run": name, "selection": m.get("selection") or m.get("protocol", ""), "seeds": len(m["seeds"]),
                   "samples": samples, "subjects": subjects,
                   "data": (data_text(data) + (" subset" if subset else "")) if data else "not recorded"}
            for p in self.parts:
                s = m["summary"].get(p)
                for k in ("uf1", "uar"):
                    row[(p, k)] = "" if s is None else _cell(s[k], len(s[k]["values"]), pm=pm)
            rows.append(row)
        return rows

    def markdown(self) -> str:
        """A Markdown table (selection is each run's protocol line), then a ``warning: ...`` line per problem."""
        head = ["run", "selection", "seeds", "samples", "subjects", "data"]
        lines = ["| " + " | ".join(head + [f"{p} {HEADS[k]}" for p in self.parts for k in ("uf1", "uar")]) + " |",
                 "|" + "---|" * (len(head) + 2 * len(self.parts))]
        for (name, m), row in zip(self.runs, self._cells(" ± ")):
            row["selection"] = m.get("protocol", "")
            lines.append("| " + " | ".join(str(row[h]) for h in head)
                         + "".join(f" | {row[(p, k)]}" for p in self.parts for k in ("uf1", "uar")) + " |")
        return "\n".join(lines + ([""] + [f"warning: not comparable: {p}" for p in self.problems]
                                  if self.problems else []))

    def latex(self) -> str:
        """A booktabs LaTeX table: a row per run, UF1 and UAR per part as ``mean $\\pm$ std``; the protocol and the
        data in the caption (as columns too where the runs differ), and the problems in the caption."""
        rows = self._cells(LATEX_PM)
        protocols = {m.get("protocol") for _, m in self.runs}
        data = {r["data"] for r in rows}
        columns = [("", "Run"), ("", "Seeds"), ("", "Samples"), ("", "Subjects")]
        keys = ["run", "seeds", "samples", "subjects"]
        if len(protocols) > 1:
            columns.insert(1, ("", "Selection"))
            keys.insert(1, "selection")
        if len(data) > 1:
            columns.append(("", "Data"))
            keys.append("data")
        frame = pd.DataFrame([[r[k] for k in keys] + [r[(p, m)] for p in self.parts for m in ("uf1", "uar")]
                              for r in rows],
                             columns=pd.MultiIndex.from_tuples(columns + [(p, HEADS[m]) for p in self.parts
                                                                          for m in ("uf1", "uar")]))
        text = [c for c in columns if c[1] in ("Run", "Selection", "Data", "Samples", "Subjects")]
        return latex_table(frame, self.caption(protocols, data), "tab:merkit-compare", text)

    def caption(self, protocols: set, data: set) -> str:
        """The LaTeX table's caption: the metrics, the seeds, the protocol(s), the data (when the runs share it),
        each subset, and every problem of :meth:`check`."""
        seeds = "mean ± sample std over each run's seeds" if any(len(m["seeds"]) > 1 for _, m in self.runs) \
            else "one seed per run"
        if len(protocols) == 1:
            selection = f"Selection: {next(iter(protocols))}."
        else:
            selection = "Selection: " + "; ".join(f"{n}: {m.get('protocol')}" for n, m in self.runs) + "."
        where = f" Data: {next(iter(data))}." if len(data) == 1 else ""
        subsets = [f"{n}: {subset_text(m['data'])}" for n, m in self.runs if (m.get("data") or {}).get("subset")]
        text = (f"UF1 and UAR pooled over all folds (MEGC2019 definitions), {seeds}. {selection}{where}"
                + (" Subsets: " + "; ".join(subsets) + "." if subsets else ""))
        return text + ("".join(f" Not comparable: {p}." for p in self.problems))

    def csv(self) -> str:
        """:meth:`frame` as CSV text."""
        return frame_csv(self.frame())


def frame_csv(frame: pd.DataFrame) -> str:
    """A DataFrame as CSV text (no index); pandas returns the text when given no file."""
    return frame.to_csv(index=False)
