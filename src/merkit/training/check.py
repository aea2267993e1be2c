"""The data boundary of a run: before any unit trains, the inputs must be what the configured model takes.

:func:`check_model_inputs` reads the input keys of the model the config describes from the model registry (without
building it, :func:`merkit.models.model_info`) and checks the FeatureSet against them and against the data's
preprocessing record (:func:`check_features`), so that a missing key or an image of another size is one line naming
it, raised before training, not a shape error inside the model in the first unit. A model that starts from a
checkpoint (``model.init``) is checked against it too: a start trained on the data's datasets has seen the test
subjects.
"""

from __future__ import annotations

from collections.abc import Sequence

from merkit.config import ModelSpec
from merkit.errors import DataError
from merkit.features import FIXED_SHAPES, FeatureSet, check_inputs
from merkit.pretrained import check_start


def check_features(data: FeatureSet, needed: Sequence[str]) -> None:
    """:func:`merkit.features.check_inputs` for a FeatureSet: every key in ``needed`` (the model's input keys) is
    there, with the shape its preprocessing record (``meta["preprocessing"]``, when it has one) describes; called
    once where the inputs enter evaluation and training.

    Raises:
        DataError: as :func:`merkit.features.check_inputs`; or a ``meta["preprocessing"]`` that is not a readable
            record.
    """
    shapes: dict[str, Sequence[int | None]] = dict(FIXED_SHAPES)
    if data.meta.get("preprocessing"):
        from merkit.errors import CheckpointError
        from merkit.inputs.record import Preprocessing

        try:
            record = Preprocessing.from_dict(data.meta["preprocessing"], "the data's preprocessing record")
        except CheckpointError as error:
            raise DataError(str(error)) from error
        shapes.update(record.input_shapes())
    datasets = data.datasets
    check_inputs(data.inputs, needed, shapes, f"the data ({', '.join(datasets)})" if datasets else "the data")


def check_model_inputs(model: ModelSpec, data: FeatureSet) -> None:
    """Check ``data`` against the input keys of the model ``model`` describes (read from the registry when the
    config was resolved, without building the model; :func:`check_features`), and against the checkpoint it starts
    from, when ``model.init`` names one (:func:`merkit.pretrained.check_start`: trained on none of the data's
    datasets, with the data's classes).

    Raises:
        DataError: the data lacks an input the model takes, or an input has another shape than its record says.
        LeakageError: the ``model.init`` checkpoint was trained on a dataset of ``data``.
        ConfigError: the ``model.init`` checkpoint has other classes.
    """
    check_features(data, model.input_keys)
    if model.init_folder:
        check_start(model.init, model.init_folder, data.classes, data.datasets)

