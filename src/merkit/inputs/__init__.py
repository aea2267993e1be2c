"""Inputs: the one path from frames to the tensors a model consumes.

* :class:`Preprocessing` (:mod:`merkit.inputs.record`): the typed face + motion record, with one set of defaults.
* :func:`clip_inputs` (:mod:`merkit.inputs.clip`): one clip -> model inputs. Every entry point calls it.
* :func:`build_inputs` (:mod:`merkit.inputs.build`): a sample table -> a :class:`~merkit.features.FeatureSet`,
  cached per clip, parallel, with one skip policy.
* :func:`load_inputs` (:mod:`merkit.inputs.load`): what a run config's ``data`` describes (a composite-format folder
  or a raw release) -> a :class:`~merkit.features.FeatureSet`.
* :func:`select_inputs` (:mod:`merkit.inputs.select`): the part of the data that ``data.subjects`` and
  ``data.datasets`` name, with its subset record.
* :func:`read_composite` and :func:`write_composite` (:mod:`merkit.inputs.composite`): the MEGC2019 composite's
  format.
"""

from importlib import import_module

from merkit.inputs.record import Preprocessing

_LAZY = {"ClipInputs": "clip", "clip_inputs": "clip", "build_inputs": "build",
         "load_inputs": "load", "row_inputs": "build", "release_cache_dir": "build", "default_cache_dir": "build",
         "read_composite": "composite", "write_composite": "composite", "select_inputs": "select",
         "select_table": "select"}


def __getattr__(name: str):
    # The record is light; the rest imports torch and pandas, which a config load should not need.
    if name in _LAZY:
        return getattr(import_module(f"merkit.inputs.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'merkit.inputs' has no attribute {name!r}")


__all__ = ["Preprocessing", *_LAZY]
