"""A part of the data: the config's ``data.subjects`` and ``data.datasets``, applied where the data is loaded.

:func:`select_table` picks rows of a sample table (a raw release's, before any input is built, or a
:class:`~merkit.features.FeatureSet`'s); :func:`select_inputs` applies it to a FeatureSet. Both return the
**subset record** that every later output repeats (``run.json``, ``metrics.json``, the report and its tables)::

    {"subjects": ["casme2/sub01", ...],   # the selected subject ids (dataset/subject), sorted; [] = every subject
     "datasets": ["casme2"],              # data.datasets as given; [] = every dataset
     "of_samples": 442, "of_subjects": 68, "of_datasets": ["casme2", "samm", "smic"]}   # the data before selection

A selection that keeps every sample is no subset: the record is then ``None``.

How a subject is named (``data.subjects``): by its ``subject_id`` (``samm/006``), or by the subject alone (``006``)
when exactly one dataset of the data has it; with ``data.datasets``, among those datasets only. A name that is not
in the data, names a subject twice, or is ambiguous is a :class:`~merkit.errors.ConfigError` of one line that
names the dataset and the closest subjects.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from merkit.boundary import close_names, did_you_mean
from merkit.errors import ConfigError
from merkit.features import FeatureSet


def _datasets(table: pd.DataFrame, datasets: Sequence[str]) -> list[str]:
    """``data.datasets`` checked against the table's datasets.

    Raises:
        ConfigError: a dataset that is not in the data (with a "did you mean").
    """
    held = sorted(map(str, table["dataset"].unique()))
    for name in datasets:
        if name not in held:
            raise ConfigError(f"data.datasets: no dataset {name!r} in the data{did_you_mean(name, held)}; the data "
                              f"holds {', '.join(held)}")
    return list(datasets)


def _subject_ids(table: pd.DataFrame, subjects: Sequence[str], datasets: Sequence[str]) -> list[str]:
    """The subject ids that ``data.subjects`` names, each resolved as the module docstring says.

    Raises:
        ConfigError: a subject not in the data (naming the dataset and the closest subjects), one in a dataset
            that ``datasets`` leaves out, an ambiguous plain subject, or one subject named twice.
    """
    ids = table[["dataset", "subject", "subject_id"]].drop_duplicates()
    held = sorted(map(str, ids["dataset"].unique()))
    among = ids[ids["dataset"].isin(datasets)] if datasets else ids
    resolved: dict[str, str] = {}
    for name in subjects:
        if "/" in name:
            dataset, subject = name.split("/", 1)
            if dataset not in held:
                raise ConfigError(f"data.subjects: {name!r} names dataset {dataset!r}, which is not in the data"
                                  f"{_close(dataset, held)}; the data holds {', '.join(held)}")
            if datasets and dataset not in datasets:
                raise ConfigError(f"data.subjects: {name!r} is in {dataset}, which data.datasets {list(datasets)} "
                                  "leaves out")
            found = ids[ids["subject_id"] == name]["subject_id"].tolist()
            if not found:
                mine = sorted(ids[ids["dataset"] == dataset]["subject"])
                raise ConfigError(f"data.subjects: {dataset} has no subject {subject!r}{_close(subject, mine)}; "
                                  f"{dataset} has {len(mine)} subjects: {_listed(mine)}")
        else:
            found = among[among["subject"] == name]["subject_id"].tolist()
            if not found:
                _no_plain_subject(name, ids, among, datasets)
            if len(found) > 1:
                raise ConfigError(f"data.subjects: subject {name!r} is in {len(found)} datasets; name one of "
                                  f"{', '.join(sorted(found))}")
        if found[0] in resolved:
            raise ConfigError(f"data.subjects names {found[0]} twice ({resolved[found[0]]!r} and {name!r})")
        resolved[found[0]] = name
    return sorted(resolved)


def _no_plain_subject(name: str, ids: pd.DataFrame, among: pd.DataFrame, datasets: Sequence[str]) -> None:
    """Raise the error for a plain subject that no (selected) dataset has."""
    elsewhere = sorted(ids[ids["subject"] == name]["subject_id"])
    if elsewhere:
        raise ConfigError(f"data.subjects: subject {name!r} is in {', '.join(elsewhere)}, which data.datasets "
                          f"{list(datasets)} leaves out")
    where = ", ".join(sorted(map(str, among["dataset"].unique())))
    close = close_names(name, among["subject"].unique())
    hint = (" (close: " + ", ".join(sorted(among[among["subject"].isin(close)]["subject_id"])[:5]) + ")"
            if close else "")
    raise ConfigError(f"data.subjects: no subject {name!r} in {where}{hint}; name a subject as it is in the data, "
                      "or by its id dataset/subject")


def _close(value: str, choices: Sequence[str]) -> str:
    close = close_names(value, choices)
    return f" (close: {', '.join(close)})" if close else ""


def _listed(names: Sequence[str], most: int = 8) -> str:
    return ", ".join(names[:most]) + (", ..." if len(names) > most else "")


def select_table(table: pd.DataFrame, subjects: Sequence[str] = (), datasets: Sequence[str] = (),
                 totals: dict | None = None) -> tuple[np.ndarray, dict | None]:
    """The rows of a sample table that ``data.subjects`` and ``data.datasets`` keep.

    Args:
        table: a sample table (``dataset``, ``subject``, ``subject_id``; :mod:`merkit.datasets.table`).
        subjects, datasets: the config's ``data.subjects`` and ``data.datasets``; empty keeps every row.
        totals: the ``of_*`` counts to record instead of ``table``'s (the table is itself a subset).

    Returns:
        ``(positions, record)``: int64 positions of the kept rows, in table order, and the subset record (module
        docstring), or ``None`` when every row is kept.

    Raises:
        ConfigError: see the module docstring.
    """
    everything = np.arange(len(table), dtype=np.int64)
    if not subjects and not datasets:
        return everything, None
    chosen = _datasets(table, datasets)
    keep = table["dataset"].isin(chosen).to_numpy() if chosen else np.ones(len(table), dtype=bool)
    ids = _subject_ids(table, subjects, chosen) if subjects else []
    if ids:
        keep = keep & table["subject_id"].isin(ids).to_numpy()
    positions = everything[keep]
    if len(positions) == len(table) and totals is None:
        return positions, None
    record = {"subjects": ids, "datasets": chosen}
    record.update(totals or {"of_samples": int(len(table)), "of_subjects": int(table["subject_id"].nunique()),
                             "of_datasets": sorted(map(str, table["dataset"].unique()))})
    return positions, record


def select_inputs(features: FeatureSet, subjects: Sequence[str] = (), datasets: Sequence[str] = ()) -> FeatureSet:
    """``features`` restricted to ``data.subjects`` and ``data.datasets`` (:func:`select_table`), with the subset
    record in ``meta["subset"]``; ``features`` itself when nothing is selected. Inputs that are already a subset
    (``meta["subset"]``, e.g. from :func:`merkit.inputs.load_inputs`) keep their record's totals.

    Raises:
        ConfigError: see :func:`select_table`.
    """
    if not subjects and not datasets:
        return features
    before = features.meta.get("subset")
    totals = {k: v for k, v in before.items() if k.startswith("of_")} if before else None
    positions, record = select_table(features.table, subjects, datasets, totals)
    if record is None:
        return features
    selected = features.subset(positions)
    selected.meta["subset"] = record  # subset() copied the meta
    return selected

