"""Schedules of temperature, alpha and loss-term weights (``TrainConfig.schedules``), parsed without torch."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

from kdistill.errors import KDistillError

# The parser lives here so that a config validates without torch; kdistill.objectives.schedules applies them.
KINDS = ("constant", "linear", "cosine")
#: Keys a schedule may drive besides term names.
KNOBS = ("temperature", "alpha")
#: Every term log name the built-in presets use (a key outside these and :data:`KNOBS` is a typo).
TERM_NAMES = ("hard", "soft", "cos", "attn", "hidden", "emb", "pred", "mlm", "ce", "qk", "vv", "qq", "kk")


@dataclass(frozen=True)
class Schedule:
    """A value as a function of training progress ``p`` in [0, 1]: constant, linear or half-cosine from start to end."""

    kind: str
    start: float
    end: float

    def value(self, progress: float) -> float:
        """The value at ``progress`` (clipped to [0, 1]): ``start`` at 0, ``end`` at 1.

        linear: ``start + (end − start)·p``; cosine: ``end + (start − end)·(1 + cos(π·p))/2`` (as SGDR's annealing).
        """
        p = min(1.0, max(0.0, float(progress)))
        if self.kind == "constant":
            return self.start
        if self.kind == "linear":
            return self.start + (self.end - self.start) * p
        return self.end + (self.start - self.end) * (1.0 + math.cos(math.pi * p)) / 2.0


def parse_schedule(text: str, key: str = "schedule") -> Schedule:
    """``"linear:4:1"`` → :class:`Schedule`; ``"constant:2"`` (END = START); a bare number is a constant.

    Raises:
        KDistillError: an unknown kind or a value that is not a finite number (one line naming the key).
    """
    parts = str(text).strip().split(":")
    if len(parts) == 1:
        parts = ["constant", parts[0]]
    kind, values = parts[0].lower(), parts[1:]
    if kind not in KINDS or not 1 <= len(values) <= 2 or (kind != "constant" and len(values) != 2):
        raise KDistillError(f"schedule {key}='{text}': write constant:V, linear:START:END or cosine:START:END")
    try:
        nums = [float(v) for v in values]
    except ValueError:
        raise KDistillError(f"schedule {key}='{text}': START and END must be numbers") from None
    if not all(math.isfinite(v) for v in nums):
        raise KDistillError(f"schedule {key}='{text}': values must be finite")
    return Schedule(kind, nums[0], nums[-1])


def check_schedules(specs: Mapping[str, str]) -> dict[str, str]:
    """Validate a ``{key: spec}`` mapping without an objective (config time): known keys, parseable specs, ranges.

    Raises:
        KDistillError: an unknown key (listing the valid ones), a bad spec, alpha outside [0, 1], T ≤ 0, a weight < 0.
    """
    for key, spec in specs.items():
        if key not in KNOBS and key not in TERM_NAMES:
            raise KDistillError(f"schedule key '{key}' is not temperature, alpha or a loss term "
                                f"({', '.join(TERM_NAMES)})")
        s = parse_schedule(spec, key)
        lo, hi = min(s.start, s.end), max(s.start, s.end)
        if key == "alpha" and not (0.0 <= lo and hi <= 1.0):
            raise KDistillError(f"schedule alpha='{spec}': alpha must stay in [0, 1]")
        if key == "temperature" and lo <= 0:
            raise KDistillError(f"schedule temperature='{spec}': the temperature must stay > 0")
        if key not in KNOBS and lo < 0:
            raise KDistillError(f"schedule {key}='{spec}': a weight must stay >= 0")
    return dict(specs)
