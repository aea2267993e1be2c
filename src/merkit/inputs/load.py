"""What a run config's ``data`` section describes, as model inputs: :func:`load_inputs`.

The one place that chooses between the two sources: a folder in the MEGC2019 composite's format
(:mod:`merkit.inputs.composite`) and a raw release built clip by clip (:mod:`merkit.inputs.build`). Both of those
modules stay unaware of each other's reader, so neither imports the other to dispatch.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from merkit.errors import ConfigError, Diagnostics
from merkit.features import FeatureSet
from merkit.inputs.action_units import with_action_units
from merkit.inputs.build import build_inputs, release_cache_dir
from merkit.inputs.composite import read_composite
from merkit.inputs.select import select_inputs, select_table


def load_inputs(data, diagnostics: Diagnostics | None = None, progress=None, address: str | None = None) -> FeatureSet:
    """The FeatureSet that a run config's ``data`` section (:class:`merkit.config.DataConfig`) describes.

    ``flow_folder``: the composite-format folder in ``data.path`` (:func:`read_composite`).
    ``raw``: the release in ``data.path`` loaded by name (``data.dataset``), then :func:`build_inputs` with
    ``data.preprocessing``, cached under ``data.cache`` (default :func:`release_cache_dir`), on the Ray cluster at
    ``address`` when one is given.
    With ``data.action_units``, the ground-truth AU vector is added as input ``action_units`` (oracle input), from
    the release's sheet or, for a flow folder, from ``data.au_sheets``
    (:func:`merkit.inputs.action_units.with_action_units`).

    ``data.subjects`` and ``data.datasets`` keep part of the data (:mod:`merkit.inputs.select`): the rows of a
    flow folder once it is read, the rows of a raw release's sample table before any input is built; the subset
    record (with the counts before selection: for a raw release, the annotation table's) is ``meta["subset"]``.

    Raises:
        ConfigError: unknown ``data.kind``, or a missing ``data.path`` / ``data.dataset``; a subject or dataset in
            ``data.subjects`` / ``data.datasets`` that the data does not hold (one line, naming the closest).
        DataError: the data cannot be loaded, an emotion lies outside the dataset's vocabulary, no sample yields
            inputs, or a sample's AUs cannot be read or have no sheet row (one line naming the sample).
    """
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    features = _load(data, diagnostics, progress, address)
    return with_action_units(features, data.preprocessing, data.au_sheets, diagnostics)


def _load(data, diagnostics: Diagnostics, progress, address: str | None) -> FeatureSet:
    if not data.path:
        raise ConfigError("data.path must name the data folder (a flow folder, or a raw release)")
    if data.kind == "flow_folder":
        return select_inputs(read_composite(data.path, data.scheme, data.channels, data.file_channels, data.with_apex,
                                            data.apex_size, data.with_au_boxes, diagnostics,
                                            record=data.preprocessing, with_face_points=data.with_face_points),
                             data.subjects, data.datasets)
    if data.kind != "raw":
        raise ConfigError(f"unknown data.kind {data.kind!r}; known: flow_folder, raw")
    if not data.dataset:
        raise ConfigError("data.kind 'raw' needs data.dataset (casme2, samm, smic, synthetic, ...)")
    from merkit.datasets.registry import check_emotions, load_dataset

    table = check_emotions(load_dataset(data.dataset, data.path, diagnostics=diagnostics), data.dataset)
    positions, subset = select_table(table, data.subjects, data.datasets)
    cache = Path(data.cache) if data.cache else release_cache_dir(data.path)
    chosen = table if subset is None else table.iloc[positions].reset_index(drop=True)
    record = dataclasses.replace(data.preprocessing, action_units=())  # the clips' record; AUs come after
    features = build_inputs(chosen, record, data.scheme, cache, data.preprocess_workers, data.on_error,
                            diagnostics, progress, address)
    features.notes.insert(0, f"{data.dataset} release at {data.path}")
    if subset is not None:
        features.meta["subset"] = subset
    return features
