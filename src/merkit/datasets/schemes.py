"""Class schemes as data: which dataset emotions map to which class index, in one registry.

A :class:`ClassScheme` turns the ``emotion`` column of a sample table into an integer ``label``. Emotions that a
scheme does not list raise :class:`~merkit.errors.DataError` unless the scheme says to drop them (for example the
MEGC2019 3-class scheme, which has no place for ``others``); dropped samples are counted, never silently lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from merkit.errors import DataError, Diagnostics, Where


@dataclass(frozen=True)
class ClassScheme:
    """A named list of classes and the map from dataset emotions to them.

    Attributes:
        name: registry key, e.g. ``"megc2019-3class"``.
        classes: class names; the index in this tuple is the integer label.
        mapping: lower-case emotion -> class name. Class names map to themselves implicitly.
        drop: emotions that are deliberately excluded (counted in diagnostics, not errors).
    """

    name: str
    classes: tuple[str, ...]
    mapping: dict[str, str] = field(default_factory=dict)
    drop: frozenset[str] = frozenset()

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def label_of(self, emotion: str) -> int | None:
        """Class index of ``emotion`` (case-insensitive), ``None`` if the scheme drops it.

        Raises:
            DataError: the emotion is neither mapped nor dropped.
        """
        key = str(emotion).strip().lower()
        if key in self.drop:
            return None
        name = self.mapping.get(key, key)
        if name not in self.classes:
            raise DataError(f"emotion {emotion!r} is not in class scheme {self.name!r} {list(self.classes)}")
        return self.classes.index(name)

    def apply(self, table: pd.DataFrame, diagnostics: Diagnostics | None = None) -> pd.DataFrame:
        """Return a copy of ``table`` with an integer ``label`` column, without the rows the scheme drops.

        Each dropped row is recorded in ``diagnostics`` (kind ``"dropped-by-class-scheme"``).

        Raises:
            DataError: an emotion is not covered by the scheme; the message names the sample.
        """
        labels, keep = [], []
        for row in table.itertuples(index=False):
            try:
                label = self.label_of(row.emotion)
            except DataError as err:
                raise DataError(str(err), Where(row.dataset, row.subject, row.sample)) from None
            keep.append(label is not None)
            if label is None:
                if diagnostics is not None:
                    diagnostics.warn(
                        "dropped-by-class-scheme",
                        f"emotion {row.emotion!r} is not used by {self.name}",
                        Where(row.dataset, row.subject, row.sample),
                    )
            else:
                labels.append(label)
        out = table.loc[keep].copy()
        out["label"] = pd.array(labels, dtype="int64")
        return out.reset_index(drop=True)


_NEGATIVE = ("disgust", "repression", "fear", "sadness", "anger", "contempt", "negative")

SCHEMES: dict[str, ClassScheme] = {
    s.name: s
    for s in (
        # MEGC2019 composite: label 0 negative, 1 positive, 2 surprise (the order of the official ground truth).
        ClassScheme(
            "megc2019-3class",
            ("negative", "positive", "surprise"),
            {**{e: "negative" for e in _NEGATIVE}, "happiness": "positive"},
            frozenset({"others", "other"}),
        ),
        ClassScheme("casme2-5class", ("happiness", "surprise", "disgust", "repression", "others"),
                    {"other": "others"}, frozenset({"fear", "sadness"})),
        ClassScheme(
            "casme2-3class",
            ("positive", "negative", "surprise"),
            {"happiness": "positive", **{e: "negative" for e in ("disgust", "repression", "fear", "sadness")}},
            frozenset({"others"}),
        ),
        ClassScheme(
            "casme2-4class",
            ("positive", "negative", "surprise", "others"),
            {"happiness": "positive", **{e: "negative" for e in ("disgust", "repression", "fear", "sadness")}},
        ),
        ClassScheme("samm-5class", ("anger", "contempt", "happiness", "surprise", "other"), {"others": "other"},
                    frozenset({"disgust", "fear", "sadness"})),
        ClassScheme("smic-3class", ("negative", "positive", "surprise")),
        ClassScheme("mmew-4class", ("happiness", "surprise", "disgust", "others"), {"other": "others"},
                    frozenset({"fear", "sadness", "anger"})),
        ClassScheme(
            "casme3-4class",
            ("positive", "negative", "surprise", "others"),
            {"happy": "positive", "happiness": "positive",
             **{e: "negative" for e in ("disgust", "fear", "anger", "sad", "sadness")}, "other": "others"},
        ),
        ClassScheme(
            "casme3-7class",
            ("happiness", "disgust", "fear", "anger", "sadness", "surprise", "others"),
            {"happy": "happiness", "sad": "sadness", "other": "others"},
        ),
    )
}


def get_scheme(name: str) -> ClassScheme:
    """Look up a class scheme by name.

    Raises:
        KeyError: unknown name; the message lists the known ones.
    """
    try:
        return SCHEMES[name]
    except KeyError:
        raise KeyError(f"unknown class scheme {name!r}; known: {sorted(SCHEMES)}") from None
