"""Objectives: how a batch's student (and teacher) outputs become weighted loss terms.

An objective never runs a training loop: :mod:`kdistill.engine` calls it once per batch.
Each returns a dict of named scalar terms plus ``"loss"`` (their weighted sum), so every
term is logged separately. New methods register in :data:`METHODS` under a string key
(TextBrewer-style presets), and declare what they need from the teacher.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from kdistill.config import DistillConfig
from kdistill.data.tasks import TaskSpec
from kdistill.losses import hard_label_ce, hidden_cosine, logit_mse, regression_mse, soft_target_kl


@dataclass
class ModelSignal:
    """What a model (teacher or student) gives the objective for one batch.

    Attributes:
        logits: ``[B, C]`` (``[B, 1]`` for regression), float32; ``None`` for a bare encoder
            (general distillation). The teacher's carries no gradient.
        hidden_states: tuple of ``M + 1`` tensors ``[B, L, H]`` (embedding output first, then
            one per Transformer layer), or ``None`` when the objective did not ask for them.
        attention_scores: list of ``M`` entries ``[B, heads, L, L]`` (pre-softmax ``Q·Kᵀ/√d``,
            before the padding mask; see :func:`kdistill.students.capture.capture_attention`) or
            ``None`` for layers not recorded; ``None`` when not asked for.
        attention_probs: same layout, post-softmax attention probabilities.
    """

    logits: torch.Tensor | None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attention_scores: list[torch.Tensor | None] | None = None
    attention_probs: list[torch.Tensor | None] | None = None


TeacherSignal = ModelSignal  # the name used by the engine for the teacher's side


class Objective(nn.Module):
    """Base class. Subclasses set the flags and implement :meth:`forward`.

    An objective is an ``nn.Module`` so that methods with trainable pieces of their own (e.g.
    TinyBERT's width projections ``W_h``, ``W_e``) have them optimised, checkpointed and
    synchronised across processes together with the student; they are never part of the
    exported student.

    Attributes:
        name: registry key.
        needs_teacher: the engine must provide a teacher :class:`ModelSignal`.
        needs_hidden_states: student and teacher must return ``hidden_states`` (rules out
            caching teacher logits alone).
        needs_attentions: ``False``, or ``True`` to have per-layer attention scores and
            probabilities recorded for both models (:attr:`student_attention_layers` and
            :attr:`teacher_attention_layers`: 0-based layers to record, ``None`` = all).
        uses_all_parameters: every student parameter receives a gradient from the loss.
        select_best: keep the student with the best dev metric (``True``) or the last one
            (``False``: stages whose loss does not train the task head, such as TinyBERT's
            intermediate-layer stage, or general distillation without labels).
    """

    name = "base"
    needs_teacher = False
    needs_hidden_states = False
    needs_attentions = False
    student_attention_layers: list[int] | None = None
    teacher_attention_layers: list[int] | None = None
    select_best = True
    uses_all_parameters = True  # False: some student parameters get no gradient (DDP must look for them)

    def __init__(self, task: TaskSpec | None):
        super().__init__()
        self.task = task

    def gold_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """CE on class ids, or MSE on scores for regression tasks, over the rows that have a gold label.

        Rows without one (augmented examples: label ``-1`` for classification, NaN for
        regression) are left out; a batch with none gives a zero that keeps the graph.
        """
        has_gold = ~torch.isnan(labels.float()) if self.task.is_regression else labels >= 0
        if bool(has_gold.all()):
            return regression_mse(logits, labels) if self.task.is_regression else hard_label_ce(logits, labels)
        if not bool(has_gold.any()):
            return logits.sum() * 0.0
        logits, labels = logits[has_gold], labels[has_gold]
        return regression_mse(logits, labels) if self.task.is_regression else hard_label_ce(logits, labels)

    def forward(self, student: ModelSignal, batch: dict[str, torch.Tensor], teacher: ModelSignal | None) -> dict[str, torch.Tensor]:
        """Loss terms for one batch: a dict of detached scalars per term plus ``"loss"`` (with graph)."""
        raise NotImplementedError


class Finetune(Objective):
    """Plain supervised fine-tuning: ``loss = CE(student, gold)`` (MSE for regression)."""

    name = "finetune"

    def forward(self, student_out, batch, teacher=None):
        ce = self.gold_loss(student_out.logits, batch["labels"])
        return {"loss": ce, "hard": ce.detach()}


class VanillaKD(Objective):
    """Task-specific logit distillation (Hinton et al. 2015), with DistilBERT's optional L_cos.

    ``loss = α·L_hard + (1 − α)·L_soft + w_cos·L_cos`` where

    * ``L_hard`` = CE(student, gold) (MSE for regression);
    * ``L_soft`` = ``T²·KL(softmax(z_t/T) ‖ softmax(z_s/T))`` (Hinton et al. 2015, Sec. 2) with
      ``kd_loss='kl'``, or ``MSE(z_s, z_t)`` (Tang et al. 2019, Eq. 2) with ``kd_loss='mse'``;
      for regression tasks always the MSE to the teacher's prediction;
    * ``L_cos`` = mean ``1 − cos`` between the last hidden states (Sanh et al. 2019), only when
      ``cos_weight > 0`` (requires equal hidden widths; the teacher then runs on every batch).
    """

    name = "kd"
    needs_teacher = True

    def __init__(self, task: TaskSpec, cfg: DistillConfig):
        super().__init__(task)
        self.cfg = cfg
        self.needs_hidden_states = cfg.cos_weight > 0
        # alpha = 1 without L_cos is plain supervised training: the teacher is not run at all
        self.needs_teacher = cfg.alpha < 1 or cfg.cos_weight > 0

    def forward(self, student_out, batch, teacher):
        cfg, z_s = self.cfg, student_out.logits
        terms: dict[str, torch.Tensor] = {}
        total = torch.zeros((), device=z_s.device)
        if cfg.alpha > 0:
            hard = self.gold_loss(z_s, batch["labels"])
            terms["hard"], total = hard.detach(), total + cfg.alpha * hard
        if cfg.alpha < 1:
            if self.task.is_regression:
                soft = regression_mse(z_s, teacher.logits)
            elif cfg.kd_loss == "mse":
                soft = logit_mse(z_s, teacher.logits)
            else:
                soft = soft_target_kl(z_s, teacher.logits, cfg.temperature)
            terms["soft"], total = soft.detach(), total + (1 - cfg.alpha) * soft
        if cfg.cos_weight > 0:
            cos = hidden_cosine(student_out.hidden_states[-1], teacher.hidden_states[-1], batch.get("attention_mask"))
            terms["cos"], total = cos.detach(), total + cfg.cos_weight * cos
        terms["loss"] = total
        return terms


METHODS: dict[str, Callable[..., Objective]] = {
    "finetune": lambda task, distill_cfg=None: Finetune(task),
    "kd": lambda task, distill_cfg=None: VanillaKD(task, distill_cfg or DistillConfig()),
}


def make_objective(method: str, task: TaskSpec, distill_cfg: DistillConfig | None = None) -> Objective:
    """Build the objective registered as ``method``.

    Raises:
        KDistillError: unknown method name.
    """
    from kdistill.errors import KDistillError

    if method not in METHODS:
        raise KDistillError(f"unknown method '{method}'; choose one of: {', '.join(METHODS)}")
    return METHODS[method](task, distill_cfg)
