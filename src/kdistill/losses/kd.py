"""Knowledge-distillation loss terms: small, pure functions of tensors.

Shapes use ``B`` = batch size, ``C`` = number of classes, ``L`` = sequence length,
``H`` = hidden size. Every function returns a scalar tensor (mean over the batch)
and is differentiable with respect to its *student* argument; teacher tensors are
treated as constants (callers pass them detached / computed under ``no_grad``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kdistill.errors import KDistillError


def _check_same_shape(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    if a.shape != b.shape:
        raise KDistillError(
            f"{what}: student shape {tuple(a.shape)} != teacher shape {tuple(b.shape)}; "
            "teacher and student must predict the same label set"
        )


def soft_target_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Hinton et al. (2015) soft-target loss: ``T² · KL(softmax(z_t/T) ‖ softmax(z_s/T))``.

    Args:
        student_logits: ``[B, C]`` student logits ``z_s``.
        teacher_logits: ``[B, C]`` teacher logits ``z_t`` (no gradient flows into them).
        temperature: ``T > 0``. The ``T²`` factor keeps the gradient magnitude
            independent of ``T`` (Hinton et al. 2015, Sec. 2).

    Returns:
        Scalar: KL summed over classes, averaged over the batch, times ``T²``.
        It differs from the soft cross-entropy ``-Σ p_t log p_s`` only by the teacher's
        entropy, a constant, so the gradients are identical.

    Raises:
        KDistillError: if shapes differ or ``temperature <= 0``.
    """
    if temperature <= 0:
        raise KDistillError(f"temperature must be > 0, got {temperature}")
    _check_same_shape(student_logits, teacher_logits, "soft_target_kl")
    t = float(temperature)
    log_p_s = F.log_softmax(student_logits.float() / t, dim=-1)
    log_p_t = F.log_softmax(teacher_logits.detach().float() / t, dim=-1)
    kl = F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True)
    return kl * (t * t)


def logit_mse(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Tang et al. (2019) distillation loss: ``‖z_t − z_s‖²`` averaged over batch and classes.

    Args:
        student_logits: ``[B, C]`` (or ``[B]`` for regression).
        teacher_logits: same shape, no gradient.

    Returns:
        Scalar mean squared error over all elements (Tang et al. 2019, Eq. 2, mean-reduced).
    """
    _check_same_shape(student_logits, teacher_logits, "logit_mse")
    return F.mse_loss(student_logits.float(), teacher_logits.detach().float())


def hard_label_ce(student_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with the gold labels (the "hard" term of Hinton et al. 2015).

    Args:
        student_logits: ``[B, C]``.
        labels: ``[B]`` integer class ids in ``[0, C)``.
    """
    return F.cross_entropy(student_logits.float(), labels.long())


def regression_mse(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error for regression heads (e.g. STS-B).

    Args:
        predictions: ``[B]`` or ``[B, 1]`` predicted scores.
        targets: ``[B]`` or ``[B, 1]`` gold or teacher scores (no gradient).
    """
    return F.mse_loss(predictions.float().reshape(-1), targets.detach().float().reshape(-1))


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
        Scalar in ``[0, 2]``.

    Raises:
        KDistillError: if the widths differ (use a projection-based loss, e.g. TinyBERT's, instead).
    """
    if student_hidden.shape != teacher_hidden.shape:
        raise KDistillError(
            f"hidden_cosine needs equal hidden shapes, got student {tuple(student_hidden.shape)} vs teacher "
            f"{tuple(teacher_hidden.shape)}; set --cos-weight 0 for students narrower than the teacher"
        )
    cos = F.cosine_similarity(student_hidden.float(), teacher_hidden.detach().float(), dim=-1)  # [B, L]
    if attention_mask is None:
        return (1.0 - cos).mean()
    mask = attention_mask.to(cos.dtype)
    return ((1.0 - cos) * mask).sum() / mask.sum().clamp_min(1.0)
