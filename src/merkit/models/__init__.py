"""Models, one file per paper. ``build_model(name, num_classes, preset, **params)`` is the only entry point the
training stage uses; add a model by adding its module to :data:`MODEL_MODULES`.

Each model module exposes ``PRESETS: dict[str, Config]`` and ``build(num_classes, preset=None, **params)``.
"""

from __future__ import annotations

import importlib
from typing import Any

from merkit.models.base import MerModel, ModelOutput, count_parameters

MODEL_MODULES: dict[str, str] = {
    "ststnet": "merkit.models.ststnet",
    "mmnet": "merkit.models.mmnet",
    "cva_fpf": "merkit.models.cva_fpf",
    "slstt": "merkit.models.slstt",
    "frl_dgt": "merkit.models.frl_dgt",
}


def build_model(name: str, num_classes: int, preset: str | None = None, **params: Any) -> MerModel:
    """Instantiate model ``name`` for ``num_classes`` classes.

    Raises:
        KeyError: unknown model or preset; the message lists the known ones.
    """
    if name not in MODEL_MODULES:
        raise KeyError(f"unknown model {name!r}; known: {sorted(MODEL_MODULES)}")
    module = importlib.import_module(MODEL_MODULES[name])
    return module.build(num_classes, preset=preset, **params)


__all__ = ["MODEL_MODULES", "MerModel", "ModelOutput", "build_model", "count_parameters"]
