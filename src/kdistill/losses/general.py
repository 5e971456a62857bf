"""Losses of general (task-agnostic) distillation: DistilBERT's masked-LM terms and MiniLM's relation transfer.

* :func:`mlm_soft_kl` — DistilBERT's L_ce (Sanh et al. 2019, Sec. 3): ``T²·KL`` of the teacher's masked-LM distribution
  from the student's, over the masked positions;
* :func:`mlm_ce` — the student's own masked-LM loss L_mlm (Devlin et al. 2019);
* :func:`relations` / :func:`relation_kl` — MiniLM's value relation ``softmax(V·Vᵀ/√d)`` (Wang et al. 2020, Eq. 7)
  and MiniLMv2's query/key/value relations with any number of *relation heads* (Wang et al. 2021, Sec. 3.1), which
  makes the loss independent of either model's width and head count.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from kdistill.errors import KDistillError


def _masked_positions(labels: torch.Tensor) -> torch.Tensor:
    return labels != -100


def mlm_soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                temperature: float = 2.0) -> torch.Tensor:
    """``T² · mean over masked positions of KL(softmax(z_t/T) ‖ softmax(z_s/T))`` (DistilBERT's L_ce; Hinton et al. 2015).

    Args:
        student_logits, teacher_logits: ``[B, L, V]`` masked-LM logits (the teacher's without gradient).
        labels: ``[B, L]``, -100 at positions that were not masked (left out).
        temperature: T > 0.

    Returns:
        Scalar (0 with the graph kept when nothing is masked).

    Raises:
        KDistillError: shapes that differ (e.g. different vocabularies) or a non-positive temperature.
    """
    if student_logits.shape != teacher_logits.shape or student_logits.dim() != 3:
        raise KDistillError(f"mlm_soft_kl needs equal [B, L, V] logits, got student {tuple(student_logits.shape)} and "
                            f"teacher {tuple(teacher_logits.shape)}: the models must share a vocabulary")
    if temperature <= 0:
        raise KDistillError(f"temperature must be > 0, got {temperature}")
    where = _masked_positions(labels)
    if not bool(where.any()):
        return student_logits.sum() * 0.0
    s = F.log_softmax(student_logits[where].float() / temperature, dim=-1)
    t = F.log_softmax(teacher_logits[where].float() / temperature, dim=-1)
    return F.kl_div(s, t, log_target=True, reduction="batchmean") * temperature ** 2


def mlm_ce(student_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the student's masked-LM logits ``[B, L, V]`` with the original tokens at the masked positions
    (``labels`` ``[B, L]``, -100 elsewhere): BERT's L_mlm, averaged over masked positions."""
    if student_logits.dim() != 3 or tuple(labels.shape) != tuple(student_logits.shape[:2]):
        raise KDistillError(f"mlm_ce needs logits [B, L, V] and labels [B, L]; got {tuple(student_logits.shape)} and "
                            f"{tuple(labels.shape)}")
    if not bool(_masked_positions(labels).any()):
        return student_logits.sum() * 0.0
    return F.cross_entropy(student_logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)


def relations(x: torch.Tensor, num_heads: int, attention_mask: torch.Tensor | None = None,
              other: torch.Tensor | None = None) -> torch.Tensor:
    """Relation log-distributions ``log softmax(X_r·Y_rᵀ/√d_r)`` of ``num_heads`` relation heads (``Y = X`` by default).

    With ``other`` = the keys and ``x`` = the queries this is the attention distribution (MiniLM's L_AT, without a
    position bias); with ``x`` alone, a self-relation (MiniLM's value relation, MiniLMv2's Q-Q / K-K / V-V).

    ``x`` ``[B, L, H]`` (all heads' queries, keys or values concatenated, as a projection outputs them) is split into
    ``num_heads`` slices of ``d_r = H / num_heads`` (MiniLMv2); with ``num_heads`` = the model's attention heads this is
    MiniLM's per-head value relation. Padded keys get ``-inf`` before the softmax.

    Returns:
        ``[B, num_heads, L, L]`` log-probabilities (rows over keys).

    Raises:
        KDistillError: ``H`` not divisible by ``num_heads``, or a mask that is not ``[B, L]``.
    """
    if x.dim() != 3 or num_heads < 1 or x.shape[-1] % num_heads:
        raise KDistillError(f"relations: width {x.shape[-1] if x.dim() == 3 else tuple(x.shape)} must split into "
                            f"{num_heads} relation heads evenly; choose --relation-heads dividing both models' widths")
    b, n, h = x.shape
    d = h // num_heads
    if other is not None and tuple(other.shape) != tuple(x.shape):
        raise KDistillError(f"relations: the two sides differ in shape, {tuple(x.shape)} vs {tuple(other.shape)}")
    xr = x.float().view(b, n, num_heads, d).transpose(1, 2)  # [B, R, L, d]
    yr = xr if other is None else other.float().view(b, n, num_heads, d).transpose(1, 2)
    scores = torch.matmul(xr, yr.transpose(-1, -2)) / math.sqrt(d)
    if attention_mask is not None:
        if tuple(attention_mask.shape) != (b, n):
            raise KDistillError(f"relations: attention_mask {tuple(attention_mask.shape)} is not [B, L] = {(b, n)}")
        scores = scores.masked_fill(~attention_mask.bool()[:, None, None, :], float("-inf"))
    return F.log_softmax(scores, dim=-1)


def relation_kl(student_rel: torch.Tensor, teacher_rel: torch.Tensor, attention_mask: torch.Tensor | None = None
                ) -> torch.Tensor:
    """``mean over relation heads and real query positions of KL(R_t ‖ R_s)`` (MiniLM Eq. 6-8; MiniLMv2 Eq. 4).

    Args:
        student_rel, teacher_rel: ``[B, R, L, L]`` log-distributions from :func:`relations` (same ``R``).
        attention_mask: ``[B, L]``; padded query rows are left out (padded keys are already ``-inf``).

    Raises:
        KDistillError: shapes that differ.
    """
    if student_rel.shape != teacher_rel.shape or student_rel.dim() != 4:
        raise KDistillError(f"relation_kl needs equal [B, R, L, L] relations, got {tuple(student_rel.shape)} and "
                            f"{tuple(teacher_rel.shape)}")
    t = teacher_rel.exp()
    # padded keys are -inf on both sides (probability 0): finite stand-ins keep 0·(-inf) out of values and gradients
    keep = torch.isfinite(teacher_rel) & torch.isfinite(student_rel)
    terms = (t * (teacher_rel.masked_fill(~keep, 0.0) - student_rel.masked_fill(~keep, 0.0))).sum(-1)  # [B, R, L]
    if attention_mask is None:
        return terms.mean()
    rows = attention_mask.bool()[:, None, :].expand_as(terms)
    return terms[rows].mean()


__all__ = ["mlm_ce", "mlm_soft_kl", "relation_kl", "relations"]
