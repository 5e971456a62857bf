"""Schedules of the objective's knobs over training: temperature, alpha and any term's weight as functions of progress.

A schedule is written ``KIND:START[:END]`` — ``constant:2``, ``linear:4:1`` (from 4 at the first step to 1 at the
last), ``cosine:0.9:0.1`` (half a cosine from START to END) — and keyed by what it drives: ``temperature`` (every
term that has one: soft targets, TinyBERT's prediction term, DistilBERT's masked-LM soft targets), ``alpha`` (the
gold-label term's weight α and the soft term's 1 − α, Hinton et al. 2015's trade-off), or a term's log name
(``cos``, ``attn``, ``hidden``, ``emb``, ``mlm`` ...: its weight). Annealing the temperature from high to 1 is the
curriculum of e.g. Jafari et al. (2021, "Annealing Knowledge Distillation"). Progress is ``step / total_steps`` of the
stage, so a resumed run sees exactly the values an uninterrupted one saw.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Mapping

from kdistill.errors import KDistillError

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


class ObjectiveSchedules:
    """Applies schedules to one :class:`~kdistill.objectives.Objective` as training progresses.

    Keys that name a known term the objective does not have (e.g. ``attn`` in TinyBERT's prediction stage) are
    skipped with one warning; ``alpha`` needs both the ``hard`` and the ``soft`` term (give a starting alpha strictly
    between 0 and 1, or the zero-weight term is left out of the objective).

    Raises:
        KDistillError: see :func:`check_schedules`; ``alpha`` or ``temperature`` that nothing in the objective takes.
    """

    def __init__(self, objective, specs: Mapping[str, str]):
        check_schedules(specs)
        self.objective, self.schedules = objective, {}
        terms = objective.terms
        for key, spec in specs.items():
            if key == "alpha" and not ("hard" in terms and ({"soft", "pred"} & set(terms))):
                raise KDistillError(f"schedule alpha needs both the gold-label and the soft term in '{objective.name}': "
                                    "start from an alpha strictly between 0 and 1")
            if key == "temperature" and not any(hasattr(t, "temperature") for t in terms.values()):
                logging.getLogger("kdistill").warning("schedule temperature: no term of '%s' has a temperature; skipped",
                                                      objective.name)
                continue
            if key not in KNOBS and key not in terms:
                logging.getLogger("kdistill").warning("schedule %s: '%s' has no such term; skipped", key, objective.name)
                continue
            self.schedules[key] = parse_schedule(spec, key)

    def __bool__(self) -> bool:
        return bool(self.schedules)

    def apply(self, progress: float) -> dict[str, float]:
        """Set the scheduled values for ``progress`` (0 = first step, 1 = last); returns them for the log."""
        obj, out = self.objective, {}
        for key, sched in self.schedules.items():
            v = sched.value(progress)
            out[key] = v
            if key == "temperature":
                for term in obj.terms.values():
                    if hasattr(term, "temperature"):
                        term.temperature = v
            elif key == "alpha":  # the soft term is "pred" in TinyBERT's prediction stage
                obj.weights["hard"] = v
                obj.weights["soft" if "soft" in obj.weights else "pred"] = 1.0 - v
            else:
                obj.weights[key] = v
        return out
