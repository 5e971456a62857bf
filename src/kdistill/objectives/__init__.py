"""Objectives: how a batch's student (and teacher) outputs become weighted, separately logged loss terms.

* :mod:`~kdistill.objectives.terms` — the registry of loss terms (``gold``, ``soft_kl``, ``logit_mse``,
  ``hidden_cos``, ``attn_mse``, ``attn_kl``, ``hidden_mse``, ``emb_mse``, ``pred_ce``);
* :mod:`~kdistill.objectives.objective` — :class:`Objective`, a weighted list of terms whose needs
  (teacher, hidden states, attention) are derived from the terms;
* :mod:`~kdistill.objectives.presets` — each method's objective (``finetune``, ``kd``, TinyBERT stages);
* :mod:`~kdistill.objectives.layer_map` — TinyBERT's layer mapping ``m → g(m)``.
"""

from kdistill.objectives.objective import Objective
from kdistill.objectives.presets import (PRESETS, distilbert_general_objective, finetune_objective, kd_objective,
                                         make_objective, minilm_objective, tinybert_objective)
from kdistill.objectives.signals import ModelSignal, TeacherSignal
from kdistill.objectives.terms import TERMS, Term, make_term, register

__all__ = ["Objective", "PRESETS", "TERMS", "Term", "ModelSignal", "TeacherSignal", "finetune_objective",
           "kd_objective", "make_objective", "make_term", "register", "tinybert_objective", "distilbert_general_objective",
           "minilm_objective"]
