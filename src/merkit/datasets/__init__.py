"""Datasets: annotation sheets and frame folders -> the unified sample table (:mod:`merkit.datasets.table`)."""

from merkit.datasets.schemes import SCHEMES, ClassScheme, get_scheme
from merkit.datasets.table import SAMPLE_COLUMNS, sample_id, subject_id, validate_sample_table

__all__ = [
    "SAMPLE_COLUMNS",
    "SCHEMES",
    "ClassScheme",
    "get_scheme",
    "sample_id",
    "subject_id",
    "validate_sample_table",
]
