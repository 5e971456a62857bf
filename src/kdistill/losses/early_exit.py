"""Losses of early-exit self-distillation: small, pure functions of tensors.

Shapes: ``B`` = batch size, ``C`` = number of classes. Every loss returns a scalar (mean over the batch) and is
differentiable with respect to the *exit* logits only: the final layer's logits are the teacher here and are always
detached inside (self-distillation never pushes the final classifier towards its own shallow exits).

Sources: FastBERT (Liu et al. 2020, Eq. 6–7: each student classifier learns ``KL`` to the teacher classifier, the
backbone frozen); DeeBERT (Xin et al. 2020) and PABEE (Zhou et al. 2020, Eq. 5: a depth-weighted average of the
per-exit losses when exits and backbone train jointly).
"""

from __future__ import annotations

from typing import Sequence

import torch

from kdistill.errors import KDistillError
from kdistill.losses.kd import hard_label_ce, soft_target_kl

WEIGHTINGS = ("uniform", "depth")


def exit_distillation_loss(exit_logits: torch.Tensor, final_logits: torch.Tensor, temperature: float = 1.0, *,
                           labels: torch.Tensor | None = None, gold_weight: float = 0.0) -> torch.Tensor:
    """One exit's self-distillation loss: ``(1 − β)·T²·KL(softmax(z_L/T) ‖ softmax(z_k/T)) + β·CE(z_k, y)``.

    ``z_L`` is the final layer's logits, **detached** (FastBERT, Liu et al. 2020, Eq. 6: the teacher classifier's
    distribution is the target of every student classifier); ``z_k`` the exit's; ``β`` = ``gold_weight``. The KL part
    is :func:`kdistill.losses.kd.soft_target_kl` (Hinton et al. 2015, with the ``T²`` factor).

    Args:
        exit_logits: ``[B, C]`` logits of the exit classifier (with graph).
        final_logits: ``[B, C]`` logits of the final layer's classifier (detached here).
        temperature: ``T > 0``.
        labels: ``[B]`` gold class ids (``-1`` = none: left out of the CE); needed when ``gold_weight > 0``.
        gold_weight: ``β`` in ``[0, 1]``.

    Returns:
        Scalar loss (float32; float64 for float64 inputs).

    Raises:
        KDistillError: ``gold_weight`` outside ``[0, 1]``, ``gold_weight > 0`` without ``labels``, or the shape errors
            of :func:`~kdistill.losses.kd.soft_target_kl`.
    """
    beta = float(gold_weight)
    if not 0.0 <= beta <= 1.0:
        raise KDistillError(f"exit gold weight must be in [0, 1], got {gold_weight}")
    loss = exit_logits.sum() * 0.0
    if beta < 1.0:
        loss = loss + (1.0 - beta) * soft_target_kl(exit_logits, final_logits.detach(), temperature)
    if beta > 0.0:
        if labels is None:
            raise KDistillError("an exit gold weight > 0 needs the gold labels of the batch")
        has = labels >= 0
        if bool(has.any()):
            loss = loss + beta * hard_label_ce(exit_logits[has], labels[has])
    return loss


def exit_weights(layers: Sequence[int], scheme: str = "uniform") -> list[float]:
    """Weights of the exits in the joint loss, summing to 1.

    ``uniform``: ``1/K`` each; ``depth``: ``w_k = k / Σ_j j`` for an exit after layer ``k`` (PABEE, Zhou et al. 2020,
    Eq. 5; DeeBERT weights its off-ramps alike), so deeper exits, which can be more accurate, weigh more.

    Args:
        layers: 1-based layer index of each exit (``K`` of them).
        scheme: ``uniform`` or ``depth``.

    Raises:
        KDistillError: no exits, a layer below 1, or an unknown scheme.
    """
    layers = [int(k) for k in layers]
    if not layers or min(layers) < 1:
        raise KDistillError(f"exit weights need exit layers >= 1, got {layers}")
    if scheme == "uniform":
        return [1.0 / len(layers)] * len(layers)
    if scheme == "depth":
        total = float(sum(layers))
        return [k / total for k in layers]
    raise KDistillError(f"unknown exit weighting '{scheme}'; choose one of {', '.join(WEIGHTINGS)}")


__all__ = ["WEIGHTINGS", "exit_distillation_loss", "exit_weights"]
