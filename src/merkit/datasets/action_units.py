"""FACS action units as the coding sheets write them: :func:`parse_action_units`, and the join of annotation
sheets to samples that came without them (:func:`join_au_sheets`).

The sample table's ``action_units`` column keeps each sheet's text as written (``"4+7+L10"``). This module reads it
in every notation of the releases merkit loads (CASME II, SAMM, CAS(ME)^3, MMEW, 4DME):

======================  ==============================================  ===========================================
written                 meaning                                         what the parser gives
======================  ==============================================  ===========================================
``4+7``, ``4, 7``       AUs 4 and 7 (separators ``+``, ``,``, ``;``)    {4, 7}
``L10``, ``R14``        unilateral: left / right side (prefix)          the AU (10, 14): the side is dropped
``12L``, ``4R``         the same, written after the number (MMEW)       the AU
``A12``                 asymmetric (SAMM's key)                         the AU
``T18``, ``B28``        FACS top / bottom                               the AU
``U14``                 FACS unilateral                                 the AU
``A/L12``               either of two prefixes (SAMM)                   the AU
``12B``, ``43E``        intensity A (trace) to E (maximum)              the AU: intensity is dropped
``10A/B``               either of two intensities (SAMM)                the AU
``AU12``, ``AU 4``      an ``AU`` prefix (4DME, other copies)           the AU
``12/14``, ``L12 or L14``  the coder's alternative between AUs          every AU named, flagged uncertain
``(R6 or R12)+R15``     an alternative, grouped                         {6, 12, 15}, flagged uncertain
``ref(7B)``             SAMM; the sheet's key does not define ``ref``   the AU inside, flagged uncertain
``?``                   SAMM: "some AUs continue for a while and have   nothing (removed)
                        unclear offset"
``soft focus``          SAMM: a gaze description, not an AU             no AU; returned as a descriptor
(blank)                 no AU coded                                     no AU
======================  ==============================================  ===========================================

So a side, an asymmetry, a top/bottom mark or an intensity sets the AU's entry: the 21-d vector of the CVA+FPF+AU
paper has one entry per AU, and its authors' vectors (``AU_info_obj.xlsx`` of github.com/Svardfox/FaceSleuth) set
AU10 for CASME II's ``L10``. Anything else (another letter, a number outside 1-99, an empty code between two
separators) is a :class:`~merkit.errors.DataError` naming the dataset and the sample.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import pandas as pd

from merkit.errors import DataError, Diagnostics, Where

#: The 21 AUs of the CVA+FPF+AU paper's AU vector, in its order: the columns ``AU01_c`` ... ``AU45_c`` of its
#: authors' ``AU_info_obj.xlsx`` (github.com/Svardfox/FaceSleuth at e4eead4): OpenFace's 18 AU-presence outputs
#: (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 28, 45) with 16, 18 and 24 added.
PAPER_AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 16, 17, 18, 20, 23, 24, 25, 26, 28, 45)
#: Words some sheets write among the AUs that are no action unit (SAMM: ``R14+17+soft focus``).
DESCRIPTORS: tuple[str, ...] = ("soft focus",)
#: The datasets whose sheets code action units (SMIC and the MEGC2019 list code none).
AU_CODED: tuple[str, ...] = ("casme2", "samm", "casme3", "mmew", "4dme")

_PREFIX = r"(?:[LRATBU]/)*[LRATBU]"
_CODE = re.compile(rf"(?:AU\s*)?(?P<prefix>{_PREFIX})?(?P<number>\d{{1,2}})(?:\.0)?(?P<intensity>[A-E](?:/[A-E])*)?"
                   r"(?P<side>[LR](?![A-Z]))?")
_SEPARATOR = re.compile(r"\s*(?:\+|,|;|/|\bOR\b)\s*|\s+")
_ALTERNATIVE = re.compile(r"\s*(?:/|\bOR\b)\s*")


@dataclass(frozen=True)
class ActionUnits:
    """One sample's action units, read from its ``action_units`` text.

    Attributes:
        units: the FACS AU numbers named, sorted, each once (sides and intensities dropped).
        uncertain: the text gives the coder's alternatives (``12/14``, ``or``) or SAMM's ``ref(...)``; every AU
            named is in ``units``.
        descriptors: words of :data:`DESCRIPTORS` the text holds (no AU).
    """

    units: tuple[int, ...] = ()
    uncertain: bool = False
    descriptors: tuple[str, ...] = ()


def _fail(text: str, where: Where | None, why: str) -> DataError:
    return DataError(f"action units {text!r} cannot be read: {why}", where,
                     hint="write AUs as in the official sheets, e.g. 4+7+L10, 12B, R14 or AU12 "
                          "(docs/datasets.md, 'Action units')")


def parse_action_units(text: object, where: Where | None = None) -> ActionUnits:
    """The action units of one sheet cell, in any notation of the table in this module's docstring.

    Args:
        text: the cell (a string; a number such as ``12`` or ``12.0``, as spreadsheets store a single AU; ``None``
            or NaN for a blank cell).
        where: the sample, named by the error.

    Returns:
        :class:`ActionUnits`.

    Raises:
        DataError: one line naming ``where`` and the text: a character or word outside the notation, an AU number
            outside 1-99, or a separator with no AU on one side.
    """
    if text is None or (not isinstance(text, str) and pd.isna(text)):
        return ActionUnits()
    original = str(text)
    s = original.upper().replace("?", " ")
    descriptors = tuple(d for d in DESCRIPTORS if d.upper() in s)
    for d in descriptors:  # with the separator before it, so that "14+soft focus+17" reads as "14 +17"
        s = re.sub(rf"[\s+,;]*{re.escape(d.upper())}", " ", s)
    uncertain = bool(re.search(r"\bREF\s*\(", s)) or bool(_ALTERNATIVE.search(re.sub(_CODE, "#", s)))
    s = re.sub(r"\bREF\s*\(", "(", s).replace("(", " ").replace(")", " ").strip()
    units: set[int] = set()
    position, expect_code = 0, True
    s = re.sub(r"^[\s+,;]+|[\s+,;]+$", "", s) if descriptors else s
    while position < len(s):
        if expect_code:
            match = _CODE.match(s, position)
            if match is None:
                raise _fail(original, where, f"no action unit at {s[position:position + 6]!r}")
            number = int(match["number"])
            if not 1 <= number <= 99:
                raise _fail(original, where, f"AU {number} is not a FACS action unit number (1-99)")
            units.add(number)
        else:
            match = _SEPARATOR.match(s, position)
            if match is None or not match.group():
                raise _fail(original, where, f"unexpected {s[position:position + 6]!r} after an action unit")
        position, expect_code = match.end(), not expect_code
    if s and expect_code:
        raise _fail(original, where, "it ends with a separator")
    return ActionUnits(tuple(sorted(units)), uncertain, descriptors)


def au_vector(units: ActionUnits, vocabulary: tuple[int, ...] = PAPER_AUS) -> tuple[list[float], list[int]]:
    """The multi-hot vector of ``units`` over ``vocabulary`` (1.0 where the AU is named, in the vocabulary's
    order) and the AUs named outside the vocabulary, which the vector cannot hold."""
    named = set(units.units)
    return [1.0 if au in named else 0.0 for au in vocabulary], sorted(named - set(vocabulary))


def join_au_sheets(table: pd.DataFrame, sheets: Mapping[str, str | Path],
                   diagnostics: Diagnostics | None = None) -> pd.DataFrame:
    """``table`` with its ``action_units`` taken from the official annotation sheets, joined by
    ``(dataset, subject, sample)``: for samples that came without them (the MEGC2019 composite's flow folder).

    Args:
        table: a sample table (``dataset``, ``subject``, ``sample``).
        sheets: ``{dataset: sheet path}``, e.g. ``{"casme2": ".../CASME2-coding-20190701.xlsx", "samm":
            ".../SAMM_Micro_FACS_Codes_v2.xlsx"}``; each is read with its dataset's reader and fixes
            (:func:`merkit.datasets.registry.sheet_table`), so subjects and samples are spelled as the releases'.
        diagnostics: receives the sheet readers' counted warnings.

    Returns:
        A copy of ``table`` whose ``action_units`` are the sheets' text (a row's own text is replaced).

    Raises:
        DataError: one line naming the sample: its dataset has no sheet in ``sheets`` (SMIC codes no AUs), or its
            sheet has no row for it; or a sheet cannot be read.
    """
    from merkit.datasets.registry import sheet_table

    coded: dict[tuple[str, str, str], str] = {}
    for dataset, path in sheets.items():
        rows = sheet_table(dataset, path, diagnostics=diagnostics)
        coded.update({(dataset, r.subject, r.sample): r.action_units for r in rows.itertuples(index=False)})
    out = table.copy()
    texts = []
    for row in out.itertuples(index=False):
        where = Where(row.dataset, row.subject, row.sample)
        if row.dataset not in sheets:
            raise DataError(f"no AU sheet for dataset {row.dataset!r} in data.au_sheets (it has "
                            f"{sorted(sheets) or 'none'})", where,
                            hint="SMIC codes no AUs: select the coded parts with data.datasets (e.g. "
                                 "[casme2, samm])" if row.dataset == "smic" else
                            f"add {row.dataset}: <its coding sheet> to data.au_sheets")
        key = (row.dataset, row.subject, row.sample)
        if key not in coded:
            raise DataError(f"the {row.dataset} sheet {sheets[row.dataset]} has no row for this sample", where,
                            hint="data.au_sheets must name the official sheet of the samples' release")
        texts.append(coded[key])
    out["action_units"] = texts
    return out
