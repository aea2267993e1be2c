"""Compare the CVA+FPF+AU authors' AU vectors (``AU_info_obj.xlsx``) with the AUs merkit reads from the CASME II
coding sheet, row by row and aligned, for docs/models.md ("The authors' AU vectors").

``AU_info_obj.xlsx`` (github.com/Svardfox/FaceSleuth at e4eead4, not shipped with merkit) has a ``Subject`` column
and 21 binary columns ``AU01_c`` ... ``AU45_c``; the authors' ``CASME2_5.py`` (l. 74-91) pairs its rows with the
coding sheet's rows by position. This script prints its column order (which must equal
:data:`merkit.datasets.action_units.PAPER_AUS`), how many rows each file has, whether the position pairing holds,
and the rows where an alignment (:class:`difflib.SequenceMatcher` over the AU sets) differs.

Usage::

    python docs/scripts/au_info_check.py AU_info_obj.xlsx ../shared/data/annotations/casme2/CASME2-coding-20190701.xlsx
"""

from __future__ import annotations

import argparse
import difflib
import re

import pandas as pd

from merkit.datasets.action_units import PAPER_AUS, au_vector, parse_action_units
from merkit.datasets.registry import read_sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("au_info", help="the authors' AU_info_obj.xlsx")
    parser.add_argument("sheet", help="CASME2-coding-20190701.xlsx")
    args = parser.parse_args()
    theirs = pd.read_excel(args.au_info)
    columns = tuple(int(re.search(r"AU(\d+)", str(c)).group(1)) for c in theirs.columns[1:])
    print(f"columns: {columns}; equal to PAPER_AUS: {columns == PAPER_AUS}")
    rows = read_sheet("casme2", args.sheet)
    ours = [tuple(au_vector(parse_action_units(t))[0]) for t in rows["action_units"]]
    given = [tuple(float(v) for v in r) for r in theirs.iloc[:, 1:].to_numpy()]
    print(f"rows: AU_info_obj.xlsx {len(given)}, coding sheet {len(ours)}")
    by_position = sum(a == b for a, b in zip(ours, given))
    print(f"rows equal when paired by position (the authors' join): {by_position} of {len(ours)}")
    matcher = difflib.SequenceMatcher(None, ours, given, autojunk=False)
    print(f"rows equal after alignment: {sum(b.size for b in matcher.get_matching_blocks())}")
    names = [f"sub{int(s):02d}/{n}" if str(s).isdigit() else f"{s}/{n}" for s, n in zip(rows["subject"],
                                                                                           rows["sample"])]
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        sheet_rows = [f"{names[i]} {rows['action_units'][i]!r}" for i in range(i1, i2)]
        their_rows = [[au for au, on in zip(PAPER_AUS, given[j]) if on] for j in range(j1, j2)]
        print(f"{op}: sheet rows {i1}..{i2 - 1} {sheet_rows} -> AU_info rows {j1}..{j2 - 1} {their_rows}")


if __name__ == "__main__":
    main()
