"""Print the parameter-count table of MMNet and CVA+FPF+AU presets (docs/models.md), for 3 and 5 classes.

    HF_HUB_OFFLINE=1 python docs/scripts/model_params.py
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from merkit.models import build_model, count_parameters  # noqa: E402

ROWS = [
    ("mmnet", "paper", {}), ("mmnet", "paper-3class", {}), ("mmnet", "cpu", {}), ("mmnet", "cpu", {"pc": False}),
    ("cva_fpf", "paper", {}), ("cva_fpf", "paper", {"au_source": "annotation"}),
    ("cva_fpf", "paper", {"fpf_backbone": "vit"}), ("cva_fpf", "cpu", {}),
    ("cva_fpf", "cpu", {"au_source": "annotation"}), ("cva_fpf", "cpu", {"fpf_backbone": "vit"}),
]


def main() -> None:
    print("| model | preset | overrides | input side | fused features | parameters (3 classes) "
          "| parameters (5 classes) |")
    print("|---|---|---|---|---|---|---|")
    for name, preset, params in ROWS:
        m3, m5 = build_model(name, 3, preset, **params), build_model(name, 5, preset, **params)
        c = m3.config
        dim = c.widths[-1]
        over = ", ".join(f"{k}={v}" for k, v in params.items()) or "-"
        print(f"| {name} | {preset} | {over} | {c.input_size} | {dim} x {c.feature_side} x {c.feature_side} | "
              f"{count_parameters(m3):,} | {count_parameters(m5):,} |")


if __name__ == "__main__":
    main()
