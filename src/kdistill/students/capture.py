"""Capture per-layer attention scores (before the softmax) and probabilities from Hugging Face encoders.

TinyBERT (Jiao et al. 2020, Eq. 7) distils the *unnormalised* attention scores ``Q·Kᵀ/√d``,
which no Hugging Face model returns (``output_attentions`` gives the post-softmax weights, and
the default SDPA kernel returns none). Instead of forking the modeling code, this module
registers an attention function with transformers' attention interface (transformers v5:
``AttentionInterface``, selected per model by ``config._attn_implementation``). It computes
exactly what transformers' eager attention computes, and additionally hands the scores and
probabilities of each layer to a recorder.

Usage::

    with capture_attention(model) as rec:
        out = model(**inputs, output_hidden_states=True)
    rec.scores[i]   # [B, heads, L, L] raw scores of Transformer layer i + 1 (0-based list)
    rec.probs[i]    # [B, heads, L, L] softmax probabilities of the same layer
    out.hidden_states  # embeddings first, then one [B, L, H] per layer

Hidden states need no capturing: ``output_hidden_states=True`` already returns them.

Mask format. The padding mask reaches the attention function through transformers' mask
interface, which is keyed by the same implementation name; the capture implementation is
registered there with transformers' ``eager_mask``, so it receives what eager attention
receives: ``None`` when the batch has no padding, else a 4D additive float mask
``[B, 1, L_q, L_k]`` with 0 for visible keys and ``torch.finfo(dtype).min`` for padded keys. A
4D *boolean* mask (True = attend, SDPA's format; e.g. passed in pre-built by a caller) is
handled too, by filling ``finfo.min`` where it is False.

What is recorded. ``scores`` are ``Q·Kᵀ·scaling`` *before* the mask is added: finite
everywhere, so losses can select the real (query, key) pairs with the ``[B, L]`` padding mask
without ``-inf``/``finfo.min`` values leaking into squares or gradients (see
:func:`kdistill.losses.tinybert.attention_score_loss`). ``probs`` are the softmax of the masked
scores *before* attention dropout (what the model "means"; dropout noise is not a target). The
tensors stay in the autograd graph: under grad mode the student's scores carry gradients to
its query/key weights; run the teacher under ``torch.no_grad()``.
"""

from __future__ import annotations

import math
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch
from torch import nn
from transformers import AttentionInterface, PreTrainedModel
from transformers.masking_utils import AttentionMaskInterface, eager_mask

from kdistill.errors import ModelError
from kdistill.students.transformer import layout_for

CAPTURE_IMPLEMENTATION = "kdistill_capture"


@dataclass
class AttentionRecorder:
    """Per-layer attention tensors of the most recent forward pass of a captured model.

    Attributes:
        num_layers: number of Transformer layers of the model.
        layers: 0-based layer indices that are recorded (all by default).
        scores: list of length ``num_layers``; entry ``i`` is the ``[B, heads, L, L]`` float tensor
            ``Q·Kᵀ·scaling`` (no mask added) of layer ``i`` (``hidden_states[i + 1]`` is that layer's
            output), or ``None`` before the first forward / for layers not recorded.
        probs: same layout; the softmax of the masked scores, before dropout.
    """

    num_layers: int
    layers: frozenset[int]
    scores: list[torch.Tensor | None] = field(default_factory=list)
    probs: list[torch.Tensor | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget the recorded tensors (frees their memory and autograd graph references)."""
        self.scores = [None] * self.num_layers
        self.probs = [None] * self.num_layers

    def _record(self, layer: int, scores: torch.Tensor, probs: torch.Tensor) -> None:
        if layer in self.layers:
            self.scores[layer] = scores
            self.probs[layer] = probs


# Attention module -> (recorder, 0-based layer index), for the models inside a capture_attention block.
_SLOTS: "weakref.WeakKeyDictionary[nn.Module, tuple[AttentionRecorder, int]]" = weakref.WeakKeyDictionary()


def capture_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eager attention that also records scores and probabilities (registered as ``"kdistill_capture"``).

    Same contract and numerics as ``transformers.models.bert.modeling_bert.eager_attention_forward``.

    Args:
        module: the calling self-attention module (its ``training`` flag switches dropout; it
            identifies the recorder and layer when inside :func:`capture_attention`).
        query, key, value: ``[B, heads, L, d]``.
        attention_mask: ``None``, a 4D additive float mask ``[B, 1, L_q, L_k]`` (0 / ``finfo.min``),
            or a 4D bool mask (True = attend).
        scaling: score scale, default ``d ** -0.5``.
        dropout: attention-dropout probability (the module passes 0 in eval mode).

    Returns:
        ``(attn_output [B, L, heads, d], attn_weights [B, heads, L, L])``, the weights after dropout,
        exactly as the eager function returns them.
    """
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    logits = scores
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            logits = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            logits = scores + attention_mask
    probs = nn.functional.softmax(logits, dim=-1)
    slot = _SLOTS.get(module)
    if slot is not None:
        slot[0]._record(slot[1], scores, probs)
    weights = nn.functional.dropout(probs, p=dropout, training=module.training)
    attn_output = torch.matmul(weights, value).transpose(1, 2).contiguous()
    return attn_output, weights


# Registration is global to transformers (class-level mapping) and idempotent.
AttentionInterface.register(CAPTURE_IMPLEMENTATION, capture_attention_forward)
AttentionMaskInterface.register(CAPTURE_IMPLEMENTATION, eager_mask)


def _mpnet_attention(module: nn.Module, args: tuple, kwargs: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """MPNet's self-attention recomputed from its inputs: ``(scores, probs)``, ``[B, heads, L, L]``.

    MPNet (Song et al. 2020) adds a relative-position bias, shared by all layers, to ``Q·Kᵀ/√d``: the recorded scores
    are ``Q·Kᵀ/√d + bias`` (the attention logits before the padding mask), the probabilities the softmax of the
    masked logits — the same operations as ``MPNetSelfAttention.forward``.
    """
    def arg(i, name):
        return args[i] if len(args) > i else kwargs.get(name)

    hidden, mask, bias = arg(0, "hidden_states"), arg(1, "attention_mask"), arg(2, "position_bias")
    shape = (*hidden.shape[:-1], -1, module.attention_head_size)
    q = module.q(hidden).view(shape).transpose(1, 2)
    k = module.k(hidden).view(shape).transpose(1, 2)
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(module.attention_head_size)
    if bias is not None:
        scores = scores + bias
    logits = scores if mask is None else scores + mask
    return scores, nn.functional.softmax(logits, dim=-1)


#: Layouts whose attention is not a transformers AttentionInterface call: recorded by forward hooks on the
#: self-attention module (``module path in a layer``, recompute function).
HOOK_CAPTURE = {"mpnet": ("attention.attn", _mpnet_attention)}


@contextmanager
def _capture_by_hooks(model: nn.Module, layers: Sequence[int] | None, how) -> Iterator[AttentionRecorder]:
    """:func:`capture_attention` for :data:`HOOK_CAPTURE` layouts: a forward hook per layer recomputes the scores from
    the self-attention's inputs (two extra projections per layer) and records them."""
    path, compute = how
    layer_modules = _layer_list(model)
    n = len(layer_modules)
    chosen = list(range(n)) if layers is None else [int(i) for i in layers]
    if any(not 0 <= i < n for i in chosen):
        raise ModelError(f"attention capture layers must be 0-based indices in 0..{n - 1}, got {chosen}")
    recorder = AttentionRecorder(num_layers=n, layers=frozenset(chosen))
    handles = []
    for index, layer in enumerate(layer_modules):
        if index not in recorder.layers:
            continue
        attention = layer.get_submodule(path)
        if attention in _SLOTS:
            for h in handles:
                h.remove()
            raise ModelError(f"{type(model).__name__} is already inside a capture_attention block; do not nest captures")

        def hook(module, args, kwargs, output, index=index):
            recorder._record(index, *compute(module, args, kwargs))

        _SLOTS[attention] = (recorder, index)
        handles.append(attention.register_forward_hook(hook, with_kwargs=True))
    try:
        yield recorder
    finally:
        for h in handles:
            h.remove()
        for layer in layer_modules:
            _SLOTS.pop(layer.get_submodule(path), None)


def _layer_list(model: PreTrainedModel) -> nn.ModuleList:
    path = layout_for(model.config).layers_path
    candidates = [path]
    prefix = getattr(model, "base_model_prefix", "")
    if prefix and path.startswith(prefix + "."):
        candidates.append(path[len(prefix) + 1 :])  # a bare base model (e.g. BertModel)
    for candidate in candidates:
        try:
            layers = model.get_submodule(candidate)
        except AttributeError:
            continue
        if isinstance(layers, nn.ModuleList):
            return layers
    raise ModelError(
        f"cannot find the encoder layers ('{path}') in {type(model).__name__}; capture a task or base model of a supported architecture"
    )


@contextmanager
def capture_attention(model: PreTrainedModel, layers: Sequence[int] | None = None) -> Iterator[AttentionRecorder]:
    """Record every layer's attention scores and probabilities during forward passes of ``model``.

    Inside the block the model runs with the ``"kdistill_capture"`` attention implementation
    (numerically the eager implementation: outputs match SDPA/eager to float rounding); the
    previous implementation is restored on exit, also after an exception. Each forward pass
    overwrites the recorder's lists, so they always hold the latest batch.

    Args:
        model: a Hugging Face encoder of a supported BERT-layout architecture (see
            :data:`kdistill.students.transformer.LAYOUTS`), task model or bare base model.
        layers: 0-based Transformer layer indices to record (e.g. only the mapped teacher layers,
            ``[g - 1 for g in layer_map(...)]``, to save memory); ``None`` = all.

    Yields:
        The :class:`AttentionRecorder` (``rec.scores`` / ``rec.probs``: ``num_layers`` entries of
        ``[B, heads, L, L]``).

    Raises:
        ModelError: unsupported architecture, a model whose attention does not go through
            transformers' attention interface, a model already being captured, or layer
            indices out of range.
    """
    base = str(getattr(getattr(model, "config", None), "model_type", "")).removeprefix("kdistill-compressed-")
    if base in HOOK_CAPTURE:
        with _capture_by_hooks(model, layers, HOOK_CAPTURE[base]) as recorder:
            yield recorder
        return
    if not isinstance(model, PreTrainedModel) or not model._can_set_attn_implementation():
        raise ModelError(
            f"{type(model).__name__} does not route attention through transformers' AttentionInterface; "
            "attention capture needs a transformers v5 BERT-layout model"
        )
    layer_modules = _layer_list(model)
    n = len(layer_modules)
    chosen = list(range(n)) if layers is None else [int(i) for i in layers]
    if any(not 0 <= i < n for i in chosen):
        raise ModelError(f"attention capture layers must be 0-based indices in 0..{n - 1}, got {chosen}")
    attention_modules: list[tuple[nn.Module, int]] = []
    for index, layer in enumerate(layer_modules):
        attention = getattr(layer, "attention", None)
        if not isinstance(attention, nn.Module):
            raise ModelError(f"encoder layer {index} of {type(model).__name__} has no 'attention' submodule to capture")
        # Every submodule of the self-attention block (the module that calls the attention function
        # is one of them); cross-attention blocks of decoders live elsewhere and are not recorded.
        attention_modules.extend((sub, index) for sub in attention.modules())
    if any(sub in _SLOTS for sub, _ in attention_modules):
        raise ModelError(f"{type(model).__name__} is already inside a capture_attention block; do not nest captures of one model")

    recorder = AttentionRecorder(num_layers=n, layers=frozenset(chosen))
    previous = model.config._attn_implementation
    model.set_attn_implementation(CAPTURE_IMPLEMENTATION)
    if model.config._attn_implementation != CAPTURE_IMPLEMENTATION:
        model.set_attn_implementation(previous)
        raise ModelError(f"could not switch {type(model).__name__} to the attention-capture implementation")
    for sub, index in attention_modules:
        _SLOTS[sub] = (recorder, index)
    try:
        yield recorder
    finally:
        for sub, _ in attention_modules:
            _SLOTS.pop(sub, None)
        model.set_attn_implementation(previous)


__all__ = ["CAPTURE_IMPLEMENTATION", "AttentionRecorder", "capture_attention", "capture_attention_forward"]
