"""Exit rules of adaptive inference: when an example may leave at an exit.

* ``entropy`` (FastBERT, Liu et al. 2020, Eq. 8 "uncertainty"; DeeBERT, Xin et al. 2020, uses the raw entropy): exit
  when the normalised entropy ``H(p) / log C`` of the exit's softmax is **below** the threshold (in ``[0, 1]``; 0 never
  fires, anything above 1 always fires);
* ``max_prob``: exit when the largest class probability is **at least** the threshold (above 1 never fires, 0 always);
* ``patience`` (PABEE, Zhou et al. 2020, Sec. 3.2): exit when ``patience`` consecutive exits after the first have
  predicted the same class as the one before them (``cnt_i = cnt_{i−1} + 1`` if ``argmax_i = argmax_{i−1}``, else 0;
  exit once ``cnt_i ≥ patience``): 0 always fires at the first exit, ``≥`` the number of exits never fires.

``none`` is the full-depth model. The final layer's own classifier is the last "exit": an example that never fires
gets the full model's prediction. Everything here is a pure function of tensors; :func:`simulate` applies a rule to the
logits of every exit at once (what the threshold sweep and the tests use as the reference).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from kdistill.errors import KDistillError

RULES = ("none", "entropy", "max_prob", "patience")


def normalized_entropy(logits: torch.Tensor) -> torch.Tensor:
    """``H(softmax(z)) / log C`` per row, in ``[0, 1]``.

    Args:
        logits: ``[B, C]`` with ``C >= 2``.

    Returns:
        ``[B]`` float32 (float64 for float64 input).

    Raises:
        KDistillError: not ``[B, C]`` with at least two classes.
    """
    if logits.dim() != 2 or logits.shape[-1] < 2:
        raise KDistillError(f"exit rules need [B, C] logits of C >= 2 classes, got {tuple(logits.shape)}")
    z = logits.double() if logits.dtype == torch.float64 else logits.float()
    logp = torch.log_softmax(z, dim=-1)
    h = -(logp.exp() * logp).sum(-1)
    return h / math.log(z.shape[-1])


def max_probability(logits: torch.Tensor) -> torch.Tensor:
    """The largest softmax probability per row: ``[B, C] → [B]`` (float32, float64 for float64 input)."""
    if logits.dim() != 2:
        raise KDistillError(f"exit rules need [B, C] logits, got {tuple(logits.shape)}")
    z = logits.double() if logits.dtype == torch.float64 else logits.float()
    return torch.softmax(z, dim=-1).amax(-1)


@dataclass(frozen=True)
class ExitRule:
    """A rule and its setting.

    Attributes:
        rule: ``none`` | ``entropy`` | ``max_prob`` | ``patience``.
        threshold: for ``entropy`` (normalised entropy, exit if below) and ``max_prob`` (exit if at least).
        patience: for ``patience`` (consecutive agreeing exits, an integer >= 0).
    """

    rule: str = "none"
    threshold: float | None = None
    patience: int | None = None

    def __post_init__(self):
        check_rule(self.rule, self.threshold, self.patience)

    @property
    def setting(self) -> float:
        """The rule's one number (threshold or patience), for tables; NaN for ``none``."""
        if self.rule == "patience":
            return float(self.patience)
        return float("nan") if self.threshold is None else float(self.threshold)

    def describe(self) -> str:
        """E.g. ``entropy < 0.2``, ``max_prob >= 0.9``, ``patience 2``, ``none (full depth)``."""
        if self.rule == "entropy":
            return f"entropy < {self.threshold:g}"
        if self.rule == "max_prob":
            return f"max_prob >= {self.threshold:g}"
        if self.rule == "patience":
            return f"patience {self.patience}"
        return "none (full depth)"


def check_rule(rule: str, threshold: float | None, patience: int | None) -> None:
    """Raise a one-line :class:`KDistillError` for an unknown rule or a missing / bad setting."""
    if rule not in RULES:
        raise KDistillError(f"unknown exit rule '{rule}'; choose one of: {', '.join(RULES)}")
    if rule in ("entropy", "max_prob"):
        if threshold is None or not math.isfinite(float(threshold)) or float(threshold) < 0:
            raise KDistillError(f"exit rule '{rule}' needs a finite threshold >= 0 (e.g. --threshold 0.2), got {threshold}")
    if rule == "patience":
        if patience is None or int(patience) != patience or int(patience) < 0:
            raise KDistillError(f"exit rule 'patience' needs an integer patience >= 0 (e.g. --patience 2), got {patience}")


class RuleState:
    """Per-example state of a rule across the exits of one pass (PABEE's counter and last prediction).

    ``fires(logits)`` is called once per exit, in depth order, with the logits ``[B, C]`` of the rows still in the
    batch; it returns ``[B]`` bool (True = leave here). ``keep(mask)`` drops the rows that left, so the state follows
    the shrinking batch.
    """

    def __init__(self, rule: ExitRule):
        self.rule = rule
        self.count: torch.Tensor | None = None
        self.last: torch.Tensor | None = None

    def fires(self, logits: torch.Tensor) -> torch.Tensor:
        r = self.rule
        if r.rule == "entropy":
            return normalized_entropy(logits) < float(r.threshold)
        if r.rule == "max_prob":
            return max_probability(logits) >= float(r.threshold)
        if r.rule == "patience":
            pred = logits.argmax(-1)
            if self.last is None:
                self.count = torch.zeros_like(pred)
            else:
                self.count = torch.where(pred == self.last, self.count + 1, torch.zeros_like(self.count))
            self.last = pred
            return self.count >= int(r.patience)
        return torch.zeros(logits.shape[0], dtype=torch.bool, device=logits.device)

    def keep(self, mask: torch.Tensor) -> None:
        if self.count is not None:
            self.count, self.last = self.count[mask], self.last[mask]


def simulate(exit_logits: torch.Tensor, rule: ExitRule) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply ``rule`` to precomputed logits of every exit: where each example would leave, and its prediction.

    Args:
        exit_logits: ``[E + 1, N, C]``: the ``E`` exits in depth order, then the final layer's classifier.
        rule: the rule.

    Returns:
        ``(exit_index [N] long in 0..E, logits [N, C])``: index ``E`` = the final layer (the rule never fired).
    """
    if exit_logits.dim() != 3:
        raise KDistillError(f"simulate expects [E+1, N, C] logits, got {tuple(exit_logits.shape)}")
    n_exits = exit_logits.shape[0] - 1
    n = exit_logits.shape[1]
    where = torch.full((n,), n_exits, dtype=torch.long)
    state = RuleState(rule)
    open_ = torch.ones(n, dtype=torch.bool)
    for k in range(n_exits):
        fired = state.fires(exit_logits[k]) & open_  # the state runs over every row; only open rows may leave
        where[fired] = k
        open_ &= ~fired
    rows = torch.arange(n)
    return where, exit_logits[where, rows]


__all__ = ["RULES", "ExitRule", "RuleState", "check_rule", "max_probability", "normalized_entropy", "simulate"]
