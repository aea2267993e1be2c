"""The model-input mapping: named tensors aligned with the rows of a sample table.

Models never receive positional tuples. A :class:`FeatureSet` holds a sample table (one row per sample, with an
integer ``label`` column) and a dict of tensors whose first dimension indexes those rows. A model declares the
keys it consumes (``Model.input_keys``) and receives ``{key: tensor[batch]}``.

Standard input keys (float32 unless stated; B = batch):

=====================  ==================  =================================================================
key                    shape               meaning
=====================  ==================  =================================================================
``flow``               (B, 3, H, W)        onset->apex optical flow image, channels as configured (default
                                           u, v, optical strain), each scaled to [0, 1]
``apex``               (B, C, H, W)        apex face crop, [0, 1]
``onset``              (B, C, H, W)        onset face crop, [0, 1]
``long_term_flow``     (B, F, 3, H, W)     flow from the onset to each of F frames, in temporal order
``action_units``       (B, A)              binary action-unit vector (flagged when it is ground truth)
``face_points``        (B, 5, 2)           eye centres, nose tip, mouth corners, (x, y) / image side (HTNet)
=====================  ==================  =================================================================
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from merkit.errors import DataError


@dataclass
class FeatureSet:
    """Samples (``table``) and their model inputs (``inputs``), row-aligned.

    Attributes:
        table: sample table with at least ``sample_id, dataset, subject, subject_id, sample, label``.
        inputs: name -> tensor with ``tensor.shape[0] == len(table)``.
        classes: class names; ``label`` indexes this tuple.
        notes: free-text facts about the inputs that a report must show (e.g. "F = 1 flow frame").
        meta: facts about the inputs that code needs, e.g. ``meta["flow_channels"] == ["u", "v", "strain"]``.
            ``meta["ground_truth_inputs"]`` lists input keys that carry annotations (e.g. ground-truth action
            units): every report of a run given such inputs flags it as using test-time ground truth.
            ``meta["preprocessing"]`` (dict) records the face and motion settings that built the inputs from raw
            frames; checkpoints store it so that prediction on new videos reproduces it.
            ``meta["subset"]`` (dict) is the subset record when the rows are part of the data
            (:mod:`merkit.inputs.select`: the selected subjects and datasets, and the counts before selection).
    """

    table: pd.DataFrame
    inputs: dict[str, torch.Tensor]
    classes: tuple[str, ...]
    notes: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.table = self.table.reset_index(drop=True)
        if "label" not in self.table.columns:
            raise DataError("a FeatureSet's table needs a 'label' column")
        n = len(self.table)
        for key, tensor in self.inputs.items():
            if tensor.shape[0] != n:
                raise DataError(f"input {key!r} has {tensor.shape[0]} rows but the table has {n}")
        bad = self.table["label"][(self.table["label"] < 0) | (self.table["label"] >= len(self.classes))]
        if len(bad):
            raise DataError(f"labels {sorted(set(bad))} are outside 0..{len(self.classes) - 1}")

    def __len__(self) -> int:
        return len(self.table)

    @property
    def labels(self) -> torch.Tensor:
        """(N,) int64 class indices."""
        return torch.tensor(self.table["label"].to_numpy(dtype=np.int64))

    def subset(self, index: Sequence[int] | np.ndarray) -> "FeatureSet":
        """Rows ``index`` (positions), tensors and table together."""
        idx = np.asarray(index, dtype=np.int64)
        t = torch.as_tensor(idx)
        return FeatureSet(
            self.table.iloc[idx].reset_index(drop=True),
            {k: v.index_select(0, t) for k, v in self.inputs.items()},
            self.classes,
            list(self.notes),
            dict(self.meta),
        )

    def batch(self, index: torch.Tensor, keys: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """The inputs of rows ``index`` as a ``{key: tensor}`` mapping (only ``keys`` if given).

        Raises:
            KeyError: a requested key is not among the inputs.
        """
        keys = list(self.inputs) if keys is None else list(keys)
        missing = [k for k in keys if k not in self.inputs]
        if missing:
            raise KeyError(f"model needs inputs {missing}, the data provides {sorted(self.inputs)}")
        return {k: self.inputs[k].index_select(0, index) for k in keys}

    @property
    def ground_truth_inputs(self) -> list[str]:
        """Input keys built from annotations rather than from the video (flagged in every report)."""
        return [k for k in self.meta.get("ground_truth_inputs", []) if k in self.inputs]

    @property
    def datasets(self) -> list[str]:
        """The names of the datasets the table holds, sorted (none for a table without a ``dataset`` column)."""
        return sorted(map(str, set(self.table["dataset"]))) if "dataset" in self.table.columns else []

    def data_record(self) -> dict:
        """What a run's ``run.json`` records of its data: ``{"samples", "subjects", "datasets", "subset"}``
        (``subset``: ``meta["subset"]``, ``None`` for all the data)."""
        return {"samples": int(len(self.table)), "subjects": int(self.table["subject_id"].nunique()),
                "datasets": self.datasets, "subset": self.meta.get("subset")}

    def fingerprint(self) -> str:
        """16 hex digits of SHA-256 over the sample ids, labels, classes, each input's name, dtype and shape, and
        the bytes of every input tensor (in key order): two FeatureSets share it only when they hold the same
        samples with the same labels *and* the same input values. A run folder's ``run.json`` keeps it, so that
        resuming a run on changed data is refused instead of reusing predictions of the old data.

        Cost: one pass over the tensors (SHA-256 runs at about 1-2 GB/s; ``benchmarks/bench_fingerprint.py``).
        """
        h = hashlib.sha256(b"merkit-fingerprint-2\n")
        h.update("\n".join(map(str, self.table["sample_id"])).encode())
        h.update(self.table["label"].to_numpy(dtype=np.int64).tobytes())
        h.update(("\n" + ",".join(self.classes) + "\n").encode())
        for k in sorted(self.inputs):
            tensor = self.inputs[k].detach().cpu().contiguous()
            h.update(f"{k}{tuple(tensor.shape)}{tensor.dtype}\n".encode())
            if tensor.numel():
                h.update(tensor.view(-1).view(torch.uint8).numpy().data if tensor.dtype != torch.bool
                         else tensor.numpy().tobytes())
        return h.hexdigest()[:16]

    def shape_fingerprint(self) -> str:
        """The fingerprint of merkit before content fingerprints (version 1): sample ids, labels, input shapes and
        classes, not the values. Kept to recognise run folders stamped with it (:mod:`merkit.runfolder`)."""
        h = hashlib.sha256()
        h.update("\n".join(self.table["sample_id"]).encode())
        h.update(self.table["label"].to_numpy(dtype=np.int64).tobytes())
        for k in sorted(self.inputs):
            h.update(f"{k}{tuple(self.inputs[k].shape)}".encode())
        h.update(",".join(self.classes).encode())
        return h.hexdigest()[:16]


def require_inputs(provided: Mapping[str, torch.Tensor], needed: Sequence[str]) -> None:
    """Raise :class:`KeyError` naming the missing keys if ``provided`` lacks any of ``needed``."""
    missing = [k for k in needed if k not in provided]
    if missing:
        raise KeyError(f"missing model inputs {missing}; got {sorted(provided)}")


#: Per-sample shapes of inputs whose layout is fixed whatever made them (boxes and points in units of the crop).
FIXED_SHAPES: dict[str, tuple[int, ...]] = {"au_boxes": (9, 4), "face_points": (5, 2), "jitter_bounds": (4,)}


def _shape_text(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def check_inputs(inputs: Mapping[str, "torch.Tensor | np.ndarray"], needed: Sequence[str],
                 shapes: Mapping[str, Sequence[int | None]], source: str, batched: bool = True) -> None:
    """Check that ``inputs`` hold every key in ``needed`` with the per-sample shape ``shapes`` gives it (``None``:
    any size) and a numeric dtype (integer for ``jitter_bounds``, floating point otherwise).

    Args:
        inputs: key -> tensor or array; with ``batched`` the first dimension indexes the samples.
        needed: the keys the model consumes (``Model.input_keys``).
        shapes: key -> per-sample shape, e.g. :meth:`merkit.inputs.record.Preprocessing.input_shapes` and
            :data:`FIXED_SHAPES`; keys it lacks are checked for presence only.
        source: how messages name the inputs (``"the data (casme2)"``, ``"the clip's inputs"``).

    Raises:
        DataError: a needed key is missing, or an input has another shape or dtype than described; one line naming
            the key, its shape and the expected one.
    """
    missing = [k for k in needed if k not in inputs]
    if missing:
        raise DataError(f"the model takes inputs {missing}, which {source} does not provide (it has "
                        f"{sorted(inputs)})", hint="choose data.motion.representations (or the flow folder's "
                        "with_apex / with_au_boxes / with_face_points) that build them")
    for key in needed:
        value = inputs[key]
        shape = tuple(value.shape[1:] if batched else value.shape)
        want = tuple(shapes.get(key, shape))
        if len(shape) != len(want) or any(w is not None and w != d for d, w in zip(shape, want)):
            raise DataError(f"input {key!r} of {source} is {_shape_text(shape)} per sample, its preprocessing "
                            f"record describes {_shape_text(want)}",
                            hint="the inputs were made with other settings than the record says; rebuild them")
        integer = key == "jitter_bounds"
        kind = value.dtype.is_floating_point if isinstance(value, torch.Tensor) else value.dtype.kind == "f"
        if kind == integer:
            raise DataError(f"input {key!r} of {source} has dtype {value.dtype}, expected "
                            f"{'an integer' if integer else 'a floating-point'} dtype")
