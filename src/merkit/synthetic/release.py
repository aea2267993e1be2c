"""Writing a dataset in the CASME II release layout (``merkit synth OUT``).

Part of :mod:`merkit.synthetic` (its module docstring describes the generator).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from merkit.boundary import Count, Int, NonNegativeFloat, NonNegativeInt, check
from merkit.datasets.table import new_sample_table
from merkit.errors import ConfigError
from merkit.media import encode_jpeg
from merkit.synthetic.clips import CLASSES, draw_clip, render_clip
from merkit.synthetic.faces import DATASET, _FaceSource, make_subject

# Bumped whenever the same arguments would give different files, so that caches keyed by it are renewed.
GENERATOR_VERSION = 1
SHEET_NAME = "CASME2-coding-synthetic.xlsx"
TABLE_NAME = "samples.csv"
SHEET_COLUMNS: tuple[str | None, ...] = ("Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame",
                                         None, "Action Units", "Estimated Emotion")
_FIXED_TIME = datetime(2020, 1, 1)
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def write_coding_sheet(rows: pd.DataFrame, path: str | Path) -> None:
    """Write a CASME II coding sheet (.xlsx) with the official nine columns, reproducibly.

    Columns (two unnamed, as in the release): ``Subject | Filename | | OnsetFrame | ApexFrame | OffsetFrame | |
    Action Units | Estimated Emotion``. As in CASME2-coding-20190701.xlsx, Subject is text (``"01"``) and a single
    action unit is a number (``14``), a combination text (``"6+12"``).
    The workbook's created/modified times and the zip members' timestamps are fixed, so equal rows give equal bytes.
    """
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws.append(list(SHEET_COLUMNS))
    for r in rows.itertuples(index=False):
        # the release stores a single AU as a number and combinations as text ("4+7")
        aus = int(r.action_units) if r.action_units.isdigit() else r.action_units
        ws.append([r.subject.removeprefix("sub"), r.sample, None, int(r.onset), int(r.apex), int(r.offset), None,
                   aus, r.emotion])
    for cell in ws["A"][1:]:
        cell.number_format = "@"
    wb.properties.creator = "merkit"
    wb.properties.created = _FIXED_TIME
    wb.properties.modified = _FIXED_TIME
    buf = io.BytesIO()
    wb.save(buf)
    _fix_zip_times(buf.getvalue(), Path(path))


def _fix_zip_times(data: bytes, path: Path) -> None:
    """Rewrite a zip (an .xlsx) with fixed member timestamps and a fixed modified time in docProps/core.xml."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            content = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                # openpyxl stamps the save time into dcterms:modified whatever the property says
                content = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(<)", rb"\g<1>2020-01-01T00:00:00Z\g<2>", content)
            member = zipfile.ZipInfo(info.filename, date_time=_ZIP_TIME)
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o600 << 16
            dst.writestr(member, content)
    path.write_bytes(out.getvalue())


def generate(
    out_dir: str | Path,
    subjects: int = 5,
    clips_per_class: int = 4,
    seed: int = 0,
    faces: Sequence[str | Path] | None = None,
    amplitude_scale: float = 1.0,
    duration: tuple[int, int] = (15, 80),
    jpeg_quality: int = 90,
    workers: int = 1,
) -> pd.DataFrame:
    """Write a synthetic micro-expression dataset in the CASME II release layout; return its sample table.

    Args:
        out_dir: output folder (created; existing files of the same names are overwritten).
        subjects: number of pseudo-subjects (``sub01`` ...).
        clips_per_class: clips of each of the three classes per subject.
        seed: random seed; equal arguments give byte-identical files.
        faces: face images or folders of them, cycled over the subjects; default ``skimage.data.astronaut()``.
        amplitude_scale: multiplies every clip's peak expression displacement (0 gives clips whose label is
            carried by nothing: the control condition).
        duration: inclusive range of the clip length in frames, onset to offset (200 fps).
        jpeg_quality: OpenCV JPEG quality of the frames.
        workers: processes rendering subjects in parallel (Ray, :func:`merkit.cluster.executor`; 1 renders in this
            process). Each subject is drawn from its own generators (``seed``, subject index), and this process
            alone writes the files, so the files do not depend on ``workers``.

    Returns:
        The sample table (:mod:`merkit.datasets.table`; dataset ``"synthetic"``, frame paths absolute) with the
        ground-truth columns ``label_class``, ``amplitude_px``, ``blink`` and ``face``. It is also written to
        ``out_dir/samples.csv`` (frame paths relative, ``;``-separated). Load the release back with
        ``merkit.datasets.registry.load_dataset("synthetic", out_dir)``, which reads it as the CASME II release it
        imitates and adds that ground truth.

    Raises:
        ConfigError (a ValueError): a count, duration, quality or amplitude out of range (NaN and inf included).
        DataError: a face image is missing or unreadable; FaceNotFoundError: dlib finds no face in one.
    """
    check("synthetic.generate", subjects=(Count, subjects), clips_per_class=(Count, clips_per_class),
          seed=(NonNegativeInt, seed), amplitude_scale=(NonNegativeFloat, amplitude_scale),
          duration=(tuple[Int, Int], duration), jpeg_quality=(NonNegativeInt, jpeg_quality),
          workers=(Count, workers))
    if not 3 <= duration[0] <= duration[1]:
        raise ConfigError(f"synthetic.generate: duration must be (min, max) frames with 3 <= min <= max, got "
                          f"{duration}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    face_of = _FaceSource(faces)
    names = [f"sub{s + 1:02d}" for s in range(subjects)]
    calls = [(seed, s, names[s], *face_of(s), clips_per_class, amplitude_scale, duration, jpeg_quality)
             for s in range(subjects)]
    by_subject: dict[int, list[dict]] = {}

    def write_subject(s: int, result: tuple[list[dict], list[tuple[str, bytes]]], node) -> None:
        rows, files = result
        for relative, data in files:
            path = out / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        for row in rows:
            row["frames"] = [str((out / f).resolve()) for f in row["frames"]]
        by_subject[s] = rows

    from merkit.cluster import executor

    with executor(workers, None, workers, tasks=subjects) as ex:
        failures = ex.run(_subject_clips, calls, names, write_subject, max_retries=2)
    if failures:
        raise RuntimeError(f"synthetic.generate crashed on {failures[0][0]}: {failures[0][1]}")
    table = new_sample_table([row for s in range(subjects) for row in by_subject[s]])
    settings = {"generator": "merkit.synthetic", "version": GENERATOR_VERSION, "subjects": subjects,
                "clips_per_class": clips_per_class, "seed": seed, "faces": face_of.names,
                "amplitude_scale": amplitude_scale, "duration": list(duration), "jpeg_quality": jpeg_quality}
    _write_release_tables(out, table, settings)
    return table


def _subject_clips(seed: int, s: int, name: str, source_name: str, image: np.ndarray, clips_per_class: int,
                   amplitude_scale: float, duration: tuple[int, int],
                   jpeg_quality: int) -> tuple[list[dict], list[tuple[str, bytes]]]:
    """One pseudo-subject's clips, rendered and JPEG-encoded but not written: its sample rows (``frames`` relative
    to the release folder) and ``(relative path, JPEG bytes)`` for every frame. Draws from generators seeded with
    ``(seed, s, ...)`` only, so a subject's files do not depend on where or in which order it is rendered."""
    subject = make_subject(name, image, source_name, np.random.default_rng([seed, s, 0]))
    # shuffle the class order so that a clip's name (EPyy) says nothing about its class
    order = np.random.default_rng([seed, s, 1]).permutation(len(CLASSES) * clips_per_class)
    rows, files = [], []
    for j, slot in enumerate(order):
        label_class = CLASSES[slot % len(CLASSES)]
        rng = np.random.default_rng([seed, s, 2, j])
        spec = draw_clip(rng, label_class, f"EP{j + 1:02d}_{int(rng.integers(1, 10)):02d}", amplitude_scale,
                         duration)
        frames = []
        for k, frame in enumerate(render_clip(subject, spec, rng)):
            relative = f"{name}/{spec.sample}/img{spec.onset + k}.jpg"
            files.append((relative, encode_jpeg(frame, jpeg_quality, relative)))
            frames.append(relative)
        rows.append(dict(dataset=DATASET, subject=name, sample=spec.sample, emotion=spec.emotion,
                         onset=spec.onset, apex=spec.apex, offset=spec.offset,
                         action_units="+".join(str(a) for a in spec.aus), frames=frames,
                         label_class=spec.label_class, amplitude_px=round(spec.amplitude_px, 4),
                         blink=spec.blink is not None, face=source_name))
    return rows, files


def _write_release_tables(out: Path, table: pd.DataFrame, settings: dict) -> None:
    """The release's coding sheet (as CASME II's), ``samples.csv`` (frame paths relative to ``out``) and
    ``generator.json`` (the settings)."""
    write_coding_sheet(table, out / SHEET_NAME)
    saved = table.copy()
    saved["frames"] = [";".join(Path(p).relative_to(out.resolve()).as_posix() for p in fr) for fr in table["frames"]]
    saved.to_csv(out / TABLE_NAME, index=False)
    (out / "generator.json").write_text(json.dumps(settings, indent=2))


