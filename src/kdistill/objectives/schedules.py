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
from typing import Mapping

from kdistill.config import KNOBS, KINDS, TERM_NAMES, Schedule, check_schedules, parse_schedule  # noqa: F401
from kdistill.errors import KDistillError

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
