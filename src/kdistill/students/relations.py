"""Record one encoder layer's query, key and value projections during forward passes (MiniLM / MiniLMv2 relations).

Forward hooks on the layer's three ``nn.Linear`` projections keep their outputs ``[B, L, heads·d]`` (all heads
concatenated, as the projection gives them) for the latest forward; under grad mode the student's carry gradients.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from kdistill.errors import ModelError
from kdistill.students.transformer import layout_for, num_layers

#: Paths of the query, key and value projections inside one encoder layer, per base model type.
QKV_PATHS: dict[str, tuple[str, str, str]] = {
    **{t: ("attention.self.query", "attention.self.key", "attention.self.value")
       for t in ("bert", "roberta", "xlm-roberta", "camembert", "electra")},
    "distilbert": ("attention.q_lin", "attention.k_lin", "attention.v_lin"),
    "mpnet": ("attention.attn.q", "attention.attn.k", "attention.attn.v"),
}


def _layers(model: nn.Module) -> nn.ModuleList:
    path = layout_for(model.config).layers_path
    prefix = getattr(model, "base_model_prefix", "")
    for candidate in (path, path[len(prefix) + 1:] if prefix and path.startswith(prefix + ".") else None):
        if candidate:
            try:
                return model.get_submodule(candidate)
            except AttributeError:
                continue
    raise ModelError(f"cannot find the encoder layers ('{path}') in {type(model).__name__}")


@contextmanager
def capture_qkv(model: nn.Module, layer: int) -> Iterator[dict[str, torch.Tensor]]:
    """Record ``{"query", "key", "value"}`` ``[B, L, H]`` of encoder layer ``layer`` (0-based; -1 = the last).

    Raises:
        ModelError: an architecture without known projection paths, or a layer out of range.
    """
    base = str(model.config.model_type).removeprefix("kdistill-compressed-")
    if base not in QKV_PATHS:
        raise ModelError(f"MiniLM relations need the query/key/value projections of {base} models, which kdistill does "
                         f"not know; supported: {', '.join(sorted(QKV_PATHS))}")
    n = num_layers(model.config)
    index = layer if layer >= 0 else n + layer
    if not 0 <= index < n:
        raise ModelError(f"--teacher-layer / student layer {layer} is outside the model's {n} layers")
    block = _layers(model)[index]
    record: dict[str, torch.Tensor] = {}
    handles = []
    for name, path in zip(("query", "key", "value"), QKV_PATHS[base]):
        def hook(module, args, output, name=name):
            record[name] = output

        handles.append(block.get_submodule(path).register_forward_hook(hook))
    try:
        yield record
    finally:
        for h in handles:
            h.remove()


__all__ = ["QKV_PATHS", "capture_qkv"]
