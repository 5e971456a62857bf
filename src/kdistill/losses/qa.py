"""Losses of extractive question answering over start and end distributions (pure functions of tensors).

A question-answering model gives, per window of ``T`` tokens, a start and an end logit per token, stacked here as
``[B, T, 2]``. Devlin et al. (2019, Sec. 4.2) train it with the cross-entropy of the gold start and of the gold end
token, averaged; DistilBERT's SQuAD recipe (Sanh et al. 2019, Sec. 4.1 / its ``run_squad_w_distillation.py``) adds
soft targets on both distributions: ``T²·KL`` of the teacher's start distribution and of its end distribution,
averaged (Hinton et al. 2015). Padding positions (``attention_mask == 0``) are masked out of both distributions, so a
cached teacher padded with zeros and a student padded by its batch agree on what the distribution is over.
"""

from __future__ import annotations

import torch

from kdistill.errors import KDistillError
from kdistill.losses.kd import hard_label_ce, logit_mse, soft_target_kl

#: The logit given to padding positions: far below any real one, finite (no NaN in float16 softmax).
MASKED = -1e4


def _spans(logits: torch.Tensor, mask: torch.Tensor | None, what: str) -> torch.Tensor:
    """``[B, T, 2]`` logits as ``[2B, T]`` rows (every start row, then every end row), padding masked."""
    if logits.dim() != 3 or logits.shape[-1] != 2:
        raise KDistillError(f"question answering needs {what} start/end logits [B, T, 2], got {tuple(logits.shape)}")
    if mask is not None:
        if tuple(mask.shape) != tuple(logits.shape[:2]):
            raise KDistillError(f"the attention mask {tuple(mask.shape)} does not match the {what} logits "
                                f"{tuple(logits.shape)}")
        logits = logits.masked_fill(~mask.bool().unsqueeze(-1), MASKED)
    return torch.cat([logits[..., 0], logits[..., 1]], dim=0)


def _paired(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None):
    if teacher.shape[1] != student.shape[1]:  # a cached teacher is cut to the batch's width by its source
        raise KDistillError(f"student logits {tuple(student.shape)} and teacher logits {tuple(teacher.shape)} cover "
                            "different windows: question answering needs the same windows (tokenizer, --max-length, "
                            "--doc-stride) for both")
    return _spans(student, mask, "student"), _spans(teacher.to(student.dtype), mask, "teacher")


def span_ce(logits: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``(CE(start) + CE(end)) / 2`` of the gold span (Devlin et al. 2019, Sec. 4.2).

    Args:
        logits: ``[B, T, 2]`` start and end logits. positions: ``[B, 2]`` long, the gold start and end token
            (``0, 0`` — ``[CLS]`` — when the answer is not in the window). mask: ``[B, T]`` attention mask.

    Returns:
        A scalar.

    Raises:
        KDistillError: shapes that do not fit, a position outside the window.
    """
    rows = _spans(logits, mask, "student")
    if positions.dim() != 2 or positions.shape != (logits.shape[0], 2):
        raise KDistillError(f"question answering needs gold [start, end] per window, [B, 2]; got {tuple(positions.shape)}")
    if bool((positions < 0).any()) or bool((positions >= logits.shape[1]).any()):
        raise KDistillError(f"a gold start/end position lies outside the window of {logits.shape[1]} tokens")
    return hard_label_ce(rows, torch.cat([positions[:, 0], positions[:, 1]]).long())


def span_soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0,
                 mask: torch.Tensor | None = None, *, loss=soft_target_kl) -> torch.Tensor:
    """``T²·KL`` of the teacher's start and end distributions, averaged over the two and the windows (Sanh et al. 2019;
    Hinton et al. 2015, Sec. 2).

    Args:
        student_logits, teacher_logits: ``[B, T, 2]`` over the same windows; mask: ``[B, T]`` attention mask.
        temperature: ``T > 0``.
        loss: the soft-target loss of ``[N, C]`` rows applied to the ``2B`` start and end distributions (default
            :func:`~kdistill.losses.kd.soft_target_kl`; TinyBERT's prediction layer passes its soft CE, Eq. 10).

    Raises:
        KDistillError: shapes that do not fit, ``T <= 0``.
    """
    s, t = _paired(student_logits, teacher_logits, mask)
    return loss(s, t, temperature)


def span_logit_mse(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                   mask: torch.Tensor | None = None) -> torch.Tensor:
    """``MSE`` of the start and end logits at the real tokens of each window (Tang et al. 2019, Eq. 2, per position).

    Raises:
        KDistillError: shapes that do not fit.
    """
    if mask is None:
        return logit_mse(student_logits, teacher_logits.to(student_logits.dtype))
    keep = mask.bool()
    return logit_mse(student_logits[keep], teacher_logits.to(student_logits.dtype)[keep])


__all__ = ["MASKED", "span_ce", "span_logit_mse", "span_soft_kl"]
