"""Models, one file per paper, in a registry in the style of timm.

:func:`create_model` (``name, preset, num_classes=..., **overrides``) builds a registered model, :func:`list_models`
names them, :func:`model_info` gives a model's inputs, notes, presets and paper without building it;
:func:`build_model` (``name, num_classes, preset, **params``) is the older spelling the training stage uses.
:mod:`merkit.models.base` holds the model contract and the registry, :mod:`merkit.models.layers` the layers several
papers share. Importing this package imports every model module, each of which registers its model.
"""

from merkit.models.base import (
    MODEL_MODULES,
    MerModel,
    ModelFacts,
    ModelInfo,
    ModelOutput,
    build_model,
    count_parameters,
    create_model,
    list_models,
    model_info,
    register_model,
)
from merkit.models import cva_fpf, frl_dgt, htnet, mmnet, slstt, ststnet  # noqa: E402,F401  (they register)
from merkit.models import linear_svm, off_apexnet, sssnet  # noqa: E402,F401  (they register)

__all__ = ["MODEL_MODULES", "MerModel", "ModelFacts", "ModelInfo", "ModelOutput", "build_model", "count_parameters",
           "create_model", "list_models", "model_info", "register_model"]
