"""A trained model as a folder: :class:`Checkpoint`, written by :func:`merkit.api.train`, read by
:class:`merkit.predict.Predictor`.

Layout::

    CKPT/model.safetensors   the weights, CPU tensors
    CKPT/config.yaml         the run config that trained them
    CKPT/checkpoint.json     model name, preset and params, classes, input keys, the preprocessing record, the seed,
                             the device and the machine, a summary of the training data and the merkit version
    CKPT/MODEL_CARD.md       optional: what the model was trained on, how well it does, what it is for (the packaged
                             models have one; see :mod:`merkit.pretrained`)

The layout and its rules belong to :class:`merkit.runfolder.CheckpointFolder`: the folder is written whole under a
temporary name beside ``CKPT`` and then moved into place, so a killed ``merkit train`` leaves either the old
checkpoint or the new one, and it replaces only a folder stamped as a merkit checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from merkit import __version__
from merkit.errors import CheckpointError
from merkit.inputs.record import Preprocessing, major_version
from merkit.runfolder import CheckpointFolder

FILES = CheckpointFolder.FILES


def state_mismatch(expected: dict, found: dict) -> str | None:
    """The first tensor in which the weights ``found`` differ from the state dict ``expected`` (a model's), in the
    model's order: one it lacks, one of another shape, or one it does not have; ``None`` when they fit."""
    for name, tensor in expected.items():
        if name not in found:
            return f"tensor {name!r} {tuple(tensor.shape)} is missing from the weights"
        if tuple(found[name].shape) != tuple(tensor.shape):
            return (f"tensor {name!r} is {tuple(found[name].shape)} in the weights, the model's is "
                    f"{tuple(tensor.shape)}")
    extra = [name for name in found if name not in expected]
    if extra:
        return f"the weights hold tensor {extra[0]!r} {tuple(found[extra[0]].shape)}, which the model has not"
    return None


def resolved_model_config(model: str, preset: str | None, params: dict[str, Any]) -> dict[str, Any]:
    """Every field of model ``model``'s config with ``preset`` and ``params`` applied, as JSON values
    (:attr:`merkit.models.base.ModelInfo.config_record`).

    Raises:
        ConfigError: unknown model, preset or parameter.
    """
    from merkit.models import model_info

    return model_info(model, preset, **params).config_record


def _check_model_config(checkpoint: "Checkpoint", path: Path) -> None:
    """Refuse a checkpoint whose model config, as trained, differs from what its preset and params build now
    (:func:`merkit.pretrained.weights_problem`)."""
    from merkit.errors import MerkitError
    from merkit.pretrained import weights_problem

    now = {}
    if checkpoint.model_config:
        try:
            now = resolved_model_config(checkpoint.model, checkpoint.preset, checkpoint.params)
        except MerkitError as error:
            raise CheckpointError(f"{path}: cannot rebuild model {checkpoint.model!r}: {error}") from error
    problem = weights_problem(checkpoint.model, checkpoint.preset, checkpoint.model_config, now)
    if problem:
        raise CheckpointError(f"{path}: {problem}")


@dataclass
class Checkpoint:
    """What a checkpoint folder holds besides the weights.

    Attributes:
        model, preset, params: :func:`merkit.models.build_model`'s arguments.
        classes: class names; the model's logit ``k`` is ``classes[k]``.
        input_keys: the model-input keys the model consumes.
        preprocessing: how frames became those inputs; predict rebuilds them with it.
        config: the run config (:class:`merkit.config.RunConfig`) that trained the weights.
        seed: the training seed.
        device: where it trained (``cpu`` or ``cuda:N (<name>)``).
        environment: the machine and software that trained it (:func:`merkit.training.engine.describe_environment`;
            empty in checkpoints written before merkit recorded it). A seed retrained elsewhere can round
            differently.
        training_data: samples, subjects, classes and datasets it saw, and the data fingerprint.
        merkit_version: the version that wrote it; another major version is refused.
        calibration: the temperature fitted on LOSO out-of-fold predictions of the same recipe
            (:func:`merkit.evaluation.calibration.fit_temperature`): ``temperature``, what it was fitted on and the
            expected calibration error before and after; empty (temperature 1) in checkpoints without one.
        model_config: every field of the model's config as the preset and ``params`` resolved it when the weights
            were trained (:func:`resolved_model_config`); :meth:`load` refuses a checkpoint whose preset now
            resolves otherwise. Empty in checkpoints written before merkit recorded it.
        domain: the training data's statistics that predictions are checked against
            (:mod:`merkit.predict.trust`): ``onset_apex_s`` and ``onset_offset_s`` (1st, 50th and 99th percentile,
            min, max, count, source) and ``notes``; empty when the training inputs carried none.
    """

    model: str
    preset: str | None
    params: dict[str, Any]
    classes: tuple[str, ...]
    input_keys: tuple[str, ...]
    preprocessing: Preprocessing
    config: Any
    seed: int = 0
    device: str = "cpu"
    environment: str = ""
    training_data: dict[str, Any] = field(default_factory=dict)
    merkit_version: str = __version__
    calibration: dict[str, Any] = field(default_factory=dict)
    domain: dict[str, Any] = field(default_factory=dict)
    model_config: dict[str, Any] = field(default_factory=dict)

    @property
    def temperature(self) -> float:
        """The calibration temperature, 1.0 when the checkpoint has none."""
        return float(self.calibration.get("temperature", 1.0))

    def build_model(self):
        """The model, untrained, as :func:`merkit.models.build_model` builds it."""
        from merkit.models import build_model

        return build_model(self.model, len(self.classes), self.preset, **self.params)

    def to_dict(self) -> dict[str, Any]:
        return {"merkit_version": self.merkit_version, "model": self.model, "preset": self.preset,
                "params": self.params, "classes": list(self.classes), "input_keys": list(self.input_keys),
                "seed": self.seed, "device": self.device, "environment": self.environment,
                "training_data": self.training_data,
                "model_config": self.model_config or resolved_model_config(self.model, self.preset, self.params),
                "preprocessing": self.preprocessing.to_dict(),
                **({"calibration": self.calibration} if self.calibration else {}),
                **({"domain": self.domain} if self.domain else {})}

    def save(self, folder: str | Path, state_dict: dict) -> Path:
        """Write the folder: ``state_dict`` (CPU tensors), ``config.yaml`` and ``checkpoint.json``, atomically
        (:meth:`merkit.runfolder.CheckpointFolder.write`): it replaces only a merkit checkpoint.

        Returns:
            The folder.

        Raises:
            ConfigError: ``folder`` is a file, or a folder that is not a merkit checkpoint (nothing is written).
            OutputError: the disk refused a write.
        """
        from safetensors.torch import save_file

        from merkit.config import dump_config

        return CheckpointFolder(folder).write(self.to_dict(), lambda p: save_file(state_dict, str(p)),
                                              lambda p: dump_config(self.config, p))

    @staticmethod
    def read_record(folder: str | Path) -> dict[str, Any]:
        """``checkpoint.json`` of a checkpoint folder, as a dict.

        Raises:
            CheckpointError: the folder has no checkpoint files, or the record is not a JSON object.
        """
        folder = Path(folder)
        for name in FILES:
            if not (folder / name).is_file():
                raise CheckpointError(f"{folder / name} not found: is {folder} a checkpoint folder written by "
                                      "merkit train?")
        path = folder / CheckpointFolder.META
        try:
            meta = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CheckpointError(f"{path} is not valid JSON ({error}): the checkpoint is damaged") from error
        if not isinstance(meta, dict):
            raise CheckpointError(f"{path} must hold a JSON object")
        return meta

    @staticmethod
    def update_record(folder: str | Path, **entries: Any) -> Path:
        """Set top-level entries of a checkpoint's ``checkpoint.json`` (``calibration``, ``domain``), keeping the
        others and their order, atomically; the weights and the config are not touched.

        Raises:
            CheckpointError: as :meth:`read_record`.
        """
        from merkit.files import write_json

        meta = Checkpoint.read_record(folder)
        meta.update(entries)
        return write_json(Path(folder) / CheckpointFolder.META, meta)

    @classmethod
    def load(cls, folder: str | Path, preprocessing: Preprocessing | None = None):
        """Read a checkpoint folder and rebuild its model with the weights.

        Args:
            preprocessing: replaces the folder's record (you then vouch that it matches how the training inputs
                were made).

        Returns:
            ``(checkpoint, model)``, the model in eval mode on the CPU.

        Raises:
            CheckpointError: a missing or damaged file of any kind (the message names it), another major merkit
                version, a record the current code cannot reproduce, or weights that do not fit the model the record
                builds (another number of classes, input size or preset: the message names the folder and the first
                tensor that differs, :func:`state_mismatch`).
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from merkit.config import load_config
        from merkit.errors import MerkitError

        folder = Path(folder)
        path = folder / CheckpointFolder.META
        meta = cls.read_record(folder)
        missing = [k for k in ("model", "classes", "input_keys", "preprocessing", "merkit_version") if k not in meta]
        if missing:
            raise CheckpointError(f"{path} lacks {missing}")
        if major_version(meta["merkit_version"]) != major_version(__version__):
            raise CheckpointError(f"{folder}: written by merkit {meta['merkit_version']}, this is merkit "
                                  f"{__version__}; load it with merkit {major_version(meta['merkit_version'])}.x")
        try:
            config = load_config(folder / CheckpointFolder.CONFIG)
        except MerkitError as error:
            raise CheckpointError(f"{folder / CheckpointFolder.CONFIG} cannot be read: {error}") from error
        record = preprocessing or Preprocessing.from_dict(meta["preprocessing"], str(path))
        checkpoint = cls(meta["model"], meta.get("preset"), dict(meta.get("params") or {}), tuple(meta["classes"]),
                         tuple(meta["input_keys"]), record, config, int(meta.get("seed", 0)),
                         str(meta.get("device", "cpu")), str(meta.get("environment", "")),
                         dict(meta.get("training_data") or {}), meta["merkit_version"],
                         dict(meta.get("calibration") or {}), dict(meta.get("domain") or {}))
        checkpoint.model_config = dict(meta.get("model_config") or {})
        _check_model_config(checkpoint, path)
        temperature = checkpoint.calibration.get("temperature", 1.0)
        if not isinstance(temperature, (int, float)) or not 0 < float(temperature) < float("inf"):
            raise CheckpointError(f"{path}: calibration.temperature must be a finite number > 0, got {temperature!r}")
        try:
            model = checkpoint.build_model()
        except MerkitError as error:
            raise CheckpointError(f"{path}: cannot rebuild model {meta['model']!r}: {error}") from error
        try:
            state = load_file(str(folder / CheckpointFolder.WEIGHTS))
        except (SafetensorError, OSError) as error:
            raise CheckpointError(f"{folder / CheckpointFolder.WEIGHTS} cannot be read ({error}): the checkpoint is "
                                  "damaged") from error
        mismatch = state_mismatch(model.state_dict(), state)
        if mismatch:
            raise CheckpointError(f"{folder}: the weights do not fit the model its checkpoint.json builds "
                                  f"({meta['model']!r}, preset {meta.get('preset')!r}, {len(checkpoint.classes)} "
                                  f"classes): {mismatch}")
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise CheckpointError(f"{folder / CheckpointFolder.WEIGHTS} does not fit model {meta['model']!r}: "
                                  f"{str(error).splitlines()[0]}") from error
        if tuple(model.input_keys) != checkpoint.input_keys:
            raise CheckpointError(f"{path}: the model takes inputs {list(model.input_keys)}, the checkpoint says "
                                  f"{list(checkpoint.input_keys)}")
        return checkpoint, model.eval()
