"""One registry of the raw-dataset loaders: ``load_dataset("casme2", root)`` and friends.

Each entry names the module that parses the dataset's official release; every module has the same API:
``load(root, sheet=None, *, diagnostics=None, **options) -> sample table`` and ``read_sheet(path) -> rows``
(the annotation rows alone, without frames), plus its ``EMOTIONS`` vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from types import ModuleType
from typing import Callable

import pandas as pd

from merkit.errors import Diagnostics


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset: its name, its module and the class schemes made for it.

    ``module`` provides ``read_sheet`` and ``EMOTIONS``; ``load`` comes from ``module`` too unless ``load_path``
    (``"package.module:function"``) names another function with the same signature.
    """

    name: str
    module: str
    title: str
    schemes: tuple[str, ...] = ()
    load_path: str | None = None

    @property
    def loader(self) -> ModuleType:
        return import_module(self.module)

    @property
    def load(self) -> Callable[..., pd.DataFrame]:
        if self.load_path is None:
            return self.loader.load
        module, function = self.load_path.split(":")
        return getattr(import_module(module), function)

    @property
    def emotions(self) -> frozenset[str]:
        return self.loader.EMOTIONS


def load_synthetic_release(root: str | Path, sheet: str | Path | None = None, *,
                           diagnostics: Diagnostics | None = None, **options: object) -> pd.DataFrame:
    """A synthetic set written by ``merkit synth`` (:mod:`merkit.datasets.synthetic`), read as what it is: a
    CASME II-layout release, through :func:`merkit.datasets.casme2.load` unchanged.

    The rows are renamed to dataset ``"synthetic"`` (so ids never pass for CASME II) and, when the generator's
    ``samples.csv`` is there, carry its ground truth (``label_class, amplitude_px, blink, face``).

    Raises:
        DataError: as :func:`merkit.datasets.casme2.load`.
    """
    from merkit.datasets import casme2
    from merkit.datasets.table import new_sample_table

    table = casme2.load(root, sheet, diagnostics=diagnostics, **options)
    rows = table.drop(columns=["sample_id", "subject_id"]).assign(dataset="synthetic")
    truth_path = Path(root) / "samples.csv"
    if truth_path.is_file():
        truth = pd.read_csv(truth_path, dtype={"subject": str, "sample": str})
        columns = [c for c in ("label_class", "amplitude_px", "blink", "face") if c in truth.columns]
        rows = rows.merge(truth[["subject", "sample", *columns]], on=["subject", "sample"], how="left")
    out = new_sample_table(rows.to_dict("records"))
    out.attrs.update(table.attrs)
    return out


DATASETS: dict[str, DatasetEntry] = {
    e.name: e
    for e in (
        DatasetEntry("casme2", "merkit.datasets.casme2", "CASME II",
                     ("casme2-5class", "casme2-4class", "casme2-3class", "megc2019-3class")),
        DatasetEntry("samm", "merkit.datasets.samm", "SAMM", ("samm-5class", "megc2019-3class")),
        DatasetEntry("smic", "merkit.datasets.smic", "SMIC (HS; VIS/NIR with variant=)",
                     ("smic-3class", "megc2019-3class")),
        DatasetEntry("casme3", "merkit.datasets.casme3", "CAS(ME)^3 part A", ("casme3-4class", "casme3-7class")),
        DatasetEntry("mmew", "merkit.datasets.mmew", "MMEW", ("mmew-4class",)),
        DatasetEntry("4dme", "merkit.datasets.fourdme", "4DME", ()),
        DatasetEntry("megc2019", "merkit.datasets.megc2019", "MEGC2019 composite (CASME II + SAMM + SMIC-HS)",
                     ("megc2019-3class",)),
        DatasetEntry("synthetic", "merkit.datasets.casme2", "merkit synth output (CASME II layout)",
                     ("megc2019-3class", "casme2-3class"), "merkit.datasets.registry:load_synthetic_release"),
    )
}


def get_dataset(name: str) -> DatasetEntry:
    """Look up a dataset by name.

    Raises:
        KeyError: unknown name; the message lists the known ones.
    """
    try:
        return DATASETS[name.lower()]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}") from None


def load_dataset(name: str, root: str | Path, sheet: str | Path | None = None, *,
                 diagnostics: Diagnostics | None = None, **options: object) -> pd.DataFrame:
    """Load a raw dataset release as a sample table; ``options`` go to the dataset's ``load``.

    Raises:
        KeyError: unknown dataset name. DataError: from the loader (missing release, sheet or frames, ...).
    """
    return get_dataset(name).load(root, sheet, diagnostics=diagnostics, **options)


def read_sheet(name: str, path: str | Path) -> pd.DataFrame:
    """Parse a dataset's annotation sheet alone (no frames needed)."""
    return get_dataset(name).loader.read_sheet(path)


def sheet_table(name: str, path: str | Path, *, diagnostics: Diagnostics | None = None,
                **options: object) -> pd.DataFrame:
    """A sample table from a dataset's annotation sheet alone, with the loader's fixes and policies but no
    frames (``frames == []``, ``attrs["layout"] == "sheet-only"``): for statistics and selection checks on a
    machine without the frames.

    Args:
        options: ``fixes``, ``missing_apex``, ``invalid`` as for the loaders.

    Raises:
        KeyError: unknown dataset, ``megc2019`` (its list has no frame annotations; use
            :func:`merkit.datasets.megc2019.select` on the parts' tables) or ``synthetic`` (use ``casme2``).
            DataError: from the sheet.
    """
    from merkit.datasets.fixes import prepare
    from merkit.datasets.frames import sample_table

    entry = get_dataset(name)
    if entry.name in ("megc2019", "synthetic"):
        raise KeyError(f"{entry.name} has no sheet reader of its own (megc2019: use megc2019.select on the "
                       "parts' tables; synthetic: read its sheet as casme2)")
    module = entry.loader
    fixes = options.pop("fixes", None)
    rows = module.read_sheet(path)
    rows = prepare(rows, module.DATASET, module.FIXES if fixes is None else fixes,  # type: ignore[arg-type]
                   diagnostics=diagnostics, **options)  # type: ignore[arg-type]
    return sample_table(rows, module.DATASET, None)
