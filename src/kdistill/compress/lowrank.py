"""Low-rank factorisation of dense layers by truncated SVD.

A linear map ``y = W x + b`` with ``W`` ``[out, in]`` is replaced by two:
``W ≈ B A`` with ``A = diag(√s_r) V_rᵀ`` ``[r, in]`` and ``B = U_r diag(√s_r)`` ``[out, r]``
(``W = U diag(s) Vᵀ``, the best rank-``r`` approximation in Frobenius norm — Eckart & Young 1936),
i.e. ``Linear(in, out)`` → ``Sequential(Linear(in, r, bias=False), Linear(r, out))``, which has
fewer parameters when ``r·(in + out) < in·out`` (plus the bias). The rank is given, or the
smallest keeping a fraction ``energy`` of ``Σ s²``. Accuracy lost to truncation is recovered by
distillation afterwards.

The factorised model is a ``kdistill-compressed-*`` model whose config lists the factorised paths
and ranks (``kdistill_lowrank``), so it round-trips through ``save_pretrained`` /
``AutoModelForSequenceClassification.from_pretrained`` after ``import kdistill.compress``.
"""

from __future__ import annotations

import re

import torch
from torch import nn
from transformers import PreTrainedModel

from kdistill.compress.modeling import LOWRANK_KEY, compressed_config, layers_path, rebuild
from kdistill.errors import KDistillError, ModelError


def rank_for_energy(singular_values: torch.Tensor, energy: float) -> int:
    """Smallest ``r`` with ``Σ_{i<r} s_i² ≥ energy · Σ s_i²``.

    Args:
        singular_values: ``[k]`` in decreasing order.
        energy: fraction in ``(0, 1]``.

    Raises:
        KDistillError: ``energy`` outside ``(0, 1]``.
    """
    if not 0 < energy <= 1:
        raise KDistillError(f"energy must be a fraction in (0, 1], got {energy}")
    power = singular_values.double().pow(2)
    cumulative = torch.cumsum(power, 0) / power.sum().clamp_min(1e-300)
    return int(min(int(torch.searchsorted(cumulative, torch.tensor(energy - 1e-12, dtype=torch.float64))) + 1, len(power)))


def saves_parameters(in_features: int, out_features: int, rank: int) -> bool:
    """True when ``Linear(in, r) + Linear(r, out)`` has fewer weights than ``Linear(in, out)``: ``r·(in+out) < in·out``."""
    return rank * (in_features + out_features) < in_features * out_features


def factorize_linear(linear: nn.Linear, *, rank: int | None = None, energy: float | None = None,
                     only_if_smaller: bool = True) -> nn.Module:
    """Truncated-SVD factorisation of one ``nn.Linear`` (Eckart–Young).

    Args:
        linear: ``Linear(in, out)``; weight ``[out, in]``.
        rank: target rank ``1 ≤ r ≤ min(in, out)`` (exactly one of ``rank`` / ``energy``).
        energy: keep this fraction of ``Σ s²`` (see :func:`rank_for_energy`).
        only_if_smaller: return ``linear`` itself when the factorisation would not save parameters.

    Returns:
        ``Sequential(Linear(in, r, bias=False), Linear(r, out))`` (same dtype/device, the bias on the
        second factor), or ``linear`` unchanged.

    Raises:
        KDistillError: neither or both of ``rank`` / ``energy``, or a rank out of range.
    """
    if (rank is None) == (energy is None):
        raise KDistillError("pass exactly one of rank=<int> or energy=<fraction of squared singular values>")
    w = linear.weight.detach()
    u, s, vh = torch.linalg.svd(w.double(), full_matrices=False)  # [out,k], [k], [k,in]
    r = rank if rank is not None else rank_for_energy(s, energy)
    if not 1 <= r <= len(s):
        raise KDistillError(f"rank must be in 1..{len(s)} for a {linear.in_features}->{linear.out_features} layer, got {r}")
    if only_if_smaller and not saves_parameters(linear.in_features, linear.out_features, r):
        return linear
    root = s[:r].sqrt()
    first = nn.Linear(linear.in_features, r, bias=False, device=w.device, dtype=w.dtype)
    second = nn.Linear(r, linear.out_features, bias=linear.bias is not None, device=w.device, dtype=w.dtype)
    with torch.no_grad():
        first.weight.copy_((root[:, None] * vh[:r]).to(w.dtype))
        second.weight.copy_((u[:, :r] * root[None, :]).to(w.dtype))
        if linear.bias is not None:
            second.bias.copy_(linear.bias.detach())
    return nn.Sequential(first, second)


DEFAULT_TARGETS = r"(attention\.(self\.(query|key|value)|output\.dense|q_lin|k_lin|v_lin|out_lin)|intermediate\.dense|output\.dense|ffn\.lin[12])$"
"""Default targets: every dense projection inside the encoder layers (not embeddings, pooler or classifier)."""


def target_linears(model: PreTrainedModel, pattern: str = DEFAULT_TARGETS) -> list[str]:
    """Paths of the ``nn.Linear`` modules inside the encoder layers whose path (relative to the layer) matches ``pattern`` (``re.search``)."""
    prefix = layers_path(model) + "."
    layer_re = re.compile(re.escape(prefix) + r"\d+\.(.*)")
    found = []
    for name, module in model.named_modules():
        m = layer_re.fullmatch(name)
        if m and isinstance(module, nn.Linear) and re.search(pattern, m.group(1)):
            found.append(name)
    return found


def factorize(model: PreTrainedModel, *, rank: int | None = None, energy: float | None = None,
              targets: str | list[str] = DEFAULT_TARGETS, only_if_smaller: bool = True) -> PreTrainedModel:
    """Factorise the dense layers of ``model`` by truncated SVD; returns a new model (the input is unchanged).

    Args:
        model: a task model of a supported family (possibly pruned).
        rank / energy: as :func:`factorize_linear` (one of them); applied to each target.
        targets: a regex on paths relative to an encoder layer (default: all its dense projections),
            or an explicit list of full module paths.
        only_if_smaller: skip layers where the factorisation would not reduce the parameter count
            (``False`` forces it, e.g. to check that full rank reproduces the model).

    Returns:
        A ``kdistill-compressed-*`` model; ``config.kdistill_lowrank`` maps each factorised path to its rank.

    Raises:
        ModelError: a listed path that is not an ``nn.Linear`` (already factorised, or wrong).
        KDistillError: bad ``rank`` / ``energy``.
    """
    paths = target_linears(model, targets) if isinstance(targets, str) else list(targets)
    state = dict(model.state_dict())
    ranks: dict[str, int] = {}
    for path in paths:
        linear = model.get_submodule(path)
        if not isinstance(linear, nn.Linear):
            raise ModelError(f"'{path}' is a {type(linear).__name__}, not an nn.Linear; list Linear layers that are not yet factorised")
        new = factorize_linear(linear, rank=rank, energy=energy, only_if_smaller=only_if_smaller)
        if new is linear:
            continue
        ranks[path] = new[0].out_features
        for suffix in (".weight", ".bias"):
            state.pop(path + suffix, None)
        state.update({f"{path}.{k}": v for k, v in new.state_dict().items()})
    config = compressed_config(model.config)
    setattr(config, LOWRANK_KEY, {**getattr(config, LOWRANK_KEY), **ranks})
    return rebuild(model, config, state)
