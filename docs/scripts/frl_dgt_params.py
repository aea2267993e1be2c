"""Print the FRL-DGT parameter-count table of docs/models.md (trainable parameters, 3 and 5 classes).

    HF_HUB_OFFLINE=1 python docs/scripts/frl_dgt_params.py
"""

from __future__ import annotations

from merkit.models import build_model, count_parameters

VARIANTS = [
    ("paper", {}, "full model (M9)"),
    ("paper", {"displacement": "flow", "frames": ["apex"], "image_channels": 1}, "M0 on the composite"),
    ("paper", {"fusion": "fu_a"}, "M4"),
    ("paper", {"local_fusion": False}, "M7"),
    ("paper", {"sequence": True}, "FRL-DGT-S"),
    ("paper", {"depth": 1}, "full model (M9), Attn depth 1"),
    ("cpu", {}, "full model (M9)"),
    ("cpu", {"displacement": "flow", "frames": ["apex"], "image_channels": 1}, "M0 on the composite"),
    ("cpu", {"fusion": "fu_a"}, "M4"),
    ("cpu", {"local_fusion": False}, "M7"),
    ("cpu", {"sequence": True}, "FRL-DGT-S"),
    ("cpu", {"depth": 1}, "full model (M9), Attn depth 1"),
    ("cpu", {"displacement": "flow", "frames": ["apex"], "image_channels": 1, "depth": 1},
     "M0 on the composite, Attn depth 1 (the runs before 2026-12-02)"),
]


def fmt(value) -> str:
    return f"[{', '.join(map(str, value))}]" if isinstance(value, list) else str(value)


def main() -> None:
    print("| preset | overrides | variant | parameters (3 classes) | parameters (5 classes) |")
    print("|---|---|---|---|---|")
    for preset, params, label in VARIANTS:
        counts = [count_parameters(build_model("frl_dgt", k, preset, **params)) for k in (3, 5)]
        overrides = ", ".join(f"{k}={fmt(v)}" for k, v in params.items()) or "-"
        print(f"| {preset} | {overrides} | {label} | {counts[0]:,} | {counts[1]:,} |")


if __name__ == "__main__":
    main()
