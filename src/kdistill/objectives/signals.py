"""What a model gives an objective for one batch."""

from __future__ import annotations

from dataclasses import dataclass

import torch


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
        word_ids: ``[B, L]`` the word of each of this model's tokens (-1 = none), when the teacher tokenizes the text
            itself (another tokenizer than the student's) and the objective aligns hidden states by words.
    """

    logits: torch.Tensor | None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attention_scores: list[torch.Tensor | None] | None = None
    attention_probs: list[torch.Tensor | None] | None = None
    word_ids: torch.Tensor | None = None
    qkv: dict[str, torch.Tensor] | None = None  # {"query", "key", "value"} [B, L, H] of one layer (MiniLM relations)


TeacherSignal = ModelSignal  # the name used for the teacher's side
