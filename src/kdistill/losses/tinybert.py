"""TinyBERT's layer-wise distillation losses (Jiao et al., Findings of EMNLP 2020, arXiv:1909.10351).

TinyBERT distils four things, each with its own term (Sec. 3.1 of the paper):

* the embedding-layer output, ``MSE(E_S·W_e, E_T)`` (Eq. 9) -> :func:`embedding_loss`;
* each mapped Transformer layer's output, ``MSE(H_S·W_h, H_T)`` (Eq. 8) -> :func:`hidden_state_loss`;
* each mapped layer's *pre-softmax* attention scores, ``1/h Σ_i MSE(A_i^S, A_i^T)`` (Eq. 7)
  -> :func:`attention_score_loss`;
* the prediction layer, soft cross-entropy ``−softmax(z_T/t)·log_softmax(z_S/t)`` (Eq. 10)
  -> :func:`prediction_loss`.

:func:`attention_kl_loss` is MiniLM's alternative attention term (KL between attention
distributions; Wang et al. 2020), useful when the attention *scores* of the two models are
not comparable.

Shapes use ``B`` = batch size, ``L`` = sequence length, ``Hs``/``Ht`` = student/teacher hidden
width, ``hs``/``ht`` = student/teacher attention-head counts, ``C`` = number of classes.
Every function returns a float32 scalar, differentiable with respect to its *student*
arguments (and the projection); teacher tensors are detached here.

Padding (``attention_mask``: ``[B, L]``, 1 = real token, 0 = padding). TinyBERT's reference
code averages every term over all positions, padding included, and for attention replaces the
masked scores (large negatives) by 0 -- zeroed positions still count in the mean and the
padded *query* rows are compared too. Here, when a mask is given, padded positions are
excluded: hidden/embedding terms average over real tokens only, attention terms over
(real query, real key) pairs only. Without a mask every position counts (the reference
behaviour for unpadded batches).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from kdistill.errors import KDistillError

HeadRule = Literal["mean", "group"]


# ----------------------------------------------------------------------------- helpers


def _check_mask(
    mask: torch.Tensor | None, batch: int, length: int, what: str, of: torch.Tensor | None = None
) -> torch.Tensor | None:
    """Return ``mask`` as a ``[B, L]`` bool tensor (or ``None``) after checking its shape.

    ``of`` is the tensor the mask belongs to; its shape is named in the error message.
    """
    if mask is None:
        return None
    if tuple(mask.shape) != (batch, length):
        against = f" of the inputs {tuple(of.shape)}" if of is not None else ""
        raise KDistillError(
            f"{what}: attention_mask shape {tuple(mask.shape)} != (batch, length) = {(batch, length)}{against}; "
            "pass the [B, L] padding mask of the batch"
        )
    return mask.to(torch.bool)


def _projected_mse(
    student: torch.Tensor,
    teacher: torch.Tensor,
    projection: nn.Module | None,
    attention_mask: torch.Tensor | None,
    what: str,
) -> torch.Tensor:
    if student.dim() != 3 or teacher.dim() != 3:
        raise KDistillError(
            f"{what}: expects [B, L, H] tensors, got student {tuple(student.shape)} and teacher {tuple(teacher.shape)}"
        )
    if student.shape[:2] != teacher.shape[:2]:
        raise KDistillError(
            f"{what}: student (batch, length) {tuple(student.shape[:2])} != teacher {tuple(teacher.shape[:2])}; "
            "run both models on the same batch"
        )
    in_features = getattr(projection, "in_features", None)
    if in_features is not None and in_features != student.shape[-1]:
        raise KDistillError(
            f"{what}: projection expects width {in_features} but the student hidden states are {tuple(student.shape)} "
            f"(teacher {tuple(teacher.shape)}); the projection must map width {student.shape[-1]} to {teacher.shape[-1]}"
        )
    mask = _check_mask(attention_mask, teacher.shape[0], teacher.shape[1], what, teacher)
    projected = projection(student) if projection is not None else student
    if projected.shape != teacher.shape:
        width_s, width_t = student.shape[-1], teacher.shape[-1]
        fix = (
            f"pass projection=nn.Linear({width_s}, {width_t})"
            if projection is None
            else f"the projection must map width {width_s} to {width_t}"
        )
        raise KDistillError(
            f"{what}: student width {projected.shape[-1]} (after projection; student {tuple(student.shape)}) != "
            f"teacher width {width_t} (teacher {tuple(teacher.shape)}); {fix}"
        )
    diff = projected.float() - teacher.detach().float()
    if mask is None:
        return diff.pow(2).mean()
    diff = torch.where(mask.unsqueeze(-1), diff, torch.zeros((), dtype=diff.dtype, device=diff.device))
    n_real = mask.sum().clamp_min(1).to(diff.dtype)
    return diff.pow(2).sum() / (n_real * teacher.shape[-1])


def _check_attention_pair(student: torch.Tensor, teacher: torch.Tensor, what: str) -> None:
    if student.dim() != 4 or teacher.dim() != 4:
        raise KDistillError(
            f"{what}: expects [B, heads, L, L] tensors, got student {tuple(student.shape)} and teacher {tuple(teacher.shape)}"
        )
    if student.shape[0] != teacher.shape[0] or student.shape[2:] != teacher.shape[2:]:
        raise KDistillError(
            f"{what}: student (batch, L, L) {(student.shape[0], *student.shape[2:])} != teacher "
            f"{(teacher.shape[0], *teacher.shape[2:])}; run both models on the same batch"
        )
    if student.shape[2] != student.shape[3]:
        raise KDistillError(
            f"{what}: attention maps must be square [L, L], got student {tuple(student.shape)} and teacher "
            f"{tuple(teacher.shape)}"
        )


def align_heads(
    student: torch.Tensor, teacher: torch.Tensor, head_rule: HeadRule = "group"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bring student ``[B, hs, L, L]`` and teacher ``[B, ht, L, L]`` attention maps to a common head count.

    Rules:

    * ``hs == ht``: unchanged (head ``i`` is compared with head ``i``, TinyBERT Eq. 7).
    * ``head_rule="group"`` and one count divides the other: the larger side's heads are split
      into consecutive groups (e.g. teacher heads 0-2, 3-5, 6-8, 9-11 for 12 → 4) and averaged
      within each group, giving ``min(hs, ht)`` heads on both sides.
    * otherwise (``head_rule="mean"``, or counts that do not divide, e.g. 6 vs 4): both sides
      are averaged over all heads, giving one map per side (``[B, 1, L, L]``).

    Averaging the maps is linear, so it applies equally to scores and to probabilities (an
    average of distributions is a distribution).

    Raises:
        KDistillError: unknown ``head_rule``.
    """
    if head_rule not in ("mean", "group"):
        raise KDistillError(f"head_rule must be 'mean' or 'group', got {head_rule!r}")
    hs, ht = student.shape[1], teacher.shape[1]
    if hs == ht:
        return student, teacher
    if head_rule == "group" and max(hs, ht) % min(hs, ht) == 0:
        b, _, lq, lk = teacher.shape
        if ht > hs:
            return student, teacher.reshape(b, hs, ht // hs, lq, lk).mean(dim=2)
        return student.reshape(b, ht, hs // ht, lq, lk).mean(dim=2), teacher
    return student.mean(dim=1, keepdim=True), teacher.mean(dim=1, keepdim=True)


# ----------------------------------------------------------------------------- losses


def embedding_loss(
    student_emb: torch.Tensor,
    teacher_emb: torch.Tensor,
    projection: nn.Module | None = None,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """TinyBERT embedding-layer loss ``MSE(E_S·W_e, E_T)`` (Jiao et al. 2020, Eq. 9).

    Args:
        student_emb: ``[B, L, Hs]`` student embedding-layer output (``hidden_states[0]``).
        teacher_emb: ``[B, L, Ht]`` teacher embedding-layer output (no gradient flows into it).
        projection: learnable ``W_e`` mapping width ``Hs`` to ``Ht`` (e.g. ``nn.Linear(Hs, Ht)``,
            trained with the student); ``None`` when ``Hs == Ht``.
        attention_mask: ``[B, L]``, 1 = real token, 0 = padding; when given, the mean runs over
            real tokens only; ``None`` = all positions (TinyBERT's reference code).

    Returns:
        Scalar: squared error averaged over (real) positions and the ``Ht`` features.

    Raises:
        KDistillError: non-3D input, batch/length differ, the projection's input width (``in_features``)
            is not ``Hs``, the (projected) widths differ, or the mask is not ``[B, L]``; the message names
            both shapes.
    """
    return _projected_mse(student_emb, teacher_emb, projection, attention_mask, "embedding_loss")


def hidden_state_loss(
    student_hidden: torch.Tensor,
    teacher_hidden: torch.Tensor,
    projection: nn.Module | None = None,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """TinyBERT hidden-state loss ``MSE(H_S·W_h, H_T)`` for one mapped layer pair (Jiao et al. 2020, Eq. 8).

    Args:
        student_hidden: ``[B, L, Hs]`` output of student layer ``m`` (``hidden_states[m]``).
        teacher_hidden: ``[B, L, Ht]`` output of teacher layer ``g(m)`` (no gradient flows into it).
        projection: learnable ``W_h`` mapping ``Hs`` to ``Ht``; ``None`` when the widths are equal.
        attention_mask: ``[B, L]``, 1 = real token, 0 = padding. When given, padded positions are
            excluded and the mean runs over real tokens × ``Ht`` features: padding carries no
            information and its hidden states would otherwise be fitted too (the reference code
            averages over all positions, padding included). ``None`` = all positions.

    Returns:
        Scalar mean squared error.

    Raises:
        KDistillError: non-3D input, batch/length differ, the projection's input width (``in_features``)
            is not ``Hs``, the (projected) widths differ, or the mask is not ``[B, L]``; the message names
            both shapes.
    """
    return _projected_mse(student_hidden, teacher_hidden, projection, attention_mask, "hidden_state_loss")


def attention_score_loss(
    student_scores: torch.Tensor,
    teacher_scores: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    head_rule: HeadRule = "group",
) -> torch.Tensor:
    """TinyBERT attention loss on *pre-softmax* scores ``1/h Σ_i MSE(A_i^S, A_i^T)`` (Jiao et al. 2020, Eq. 7).

    ``A = Q·Kᵀ/√d`` before the softmax and before the padding mask is added, as recorded by
    :func:`kdistill.students.capture.capture_attention` (``rec.scores``).

    Args:
        student_scores: ``[B, hs, L, L]`` scores of student layer ``m``.
        teacher_scores: ``[B, ht, L, L]`` scores of teacher layer ``g(m)`` (no gradient flows into them).
        attention_mask: ``[B, L]``, 1 = real token, 0 = padding. When given, only (query, key) pairs
            with both positions real enter the mean. The reference code instead replaces masked
            scores (≈ −1e4 or −inf after the mask is added) by 0; those zeros are arbitrary
            stand-ins that still count as positions (diluting the loss by the padding fraction)
            and padded query rows are still compared. Masked entries are selected out before any
            arithmetic, so scores that already include a ``finfo.min``/``-inf`` mask give finite
            losses and gradients as well. ``None`` = every pair counts (then pass raw, unmasked scores).
        head_rule: how to compare different head counts, see :func:`align_heads`: ``"group"``
            (default) averages consecutive groups of the larger side's heads when one count
            divides the other (12 vs 4 → 4 groups of 3), else falls back to ``"mean"``; ``"mean"``
            averages all heads on both sides. Equal counts are always compared head by head.

    Returns:
        Scalar: squared error averaged over the aligned heads and the real (query, key) pairs.

    Raises:
        KDistillError: non-4D input, different batch/length, non-square maps, a mask that is not
            ``[B, L]``, or an unknown ``head_rule``; the message names both shapes.
    """
    _check_attention_pair(student_scores, teacher_scores, "attention_score_loss")
    s, t = student_scores.float(), teacher_scores.detach().float()
    b, _, length, _ = s.shape
    mask = _check_mask(attention_mask, b, length, "attention_score_loss", student_scores)
    if mask is None:
        s, t = align_heads(s, t, head_rule)
        return (s - t).pow(2).mean()
    pair = (mask.unsqueeze(-1) & mask.unsqueeze(-2)).unsqueeze(1)  # [B, 1, L, L]
    zero = torch.zeros((), dtype=s.dtype, device=s.device)
    s, t = torch.where(pair, s, zero), torch.where(pair, t, zero)  # drop masked values before averaging heads
    s, t = align_heads(s, t, head_rule)
    n_pairs = pair.sum().clamp_min(1).to(s.dtype)
    return (s - t).pow(2).sum() / (n_pairs * s.shape[1])


def attention_kl_loss(
    student_probs: torch.Tensor,
    teacher_probs: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    head_rule: HeadRule = "group",
    eps: float = 1e-12,
) -> torch.Tensor:
    """MiniLM attention-distribution loss ``1/(h·|x|) Σ_a Σ_t KL(A^T_{a,t} ‖ A^S_{a,t})`` (Wang et al. 2020, Sec. 3.1, L_AT).

    Each query row of an attention map is a distribution over keys; the KL of the teacher's row
    from the student's is summed over keys, then averaged over heads and real query positions.

    Args:
        student_probs: ``[B, hs, L, L]`` post-softmax attention of student layer ``m`` (rows sum to 1;
            ``rec.probs`` of :func:`kdistill.students.capture.capture_attention`).
        teacher_probs: ``[B, ht, L, L]`` post-softmax attention of teacher layer ``g(m)`` (no gradient).
        attention_mask: ``[B, L]``, 1 = real token, 0 = padding. Padded query rows are left out of
            the mean and padded keys out of the sum (their probability is ~0 anyway when the maps
            come from the masked softmax). ``None`` = all positions.
        head_rule: see :func:`align_heads`; group/mean averaging is applied to the probabilities,
            which keeps every row a distribution.
        eps: floor for the probabilities inside the logarithms (``0·log 0`` counts as 0).

    Returns:
        Scalar KL in nats (≥ 0 up to rounding).

    Raises:
        KDistillError: non-4D input, different batch/length, non-square maps, a mask that is not
            ``[B, L]``, or an unknown ``head_rule``; the message names both shapes.
    """
    _check_attention_pair(student_probs, teacher_probs, "attention_kl_loss")
    p_s, p_t = align_heads(student_probs.float(), teacher_probs.detach().float(), head_rule)
    b, heads, length, _ = p_s.shape
    mask = _check_mask(attention_mask, b, length, "attention_kl_loss", student_probs)
    kl = p_t * (torch.log(p_t.clamp_min(eps)) - torch.log(p_s.clamp_min(eps)))  # [B, h, L, L]
    if mask is None:
        return kl.sum(dim=-1).mean()
    kl = torch.where(mask[:, None, None, :], kl, torch.zeros((), dtype=kl.dtype, device=kl.device))
    per_row = kl.sum(dim=-1)  # [B, h, L]
    per_row = torch.where(mask[:, None, :], per_row, torch.zeros((), dtype=kl.dtype, device=kl.device))
    n_rows = mask.sum().clamp_min(1).to(kl.dtype)
    return per_row.sum() / (n_rows * heads)


def prediction_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """TinyBERT prediction-layer loss: soft cross-entropy ``−Σ_c softmax(z_T/t)_c · log_softmax(z_S/t)_c`` (Jiao et al. 2020, Eq. 10).

    Unlike :func:`kdistill.losses.kd.soft_target_kl` there is no ``T²`` factor and the teacher's
    entropy is not subtracted (so the value is not 0 at a perfect match); the gradients equal
    those of the KL divided by ``T²``. TinyBERT uses ``t = 1``. A class with teacher probability 0
    (logit ``-inf``) contributes 0 (``0 · log 0 = 0``), also where the student's logit is ``-inf``;
    a student ``-inf`` where the teacher's probability is > 0 gives ``+inf``.

    Args:
        student_logits: ``[B, C]`` student logits ``z_S``.
        teacher_logits: ``[B, C]`` teacher logits ``z_T`` (no gradient flows into them).
        temperature: ``t > 0``.

    Returns:
        Scalar: cross-entropy in nats summed over classes, averaged over the batch (the reference
        code averages over batch × classes, i.e. divides this by ``C``).

    Raises:
        KDistillError: shapes differ or are not ``[B, C]`` (both named), or ``temperature`` is not finite and > 0.
    """
    t = float(temperature)
    if not (t > 0 and math.isfinite(t)):
        raise KDistillError(f"temperature must be > 0 and finite, got {temperature}")
    if student_logits.shape != teacher_logits.shape or student_logits.dim() != 2:
        raise KDistillError(
            f"prediction_loss: student logits {tuple(student_logits.shape)} vs teacher {tuple(teacher_logits.shape)}; "
            "both must be [B, C] over the same label set"
        )
    p_t = F.softmax(teacher_logits.detach().float() / t, dim=-1)
    log_p_s = F.log_softmax(student_logits.float() / t, dim=-1)
    # 0 · log 0 = 0: a class with teacher probability 0 adds nothing, even where the student's logit is -inf
    # (bit-identical to -(p_t * log_p_s) wherever p_t > 0).
    terms = torch.where(p_t == 0, torch.zeros((), dtype=p_t.dtype, device=p_t.device), p_t * log_p_s)
    return -terms.sum(dim=-1).mean()


__all__ = [
    "align_heads",
    "attention_kl_loss",
    "attention_score_loss",
    "embedding_loss",
    "hidden_state_loss",
    "prediction_loss",
]
