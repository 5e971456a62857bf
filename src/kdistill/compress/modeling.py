"""Compressed models that stock configs cannot describe, and how they save and load.

After head / FFN pruning (:mod:`kdistill.compress.prune`) layers differ in head count and FFN
width, and after low-rank factorisation (:mod:`kdistill.compress.lowrank`) some ``nn.Linear``
modules are ``Sequential(Linear(in, r, bias=False), Linear(r, out))``. A stock ``BertConfig``
cannot express either, so a compressed model gets its own ``model_type``
(``kdistill-compressed-<base>``, e.g. ``kdistill-compressed-bert``) whose config is the base
config plus these fields:

* ``kdistill_heads_per_layer``: ``list[int]``, heads kept in each layer;
* ``kdistill_intermediate_per_layer``: ``list[int]``, FFN neurons kept in each layer;
* ``kdistill_lowrank``: ``{module path: rank}`` of factorised linears;
* ``kdistill_head_ids``: ``list[list[int]]``, the original ids of the heads each layer kept — needed where a per-head
  table is shared by all layers (MPNet's relative-position bias ``[B, heads, L, L]``, computed once by the encoder:
  each pruned layer's self-attention gets the rows of its own heads, by a forward pre-hook);
* ``kdistill_pruned``: a list of records, one per pruning step (what was removed, in the
  indices of the model at that step).

``num_attention_heads`` / ``intermediate_size`` keep their *original* values (the head size is
``hidden_size / num_attention_heads``). The model classes subclass the stock ones: their
``__init__`` builds the stock model from the config and then re-shapes its modules, so that
``from_pretrained`` loads the saved weights into modules of the right shapes. No modeling code is
forked. Importing :mod:`kdistill.compress` registers these types with ``AutoConfig``,
``AutoModel`` and ``AutoModelForSequenceClassification``.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import (AutoConfig, AutoModel, AutoModelForQuestionAnswering, AutoModelForSequenceClassification,
                          AutoModelForTokenClassification,
                          PretrainedConfig, PreTrainedModel)

from kdistill.errors import ModelError
from kdistill.students.transformer import LAYOUTS, EncoderLayout

PREFIX = "kdistill-compressed-"
HEADS_KEY = "kdistill_heads_per_layer"
FFN_KEY = "kdistill_intermediate_per_layer"
LOWRANK_KEY = "kdistill_lowrank"
RECORD_KEY = "kdistill_pruned"
HEAD_IDS_KEY = "kdistill_head_ids"


@dataclass(frozen=True)
class LayerParts:
    """Module paths inside one encoder layer, and the config attributes that size them.

    Attributes:
        attention: the self-attention module (holds the head-count attributes).
        query, key, value: ``Linear(hidden, heads * head_dim)``; output rows are grouped by head.
        attn_out: ``Linear(heads * head_dim, hidden)`` after the heads (input columns grouped by head).
        ffn_in: ``Linear(hidden, intermediate)``; ``ffn_out``: ``Linear(intermediate, hidden)``.
        head_attrs: attributes of ``attention`` equal to its head count (updated on pruning).
        all_head_attr: attribute of ``attention`` equal to ``heads * head_dim``, if any.
        heads_config, ffn_config: config attributes of the original head count and FFN width.
    """

    attention: str
    query: str
    key: str
    value: str
    attn_out: str
    ffn_in: str
    ffn_out: str
    head_attrs: tuple[str, ...]
    all_head_attr: str | None
    heads_config: str
    ffn_config: str


_BERT_PARTS = LayerParts("attention.self", "attention.self.query", "attention.self.key", "attention.self.value",
                         "attention.output.dense", "intermediate.dense", "output.dense",
                         ("num_attention_heads",), "all_head_size", "num_attention_heads", "intermediate_size")
_MPNET_PARTS = LayerParts("attention.attn", "attention.attn.q", "attention.attn.k", "attention.attn.v", "attention.attn.o",
                          "intermediate.dense", "output.dense", ("num_attention_heads",), "all_head_size",
                          "num_attention_heads", "intermediate_size")
_DISTILBERT_PARTS = LayerParts("attention", "attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin",
                               "ffn.lin1", "ffn.lin2", ("n_heads",), None, "n_heads", "hidden_dim")

def _heads(stem: str) -> tuple[str, str, str, str]:
    """A family's model classes: the bare encoder, the sentence and the token classifier, the question answerer."""
    return (f"{stem}Model", f"{stem}ForSequenceClassification", f"{stem}ForTokenClassification",
            f"{stem}ForQuestionAnswering")


# base model_type -> (parts, config class name, {task-model class names to compress})
FAMILIES: dict[str, tuple[LayerParts, str, tuple[str, ...]]] = {
    "bert": (_BERT_PARTS, "BertConfig", _heads("Bert")),
    "roberta": (_BERT_PARTS, "RobertaConfig", _heads("Roberta")),
    "xlm-roberta": (_BERT_PARTS, "XLMRobertaConfig", _heads("XLMRoberta")),
    "camembert": (_BERT_PARTS, "CamembertConfig", _heads("Camembert")),
    "electra": (_BERT_PARTS, "ElectraConfig", _heads("Electra")),
    "distilbert": (_DISTILBERT_PARTS, "DistilBertConfig", _heads("DistilBert")),
    "mpnet": (_MPNET_PARTS, "MPNetConfig", _heads("MPNet")),
}
#: Families whose encoder hands every layer one per-head table (argument name, its index in the self-attention call).
SHARED_HEAD_BIAS: dict[str, tuple[str, int]] = {"mpnet": ("position_bias", 2)}

_CONFIG_CLASSES: dict[str, type] = {}  # base model_type -> compressed config class
_MODEL_CLASSES: dict[type, type] = {}  # stock model class -> compressed model class


# --------------------------------------------------------------------------- module paths


def base_type(config: PretrainedConfig) -> str:
    """The stock ``model_type`` under a (possibly compressed) config, e.g. ``"bert"`` for ``kdistill-compressed-bert``."""
    mt = str(config.model_type)
    return mt[len(PREFIX):] if mt.startswith(PREFIX) else mt


def is_compressed(config: PretrainedConfig) -> bool:
    """True when ``config`` is a ``kdistill-compressed-*`` config."""
    return str(config.model_type).startswith(PREFIX)


def parts_for(config: PretrainedConfig) -> LayerParts:
    """The :class:`LayerParts` of ``config``'s architecture.

    Raises:
        ModelError: for an architecture without a supported BERT layout.
    """
    try:
        return FAMILIES[base_type(config)][0]
    except KeyError:
        raise ModelError(f"model type '{config.model_type}' cannot be compressed; supported: {', '.join(sorted(FAMILIES))}") from None


def encoder_layout(config: PretrainedConfig) -> EncoderLayout:
    """The :class:`~kdistill.students.transformer.EncoderLayout` of ``config``'s base architecture.

    Raises:
        ModelError: unsupported architecture.
    """
    parts_for(config)
    return LAYOUTS[base_type(config)]


def layers_path(model: PreTrainedModel) -> str:
    """Dotted path of ``model``'s encoder layers: ``bert.encoder.layer`` in a task model, ``encoder.layer`` in a bare ``BertModel``."""
    path = encoder_layout(model.config).layers_path
    prefix = getattr(model, "base_model_prefix", "") + "."
    if getattr(model, "base_model", None) is model and path.startswith(prefix):
        return path[len(prefix):]
    return path


def _local_path(model: PreTrainedModel, path: str) -> str:
    """``path`` (recorded on a task model or a bare base model) as a path inside ``model``."""
    prefix = getattr(model, "base_model_prefix", "") + "."
    bare = getattr(model, "base_model", None) is model
    if bare and path.startswith(prefix):
        return path[len(prefix):]
    if not bare and prefix != "." and not path.startswith(prefix):
        return prefix + path
    return path


def encoder_layers(model: PreTrainedModel) -> nn.ModuleList:
    """The ``nn.ModuleList`` of encoder layers of ``model`` (a task or bare model of a supported family)."""
    return model.get_submodule(layers_path(model))


def set_submodule(root: nn.Module, path: str, module: nn.Module) -> None:
    """Replace the submodule at dotted ``path`` of ``root`` by ``module``."""
    parent, _, name = path.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, name, module)


def in_features(module: nn.Module) -> int:
    """Input width of a ``Linear`` or of a factorised ``Sequential(Linear, Linear)``."""
    return module[0].in_features if isinstance(module, nn.Sequential) else module.in_features


def out_features(module: nn.Module) -> int:
    """Output width of a ``Linear`` or of a factorised ``Sequential(Linear, Linear)``."""
    return module[-1].out_features if isinstance(module, nn.Sequential) else module.out_features


def head_dim(model: PreTrainedModel) -> int:
    """Size of one attention head: ``hidden_size / num_attention_heads`` of the original config."""
    parts = parts_for(model.config)
    return int(encoder_layers(model)[0].get_submodule(parts.attention).attention_head_size)


def heads_per_layer(model: PreTrainedModel) -> list[int]:
    """Heads in each encoder layer, read from the query projection's width (so it is right after pruning)."""
    parts, d = parts_for(model.config), head_dim(model)
    return [out_features(layer.get_submodule(parts.query)) // d for layer in encoder_layers(model)]


def ffn_per_layer(model: PreTrainedModel) -> list[int]:
    """FFN neurons in each encoder layer, read from the FFN input projection's width."""
    parts = parts_for(model.config)
    return [out_features(layer.get_submodule(parts.ffn_in)) for layer in encoder_layers(model)]


# --------------------------------------------------------------------------- re-shaping modules


def _linear_like(old: nn.Linear, in_f: int, out_f: int, bias: bool | None = None) -> nn.Linear:
    """A new ``Linear(in_f, out_f)`` on ``old``'s device and dtype whose weights are a corner of ``old``'s."""
    bias = old.bias is not None if bias is None else bias
    new = nn.Linear(in_f, out_f, bias=bias, device=old.weight.device, dtype=old.weight.dtype)
    with torch.no_grad():
        if in_f <= old.in_features and out_f <= old.out_features and old.weight.device.type != "meta":
            new.weight.copy_(old.weight[:out_f, :in_f])
            if bias and old.bias is not None:
                new.bias.copy_(old.bias[:out_f])
    return new


def _resize(module: nn.Module, *, in_f: int | None = None, out_f: int | None = None) -> nn.Module:
    """``module`` (Linear or factorised Sequential) with its outer input and/or output width changed."""
    if isinstance(module, nn.Sequential):
        first, last = module[0], module[-1]
        first = _linear_like(first, in_f or first.in_features, first.out_features)
        last = _linear_like(last, last.in_features, out_f or last.out_features)
        return nn.Sequential(first, *list(module)[1:-1], last)
    return _linear_like(module, in_f or module.in_features, out_f or module.out_features)


def shape_layer(layer: nn.Module, parts: LayerParts, *, heads: int, intermediate: int, head_size: int) -> None:
    """Re-shape one encoder layer in place to ``heads`` heads and an FFN of ``intermediate`` neurons.

    Only shapes change (weights are a corner of the old ones, to be overwritten by a load);
    the head-count attributes of the attention module are updated so the forward stays consistent.
    """
    width = heads * head_size
    for path in (parts.query, parts.key, parts.value):
        set_submodule(layer, path, _resize(layer.get_submodule(path), out_f=width))
    set_submodule(layer, parts.attn_out, _resize(layer.get_submodule(parts.attn_out), in_f=width))
    set_submodule(layer, parts.ffn_in, _resize(layer.get_submodule(parts.ffn_in), out_f=intermediate))
    set_submodule(layer, parts.ffn_out, _resize(layer.get_submodule(parts.ffn_out), in_f=intermediate))
    set_head_count(layer.get_submodule(parts.attention), parts, heads, head_size)


def set_head_count(attention: nn.Module, parts: LayerParts, heads: int, head_size: int) -> None:
    """Set the head-count attributes of a self-attention module (``num_attention_heads``, ``all_head_size``, ...)."""
    for attr in parts.head_attrs:
        if hasattr(attention, attr):
            setattr(attention, attr, heads)
    if parts.all_head_attr and hasattr(attention, parts.all_head_attr):
        setattr(attention, parts.all_head_attr, heads * head_size)


def factorised_module(linear: nn.Linear, rank: int) -> nn.Sequential:
    """``Sequential(Linear(in, rank, bias=False), Linear(rank, out))`` on ``linear``'s device and dtype (weights uninitialised)."""
    kw = {"device": linear.weight.device, "dtype": linear.weight.dtype}
    return nn.Sequential(nn.Linear(linear.in_features, rank, bias=False, **kw),
                         nn.Linear(rank, linear.out_features, bias=linear.bias is not None, **kw))


def apply_layout(model: PreTrainedModel) -> PreTrainedModel:
    """Re-shape ``model``'s modules in place to what its compressed config records; returns ``model``.

    Raises:
        ModelError: per-layer lists whose length is not the layer count, or a factorised path that is not a Linear.
    """
    config, parts = model.config, parts_for(model.config)
    layers = encoder_layers(model)
    n = len(layers)
    heads = getattr(config, HEADS_KEY, None) or [int(getattr(config, parts.heads_config))] * n
    ffn = getattr(config, FFN_KEY, None) or [int(getattr(config, parts.ffn_config))] * n
    if len(heads) != n or len(ffn) != n:
        raise ModelError(f"config lists {len(heads)} head counts and {len(ffn)} FFN sizes for {n} layers; "
                         "remove layers with kdistill.compress.prune_layers so the lists stay in step")
    d = int(layers[0].get_submodule(parts.attention).attention_head_size)
    for layer, h, i in zip(layers, heads, ffn):
        if out_features(layer.get_submodule(parts.query)) != h * d or out_features(layer.get_submodule(parts.ffn_in)) != i:
            shape_layer(layer, parts, heads=int(h), intermediate=int(i), head_size=d)
    if base_type(config) in SHARED_HEAD_BIAS:
        _slice_shared_bias(model, layers, parts)
    for path, rank in (getattr(config, LOWRANK_KEY, None) or {}).items():
        path = _local_path(model, path)
        old = model.get_submodule(path)
        if not isinstance(old, nn.Sequential):
            if not isinstance(old, nn.Linear):
                raise ModelError(f"config lists '{path}' as factorised but it is a {type(old).__name__}, not a Linear")
            set_submodule(model, path, factorised_module(old, int(rank)))
    return model


def _slice_shared_bias(model: PreTrainedModel, layers: nn.ModuleList, parts: LayerParts) -> None:
    """Give each layer's self-attention the rows of the shared per-head table that belong to its kept heads."""
    name, position = SHARED_HEAD_BIAS[base_type(model.config)]
    total = int(getattr(model.config, parts.heads_config))
    ids = getattr(model.config, HEAD_IDS_KEY, None) or [list(range(total))] * len(layers)
    for layer, kept in zip(layers, ids):
        attention = layer.get_submodule(parts.attention)
        old = getattr(attention, "_kdistill_bias_hook", None)
        if old is not None:
            old.remove()
            attention._kdistill_bias_hook = None
        if len(kept) == total:
            continue
        index = [int(h) for h in kept]  # a tensor is made at call time, on the bias's device (models load on meta)

        def pick(bias: torch.Tensor, index=index) -> torch.Tensor:
            return bias.index_select(1, torch.as_tensor(index, dtype=torch.long, device=bias.device))

        def hook(module, args, kwargs, pick=pick):
            if kwargs.get(name) is not None:
                kwargs[name] = pick(kwargs[name])
            elif len(args) > position and args[position] is not None:
                args = (*args[:position], pick(args[position]), *args[position + 1:])
            return args, kwargs

        attention._kdistill_bias_hook = attention.register_forward_pre_hook(hook, with_kwargs=True)


# --------------------------------------------------------------------------- classes and registration


def _transformers_class(name: str) -> type:
    import transformers

    return getattr(transformers, name)


def compressed_config_class(base: str) -> type:
    """The config class of ``kdistill-compressed-<base>`` (a subclass of the stock one)."""
    if base not in _CONFIG_CLASSES:
        stock = _transformers_class(FAMILIES[base][1])
        name = "KDistillCompressed" + stock.__name__
        _CONFIG_CLASSES[base] = type(name, (stock,), {"model_type": PREFIX + base, "__module__": __name__,
                                                     "__doc__": f"{stock.__name__} plus kdistill compression fields."})
        globals()[name] = _CONFIG_CLASSES[base]
    return _CONFIG_CLASSES[base]


def compressed_model_class(stock: type) -> type:
    """The compressed subclass of a stock model class (e.g. ``BertForSequenceClassification``).

    Its ``__init__`` builds the stock model and then calls :func:`apply_layout`.

    Raises:
        ModelError: a class outside the supported families.
    """
    if stock in _MODEL_CLASSES.values():
        return stock
    if stock not in _MODEL_CLASSES:
        base = next((b for b, (_, _, names) in FAMILIES.items() if stock.__name__ in names), None)
        if base is None:
            supported = sorted(n for _, _, names in FAMILIES.values() for n in names)
            raise ModelError(f"{stock.__name__} cannot be compressed; use one of {', '.join(supported)}")
        cfg_cls = compressed_config_class(base)

        def __init__(self, config, *args, **kwargs):
            stock.__init__(self, config, *args, **kwargs)
            apply_layout(self)

        name = "KDistillCompressed" + stock.__name__
        _MODEL_CLASSES[stock] = type(name, (stock,), {"config_class": cfg_cls, "__init__": __init__, "__module__": __name__,
                                                      "__doc__": f"{stock.__name__} re-shaped by its kdistill config."})
        globals()[name] = _MODEL_CLASSES[stock]
    return _MODEL_CLASSES[stock]


def register_auto_classes() -> None:
    """Register every ``kdistill-compressed-*`` type with ``AutoConfig``, ``AutoModel``,
    ``AutoModelForSequenceClassification``, ``AutoModelForTokenClassification`` and ``AutoModelForQuestionAnswering``.

    Idempotent; called on ``import kdistill.compress``.
    """
    for base, (_, _, names) in FAMILIES.items():
        cfg_cls = compressed_config_class(base)
        AutoConfig.register(cfg_cls.model_type, cfg_cls, exist_ok=True)
        AutoModel.register(cfg_cls, compressed_model_class(_transformers_class(names[0])), exist_ok=True)
        AutoModelForSequenceClassification.register(cfg_cls, compressed_model_class(_transformers_class(names[1])), exist_ok=True)
        AutoModelForTokenClassification.register(cfg_cls, compressed_model_class(_transformers_class(names[2])),
                                                 exist_ok=True)
        AutoModelForQuestionAnswering.register(cfg_cls, compressed_model_class(_transformers_class(names[3])),
                                               exist_ok=True)
    for base, layout in list(LAYOUTS.items()):  # so kdistill.students.layout_for accepts compressed models
        if base in FAMILIES:
            LAYOUTS.setdefault(PREFIX + base, layout)


def compressed_config(config: PretrainedConfig, **updates) -> PretrainedConfig:
    """A compressed copy of ``config`` (stock or compressed) with ``updates`` applied; the input is not changed.

    Missing per-layer fields are filled from the stock values (every layer full size).
    """
    base = base_type(config)
    parts = parts_for(config)
    d = config.to_dict()
    for k in ("model_type", "transformers_version", "architectures"):
        d.pop(k, None)
    new = compressed_config_class(base)(**d)
    n = int(getattr(config, LAYOUTS[base].num_layers_attr))
    defaults = {HEADS_KEY: [int(getattr(config, parts.heads_config))] * n,
                FFN_KEY: [int(getattr(config, parts.ffn_config))] * n, LOWRANK_KEY: {}, RECORD_KEY: [],
                HEAD_IDS_KEY: [list(range(int(getattr(config, parts.heads_config))))] * n}
    for key, value in defaults.items():
        setattr(new, key, copy.deepcopy(getattr(config, key, None) or value))
    for key, value in updates.items():
        setattr(new, key, value)
    return new


def rebuild(model: PreTrainedModel, config: PretrainedConfig, state_dict: dict[str, torch.Tensor]) -> PreTrainedModel:
    """A new model of ``model``'s task class (its compressed subclass for a compressed ``config``) built from ``config`` and loaded with ``state_dict``.

    Same path as loading from disk (build from config, re-shape, load weights), so a model that
    rebuilds also round-trips through ``save_pretrained`` / ``from_pretrained``. Keeps dtype,
    device and train/eval mode.

    Raises:
        ModelError: if the weights do not fit the shapes the config describes.
    """
    cls = compressed_model_class(type(model)) if is_compressed(config) else type(model)
    ref = next(model.parameters())
    with torch.device(ref.device):
        new = cls(config).to(ref.dtype)
    missing, unexpected = new.load_state_dict(state_dict, strict=False)
    missing = [k for k in missing if k not in _tied_keys(new)]
    if missing or unexpected:
        raise ModelError(f"compressed weights do not fit the compressed config: missing {missing[:4]}, unexpected {unexpected[:4]}")
    return new.train(model.training)


def _tied_keys(model: PreTrainedModel) -> set[str]:
    tied = getattr(model, "all_tied_weights_keys", None) or getattr(model, "_tied_weights_keys", None) or {}
    return set(tied.keys() if isinstance(tied, dict) else tied)


def load_compressed(path: str | Path, **kwargs) -> PreTrainedModel:
    """Load a model saved by :mod:`kdistill.compress` (or any stock sequence classifier) from ``path``.

    Equivalent to ``AutoModelForSequenceClassification.from_pretrained(path)`` after
    ``import kdistill.compress``: the compressed class builds the base model from the config,
    re-shapes it to the recorded head counts / FFN widths / ranks, then loads the safetensors weights.
    ``kwargs`` go to ``from_pretrained``.

    Raises:
        ModelError: a missing directory or a checkpoint that cannot be loaded.
    """
    path = Path(path)
    if not (path / "config.json").is_file():
        raise ModelError(f"'{path}' holds no config.json; pass the directory a compressed model was saved to")
    register_auto_classes()
    config = AutoConfig.from_pretrained(str(path))
    archs = [a for a in (config.architectures or []) if a.startswith("KDistillCompressed")]
    try:
        if archs and is_compressed(config):
            stock = _transformers_class(archs[0][len("KDistillCompressed"):])
            return compressed_model_class(stock).from_pretrained(str(path), **kwargs)
        return AutoModelForSequenceClassification.from_pretrained(str(path), **kwargs)
    except ModelError:
        raise
    except Exception as err:  # noqa: BLE001 - one-line user error
        raise ModelError(f"cannot load the compressed model in '{path}' ({type(err).__name__}: {str(err).splitlines()[0][:200]})") from err


def layer_prefix_pattern(model: PreTrainedModel) -> re.Pattern:
    """Regex matching ``<layers path>.<i>.<rest>`` keys / module paths of ``model`` (groups: index, rest)."""
    return re.compile(re.escape(layers_path(model) + ".") + r"(\d+)\.(.*)")
