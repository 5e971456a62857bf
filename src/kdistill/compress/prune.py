"""Structured pruning that really shrinks the model: attention heads, FFN neurons, whole layers.

transformers v5 has no ``prune_heads``; this module does it by slicing weights:

* removing head ``h`` (size ``d``) of a layer drops rows ``h·d … (h+1)·d − 1`` of the query, key
  and value projections (weight ``[heads·d, hidden]`` and bias) and the same *columns* of the
  attention output projection (weight ``[hidden, heads·d]``; its bias stays) — this is exactly the
  model with that head's output gated to zero (Michel et al. 2019, Sec. 2, Eq. 1, ξ_h = 0);
* removing FFN neuron ``j`` drops row ``j`` of the FFN input projection and column ``j`` of its
  output projection — exactly the model with that neuron's activation gated to zero;
* removing a layer drops its weights and renumbers the rest.

Every function returns a *new* model and leaves its input untouched. Head / FFN pruning returns a
``kdistill-compressed-*`` model (:mod:`kdistill.compress.modeling`) whose config records the
per-layer shapes, so it saves with ``save_pretrained`` and loads with
``AutoModelForSequenceClassification.from_pretrained(path)`` after ``import kdistill.compress``
(or :func:`load_pruned`). A factorised linear (:mod:`kdistill.compress.lowrank`) is sliced on
its outer side, so pruning after factorising works too.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping

import torch
from transformers import PreTrainedModel

from kdistill.compress.modeling import (
    FFN_KEY,
    HEAD_IDS_KEY,
    HEADS_KEY,
    LOWRANK_KEY,
    RECORD_KEY,
    compressed_config,
    encoder_layout,
    layers_path,
    ffn_per_layer,
    head_dim,
    heads_per_layer,
    is_compressed,
    layer_prefix_pattern,
    load_compressed,
    parts_for,
    rebuild,
)
from kdistill.errors import ModelError

load_pruned = load_compressed
"""Load a pruned model saved with ``save_pretrained`` (alias of :func:`kdistill.compress.modeling.load_compressed`)."""


# --------------------------------------------------------------------------- state-dict slicing (pure)


def _slice_rows(state: dict, path: str, index: torch.Tensor, lowrank: Mapping[str, int]) -> None:
    """Keep output rows ``index`` of the linear at ``path`` (the last factor if it is factorised)."""
    p = f"{path}.1" if path in lowrank else path
    for suffix in (".weight", ".bias"):
        if p + suffix in state:
            state[p + suffix] = state[p + suffix].index_select(0, index.to(state[p + suffix].device))


def _slice_cols(state: dict, path: str, index: torch.Tensor, lowrank: Mapping[str, int]) -> None:
    """Keep input columns ``index`` of the linear at ``path`` (the first factor if it is factorised)."""
    p = f"{path}.0" if path in lowrank else path
    state[p + ".weight"] = state[p + ".weight"].index_select(1, index.to(state[p + ".weight"].device))


def head_index(keep_heads: Iterable[int], head_size: int) -> torch.Tensor:
    """Rows / columns of the kept heads: ``[len(keep)·head_size]`` long tensor (heads in increasing order)."""
    starts = torch.tensor(sorted(keep_heads), dtype=torch.long) * head_size
    return (starts[:, None] + torch.arange(head_size)).reshape(-1)


def _check_request(request: Mapping[int, Iterable[int]], sizes: list[int], what: str, unit: str) -> dict[int, list[int]]:
    """Validate ``{layer: [indices to remove]}`` against per-layer ``sizes``; refuse emptying a layer."""
    clean: dict[int, list[int]] = {}
    for layer, items in request.items():
        layer = int(layer)
        if not 0 <= layer < len(sizes):
            raise ModelError(f"cannot prune {what} of layer {layer}: the model has layers 0..{len(sizes) - 1}")
        items = sorted({int(i) for i in items})
        if any(not 0 <= i < sizes[layer] for i in items):
            raise ModelError(f"layer {layer} has {what} 0..{sizes[layer] - 1}, cannot remove {items}")
        if items and len(items) == sizes[layer]:
            raise ModelError(f"removing {what} {items} would leave layer {layer} with no {unit}; keep at least one "
                             f"or remove the whole layer with prune_layers(model, [{layer}])")
        if items:
            clean[layer] = items
    return clean


def _json_record(kind: str, removed: Mapping[int, list[int]]) -> dict:
    return {kind: {str(k): list(v) for k, v in sorted(removed.items())}}


def _remove_units(model: PreTrainedModel, request: dict[int, list[int]], sizes: list[int], *, unit_size: int,
                  row_paths: Iterable[str], col_path: str, size_key: str, record: dict) -> PreTrainedModel:
    """Remove units (heads of ``unit_size`` rows, or single FFN neurons) per layer: slice the output rows of
    ``row_paths`` and the input columns of ``col_path``; record the new per-layer sizes under ``size_key``."""
    config = compressed_config(model.config)
    lowrank = getattr(config, LOWRANK_KEY)
    prefix = layers_path(model)
    state = dict(model.state_dict())
    new_sizes = list(sizes)
    head_ids = [list(ids) for ids in getattr(config, HEAD_IDS_KEY)]
    for layer, removed in request.items():
        keep = [u for u in range(sizes[layer]) if u not in set(removed)]
        index = head_index(keep, unit_size)
        for path in row_paths:
            _slice_rows(state, f"{prefix}.{layer}.{path}", index, lowrank)
        _slice_cols(state, f"{prefix}.{layer}.{col_path}", index, lowrank)
        new_sizes[layer] = len(keep)
        if size_key == HEADS_KEY:  # the original ids of the kept heads (MPNet's shared position bias is indexed by them)
            head_ids[layer] = [head_ids[layer][u] for u in keep]
    setattr(config, size_key, new_sizes)
    setattr(config, HEAD_IDS_KEY, head_ids)
    setattr(config, RECORD_KEY, [*getattr(config, RECORD_KEY), record])
    return rebuild(model, config, state)


# --------------------------------------------------------------------------- public API


def prune_heads(model: PreTrainedModel, heads: Mapping[int, Iterable[int]]) -> PreTrainedModel:
    """Remove attention heads: ``heads`` maps a layer index to the head indices to remove (current numbering).

    Slices the query/key/value output rows and the attention output projection's input columns of
    each head (Michel et al. 2019; what ``prune_heads`` did in transformers v4). The result equals
    the unpruned model with those heads' gates ξ_h set to 0 (:func:`kdistill.compress.importance.gated`).

    Args:
        model: a task model of a supported family (BERT, RoBERTa, XLM-R, CamemBERT, ELECTRA, DistilBERT).
        heads: ``{layer: [head, ...]}``; layers not listed are kept whole.

    Returns:
        A new ``kdistill-compressed-*`` model; ``config.kdistill_heads_per_layer`` holds the head counts.

    Raises:
        ModelError: unknown layer/head index, a request that would remove every head of a layer
            (remove the layer with :func:`prune_layers` instead), or an unsupported architecture.
    """
    parts = parts_for(model.config)
    counts = heads_per_layer(model)
    request = _check_request(heads, counts, "heads", "attention head")
    return _remove_units(model, request, counts, unit_size=head_dim(model),
                         row_paths=(parts.query, parts.key, parts.value), col_path=parts.attn_out, size_key=HEADS_KEY,
                         record=_json_record("heads_removed", request))


def prune_ffn(model: PreTrainedModel, neurons: Mapping[int, Iterable[int]]) -> PreTrainedModel:
    """Remove FFN neurons: ``neurons`` maps a layer index to the intermediate units to remove.

    Slices rows of the FFN input projection (``intermediate.dense`` / ``ffn.lin1``, weight
    ``[I, hidden]``) and columns of the output projection (``output.dense`` / ``ffn.lin2``,
    weight ``[hidden, I]``). Equals the unpruned model with those neurons gated to 0.

    Returns:
        A new ``kdistill-compressed-*`` model; ``config.kdistill_intermediate_per_layer`` holds the widths.

    Raises:
        ModelError: unknown layer/neuron index or a request that would remove every neuron of a layer.
    """
    parts = parts_for(model.config)
    sizes = ffn_per_layer(model)
    request = _check_request(neurons, sizes, "FFN neurons", "FFN neuron")
    return _remove_units(model, request, sizes, unit_size=1, row_paths=(parts.ffn_in,), col_path=parts.ffn_out,
                         size_key=FFN_KEY, record={"ffn_removed": {str(k): len(v) for k, v in sorted(request.items())}})


def prune_layers(model: PreTrainedModel, layers: Iterable[int]) -> PreTrainedModel:
    """Remove whole encoder layers (current numbering); the others keep their order and are renumbered.

    A stock model stays a stock model (only the layer count changes); a compressed one keeps its
    per-layer head counts, FFN widths and factorised paths in step. ``config.kdistill_layers``
    (teacher indices of a ``layers-from-teacher`` student), if present, is filtered too.

    Returns:
        A new model with ``n_layers − len(layers)`` layers.

    Raises:
        ModelError: an unknown index, or a request to remove every layer.
    """
    layout = encoder_layout(model.config)
    n = int(getattr(model.config, layout.num_layers_attr))
    remove = sorted({int(i) for i in layers})
    if any(not 0 <= i < n for i in remove):
        raise ModelError(f"cannot remove layers {remove}: the model has layers 0..{n - 1}")
    keep = [i for i in range(n) if i not in remove]
    if not keep:
        raise ModelError(f"removing layers {remove} would leave no encoder layer; keep at least one")
    remap = {old: new for new, old in enumerate(keep)}
    pattern = layer_prefix_pattern(model)
    path = layers_path(model)

    def renumber(key: str) -> str | None:
        m = pattern.fullmatch(key)
        if m is None:
            return key
        i = int(m.group(1))
        return f"{path}.{remap[i]}.{m.group(2)}" if i in remap else None

    state = {}
    for key, value in model.state_dict().items():
        new_key = renumber(key)
        if new_key is not None:
            state[new_key] = value
    config = compressed_config(model.config) if is_compressed(model.config) else copy.deepcopy(model.config)
    setattr(config, layout.num_layers_attr, len(keep))
    if is_compressed(config):
        setattr(config, HEADS_KEY, [getattr(config, HEADS_KEY)[i] for i in keep])
        setattr(config, FFN_KEY, [getattr(config, FFN_KEY)[i] for i in keep])
        setattr(config, HEAD_IDS_KEY, [getattr(config, HEAD_IDS_KEY)[i] for i in keep])
        lowrank = {renumber(p): r for p, r in getattr(config, LOWRANK_KEY).items()}
        setattr(config, LOWRANK_KEY, {p: r for p, r in lowrank.items() if p is not None})
        setattr(config, RECORD_KEY, [*getattr(config, RECORD_KEY), {"layers_removed": remove}])
    if getattr(config, "kdistill_layers", None) and len(config.kdistill_layers) == n:
        config.kdistill_layers = [config.kdistill_layers[i] for i in keep]
    return rebuild(model, config, state)


def lowest_heads(head_importance: torch.Tensor, num: int, *, min_per_layer: int = 1) -> dict[int, list[int]]:
    """The ``num`` least important heads, never leaving a layer with fewer than ``min_per_layer`` heads.

    Michel et al. (2019, Sec. 4) prune heads in order of increasing importance across all layers
    (scores normalised per layer). NaN entries (heads already pruned) are ignored.

    Args:
        head_importance: ``[n_layers, max_heads]`` scores (:class:`~kdistill.compress.importance.Importance`).
        num: heads to select (``≥ 0``).

    Returns:
        ``{layer: [head, ...]}`` ready for :func:`prune_heads`.
    """
    return _lowest(head_importance, num, min_per_layer)


def lowest_neurons(ffn_importance: torch.Tensor, num: int, *, min_per_layer: int = 1) -> dict[int, list[int]]:
    """The ``num`` least important FFN neurons overall (``[n_layers, max_intermediate]`` scores), ready for :func:`prune_ffn`."""
    return _lowest(ffn_importance, num, min_per_layer)


def _lowest(scores: torch.Tensor, num: int, min_per_layer: int) -> dict[int, list[int]]:
    flat = scores.detach().float().flatten()
    order = torch.argsort(torch.where(torch.isnan(flat), torch.inf, flat), stable=True)
    left = (~torch.isnan(scores)).sum(dim=1).tolist()
    chosen: dict[int, list[int]] = {}
    width = scores.shape[1]
    for flat_i in order.tolist():
        if num <= 0 or torch.isnan(flat[flat_i]):
            break
        layer, unit = divmod(flat_i, width)
        if left[layer] > min_per_layer:
            chosen.setdefault(layer, []).append(unit)
            left[layer] -= 1
            num -= 1
    return {k: sorted(v) for k, v in sorted(chosen.items())}


def parameter_count(model: PreTrainedModel) -> int:
    """Number of parameters (shared tensors counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
