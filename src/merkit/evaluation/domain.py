"""The training data's domain statistics that predictions are checked against (:mod:`merkit.predict.trust`).

A checkpoint trained on the MEGC2019 composite learned from 28x28 flow images stretched per image: they carry no
flow magnitude, head motion or face size. What its training data does carry is in the official sheets: each
sample's onset, apex and offset frame, and each dataset's frame rate, which give the clips' durations in seconds.
:func:`composite_durations` reads them for the composite's 442 samples (the official list joined with the three
parts' sheets, :func:`merkit.datasets.megc2019.select`); :func:`duration_statistics` summarises them (1st, 50th and
99th percentile, min, max, count).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from merkit.errors import DataError

#: Frame rates of the datasets' recordings, frames per second (CASME II: Yan et al. 2014; SAMM: Davison et al.
#: 2018; SMIC-HS, -VIS, -NIR: Li et al. 2013; CAS(ME)^3: Li et al. 2022; MMEW: Ben et al. 2022).
FRAME_RATES: dict[str, float] = {"casme2": 200.0, "samm": 200.0, "smic": 100.0, "smic-vis": 25.0,
                                 "smic-nir": 25.0, "casme3": 30.0, "mmew": 90.0}

#: The sheets :func:`composite_durations` reads, relative to the annotations folder (``../shared/data/annotations``
#: beside a checkout; see its README).
COMPOSITE_SHEETS: dict[str, str] = {"casme2": "casme2/CASME2-coding-20190701.xlsx",
                                    "samm": "samm/SAMM_Micro_FACS_Codes_v2.xlsx",
                                    "smic": "smic/slstt-coding.csv"}
COMPOSITE_LIST = "megc2019/combined_3class_gt.csv"


def composite_durations(annotations: str | Path) -> pd.DataFrame:
    """The onset->apex and onset->offset times of the MEGC2019 composite's 442 samples, from the official sheets.

    Args:
        annotations: a folder holding :data:`COMPOSITE_SHEETS` and :data:`COMPOSITE_LIST`.

    Returns:
        One row per sample: ``dataset, subject, sample, fps, onset_apex_s, onset_offset_s``. SMIC-HS has no
        annotated apex: its sheet's apex is the midpoint of onset and offset.

    Raises:
        DataError: a sheet is missing or malformed, or a listed sample is not in its sheet.
    """
    import warnings

    from merkit.datasets import megc2019
    from merkit.datasets.registry import sheet_table

    root = Path(annotations)
    with warnings.catch_warnings():  # the sheets' own counted repairs are not this table's business
        warnings.simplefilter("ignore", UserWarning)
        tables = {part: sheet_table(part, root / sheet) for part, sheet in COMPOSITE_SHEETS.items()}
        table = megc2019.select(megc2019.read_sheet(root / COMPOSITE_LIST), tables)
    fps = table["dataset"].map(FRAME_RATES)
    out = table[["dataset", "subject", "sample"]].assign(fps=fps)
    out["onset_apex_s"] = (table["apex"] - table["onset"]) / fps
    out["onset_offset_s"] = (table["offset"] - table["onset"]) / fps
    bad = out[out[["onset_apex_s", "onset_offset_s"]].isna().any(axis=1)]
    if len(bad):
        raise DataError(f"{len(bad)} composite samples have no onset, apex or offset in their sheet, e.g. "
                        f"{bad.iloc[0]['dataset']}/{bad.iloc[0]['subject']}/{bad.iloc[0]['sample']}")
    return out.reset_index(drop=True)


def duration_statistics(values: pd.Series | np.ndarray, source: str) -> dict[str, Any]:
    """``{p1, p50, p99, min, max, n, source}`` of durations in seconds (numpy's linear percentiles)."""
    v = np.asarray(values, dtype=np.float64)
    p1, p50, p99 = np.percentile(v, [1, 50, 99])
    return {"p1": round(float(p1), 4), "p50": round(float(p50), 4), "p99": round(float(p99), 4),
            "min": round(float(v.min()), 4), "max": round(float(v.max()), 4), "n": int(len(v)), "source": source}


def composite_domain(annotations: str | Path) -> dict[str, Any]:
    """The ``domain`` record of a checkpoint trained on the MEGC2019 composite: ``onset_apex_s`` and
    ``onset_offset_s`` statistics (:func:`duration_statistics`) and ``notes`` saying which statistic comes from
    where.

    Raises:
        DataError: as :func:`composite_durations`.
    """
    table = composite_durations(annotations)
    source = "the MEGC2019 composite's 442 samples (official sheets, 200/200/100 fps)"
    return {"onset_apex_s": duration_statistics(table["onset_apex_s"], source),
            "onset_offset_s": duration_statistics(table["onset_offset_s"], source),
            "notes": ["training data: onset->apex and onset->offset times from the official CASME II, SAMM and "
                      "SMIC-HS sheets and their frame rates (SMIC-HS's apex is its sheet's midpoint)",
                      "field definition: a micro-expression lasts at most 0.5 s onset to offset (MEGC)",
                      "not recorded: flow magnitude, head motion and face size; the composite's flow images are "
                      "min-max stretched per image and carry none of them"]}


def table_domain(table: pd.DataFrame) -> dict[str, Any]:
    """The ``domain`` record of a model trained on a sample table with frame annotations (a raw run): the
    onset->apex and onset->offset times of its samples, in seconds, where every dataset's frame rate is known
    (:data:`FRAME_RATES`); empty otherwise (a flow-folder run's table has no onset or offset; the MEGC2019
    composite's durations come from :func:`composite_domain`).

    Returns:
        ``{onset_apex_s, onset_offset_s, notes}`` or ``{}``.
    """
    needed = {"dataset", "onset", "apex", "offset"}
    if not needed <= set(table.columns) or table[list(needed)].isna().any().any():
        return {}
    fps = table["dataset"].astype(str).map(FRAME_RATES)
    if fps.isna().any():
        return {}
    names = ", ".join(sorted(table["dataset"].astype(str).unique()))
    source = f"the {len(table)} training samples of {names} (their annotations, at the datasets' frame rates)"
    return {"onset_apex_s": duration_statistics((table["apex"] - table["onset"]) / fps, source),
            "onset_offset_s": duration_statistics((table["offset"] - table["onset"]) / fps, source),
            "notes": ["training data: onset->apex and onset->offset times from the training samples' annotations",
                      "field definition: a micro-expression lasts at most 0.5 s onset to offset (MEGC)",
                      "not recorded: flow magnitude, head motion and face size (merkit's inputs stage does not "
                      "keep them)"]}
