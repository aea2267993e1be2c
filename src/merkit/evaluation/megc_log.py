"""The official MEGC2019 recognition log format.

The challenge's log lists, per subject, a header line ``<dataset> <subject>`` followed by one line per sample
``<sample> <ground truth> <prediction>`` (integer labels, 0 negative, 1 positive, 2 surprise). STSTNet's released
per-sample results use it; ``read_megc_log`` parses such a file into a predictions table.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from merkit.files import write_text

from merkit.datasets.table import sample_id, subject_id
from merkit.errors import DataError


def read_megc_log(path: str | Path) -> pd.DataFrame:
    """Parse a MEGC2019 log into ``sample_id, dataset, subject, subject_id, sample, fold, label, prediction``.

    Raises:
        DataError: a sample line before any subject header, or a malformed line (the message gives the line).
    """
    rows, dataset, subject = [], None, None
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) == 2:  # header; SAMM subjects are numeric ("samm 006"), so only the count tells
            dataset, subject = parts
            continue
        if len(parts) != 3 or dataset is None:
            raise DataError(f"{path}:{number}: expected '<sample> <label> <prediction>' after a "
                            f"'<dataset> <subject>' header, got {line!r}")
        sample, label, pred = parts
        rows.append({"sample_id": sample_id(dataset, subject, sample), "dataset": dataset, "subject": subject,
                     "subject_id": subject_id(dataset, subject), "sample": sample,
                     "fold": subject_id(dataset, subject), "label": int(label), "prediction": int(pred)})
    return pd.DataFrame(rows)


def megc_log_text(preds: pd.DataFrame) -> str:
    """One seed's predictions in the MEGC2019 log format, subjects in first-appearance order."""
    lines = []
    for (dataset, subject), df in preds.groupby(["dataset", "subject"], sort=False):
        lines.append(f"{dataset} {subject}")
        lines.extend(f"{r.sample} {int(r.label)} {int(r.prediction)}" for r in df.itertuples(index=False))
    return "\n".join(lines) + "\n"


def write_megc_log(preds: pd.DataFrame, path: str | Path) -> None:
    """Write one seed's predictions in the MEGC2019 log format (:func:`megc_log_text`) atomically."""
    write_text(path, megc_log_text(preds))
