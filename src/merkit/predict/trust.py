"""What makes a prediction trustworthy, or says it is not: calibrated probabilities (a temperature fitted on LOSO
out-of-fold predictions), abstention below a confidence, and domain checks of each input against what the model
was trained on and against the field's definition of a micro-expression.

* :func:`apply_temperature`: ``softmax(log p / T)``; ``T`` comes from the checkpoint's ``calibration`` record
  (:mod:`merkit.evaluation.calibration` fits it; a checkpoint without one means ``T = 1``, the probabilities as
  the model gives them).
* :func:`expression_kind`: ``micro`` or ``macro`` by duration, as the MEGC spotting challenges define them
  (MEGC2019-2022, Li et al.: a micro-expression lasts at most 0.5 s, :data:`MICRO_MAX_S`).
* :func:`domain_findings`: named warnings for one clip: its onset->offset or onset->apex time outside the training
  data's 1st-99th percentile (the checkpoint's ``domain`` record), or longer than a micro-expression.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np

#: The longest a micro-expression lasts, onset to offset, seconds: the MEGC spotting challenges' definition
#: (MEGC2019-2022; Li et al., FG 2019 and later), which also calls anything longer a macro-expression.
MICRO_MAX_S = 0.5

#: The answer given instead of a class when the top probability is below ``min_confidence``.
UNCERTAIN = "uncertain"


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities rescaled by a temperature: ``softmax(log p / T)``, which equals ``softmax(logits / T)`` for the
    logits that gave ``p``. ``T = 1`` returns ``p`` itself (bit for bit); ``T > 1`` softens, ``T < 1`` sharpens;
    the ranking of the classes never changes.

    Args:
        probabilities: float (K,) or (N, K), rows summing to 1.
        temperature: finite, > 0.

    Returns:
        float64 array of the same shape.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if temperature == 1.0:
        return p
    logits = np.log(np.clip(p, 1e-300, None)) / float(temperature)
    logits -= logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=-1, keepdims=True)


def expression_kind(duration_s: float | None) -> str:
    """``micro`` (at most :data:`MICRO_MAX_S` seconds) or ``macro`` (longer); ``micro`` when the duration is
    unknown (no frame rate)."""
    return "macro" if duration_s is not None and duration_s > MICRO_MAX_S + 1e-9 else "micro"


@dataclass(frozen=True)
class DomainFinding:
    """One named domain warning of a prediction.

    Attributes:
        name: ``clip-longer-than-micro-expression``, ``clip-duration``, ``onset-apex-duration``, ...
        value: the measured value (seconds for the durations).
        expected: the range or limit it was checked against, as text (``"0.15-0.56 s"``).
        basis: ``field definition`` or ``training data`` (which record says so).
        message: one line for a person.
    """

    name: str
    value: float
    expected: str
    basis: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "value": round(float(self.value), 4)}


def _outside(name: str, value: float, stats: Mapping[str, Any] | None, what: str) -> DomainFinding | None:
    """A finding when ``value`` lies outside ``stats``' [p1, p99] (the training data's 1st-99th percentile)."""
    if not stats or "p1" not in stats or "p99" not in stats:
        return None
    low, high = float(stats["p1"]), float(stats["p99"])
    if low <= value <= high:
        return None
    side = "longer" if value > high else "shorter"
    return DomainFinding(name, value, f"{low:.3g}-{high:.3g} s", "training data",
                         f"{what} {value:.3g} s is {side} than 99% of the training clips' (1st-99th percentile "
                         f"{low:.3g}-{high:.3g} s, of {stats.get('source', 'the training data')})")


def domain_findings(onset: int, apex: int, offset: int, fps: float | None,
                    domain: Mapping[str, Any] | None) -> list[DomainFinding]:
    """The domain warnings of one clip, by its times (the only statistics a flow-image checkpoint carries).

    Checks, each only when the frame rate is known:

    * ``clip-longer-than-micro-expression`` (field definition): onset->offset longer than :data:`MICRO_MAX_S`;
      the clip more likely holds a macro-expression or several events (``merkit predict --spot`` scans a long
      video for short ones);
    * ``clip-duration`` (training data): onset->offset outside the 1st-99th percentile of the training clips'
      (``domain["onset_offset_s"]``), when the clip has an offset after its apex;
    * ``onset-apex-duration`` (training data): onset->apex outside ``domain["onset_apex_s"]``'s.

    Args:
        onset, apex, offset: the frame numbers the prediction used.
        fps: frames per second of those numbers, or ``None``.
        domain: the checkpoint's ``domain`` record (``None`` or empty: only the field's definition is checked).

    Returns:
        The findings, possibly empty.
    """
    if not fps:
        return []
    domain = domain or {}
    found = []
    clip_s, rise_s = (offset - onset) / fps, (apex - onset) / fps
    if clip_s > MICRO_MAX_S + 1e-9:
        found.append(DomainFinding(
            "clip-longer-than-micro-expression", clip_s, f"<= {MICRO_MAX_S} s", "field definition",
            f"the clip lasts {clip_s:.2f} s from onset to offset; a micro-expression lasts at most {MICRO_MAX_S} s "
            "(MEGC), so this is more likely a macro-expression or several events: give the expression's own onset "
            "and offset, or scan the video with --spot"))
    if offset > apex:
        found.append(_outside("clip-duration", clip_s, domain.get("onset_offset_s"), "onset to offset"))
    found.append(_outside("onset-apex-duration", rise_s, domain.get("onset_apex_s"), "onset to apex"))
    return [f for f in found if f is not None]
