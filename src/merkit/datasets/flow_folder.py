"""Precomputed-feature datasets: a folder of onset->apex flow images plus a ``manifest.csv``.

This serves the MEGC2019 composite benchmark as released with STSTNet and reused by HTNet, and any folder of a
user's own flow images with the same manifest columns (``merkit export-flow`` writes such folders).

Manifest columns (paths relative to the folder):

``dataset, subject, sample, label, emotion, flow[, apex]``

* ``label`` is the integer class under the chosen class scheme and must agree with ``emotion``.
* ``flow`` is an 8-bit RGB image. **Channel order in the file:** R = horizontal flow u (positive to the right),
  G = vertical flow v (positive downwards), B = optical strain magnitude, each min-max stretched to 0..255 per
  image. ``cv2.imread`` returns BGR, i.e. (strain, v, u); this loader converts to the file's RGB order first and
  then selects/reorders channels with ``channels``.
* ``apex`` (optional) is the apex face crop, loaded as grey.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import pandas as pd
import torch

from merkit.datasets.schemes import get_scheme
from merkit.datasets.table import new_sample_table
from merkit.errors import DataError, Diagnostics, Where
from merkit.features import FeatureSet

FLOW_FILE_CHANNELS: tuple[str, ...] = ("u", "v", "strain")
MANIFEST_COLUMNS: tuple[str, ...] = ("dataset", "subject", "sample", "label", "emotion", "flow")


def read_manifest(root: str | Path) -> pd.DataFrame:
    """Read and check ``root/manifest.csv``.

    Raises:
        DataError: the folder or manifest is missing, or required columns are absent.
    """
    root = Path(root)
    path = root / "manifest.csv"
    if not path.is_file():
        raise DataError(f"no manifest.csv in {root}", hint="a flow folder needs manifest.csv with columns "
                        + ", ".join(MANIFEST_COLUMNS))
    df = pd.read_csv(path, dtype={"subject": str, "sample": str})
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{path} lacks columns {missing}")
    return df


def _read_rgb(path: Path, where: Where) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"file not found: {path}", where)
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DataError(f"cannot decode image {path}", where)
    if img.ndim != 3 or img.shape[2] != 3:
        channels = 1 if img.ndim == 2 else img.shape[2]
        raise DataError(f"flow image {path} has {channels} channels, expected 3 (u, v, strain)", where)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def load_flow_folder(
    root: str | Path,
    scheme: str = "megc2019-3class",
    channels: Sequence[str] = FLOW_FILE_CHANNELS,
    file_channels: Sequence[str] = FLOW_FILE_CHANNELS,
    with_apex: bool = False,
    apex_size: int | None = None,
    with_au_boxes: bool = False,
    diagnostics: Diagnostics | None = None,
) -> FeatureSet:
    """Load a flow folder as a :class:`~merkit.features.FeatureSet`.

    Args:
        root: folder with ``manifest.csv`` and the images it names.
        scheme: class scheme name (:mod:`merkit.datasets.schemes`); labels must agree with it.
        channels: order in which the channels are fed to the model, from ``{"u", "v", "strain"}``.
        file_channels: the channel order stored in the files' RGB planes (default u, v, strain).
        with_apex: also load the ``apex`` column as an ``"apex"`` input (grey, (N, 1, S, S)).
        apex_size: resize apex crops to this side (pixels); ``None`` keeps the stored size.
        with_au_boxes: also fit dlib's 68 landmarks on each stored apex crop (before resizing) and give FRL-DGT's
            nine AU boxes as an ``"au_boxes"`` input, float32 (N, 9, 4) in units of the crop side
            (:func:`merkit.face.regions.image_au_boxes`; a crop where the detector finds no face is counted).
        diagnostics: receives those warnings; their counts also go to ``meta["diagnostics"]``.

    Returns:
        FeatureSet with input ``"flow"``: float32 (N, len(channels), H, W) in [0, 1], and optionally ``"apex"``
        and ``"au_boxes"``.

    Raises:
        DataError: a file is missing or unreadable, has the wrong channel count or size, a sample id repeats,
            or a label disagrees with the class scheme. Messages name the dataset, subject and sample.
    """
    root = Path(root)
    cls = get_scheme(scheme)
    man = read_manifest(root)
    unknown = [c for c in list(channels) + list(file_channels) if c not in FLOW_FILE_CHANNELS]
    if unknown or len(file_channels) != 3 or len(set(file_channels)) != 3:
        raise DataError(f"channels must be drawn from {FLOW_FILE_CHANNELS}; got channels={list(channels)}, "
                        f"file_channels={list(file_channels)}")
    # The manifest's 'apex' column is an image path; the sample table's 'apex' is a frame number.
    man = man.rename(columns={"apex": "apex_path"})
    table = new_sample_table(man.to_dict("records"))  # raises on duplicate sample ids
    for row in table.itertuples(index=False):
        where = Where(row.dataset, row.subject, row.sample)
        expected = cls.label_of(row.emotion)
        if expected is None or not 0 <= int(row.label) < cls.num_classes:
            raise DataError(f"label {row.label} / emotion {row.emotion!r} is not a class of {cls.name}", where)
        if int(row.label) != expected:
            raise DataError(f"label {row.label} disagrees with emotion {row.emotion!r} "
                            f"({cls.name} gives {expected})", where)
    order = [list(file_channels).index(c) for c in channels]
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    missed_before = diagnostics.summary().get("face-not-detected", 0)
    flows, apexes, boxes, shape = [], [], [], None
    for row in table.itertuples(index=False):
        where = Where(row.dataset, row.subject, row.sample)
        img = _read_rgb(root / row.flow, where)
        if shape is None:
            shape = img.shape
        elif img.shape != shape:
            raise DataError(f"flow image is {img.shape}, the first was {shape}", where)
        flows.append(img[:, :, order])
        if with_apex or with_au_boxes:
            if "apex_path" not in table.columns or pd.isna(row.apex_path):
                raise DataError("with_apex and with_au_boxes need an 'apex' column in the manifest", where)
            path = root / row.apex_path
            grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if grey is None:
                raise DataError(f"cannot read apex image {path}", where)
            if with_au_boxes:  # the face stage's landmarks, imported late: datasets come before face
                from merkit.face.regions import image_au_boxes

                boxes.append(image_au_boxes(grey, where, diagnostics))
            if apex_size:
                grey = cv2.resize(grey, (apex_size, apex_size), interpolation=cv2.INTER_AREA)
            apexes.append(grey[None])
    flow = torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2).float().div_(255.0).contiguous()
    inputs = {"flow": flow}
    notes = [f"onset->apex flow images from {root.name}, channels {list(channels)}"]
    if with_apex:
        inputs["apex"] = torch.from_numpy(np.stack(apexes)).float().div_(255.0)
    if with_au_boxes:
        inputs["au_boxes"] = torch.from_numpy(np.stack(boxes))
        missed = diagnostics.summary().get("face-not-detected", 0) - missed_before
        notes.append(f"AU regions from dlib landmarks fitted on each apex crop (in {missed} of {len(table)} crops "
                     "the detector found no face and the whole crop was the face box)")
    table = table.drop(columns=[c for c in ("apex_path",) if c in table.columns])
    return FeatureSet(table, inputs, cls.classes, notes,
                      {"flow_channels": list(channels), "diagnostics": diagnostics.summary()})

