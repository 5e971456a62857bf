"""The early-exit objective: one loss term per exit, each distilling the final layer's detached soft targets.

``loss = Σ_k w_k · [(1 − β)·T²·KL(softmax(z_L/T) ‖ softmax(z_k/T)) + β·CE(z_k, y)]  (+ w_final · CE(z_L, y), joint)``

* ``schedule="frozen"`` — FastBERT's two-step schedule (Liu et al. 2020, Sec. 3.3): the backbone has been fine-tuned
  (step 1: the teacher or student as trained); step 2 trains only the exits (the backbone's parameters are frozen and
  kept in eval mode, so the targets carry no dropout noise). The final metric cannot change: the last student is kept.
* ``schedule="joint"`` — backbone and exits together (DeeBERT / PABEE style, a weighted sum over the exits, weights
  :func:`kdistill.losses.early_exit.exit_weights`), plus the final layer's gold CE so it keeps its task; the kept
  student is chosen by the final layer's metric on the selection slice.

The exits read the student's ``output_hidden_states``; the final logits are the student's own (no teacher runs).
"""

from __future__ import annotations

from kdistill.data.tasks import TaskSpec
from kdistill.errors import KDistillError
from kdistill.losses.early_exit import exit_distillation_loss, exit_weights
from kdistill.objectives.objective import Objective
from kdistill.objectives.terms import Term, make_term, register


class _ModelRef:
    """Holds the early-exit model without registering it as a submodule (its weights belong to the student)."""

    def __init__(self, model):
        self.model = model


@register("exit_self_kd")
class ExitSelfKD(Term):
    """Self-distillation of one early exit: ``T²·KL`` to the final layer's detached soft targets (+ ``β``·gold CE).

    Args:
        model: the early-exit student (:mod:`kdistill.selfdistill.modeling`); only referenced, not owned.
        index: which exit (0-based, in depth order); its layer is ``model.exit_layers[index]``.
        task: a single-label classification task.
        temperature: ``T``; gold_weight: ``β`` (see :func:`kdistill.losses.early_exit.exit_distillation_loss`).
    """

    needs_teacher = False
    needs_hidden_states = True

    def __init__(self, model, index: int, task: TaskSpec, temperature: float = 2.0, gold_weight: float = 0.0):
        super().__init__()
        self._ref = _ModelRef(model)
        self.index, self.task, self.temperature, self.gold_weight = int(index), task, float(temperature), float(gold_weight)
        self.layer = int(model.exit_layers[self.index])

    def forward(self, student, teacher, batch):
        model = self._ref.model
        hidden = student.hidden_states
        if hidden is None:
            raise KDistillError("early-exit self-distillation needs the student's hidden states")
        z = model.kdistill_exits[self.index](hidden[self.layer], batch.get("attention_mask"))
        return exit_distillation_loss(z.float(), student.logits.float(), self.temperature, labels=batch.get("labels"),
                                      gold_weight=self.gold_weight)


def check_task(task: TaskSpec) -> None:
    """Early exits decide by class probabilities: single-label classification only (one-line KDistillError)."""
    if task.is_regression or task.multi_label:
        raise KDistillError(f"early exits need a single-label classification task; '{task.name}' is "
                            f"{'regression' if task.is_regression else 'multi-label'}")


def early_exit_objective(task: TaskSpec, model, cfg) -> Objective:
    """The objective of one early-exit training stage (see the module docstring).

    Args:
        task: single-label classification.
        model: the early-exit student.
        cfg: a :class:`kdistill.selfdistill.config.ExitConfig`.

    Raises:
        KDistillError: a regression / multi-label task.
    """
    check_task(task)
    layers = model.exit_layers
    weights = exit_weights(layers, cfg.weighting)
    terms = [(f"exit{k}", w, ExitSelfKD(model, j, task, cfg.temperature, cfg.gold_weight))
             for j, (k, w) in enumerate(zip(layers, weights))]
    joint = cfg.schedule == "joint"
    if joint and cfg.final_weight > 0:
        terms.append(("final", cfg.final_weight, make_term("gold", task=task)))
    obj = Objective(f"early-exit-{cfg.schedule}", task, terms, select_best=joint)
    obj.needs_teacher = False
    return obj


def freeze_backbone(model, frozen: bool) -> None:
    """FastBERT's second step: only the exits train (``requires_grad``) and the rest stays in eval mode in training."""
    model.requires_grad_(not frozen)
    model.kdistill_exits.requires_grad_(True)
    model._kdistill_frozen_backbone = bool(frozen)


__all__ = ["ExitSelfKD", "check_task", "early_exit_objective", "freeze_backbone"]
