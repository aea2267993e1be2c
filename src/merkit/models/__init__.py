"""Models, one file per paper. :func:`build_model` (``name, num_classes, preset, **params``) is the only entry point
the training stage uses; :mod:`merkit.models.base` holds the model contract, the presets and the registry.
"""

from merkit.models.base import MODEL_MODULES, MerModel, ModelOutput, build_model, count_parameters

__all__ = ["MODEL_MODULES", "MerModel", "ModelOutput", "build_model", "count_parameters"]
