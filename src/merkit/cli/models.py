"""``merkit models --architectures``: the registered model architectures, their presets and inputs, from
:func:`merkit.models.model_info` (no model is built)."""

from __future__ import annotations

from dataclasses import fields


def _preset_changes(config, paper) -> str:
    """``name=value`` for every field where ``config`` differs from the ``paper`` preset."""
    changed = [f"{f.name}={getattr(config, f.name)!r}" for f in fields(config)
               if getattr(config, f.name) != getattr(paper, f.name)]
    return ", ".join(changed) if changed else "the paper's values"


def architecture_lines() -> list[str]:
    """One block per registered model: name, title, class and paper; then per preset its changes from ``paper``,
    its input keys (ground-truth ones marked) and its notes."""
    from merkit.models import list_models, model_info

    lines: list[str] = []
    for name in list_models():
        info = model_info(name)
        lines.append(f"{name}: {info.title} ({info.model_class})")
        lines.append(f"  paper: {info.paper}")
        for preset, config in info.presets.items():
            facts = model_info(name, preset)
            keys = [k + (" (ground truth)" if k in facts.uses_ground_truth_inputs else "") for k in facts.input_keys]
            lines.append(f"  preset {preset}: {_preset_changes(config, info.presets['paper'])}")
            lines.append(f"    inputs: {', '.join(keys)}")
            lines.extend(f"    note: {note}" for note in facts.notes)
    return lines
