"""merkit: facial micro-expression recognition (MER) toolkit.

The pipeline, one package per stage (a stage imports only from stages before it)::

    datasets -> face -> motion -> models -> training -> evaluation

The public names, importable from ``merkit`` itself (``dir(merkit)`` lists them):

* :func:`evaluate`, :func:`train`, :func:`report`, :func:`ensemble`, :func:`compare`, :func:`evaluate_spotting`,
  :class:`RunResult`: the functions the CLI wraps (:mod:`merkit.api`); :class:`SpottingRun`
  (:mod:`merkit.evaluation.spotting`).
* :func:`load_config`, :class:`RunConfig`: run configurations (:mod:`merkit.config`); ``load_config`` also takes
  the name of a shipped config, e.g. ``"megc2019/ststnet"``.
* :class:`Predictor`, :class:`Prediction`, :class:`SpotResult`: a trained model on new videos
  (:mod:`merkit.predict`); :func:`read_video` (:mod:`merkit.media`).
* :func:`create_model`, :func:`list_models`: the model registry (:mod:`merkit.models`).
* :class:`MerkitError`, :class:`DataError`, :class:`ConfigError`, :class:`CheckpointError`: what merkit raises.

``import merkit`` is cheap (no torch, OpenCV or Ray): each name is imported from its module on first use.
"""

import importlib as _importlib

__version__ = "0.1.0"

#: public name -> the module that defines it, imported on first access (PEP 562).
_LAZY: dict[str, str] = {
    **dict.fromkeys(("evaluate", "train", "report", "ensemble", "compare", "evaluate_spotting", "RunResult"),
                    "merkit.api"),
    "SpottingRun": "merkit.evaluation.spotting",
    **dict.fromkeys(("load_config", "RunConfig"), "merkit.config"),
    **dict.fromkeys(("Predictor", "Prediction", "SpotResult"), "merkit.predict"),
    "read_video": "merkit.media",
    **dict.fromkeys(("create_model", "list_models"), "merkit.models"),
    **dict.fromkeys(("MerkitError", "DataError", "ConfigError", "CheckpointError"), "merkit.errors"),
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> object:
    """Import a public name's module on first use and cache the name in this module.

    Raises:
        AttributeError: ``name`` is not a public name of merkit (or its module does not define it).
    """
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'merkit' has no attribute {name!r}")
    try:
        value = getattr(_importlib.import_module(module), name)
    except AttributeError:
        raise AttributeError(f"module 'merkit' has no attribute {name!r} ({module} does not define it)") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names and the submodules imported so far (not the private helpers of this module)."""
    return sorted({n for n in globals() if not n.startswith("_")} | set(__all__) | {"__version__"})
