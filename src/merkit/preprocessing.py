"""The preprocessing record: how raw frames became a model's inputs, in one schema.

Feature builders (:func:`merkit.pipeline.build_flow_features`) write :meth:`Preprocessing.to_dict` into
``FeatureSet.meta["preprocessing"]``; :func:`merkit.api.train` copies it into ``checkpoint.json``; and
:class:`merkit.predict.Predictor` rebuilds the same inputs from it on new videos, refusing a record the current code
cannot reproduce (:class:`merkit.errors.CheckpointError`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from merkit import __version__
from merkit.errors import CheckpointError
from merkit.face.clip import ADDED_OPTIONS, FaceConfig
from merkit.motion.stage import REPRESENTATION_FIELDS, MotionConfig, input_keys_of

#: Version of the ``preprocessing`` record's layout (not of merkit); bump when its keys change meaning.
PREPROCESSING_SCHEMA = 1
#: Input keys built from the aligned face crops themselves rather than from a motion representation.
CROP_KEYS: tuple[str, ...] = ("onset", "apex")

#: Settings added after records were first written; a record without them means their defaults, which is what the
#: older merkit computed (the face options' "off" values; the motion fields of representations that did not exist).
OPTIONAL_KEYS: dict[str, set[str]] = {"face": set(ADDED_OPTIONS), "motion": set(REPRESENTATION_FIELDS)}


def major_version(version: str) -> str:
    """``"0.1.0"`` -> ``"0"``: records and checkpoints are readable within one major version."""
    return str(version).split(".")[0]


@dataclass(frozen=True)
class Preprocessing:
    """How raw frames became the model's inputs: the schema of a checkpoint's ``preprocessing`` record.

    ``to_dict()`` is what the feature builders write into ``FeatureSet.meta["preprocessing"]`` and
    :func:`merkit.api.train` copies into ``checkpoint.json``::

        {"schema": 1, "merkit_version": "0.1.0",
         "face": {...every FaceConfig field...}, "motion": {...every MotionConfig field...}}

    Model input keys it can produce: :func:`merkit.motion.stage.input_keys_of` the motion representations (``flow`` for
    ``onset_apex_flow``, ...) and the aligned ``onset`` and ``apex`` crops ((C, S, S) float32 in [0, 1], S =
    ``face.size``).
    """

    face: FaceConfig
    motion: MotionConfig

    @classmethod
    def onset_apex_flow(cls, face: FaceConfig, size: int | None = 28, method: str = "tvl1",
                        normalise: str = "minmax", **flow_params: Any) -> "Preprocessing":
        """The record of :func:`merkit.pipeline.build_flow_features` (and ``clip_flow``) called with these
        arguments: onset->apex flow and strain on the ``face`` crop, resized to ``size``."""
        return cls(face, MotionConfig(representations=("onset_apex_flow",), method=method,
                                      flow_params=dict(flow_params), size=size, normalise=normalise,
                                      apex="annotated"))

    @property
    def input_keys(self) -> tuple[str, ...]:
        """The model input keys these settings can build."""
        return tuple(dict.fromkeys(input_keys_of(self.motion.representations) + CROP_KEYS))

    def to_dict(self) -> dict[str, Any]:
        return {"schema": PREPROCESSING_SCHEMA, "merkit_version": __version__, "face": self.face.to_dict(),
                "motion": self.motion.to_dict()}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any], source: str = "checkpoint") -> "Preprocessing":
        """Parse a record written by :meth:`to_dict`, refusing anything the current code cannot reproduce.

        Raises:
            CheckpointError: another schema or major merkit version, missing or unknown keys, or values the face
                or motion stage rejects (an unknown representation, flow method, alignment, ...). The message names
                ``source`` and what is wrong.
        """
        if not isinstance(record, Mapping):
            raise CheckpointError(f"{source}: preprocessing must be a mapping, got {type(record).__name__}")
        if record.get("schema") != PREPROCESSING_SCHEMA:
            raise CheckpointError(f"{source}: preprocessing schema {record.get('schema')!r} is not the one this "
                                  f"merkit reads ({PREPROCESSING_SCHEMA}); use the merkit version that wrote it")
        version = str(record.get("merkit_version", ""))
        if major_version(version) != major_version(__version__):
            raise CheckpointError(f"{source}: preprocessing written by merkit {version or '(unknown)'}, this is "
                                  f"merkit {__version__}: another major version may compute features differently",
                                  )
        parts = {}
        for name, kind in (("face", FaceConfig), ("motion", MotionConfig)):
            given = record.get(name)
            if not isinstance(given, Mapping):
                raise CheckpointError(f"{source}: preprocessing has no {name!r} settings")
            fields = {f.name for f in dataclasses.fields(kind)}
            missing = sorted(fields - set(given) - OPTIONAL_KEYS.get(name, set()))
            unknown = sorted(set(given) - fields)
            if missing or unknown:
                raise CheckpointError(
                    f"{source}: {name} preprocessing cannot be reproduced: "
                    + "; ".join(filter(None, [f"missing keys {missing}" if missing else "",
                                              f"unknown keys {unknown}" if unknown else ""]))
                    + f" (this merkit's {kind.__name__} has {sorted(fields)})")
            try:
                parts[name] = kind(**dict(given))
            except (TypeError, ValueError) as error:
                raise CheckpointError(f"{source}: {name} preprocessing cannot be reproduced: {error}") from error
        return cls(parts["face"], parts["motion"])


#: Inputs of a model trained on the MEGC2019 composite's flow images (``data.kind: flow_folder``): 28x28 u, v and
#: optical strain, each min-max stretched per image, from OpenCV TV-L1 between the onset and the apex of an aligned
#: face (STSTNet, FG 2019). The composite's face crop is not documented; :mod:`merkit.motion.export` rebuilds the
#: composite with these settings (224 px grey similarity-aligned crop), so predict uses them too.
COMPOSITE_FLOW = Preprocessing.onset_apex_flow(FaceConfig(size=224, color="grey"), size=28)
