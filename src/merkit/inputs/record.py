"""The preprocessing record: how frames became a model's inputs, in one typed schema with one set of defaults.

A :class:`Preprocessing` is the face settings (:class:`~merkit.face.clip.FaceConfig`) and the motion settings
(:class:`~merkit.motion.stage.MotionConfig`). A run config holds it as ``data.face`` and ``data.motion``
(:attr:`merkit.config.DataConfig.preprocessing`); the inputs stage builds every input from it; every run folder and
checkpoint stores :meth:`Preprocessing.to_dict`; ``merkit predict`` reads it back with :meth:`Preprocessing.from_dict`
and rebuilds the same inputs on new videos.

The defaults describe the MEGC2019 composite's images (STSTNet, FG 2019): TV-L1 flow from the onset to the apex of
a 224 px grey similarity-aligned face fitted on the onset, with optical strain, resized to 28x28 and min-max
stretched per image and channel. The composite's own face crop is not documented; these settings rebuild images
of the same kind (``docs/predict.md`` compares them).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from merkit import __version__
from merkit.errors import CheckpointError
from merkit.face.clip import FaceConfig
from merkit.motion.stage import MotionConfig

#: Version of the record's layout (not of merkit); bump when its keys change meaning.
PREPROCESSING_SCHEMA = 1
#: Bump when a change in the face or motion code changes the inputs of an unchanged record (cached inputs are
#: keyed by :meth:`Preprocessing.config_hash`, which includes it).
INPUTS_VERSION = 1
#: What the inputs stage does with a clip that fails on bad data: leave it out with a counted warning that names
#: it, or stop.
ON_ERROR: tuple[str, ...] = ("skip", "raise")


def major_version(version: str) -> str:
    """``"0.1.0"`` -> ``"0"``: records and checkpoints are readable within one major version."""
    return str(version).split(".")[0]


@dataclass(frozen=True)
class Preprocessing:
    """How frames became the model's inputs.

    Attributes:
        face: detector, alignment, crop, size and colour of the aligned face clip.
        motion: the representations computed from it, and the apex rule.
        action_units: the AUs of the ground-truth AU vector (input ``action_units``, oracle input), in its order
            (CVA+FPF+AU: :data:`merkit.datasets.action_units.PAPER_AUS`); empty (default): no AU vector. The vector
            comes from the annotation, not from the clip (:mod:`merkit.inputs.action_units`).

    ``to_dict()``::

        {"schema": 1, "merkit_version": "0.1.0", "face": {...every FaceConfig field...},
         "motion": {...every MotionConfig field...}[, "action_units": [1, 2, 4, ...]]}

    ``action_units`` is written only when set, so a record without AUs reads and hashes as before it existed.
    """

    face: FaceConfig = field(default_factory=FaceConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    action_units: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        units = tuple(int(u) for u in self.action_units)
        if len(set(units)) != len(units) or any(u < 1 for u in units):
            raise ValueError(f"action_units must be distinct positive FACS numbers, got {list(units)}")
        object.__setattr__(self, "action_units", units)

    @property
    def input_keys(self) -> tuple[str, ...]:
        """The model-input keys these settings build (:data:`merkit.motion.stage.OUTPUTS`)."""
        return self.motion.input_keys

    def input_shapes(self) -> dict[str, tuple[int | None, ...]]:
        """The shape of one sample's input under each key these settings build (the table of
        :mod:`merkit.motion.stage`): S = ``motion.size``, F = ``long_term_frames``, T = ``resample_length``,
        2J + 1 jitter windows, P = ``ss_pairs``; ``None`` where the record leaves a dimension open (channels, and
        the side when ``motion.size`` is ``None``)."""
        m, side = self.motion, self.motion.size
        square = (side, side)
        window = (2 * m.jitter + 1, None, *square)
        shapes: dict[str, tuple[int | None, ...]] = {
            "flow": (None, *square), "apex_minus_onset": (None, *square), "dynamic_image": (None, *square),
            "long_term_flow": (m.long_term_frames, None, *square),
            "clip": (m.resample_length, *square) + ((3,) if self.face.color == "rgb" else ()),
            "onset": (None, *square), "apex": (None, *square), "onset_window": window, "apex_window": window,
            "jitter_bounds": (4,), "au_boxes": (9, 4), "face_points": (5, 2),
            "ss_onset": (m.ss_pairs, None, *square), "ss_apex": (m.ss_pairs, None, *square),
        }
        return {key: shapes[key] for key in self.input_keys}

    def to_dict(self) -> dict[str, Any]:
        record = {"schema": PREPROCESSING_SCHEMA, "merkit_version": __version__, "face": self.face.to_dict(),
                  "motion": self.motion.to_dict()}
        if self.action_units:
            record["action_units"] = list(self.action_units)
        return record

    def config_hash(self) -> str:
        """12 hex digits identifying the inputs these settings make from a clip (and :data:`INPUTS_VERSION`).
        ``action_units`` is not part of it: the AU vector comes from the annotation, not from the clip, so it
        never enters the per-clip inputs cache this hash keys."""
        payload = json.dumps({"version": INPUTS_VERSION, "face": self.face.to_dict(),
                              "motion": self.motion.to_dict()}, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def describe(self) -> str:
        """One line for reports: the face crop and the motion representations."""
        f, m = self.face, self.motion
        extra = (", ECC-stabilised to it" if f.stabilise == "ecc" else "") + (
            ", eye regions frozen to it" if f.freeze_eyes else "")
        flow = (f" ({m.method}, normalise={m.normalise})" if "onset_apex_flow" in m.representations else "")
        aus = (f"; ground-truth {len(self.action_units)}-AU vector (oracle input)" if self.action_units else "")
        return (f"{f.size} px {f.color} {f.align} / {f.crop} face crop fitted once per clip on the {f.reference} "
                f"frame{extra}; {', '.join(m.representations)}{flow} at {m.size} px; apex {m.apex}{aus}")

    @classmethod
    def from_dict(cls, record: Mapping[str, Any], source: str = "checkpoint") -> "Preprocessing":
        """Parse a record written by :meth:`to_dict`, refusing anything the current code cannot reproduce.

        Raises:
            CheckpointError: another schema or major merkit version, missing or unknown keys, values the face
                or motion stage rejects, or ``action_units`` that are not distinct AU numbers. The message names
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
                                  f"merkit {__version__}: another major version may compute inputs differently")
        parts = {}
        for name, kind in (("face", FaceConfig), ("motion", MotionConfig)):
            given = record.get(name)
            if not isinstance(given, Mapping):
                raise CheckpointError(f"{source}: preprocessing has no {name!r} settings")
            fields = {f.name for f in dataclasses.fields(kind)}
            missing, unknown = sorted(fields - set(given)), sorted(set(given) - fields)
            if missing or unknown:
                raise CheckpointError(
                    f"{source}: {name} preprocessing cannot be reproduced: "
                    + "; ".join(filter(None, [f"missing keys {missing}" if missing else "",
                                              f"unknown keys {unknown}" if unknown else ""])))
            try:
                parts[name] = kind(**dict(given))
            except (TypeError, ValueError) as error:
                raise CheckpointError(f"{source}: {name} preprocessing cannot be reproduced: {error}") from error
        units = record.get("action_units", [])
        if not isinstance(units, list) or not all(isinstance(u, int) and not isinstance(u, bool) for u in units):
            raise CheckpointError(f"{source}: preprocessing action_units must be a list of AU numbers, got {units!r}")
        try:
            return cls(parts["face"], parts["motion"], tuple(units))
        except ValueError as error:
            raise CheckpointError(f"{source}: {error}") from error
