"""Batched adaptive inference of an early-exit model: rows that exit leave the batch, the rest go on.

DeeBERT / FastBERT / PABEE implement early exit for one example at a time (their users' complaint: DeeBERT#21,
transformers#13230). Here a batch runs layer by layer; after each exit the rows whose rule fired
(:mod:`kdistill.selfdistill.rules`) take that exit's logits and are dropped, the remaining rows (and their trailing
all-padding columns) continue, so batch 32 gains too. Rows that never fire get the full model's own prediction.

No per-layout code: the library's own forward builds everything the layers need.

1. **capture**: the base model runs with its layer list swapped for *probes* (one per distinct layer kind, e.g.
   ModernBERT's global / sliding attention); each probe records the arguments the encoder passes its layers (attention
   mask in the layout's format, MPNet's relative position bias, DeBERTa's relative embeddings, ModernBERT's rotary
   tables ...) and the last one stops the pass. The embedding output comes with them.
2. **layers**: each real layer is called with the current hidden states and the recorded arguments of its kind.
3. **tail**: rows that reach the last layer run the task model's own forward with the layer list swapped for
   ``[last layer]`` and its input replaced (a pre-hook) by their hidden states, so the head (pooler, final norm,
   classifier) is exactly the model's. With a rule that never fires the result equals the full forward bit for bit.

When rows leave, the arguments are captured again for the rows left (cheap: embeddings and masks, no layer). Swapping
modules makes a call not re-entrant: calls are serialised by a process-wide lock.
"""

from __future__ import annotations

import inspect
import threading
from contextlib import contextmanager

import torch
from torch import nn

from kdistill.errors import ModelError
from kdistill.selfdistill.rules import ExitRule, RuleState

_LOCK = threading.RLock()
_BASE_PARAMS: dict[type, frozenset] = {}  # bare-encoder class -> the names its forward takes (inspect is slow)


class _Stop(Exception):
    """Raised by the last probe: the capture pass has what it needs."""


class _Probe(nn.Module):
    """Stands in for the layers of one kind during capture; records the encoder's arguments to them."""

    def __init__(self, kind, sink: dict, last: bool):
        super().__init__()
        if kind is not None:
            self.attention_type = kind
        self.kind, self.sink, self.last = kind, sink, last

    def forward(self, *args, **kwargs):
        if "hidden" not in self.sink:
            self.sink["hidden"] = args[0] if args else kwargs.get("hidden_states")
        self.sink[("args", self.kind)] = (tuple(args[1:]), dict(kwargs))
        if self.last:
            raise _Stop
        return args[0]


def layer_kind(layer: nn.Module):
    """What decides the arguments a layer gets (ModernBERT: its ``attention_type``; others: one kind, ``None``)."""
    return getattr(layer, "attention_type", None)


@contextmanager
def swapped_layers(model, modules):
    """Temporarily replace ``model``'s encoder layer list by ``nn.ModuleList(modules)``."""
    from kdistill.selfdistill.layout import layers_path

    parent, _, name = layers_path(model).rpartition(".")
    owner = model.get_submodule(parent)
    old = getattr(owner, name)
    setattr(owner, name, nn.ModuleList(modules))
    try:
        yield
    finally:
        setattr(owner, name, old)


def _base_inputs(model, inputs: dict) -> dict:
    """The inputs the bare encoder takes (DistilBERT's has no ``token_type_ids``)."""
    cls = type(model.base_model)
    if cls not in _BASE_PARAMS:
        _BASE_PARAMS[cls] = frozenset(inspect.signature(model.base_model.forward).parameters)
    params = _BASE_PARAMS[cls]
    return {k: v for k, v in inputs.items() if k in params and v is not None}


def capture(model, inputs: dict) -> tuple[torch.Tensor, dict]:
    """The embedding output ``[B, L, H]`` and, per layer kind, the ``(args, kwargs)`` after the hidden states that the
    encoder passes its layers for ``inputs``.

    Raises:
        ModelError: the encoder never reached its layers (an unsupported architecture).
    """
    from kdistill.selfdistill.layout import encoder_layers

    kinds = list(dict.fromkeys(layer_kind(layer) for layer in encoder_layers(model)))
    sink: dict = {}
    probes = [_Probe(kind, sink, last=i == len(kinds) - 1) for i, kind in enumerate(kinds)]
    with swapped_layers(model, probes):
        try:
            model.base_model(**_base_inputs(model, inputs))
        except _Stop:
            pass
    if "hidden" not in sink:
        raise ModelError(f"{type(model).__name__}: the encoder never called its layers; adaptive inference cannot run it")
    return sink["hidden"], {kind: sink[("args", kind)] for kind in kinds}


def run_layer(layer: nn.Module, hidden: torch.Tensor, ctx: dict) -> torch.Tensor:
    """One encoder layer on ``hidden`` ``[B, L, H]`` with the captured arguments of its kind; returns ``[B, L, H]``."""
    args, kwargs = ctx[layer_kind(layer)]
    out = layer(hidden, *args, **kwargs)
    return out[0] if isinstance(out, (tuple, list)) else out


def tail(model, hidden: torch.Tensor, inputs: dict) -> torch.Tensor:
    """The last layer on ``hidden`` (the output of the layer before it) and the model's own head: logits ``[B, C]``."""
    from kdistill.selfdistill.layout import encoder_layers

    last = encoder_layers(model)[-1]

    def replace(module, args, kwargs):
        if args:
            return (hidden, *args[1:]), kwargs
        kwargs["hidden_states"] = hidden
        return args, kwargs

    handle = last.register_forward_pre_hook(replace, with_kwargs=True)
    try:
        with swapped_layers(model, [last]):
            return model._kdistill_stock.forward(model, **inputs).logits
    finally:
        handle.remove()


def _select(inputs: dict, rows: torch.Tensor, batch: int) -> dict:
    return {k: (v[rows] if torch.is_tensor(v) and v.dim() >= 1 and v.shape[0] == batch else v) for k, v in inputs.items()}


def _trim(inputs: dict, hidden: torch.Tensor) -> tuple[dict, torch.Tensor]:
    """Drop trailing columns that are padding in every remaining row (right padding), from inputs and hidden states."""
    mask = inputs.get("attention_mask")
    if mask is None or mask.dim() != 2:
        return inputs, hidden
    real = mask.bool().any(0)
    width = int(real.nonzero().max()) + 1 if bool(real.any()) else 1
    if width >= mask.shape[1]:
        return inputs, hidden
    length = mask.shape[1]
    out = {k: (v[:, :width] if torch.is_tensor(v) and v.dim() == 2 and v.shape[1] == length else v) for k, v in inputs.items()}
    return out, hidden[:, :width]


def adaptive_forward(model, inputs: dict, rule: ExitRule) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched adaptive inference (see the module docstring).

    Args:
        model: an early-exit model (:mod:`kdistill.selfdistill.modeling`), eval mode.
        inputs: its forward's keyword inputs: ``input_ids`` ``[B, L]`` (long), ``attention_mask`` ``[B, L]``,
            ``token_type_ids`` ... (``labels`` not among them).
        rule: the exit rule.

    Returns:
        ``(logits [B, C] float, exit_layer [B] long)``: each row's logits from the exit it left at, and that exit's
        1-based layer (the layer count for rows that reached the model's own head).
    """
    from kdistill.selfdistill.layout import encoder_layers

    with _LOCK, torch.no_grad():
        inputs = {k: v for k, v in inputs.items() if v is not None}
        ids = inputs["input_ids"]
        batch = ids.shape[0]
        if inputs.get("attention_mask") is None:
            inputs["attention_mask"] = torch.ones_like(ids)
        layers = encoder_layers(model)
        n = len(layers)
        exits = model.exit_layers
        out_logits: torch.Tensor | None = None
        out_layer = torch.full((batch,), n, dtype=torch.long, device=ids.device)
        rows = torch.arange(batch, device=ids.device)
        cur = inputs
        hidden, ctx = capture(model, cur)
        state = RuleState(rule)
        done = 0  # layers applied to `hidden`
        for head, k in zip(model.kdistill_exits, exits):
            while done < k:
                hidden = run_layer(layers[done], hidden, ctx)
                done += 1
            z = head(hidden, cur["attention_mask"]).float()
            if out_logits is None:
                out_logits = torch.zeros((batch, z.shape[-1]), dtype=z.dtype, device=z.device)
            fired = state.fires(z)
            if not bool(fired.any()):
                continue
            out_logits[rows[fired]] = z[fired]
            out_layer[rows[fired]] = k
            keep = ~fired
            if not bool(keep.any()):
                return out_logits, out_layer
            size = rows.shape[0]
            rows = rows[keep]
            state.keep(keep)
            cur, hidden = _trim(_select(cur, keep, size), hidden[keep])
            ctx = capture(model, cur)[1]
        while done < n - 1:
            hidden = run_layer(layers[done], hidden, ctx)
            done += 1
        z = tail(model, hidden, cur).float()
        if out_logits is None:
            out_logits = torch.zeros((batch, z.shape[-1]), dtype=z.dtype, device=z.device)
        out_logits[rows] = z
        return out_logits, out_layer


__all__ = ["adaptive_forward", "capture", "layer_kind", "run_layer", "swapped_layers", "tail"]
