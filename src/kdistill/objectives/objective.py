"""An objective: a weighted list of named loss terms, and what they need from teacher and student."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from kdistill.data.tasks import TaskSpec
from kdistill.errors import KDistillError
from kdistill.objectives.signals import ModelSignal
from kdistill.objectives.terms import Term, gold_loss


def _merge_layers(lists: list[list[int] | None]) -> list[int] | None:
    if any(x is None for x in lists):
        return None
    return sorted({i for x in lists for i in x})


class Objective(nn.Module):
    """``loss = Σ_k w_k · term_k(student, teacher, batch)``, every term logged under its own name.

    An objective never runs a training loop: :mod:`kdistill.engine` calls it once per batch. It is
    an ``nn.Module`` so that terms with trainable pieces (TinyBERT's ``W_h``, ``W_e``) are optimised,
    checkpointed and synchronised across processes with the student.

    Args:
        name: shown in the progress bar (``kd``, ``finetune``, ``tinybert-intermediate`` ...).
        task: the task (``None`` for general distillation).
        terms: ``(log_name, weight, term)`` in summation order; the log names are the keys of the
            returned dict (``hard``, ``soft``, ``cos``, ``attn`` ...) and must be unique.
        select_best: keep the student with the best dev metric (``True``) or the last one
            (stages whose loss does not train the task head, or general distillation).
        uses_all_parameters: every student parameter receives a gradient (``False`` tells DDP to
            look for unused ones).
        prepare_batch: ``(batch, generator) -> batch``, applied by the engine to every batch before teacher and
            student see it, with a generator seeded by (seed, epoch, batch of the epoch) — the same on a resume
            (e.g. DistilBERT's dynamic masking, :class:`kdistill.data.masking.Masker`).

    Attributes derived from the terms: ``needs_teacher``, ``needs_hidden_states``,
    ``needs_attentions``, ``student_attention_layers``, ``teacher_attention_layers``, ``student_qkv_layer``,
    ``teacher_qkv_layer`` (the layer whose query/key/value projections relation terms read, or None).

    Raises:
        KDistillError: duplicate log names.
    """

    def __init__(self, name: str, task: TaskSpec | None, terms: Sequence[tuple[str, float, Term]], *,
                 select_best: bool = True, uses_all_parameters: bool = True, prepare_batch=None):
        super().__init__()
        names = [n for n, _, _ in terms]
        if len(set(names)) != len(names):
            raise KDistillError(f"objective '{name}': term names must be unique, got {names}")
        self.name, self.task = name, task
        self.terms = nn.ModuleDict({n: t for n, _, t in terms})
        self.weights = {n: float(w) for n, w, _ in terms}
        self.select_best, self.uses_all_parameters = select_best, uses_all_parameters
        self.prepare_batch = prepare_batch
        ts = list(self.terms.values())
        self.needs_teacher = any(t.needs_teacher for t in ts)
        self.needs_hidden_states = any(t.needs_hidden_states for t in ts)
        self.needs_attentions = any(t.needs_attentions for t in ts)
        attn = [t for t in ts if t.needs_attentions]
        self.student_attention_layers = _merge_layers([t.student_attention_layers for t in attn]) if attn else None
        self.teacher_attention_layers = _merge_layers([t.teacher_attention_layers for t in attn]) if attn else None
        qkv = [t for t in ts if getattr(t, "qkv_layers", None)]  # MiniLM relations: one layer's Q, K, V per model
        layers = {t.qkv_layers for t in qkv}
        if len(layers) > 1:
            raise KDistillError(f"objective '{name}': relation terms must read the same layers, got {sorted(layers)}")
        self.student_qkv_layer, self.teacher_qkv_layer = next(iter(layers)) if layers else (None, None)

    def gold_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """See :func:`kdistill.objectives.terms.gold_loss` (with this objective's task)."""
        return gold_loss(self.task, logits, labels)

    def forward(self, student: ModelSignal, batch: dict[str, torch.Tensor], teacher: ModelSignal | None) -> dict[str, torch.Tensor]:
        """Loss terms for one batch: a dict of detached scalars per term plus ``"loss"`` (with graph)."""
        out: dict[str, torch.Tensor] = {}
        total = None
        for name, term in self.terms.items():
            value = term(student, teacher, batch)
            out[name] = value.detach()
            weighted = self.weights[name] * value
            total = weighted if total is None else total + weighted
        if total is None:  # nothing to learn from (all weights 0): a zero that keeps the graph
            anchor = student.logits if student.logits is not None else student.hidden_states[-1]
            total = anchor.sum() * 0.0
        out["loss"] = total
        return out

    def describe(self) -> dict[str, dict]:
        """The terms that run, for reports: ``{log_name: {"term": key, "weight": w, "loss": what it computes, ...}}``.

        Regression tasks record the MSE to the teacher's prediction that runs in place of soft targets.
        """
        out = {}
        for name, term in self.terms.items():
            d = {"term": term.key, "weight": self.weights[name], "loss": term.describe(self.task)}
            for attr in ("temperature", "layer_map", "head_rule"):
                if hasattr(term, attr) and not (attr == "temperature" and self.task is not None and self.task.is_regression):
                    d[attr] = getattr(term, attr)
            out[name] = d
        return out

    def projection_state(self) -> dict[str, torch.Tensor]:
        """The learned projections' weights (``proj_hidden.*``, ``proj_emb.*``), e.g. to save beside a stage's student."""
        state = {}
        for term in self.terms.values():
            proj = getattr(term, "proj", None)
            if proj is not None:
                state.update({f"{term.proj_name}.{k}": v.detach().cpu().contiguous() for k, v in proj.state_dict().items()})
        return state
