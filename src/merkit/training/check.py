"""The data boundary of a run: before any unit trains, the inputs must be what the configured model takes.

:func:`check_model_inputs` asks the model the config describes for its input keys (built once per model
description and process, without drawing from the global random stream) and checks the FeatureSet against them and
against the data's preprocessing record (:func:`merkit.features.check_features`), so that a missing key or an
image of another size is one line naming it, raised before training, not a shape error inside the model in the
first unit.
"""

from __future__ import annotations

import json
from functools import lru_cache

import torch

from merkit.features import FeatureSet, check_features


@lru_cache(maxsize=16)
def _input_keys(name: str, num_classes: int, preset: str | None, params: str) -> tuple[str, ...]:
    from merkit.models import build_model

    with torch.random.fork_rng(devices=[]):
        model = build_model(name, num_classes, preset, **json.loads(params))
    return tuple(model.input_keys)


def model_input_keys(config, num_classes: int) -> tuple[str, ...]:
    """The input keys of the model ``config.model`` builds for ``num_classes`` classes.

    The model is built inside :func:`torch.random.fork_rng`, so the global random stream the units then seed and
    draw from is left as it was; the answer is kept per model description, so a run builds it once.

    Raises:
        ConfigError: the model cannot be built (unknown model, preset or parameter).
    """
    m = config.model
    return _input_keys(m.name, num_classes, m.preset, json.dumps(dict(m.params), sort_keys=True, default=str))


def check_model_inputs(config, data: FeatureSet) -> None:
    """Check ``data`` against the model ``config.model`` builds (:func:`merkit.features.check_features`).

    Raises:
        ConfigError: the model cannot be built (unknown model, preset or parameter).
        DataError: the data lacks an input the model takes, or an input has another shape than its record says.
    """
    check_features(data, model_input_keys(config, len(data.classes)))
