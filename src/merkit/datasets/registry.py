"""One registry of the raw-dataset loaders: ``load_dataset("casme2", root)`` and friends.

Most datasets are a :class:`~merkit.datasets.loader.DatasetSpec` (``SPEC`` in their module) that the shared
:func:`merkit.datasets.loader.load` runs. SMIC (no coding sheet of its own; its tree is scanned), the MEGC2019
composite and ``merkit synth`` output keep a ``load`` of their own. Every entry gives the same API:
``load(root, sheet=None, *, diagnostics=None, **options) -> sample table``, ``read_sheet(path) -> rows`` (the
annotation rows alone, without frames) and ``emotions``; all but the MEGC2019 composite (whose parts bring
their own) give their default annotation ``fixes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from importlib import import_module
from pathlib import Path
from types import ModuleType
from typing import Callable

import pandas as pd

from merkit.datasets import casme2, casme3, fourdme, mmew, samm
from merkit.datasets import loader as shared_loader
from merkit.datasets.fixes import Fix
from merkit.datasets.loader import DatasetSpec
from merkit.boundary import unknown_name
from merkit.errors import ConfigError, DataError, Diagnostics, Where


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset: its name, its module and the class schemes made for it.

    With ``spec`` set, loading and sheet reading run :mod:`merkit.datasets.loader` over it. Otherwise ``module``
    provides ``read_sheet``, ``EMOTIONS`` and ``FIXES``, and ``load`` comes from ``module`` too unless
    ``load_path`` (``"package.module:function"``) names another function with the same signature.
    """

    name: str
    module: str
    title: str
    schemes: tuple[str, ...] = ()
    load_path: str | None = None
    spec: DatasetSpec | None = None

    @classmethod
    def described(cls, module: ModuleType) -> DatasetEntry:
        """The entry of a dataset module that declares its release as ``SPEC``."""
        spec: DatasetSpec = module.SPEC
        return cls(spec.name, module.__name__, spec.title, spec.schemes, spec=spec)

    @property
    def loader(self) -> ModuleType:
        return import_module(self.module)

    @property
    def load(self) -> Callable[..., pd.DataFrame]:
        if self.spec is not None:
            return partial(shared_loader.load, self.spec)
        if self.load_path is None:
            return self.loader.load
        module, function = self.load_path.split(":")
        return getattr(import_module(module), function)

    @property
    def emotions(self) -> frozenset[str]:
        return self.spec.emotions if self.spec is not None else self.loader.EMOTIONS

    @property
    def fixes(self) -> tuple[Fix, ...]:
        """The annotation fixes the loader applies by default.

        Raises:
            AttributeError: ``megc2019``, which has none of its own (each part applies its own).
        """
        return self.spec.fixes if self.spec is not None else self.loader.FIXES

    def read_sheet(self, path: str | Path) -> pd.DataFrame:
        """The dataset's annotation rows from its sheet at ``path``.

        Raises:
            DataError: the sheet is missing or malformed; the message names the dataset and file.
        """
        if self.spec is not None:
            return shared_loader.read_sheet(self.spec, path)
        return self.loader.read_sheet(path)


def load_synthetic_release(root: str | Path, sheet: str | Path | None = None, *,
                           diagnostics: Diagnostics | None = None, **options: object) -> pd.DataFrame:
    """A synthetic set written by ``merkit synth`` (:mod:`merkit.synthetic`), read as what it is: a
    CASME II-layout release, through :func:`merkit.datasets.casme2.load` unchanged.

    The rows are renamed to dataset ``"synthetic"`` (so ids never pass for CASME II) and, when the generator's
    ``samples.csv`` is there, carry its ground truth (``label_class, amplitude_px, blink, face``).

    Raises:
        DataError: as :func:`merkit.datasets.casme2.load`.
    """
    from merkit.datasets.table import new_sample_table

    table = casme2.load(root, sheet, diagnostics=diagnostics, **options)
    rows = table.drop(columns=["sample_id", "subject_id"]).assign(dataset="synthetic")
    truth_path = Path(root) / "samples.csv"
    if truth_path.is_file():
        truth = pd.read_csv(truth_path, dtype={"subject": str, "sample": str})
        columns = [c for c in ("label_class", "amplitude_px", "blink", "face") if c in truth.columns]
        rows = rows.merge(truth[["subject", "sample", *columns]], on=["subject", "sample"], how="left")
    out = new_sample_table(rows.to_dict("records"), diagnostics)
    out.attrs.update(table.attrs)
    return out


DATASETS: dict[str, DatasetEntry] = {
    e.name: e
    for e in (
        DatasetEntry.described(casme2),
        DatasetEntry.described(samm),
        DatasetEntry("smic", "merkit.datasets.smic", "SMIC (HS; VIS/NIR with variant=)",
                     ("smic-3class", "megc2019-3class")),
        DatasetEntry.described(casme3),
        DatasetEntry.described(mmew),
        DatasetEntry.described(fourdme),
        DatasetEntry("megc2019", "merkit.datasets.megc2019", "MEGC2019 composite (CASME II + SAMM + SMIC-HS)",
                     ("megc2019-3class",)),
        DatasetEntry("synthetic", "merkit.datasets.casme2", "merkit synth output (CASME II layout)",
                     ("megc2019-3class", "casme2-3class"), "merkit.datasets.registry:load_synthetic_release"),
    )
}


def get_dataset(name: str) -> DatasetEntry:
    """Look up a dataset by name.

    Raises:
        ConfigError: unknown name; the message lists the known ones.
    """
    try:
        return DATASETS[name.lower()]
    except KeyError:
        raise ConfigError(f"{unknown_name('dataset', name, DATASETS)} (data.dataset)") from None


def load_dataset(name: str, root: str | Path, sheet: str | Path | None = None, *,
                 diagnostics: Diagnostics | None = None, **options: object) -> pd.DataFrame:
    """Load a raw dataset release as a sample table; ``options`` go to the dataset's ``load``.

    Raises:
        ConfigError: unknown dataset name. DataError: from the loader (missing release, sheet or frames, ...).
    """
    return get_dataset(name).load(root, sheet, diagnostics=diagnostics, **options)


def check_emotions(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """``table`` unchanged when every emotion is in dataset ``name``'s own vocabulary.

    A class scheme maps emotions of several datasets (``anger`` is a SAMM emotion, not a CASME II one), so an
    emotion outside the dataset's vocabulary would be labelled silently; ``merkit datasets check`` reports it too.

    Raises:
        DataError: an emotion outside the vocabulary; the message names the first samples that carry one.
    """
    known = get_dataset(name).emotions
    bad = table[~table["emotion"].isin(known)]
    if len(bad):
        first = bad.iloc[0]
        listed = ", ".join(f"{r.sample_id} ({r.emotion!r})" for r in bad.head(5).itertuples(index=False))
        raise DataError(f"{len(bad)} sample(s) carry an emotion outside {name}'s vocabulary {sorted(known)}: "
                        f"{listed}", Where(first["dataset"], first["subject"], first["sample"]),
                        hint="fix the annotation sheet (merkit datasets check lists them all)")
    return table


def read_sheet(name: str, path: str | Path) -> pd.DataFrame:
    """Parse a dataset's annotation sheet alone (no frames needed).

    Raises:
        ConfigError: unknown dataset name. DataError: the sheet is missing or malformed.
    """
    return get_dataset(name).read_sheet(path)


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
    fixes = options.pop("fixes", None)
    rows = entry.read_sheet(path)
    rows = prepare(rows, entry.name, entry.fixes if fixes is None else fixes,  # type: ignore[arg-type]
                   diagnostics=diagnostics, **options)  # type: ignore[arg-type]
    return sample_table(rows, entry.name, None, diagnostics)
