"""TinyBERT objectives (Jiao et al., Findings of EMNLP 2020, arXiv:1909.10351) for the one engine.

TinyBERT trains in stages; each stage is one :class:`TinyBertObjective` with a different
``stage``:

* ``"general"`` -- general distillation (Sec. 3.2, stage 1): unlabeled text, the pretrained
  (not fine-tuned) teacher, ``L = Σ_m [L_attn(m) + L_hidn(m)] + L_embd`` (Eq. 11 without the
  prediction term);
* ``"intermediate"`` -- the first step of task-specific distillation: the same layer-wise loss,
  from the fine-tuned teacher, on the (augmented) task data;
* ``"prediction"`` -- the second step: the prediction-layer loss only (Eq. 10; MSE to the
  teacher's prediction for regression tasks), optionally mixed with ``alpha``·CE on gold labels.

The layer mapping ``g`` (:func:`kdistill.methods.layer_map.layer_map`) pairs student layer
``m`` with teacher layer ``g(m)``; the embedding layer always pairs with the embedding layer.
Losses are summed over mapped layers, as in the reference implementation.

Width projections ``W_e`` (embeddings) and ``W_h`` (hidden states, shared by all layers, Eq. 8)
are ``nn.Linear(Hs, Ht)`` modules owned by the objective: trained with the student, saved in
the run's checkpoint (and in ``projections.safetensors`` of a stage), never part of the
exported student. When widths are equal no projection is used.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from kdistill.config import TinyBertConfig
from kdistill.data.tasks import TaskSpec
from kdistill.errors import ModelError
from kdistill.losses import regression_mse
from kdistill.losses.tinybert import (attention_kl_loss, attention_score_loss, embedding_loss, hidden_state_loss,
                                      prediction_loss)
from kdistill.methods.layer_map import layer_map
from kdistill.methods.objectives import ModelSignal, Objective

STAGES = ("general", "intermediate", "prediction")


def _width(config) -> int:
    return int(getattr(config, "hidden_size", None) or getattr(config, "dim"))


def _depth(config) -> int:
    return int(getattr(config, "num_hidden_layers", None) or getattr(config, "n_layers"))


class TinyBertObjective(Objective):
    """One TinyBERT stage as an objective (see the module docstring for the stages).

    Layer-wise loss (stages ``general``/``intermediate``)::

        L = w_attn·Σ_m L_attn(m, g(m)) + w_hidden·Σ_m MSE(H_S^m W_h, H_T^{g(m)}) + w_emb·MSE(E_S W_e, E_T)

    where ``L_attn`` is the MSE of pre-softmax scores (Eq. 7, ``attention_loss="mse"``) or the
    KL of attention distributions (MiniLM, ``attention_loss="kl"``); padded positions are left
    out of every mean (see :mod:`kdistill.losses.tinybert`).

    Args:
        task: the task (``None`` for general distillation).
        cfg: weights, layer map, attention options, temperature.
        student_config, teacher_config: the two models' configs (depth, width).
        stage: one of :data:`STAGES`.

    Raises:
        ModelError: bad layer map (see :func:`layer_map`) or unknown stage.
    """

    name = "tinybert"

    def __init__(self, task: TaskSpec | None, cfg: TinyBertConfig, student_config, teacher_config, stage: str):
        super().__init__(task)
        if stage not in STAGES:
            raise ModelError(f"unknown TinyBERT stage '{stage}'; one of {', '.join(STAGES)}")
        self.cfg, self.stage = cfg, stage
        self.name = f"tinybert-{stage}"
        self.needs_teacher = True
        self.select_best = stage == "prediction"
        self.uses_all_parameters = stage == "prediction"
        m, n = _depth(student_config), _depth(teacher_config)
        self.layer_map = layer_map(m, n, cfg.layer_map)
        hs, ht = _width(student_config), _width(teacher_config)
        layerwise = stage != "prediction"
        self.needs_hidden_states = layerwise and (cfg.hidden_weight > 0 or cfg.emb_weight > 0)
        self.needs_attentions = layerwise and cfg.attn_weight > 0
        self.student_attention_layers = list(range(m))
        self.teacher_attention_layers = sorted(g - 1 for g in self.layer_map)
        self.proj_hidden = nn.Linear(hs, ht) if layerwise and hs != ht and cfg.hidden_weight > 0 else None
        self.proj_emb = nn.Linear(hs, ht) if layerwise and hs != ht and cfg.emb_weight > 0 else None

    def layerwise_terms(self, student: ModelSignal, teacher: ModelSignal, mask: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """``{"attn", "hidden", "emb"}`` summed over the mapped layers (those with weight > 0)."""
        cfg, terms = self.cfg, {}
        if cfg.attn_weight > 0:
            total = 0.0
            for m, g in enumerate(self.layer_map, start=1):
                if cfg.attention_loss == "kl":
                    s, t = student.attention_probs[m - 1], teacher.attention_probs[g - 1]
                    total = total + attention_kl_loss(s, t, mask, cfg.head_rule)
                else:
                    s, t = student.attention_scores[m - 1], teacher.attention_scores[g - 1]
                    total = total + attention_score_loss(s, t, mask, cfg.head_rule)
            terms["attn"] = total
        if cfg.hidden_weight > 0:
            terms["hidden"] = sum(
                hidden_state_loss(student.hidden_states[m], teacher.hidden_states[g], self.proj_hidden, mask)
                for m, g in enumerate(self.layer_map, start=1)
            )
        if cfg.emb_weight > 0:
            terms["emb"] = embedding_loss(student.hidden_states[0], teacher.hidden_states[0], self.proj_emb, mask)
        return terms

    def forward(self, student: ModelSignal, batch: dict[str, torch.Tensor], teacher: ModelSignal) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        if self.stage == "prediction":
            z_s = student.logits
            if self.task.is_regression:
                pred = regression_mse(z_s, teacher.logits)
            else:
                pred = prediction_loss(z_s, teacher.logits, cfg.temperature)
            total = (1 - cfg.alpha) * pred
            terms = {"pred": pred.detach()}
            if cfg.alpha > 0:
                hard = self.gold_loss(z_s, batch["labels"])
                terms["hard"], total = hard.detach(), total + cfg.alpha * hard
            terms["loss"] = total
            return terms
        mask = batch.get("attention_mask")
        raw = self.layerwise_terms(student, teacher, mask)
        weights = {"attn": cfg.attn_weight, "hidden": cfg.hidden_weight, "emb": cfg.emb_weight}
        total = sum(weights[k] * v for k, v in raw.items())
        out = {k: v.detach() for k, v in raw.items()}
        out["loss"] = total if raw else student.hidden_states[-1].sum() * 0.0
        return out

    def projection_state(self) -> dict[str, torch.Tensor]:
        """The learned projections' weights (``W_h``, ``W_e``), e.g. to save beside a stage's student."""
        state = {}
        for name in ("proj_hidden", "proj_emb"):
            mod = getattr(self, name)
            if mod is not None:
                state.update({f"{name}.{k}": v.detach().cpu().contiguous() for k, v in mod.state_dict().items()})
        return state


def check_layerwise_pair(student, teacher) -> None:
    """Raise :class:`ModelError` when the two models cannot be distilled layer by layer.

    Both must run through transformers' attention interface (BERT layout) and the student may
    not be deeper than the teacher.
    """
    from kdistill.students.transformer import layout_for

    for what, model in (("student", student), ("teacher", teacher)):
        layout_for(model.config)  # raises for unsupported architectures
        if not hasattr(model, "set_attn_implementation"):
            raise ModelError(f"TinyBERT needs a transformers encoder {what}; got {type(model).__name__}")
    if _depth(student.config) > _depth(teacher.config):
        raise ModelError(
            f"the student has {_depth(student.config)} layers, the teacher {_depth(teacher.config)}: a TinyBERT student "
            "must not be deeper than its teacher"
        )


def describe_map(mapping: Sequence[int]) -> str:
    """``"emb→emb, 1→2, 2→4"`` for logs and reports."""
    return ", ".join(["emb→emb"] + [f"{m}→{g}" for m, g in enumerate(mapping, start=1)])
