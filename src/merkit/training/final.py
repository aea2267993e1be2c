"""One model trained on every subject, with no held-out subject: the unit of work of ``merkit train``.

:func:`train_model` is pure (it writes nothing), so it runs the same in this process or as a Ray task on a cluster
node; :func:`merkit.api.train` writes the checkpoint from what it returns.
"""

from __future__ import annotations

from merkit.features import FeatureSet


def train_model(config_dict: dict, data: FeatureSet, seed: int) -> tuple[bytes, str, tuple[str, ...], str]:
    """Train one model on every row of ``data`` (``config_dict``: :meth:`RunConfig.to_dict`): its weights as
    safetensors bytes (CPU tensors), the device it trained on, its input keys and the machine and software that
    trained it (:func:`merkit.training.engine.describe_environment`). Pure, so that it runs the same in
    this process or as a Ray task on a cluster node."""
    import torch
    from safetensors.torch import save

    from merkit.config import config_from_dict
    from merkit.training.check import check_features
    from merkit.models import build_model
    from merkit.training.engine import cpu_state_dict, describe_device, describe_environment, fit, module_device
    from merkit.training.seeds import unit_seed

    config = config_from_dict(config_dict)
    torch.set_num_threads(max(1, config.protocol.threads_per_fold))
    s = unit_seed(seed, "all-subjects")
    torch.manual_seed(s)
    model = build_model(config.model.name, len(data.classes), config.model.preset, **config.model.params)
    check_features(data, model.input_keys)
    fit(model, data, config.training, torch.Generator().manual_seed(s))
    return (save(cpu_state_dict(model)), describe_device(module_device(model)), tuple(model.input_keys),
            describe_environment())
