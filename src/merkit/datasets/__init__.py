"""Datasets: annotation sheets and frame folders -> the unified sample table (:mod:`merkit.datasets.table`).

Raw releases load through one registry (:func:`load_dataset`; one module per dataset: ``casme2``, ``samm``,
``smic``, ``casme3``, ``mmew``, ``fourdme``, ``megc2019``); :func:`check_dataset` validates a release on disk.
"""

from merkit.datasets.check import CheckReport, check_dataset
from merkit.datasets.fixes import Fix
from merkit.datasets.registry import DATASETS, get_dataset, load_dataset, sheet_table
from merkit.datasets.schemes import SCHEMES, ClassScheme, get_scheme
from merkit.datasets.table import SAMPLE_COLUMNS, sample_id, subject_id, validate_sample_table

__all__ = [
    "DATASETS",
    "SAMPLE_COLUMNS",
    "SCHEMES",
    "CheckReport",
    "ClassScheme",
    "Fix",
    "check_dataset",
    "get_dataset",
    "get_scheme",
    "load_dataset",
    "sample_id",
    "sheet_table",
    "subject_id",
    "validate_sample_table",
]
