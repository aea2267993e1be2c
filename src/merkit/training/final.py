"""One model trained on every subject, with no held-out subject: the unit of work of ``merkit train``.

:func:`train_model` is pure (it writes nothing), so it runs the same in this process or as a Ray task on a cluster
node; :func:`merkit.api.train` writes the checkpoint from what it returns.
"""

from __future__ import annotations

from merkit.config import Recipe
from merkit.features import FeatureSet


def train_model(recipe: Recipe, data: FeatureSet, seed: int, threads: int = 1) -> tuple[bytes, str, tuple[str, ...],
                                                                                      str]:
    """Train one model by ``recipe`` on every row of ``data`` with ``threads`` torch threads: its weights as
    safetensors bytes (CPU tensors), the device it trained on, its input keys and the machine and software that
    trained it (:func:`merkit.training.engine.describe_environment`). Pure, so that it runs the same in this process
    or as a Ray task on a cluster node.

    Raises:
        DataError: the data lacks an input the model takes (:func:`merkit.training.check.check_features`).
    """
    import torch
    from safetensors.torch import save

    from merkit.training.check import check_features
    from merkit.training.engine import cpu_state_dict, describe_device, describe_environment, fit, module_device
    from merkit.training.seeds import unit_seed

    torch.set_num_threads(max(1, threads))
    s = unit_seed(seed, "all-subjects")
    torch.manual_seed(s)
    model = recipe.model.build(len(data.classes))
    check_features(data, model.input_keys)
    fit(model, data, recipe.training, torch.Generator().manual_seed(s))
    return (save(cpu_state_dict(model)), describe_device(module_device(model)), tuple(model.input_keys),
            describe_environment())
