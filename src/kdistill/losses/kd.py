"""Knowledge-distillation loss terms: small, pure functions of tensors.

Shapes use ``B`` = batch size, ``C`` = number of classes, ``L`` = sequence length,
``H`` = hidden size. Every function returns a scalar tensor (mean over the batch)
and is differentiable with respect to its *student* argument; teacher tensors are
treated as constants (callers pass them detached / computed under ``no_grad``).

Precision: inputs are computed in float32 (half / bfloat16 are upcast); when any input is
float64 the loss is computed and returned in float64 (finite-difference checks, e.g. of
:mod:`kdistill.compress.importance`).

Every shape problem raises :class:`~kdistill.errors.KDistillError` with a one-line message
naming both shapes, instead of broadcasting silently or failing inside torch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from kdistill.errors import KDistillError


def _compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """float64 if any input is float64, else float32 (lower precisions are upcast)."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def _check_same_shape(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    if a.shape != b.shape:
        raise KDistillError(
            f"{what}: student shape {tuple(a.shape)} != teacher shape {tuple(b.shape)}; "
            "teacher and student must predict the same label set"
        )


def _check_temperature(temperature: float) -> float:
    t = float(temperature)
    if not (t > 0 and math.isfinite(t)):
        raise KDistillError(f"temperature must be > 0 and finite, got {temperature}")
    return t


def soft_target_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Hinton et al. (2015) soft-target loss: ``T² · KL(softmax(z_t/T) ‖ softmax(z_s/T))``.

    ``KL = 1/B · Σ_b Σ_c p_t · (log p_t − log p_s)`` with ``p = softmax(z/T)`` (Hinton et al. 2015,
    Sec. 2); a class the teacher gives probability 0 (logit ``-inf``, e.g. a masked label)
    contributes 0 (``0 · log 0 = 0``), so the value and the student gradient stay finite and
    equal the KL over the remaining classes. A student logit ``-inf`` on a class where the
    teacher's probability is > 0 gives ``+inf`` (the KL is infinite there). A teacher row with
    no finite logit, or a ``+inf``/NaN logit, is not a distribution and gives NaN.

    Args:
        student_logits: ``[B, C]`` student logits ``z_s``.
        teacher_logits: ``[B, C]`` teacher logits ``z_t`` (no gradient flows into them).
        temperature: ``T > 0``. The ``T²`` factor keeps the gradient magnitude
            independent of ``T`` (Hinton et al. 2015, Sec. 2).

    Returns:
        Scalar: KL summed over classes, averaged over the batch, times ``T²``
        (float32, or float64 for float64 inputs). It differs from the soft cross-entropy
        ``-Σ p_t log p_s`` only by the teacher's entropy, a constant, so the gradients are identical.

    Raises:
        KDistillError: if either input is not 2-D ``[B, C]``, the shapes differ, or ``temperature``
            is not a finite number > 0.
    """
    t = _check_temperature(temperature)
    if student_logits.dim() != 2 or teacher_logits.dim() != 2:
        raise KDistillError(
            f"soft_target_kl: expects [B, C] logits, got student {tuple(student_logits.shape)} and teacher "
            f"{tuple(teacher_logits.shape)}; flatten token-level logits to [B*L, C] first"
        )
    _check_same_shape(student_logits, teacher_logits, "soft_target_kl")
    dtype = _compute_dtype(student_logits, teacher_logits)
    log_p_s = F.log_softmax(student_logits.to(dtype) / t, dim=-1)
    log_p_t = F.log_softmax(teacher_logits.detach().to(dtype) / t, dim=-1)
    p_t = log_p_t.exp()
    # Elementwise exactly what F.kl_div(log_p_s, log_p_t, log_target=True) computes, exp(log_p_t) *
    # (log_p_t - log_p_s), summed and divided by B as reduction="batchmean" does -- so values and
    # gradients for finite logits are bit-identical -- except that p_t == 0 terms are 0 instead of
    # 0 * inf = NaN. No host sync: the mask is applied unconditionally.
    terms = torch.where(p_t == 0, torch.zeros((), dtype=dtype, device=p_t.device), p_t * (log_p_t - log_p_s))
    kl = terms.sum() / log_p_s.size(0)
    return kl * (t * t)


def logit_mse(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Tang et al. (2019) distillation loss: ``‖z_t − z_s‖²`` averaged over batch and classes.

    Args:
        student_logits: ``[B, C]`` (or ``[B]`` for regression).
        teacher_logits: same shape, no gradient.

    Returns:
        Scalar mean squared error over all elements (Tang et al. 2019, Eq. 2, mean-reduced).

    Raises:
        KDistillError: if the shapes differ.
    """
    _check_same_shape(student_logits, teacher_logits, "logit_mse")
    dtype = _compute_dtype(student_logits, teacher_logits)
    return F.mse_loss(student_logits.to(dtype), teacher_logits.detach().to(dtype))


def hard_label_ce(student_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with the gold labels (the "hard" term of Hinton et al. 2015), mean over the batch.

    Args:
        student_logits: ``[B, C]``.
        labels: ``[B]`` integer class ids in ``[0, C)`` (cast to int64).

    Raises:
        KDistillError: if the logits are not ``[B, C]``, the labels not ``[B]``, or the batch sizes differ.
    """
    if student_logits.dim() != 2 or labels.dim() != 1 or student_logits.shape[0] != labels.shape[0]:
        raise KDistillError(
            f"hard_label_ce: logits shape {tuple(student_logits.shape)} and labels shape {tuple(labels.shape)} "
            "do not fit; pass [B, C] logits and [B] class ids"
        )
    return F.cross_entropy(student_logits.to(_compute_dtype(student_logits)), labels.long())


def _is_score_vector(x: torch.Tensor) -> bool:
    return x.dim() == 1 or (x.dim() == 2 and x.shape[1] == 1)


def regression_mse(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error for regression heads (e.g. STS-B), mean over the batch.

    Args:
        predictions: ``[B]`` or ``[B, 1]`` predicted scores.
        targets: ``[B]`` or ``[B, 1]`` gold or teacher scores (no gradient); the two may differ in
            which of the two layouts they use, not in ``B``.

    Raises:
        KDistillError: if either is not ``[B]`` / ``[B, 1]`` or their batch sizes differ.
    """
    if not (_is_score_vector(predictions) and _is_score_vector(targets)) or predictions.shape[0] != targets.shape[0]:
        raise KDistillError(
            f"regression_mse: predictions shape {tuple(predictions.shape)} and targets shape {tuple(targets.shape)} "
            "do not fit; pass [B] or [B, 1] scores for the same B"
        )
    dtype = _compute_dtype(predictions, targets)
    return F.mse_loss(predictions.to(dtype).reshape(-1), targets.detach().to(dtype).reshape(-1))


def hidden_cosine(
    student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, attention_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """DistilBERT's cosine-embedding loss L_cos (Sanh et al. 2019, Sec. 3): mean of ``1 − cos(h_s, h_t)``.

    Aligns the directions of student and teacher hidden-state vectors token by token,
    over non-padded tokens only.

    Args:
        student_hidden: ``[B, L, H]``.
        teacher_hidden: ``[B, L, H]`` (same width: this loss has no projection).
        attention_mask: ``[B, L]`` with 1 for real tokens, 0 for padding; ``None`` = all real.

    Returns:
        Scalar in ``[0, 2]``: mean over all tokens, or over the real tokens when a mask is given.

    Raises:
        KDistillError: if the hidden states are not ``[B, L, H]``, their shapes differ (e.g. the widths:
            use a projection-based loss, e.g. TinyBERT's, instead), or the mask is not exactly ``[B, L]``.
    """
    if student_hidden.shape != teacher_hidden.shape or student_hidden.dim() != 3:
        raise KDistillError(
            f"hidden_cosine needs equal [B, L, H] hidden shapes, got student {tuple(student_hidden.shape)} vs teacher "
            f"{tuple(teacher_hidden.shape)}; set --cos-weight 0 for students narrower than the teacher"
        )
    if attention_mask is not None and tuple(attention_mask.shape) != tuple(student_hidden.shape[:2]):
        raise KDistillError(
            f"hidden_cosine: attention_mask shape {tuple(attention_mask.shape)} does not match hidden states "
            f"{tuple(student_hidden.shape)}; pass a [B, L] mask"
        )
    dtype = _compute_dtype(student_hidden, teacher_hidden)
    cos = F.cosine_similarity(student_hidden.to(dtype), teacher_hidden.detach().to(dtype), dim=-1)  # [B, L]
    if attention_mask is None:
        return (1.0 - cos).mean()
    mask = attention_mask.to(cos.dtype)
    return ((1.0 - cos) * mask).sum() / mask.sum().clamp_min(1.0)


def multilabel_soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Multi-label soft targets: ``T² · mean_b Σ_c KL(Bern(σ(z_t/T)) ‖ Bern(σ(z_s/T)))``.

    Hinton et al.'s (2015) soft targets with one independent sigmoid per label instead of a softmax over
    classes: each label is a binary distribution, KL summed over labels and averaged over the batch, times
    ``T²`` (which keeps the gradient scale independent of ``T``, as in the softmax case).

    Args:
        student_logits: ``[B, C]``, one logit per label.
        teacher_logits: ``[B, C]`` (no gradient flows into them).
        temperature: ``T > 0``.

    Raises:
        KDistillError: shapes not both ``[B, C]`` and equal, or a temperature that is not finite and positive.
    """
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise KDistillError(f"temperature must be a finite number > 0, got {temperature}")
    if student_logits.ndim != 2 or student_logits.shape != teacher_logits.shape:
        raise KDistillError(f"multilabel_soft_kl: expects equal [B, C] logits, got student {tuple(student_logits.shape)} "
                            f"and teacher {tuple(teacher_logits.shape)}")
    t = float(temperature)
    zs, zt = student_logits.float() / t, teacher_logits.detach().float() / t
    p_t = torch.sigmoid(zt)
    # log σ(z) = -softplus(-z), log(1 - σ(z)) = -softplus(z): stable for large |z|
    kl = (p_t * (F.softplus(-zs) - F.softplus(-zt)) + (1 - p_t) * (F.softplus(zs) - F.softplus(zt)))
    return kl.sum(dim=-1).mean() * (t * t)


def multilabel_bce(student_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Gold-label loss of multi-label classification: binary cross-entropy per label, mean over labels and batch.

    Args:
        student_logits: ``[B, C]``.
        targets: ``[B, C]`` multi-hot (0/1) floats.

    Raises:
        KDistillError: shapes not equal ``[B, C]``.
    """
    if student_logits.ndim != 2 or student_logits.shape != targets.shape:
        raise KDistillError(f"multilabel_bce: expects equal [B, C] logits and targets, got {tuple(student_logits.shape)} "
                            f"and {tuple(targets.shape)}")
    return F.binary_cross_entropy_with_logits(student_logits.float(), targets.float())
