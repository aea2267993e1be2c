"""The ground-truth action-unit input: the AU multi-hot vector of every sample, built from the sample table's
``action_units`` (:func:`merkit.datasets.action_units.parse_action_units`) in the order the preprocessing record
names (:attr:`merkit.inputs.record.Preprocessing.action_units`; CVA+FPF+AU's 21 AUs,
:data:`merkit.datasets.action_units.PAPER_AUS`).

These vectors are **oracle input**: they are the annotation, given to the model at test time as well (as in the
CVA+FPF+AU paper). A FeatureSet that carries them lists ``"action_units"`` in ``meta["ground_truth_inputs"]``, and
every report of a run on it says so.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
import torch

from merkit.datasets.action_units import au_vector, join_au_sheets, parse_action_units
from merkit.errors import Diagnostics, Where
from merkit.features import FeatureSet
from merkit.inputs.record import Preprocessing

#: The model-input key of the AU vector.
AU_KEY = "action_units"


def action_unit_vectors(table: pd.DataFrame, vocabulary: tuple[int, ...],
                        diagnostics: Diagnostics | None = None) -> torch.Tensor:
    """The AU vectors of a sample table's rows: float32 (N, len(vocabulary)), 1.0 where the row's
    ``action_units`` name the AU (a side, asymmetry or intensity sets it too), in ``vocabulary``'s order.

    Counted warnings, each naming the sample: ``au-outside-vocabulary`` (AUs the vector cannot hold, listed),
    ``au-uncertain`` (the coder's alternatives or SAMM's ``ref(...)``: every AU named is set), ``au-descriptor``
    (a word that is no AU, e.g. SAMM's ``soft focus``) and ``au-none`` (no AU of the vocabulary: an all-zero
    vector).

    Raises:
        DataError: an ``action_units`` cell that cannot be read; one line naming the dataset and sample.
    """
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    rows = []
    for row in table.itertuples(index=False):
        where = Where(row.dataset, row.subject, row.sample)
        units = parse_action_units(row.action_units, where)
        vector, outside = au_vector(units, vocabulary)
        if outside:
            diagnostics.warn("au-outside-vocabulary", f"AU {', '.join(map(str, outside))} of {row.action_units!r} "
                             f"not in the {len(vocabulary)}-AU vector, left out", where)
        if units.uncertain:
            diagnostics.warn("au-uncertain", f"{row.action_units!r} gives alternatives or ref(...); every AU named "
                             "is set", where)
        for word in units.descriptors:
            diagnostics.warn("au-descriptor", f"{word!r} in {row.action_units!r} is no action unit", where)
        if not any(vector):
            diagnostics.warn("au-none", f"{row.action_units!r} names no AU of the vector: all zeros", where)
        rows.append(vector)
    return torch.from_numpy(np.asarray(rows, dtype=np.float32).reshape(len(rows), len(vocabulary)))


def with_action_units(features: FeatureSet, record: Preprocessing, au_sheets: Mapping[str, str] | None = None,
                      diagnostics: Diagnostics | None = None) -> FeatureSet:
    """``features`` with the ground-truth AU vector under :data:`AU_KEY` when ``record.action_units`` names a
    vocabulary (unchanged otherwise).

    Args:
        au_sheets: ``{dataset: sheet}`` to take the AUs from (:func:`merkit.datasets.action_units.join_au_sheets`),
            for samples that came without them (a flow folder); empty: the table's own ``action_units``.
        diagnostics: also receives this step's counted warnings.

    Returns:
        A FeatureSet with ``inputs["action_units"]`` float32 (N, len(record.action_units)), the table's
        ``action_units`` as read, ``"action_units"`` in ``meta["ground_truth_inputs"]``, the AU vocabulary added to
        the record in ``meta["preprocessing"]``, an oracle-input note and the counted warnings in
        ``meta["diagnostics"]``.

    Raises:
        DataError: a sample with no sheet row, a dataset without a sheet, or an unreadable AU cell (one line
            naming the sample).
    """
    if not record.action_units:
        return features
    found = Diagnostics()  # this step's warnings, added to the counts the FeatureSet already carries
    table = join_au_sheets(features.table, au_sheets, found) if au_sheets else features.table
    vectors = action_unit_vectors(table, record.action_units, found)
    if diagnostics is not None:
        diagnostics.extend(found)
    counts = dict(features.meta.get("diagnostics", {}))
    for kind, count in found.summary().items():
        counts[kind] = counts.get(kind, 0) + count
    source = f"the sheets {', '.join(f'{k}: {v}' for k, v in au_sheets.items())}" if au_sheets else "the sample table"
    note = (f"oracle input: ground-truth action units from {source}, as a {len(record.action_units)}-AU multi-hot "
            f"vector (AUs {', '.join(map(str, record.action_units))}), given at test time too")
    built = {**features.meta.get("preprocessing", record.to_dict()), "action_units": list(record.action_units)}
    meta = {**features.meta, "preprocessing": built, "diagnostics": counts,
            "ground_truth_inputs": sorted(set(features.meta.get("ground_truth_inputs", [])) | {AU_KEY})}
    return FeatureSet(table, {**features.inputs, AU_KEY: vectors}, features.classes, [*features.notes, note], meta)
