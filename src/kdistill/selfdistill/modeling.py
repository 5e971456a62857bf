"""Early-exit models: a classifier after every (or every k-th) encoder layer of any supported transformer, saved and
loaded as their own model type.

An early-exit model is the original task model (its classes and weights unchanged) plus ``kdistill_exits``, one
:class:`ExitHead` per exit layer. Its ``model_type`` is ``kdistill-early-exit-<base>`` (``<base>``: ``bert``,
``roberta``, ``mpnet``, ``distilbert``, ... or a pruned ``kdistill-compressed-<family>``) and its config is the base
config plus:

* ``kdistill_exit_layers``: ``list[int]``, the 1-based encoder layers an exit reads (the final layer is the model's
  own classifier, never an exit here);
* ``kdistill_exit_pooling``: ``mean`` (masked mean of the layer's token states) or ``cls`` (the first token);
* ``kdistill_exit_dropout``: dropout inside the exit heads (training only);
* ``kdistill_exit_rule`` / ``kdistill_exit_threshold`` / ``kdistill_exit_patience``: the inference rule
  (:mod:`kdistill.selfdistill.rules`); **default ``none``: the full-depth prediction**, exactly the base model's.

Importing :mod:`kdistill.selfdistill` registers every type with ``AutoConfig`` and
``AutoModelForSequenceClassification`` (as :mod:`kdistill.compress` does for pruned models), so a saved model loads
with ``AutoModelForSequenceClassification.from_pretrained(path)``; a rule is switched on with config overrides, e.g.
``from_pretrained(path, kdistill_exit_rule="entropy", kdistill_exit_threshold=0.2)`` (also through ``pipeline(...,
model_kwargs=...)``), or :meth:`EarlyExitMixin.set_exit_rule`. With a rule, ``forward`` in eval mode runs the batched
adaptive inference of :mod:`kdistill.selfdistill.adaptive` and returns :class:`EarlyExitOutput` (``logits`` of the exit
each example left at, ``exit_layer``); in training mode, or when hidden states / attentions are asked for, it is the
base model's full forward. Exit heads read ``output_hidden_states`` (no per-layout code): FastBERT's student
classifiers (Liu et al. 2020), DeeBERT's off-ramps (Xin et al. 2020).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from kdistill.errors import KDistillError, ModelError
from kdistill.selfdistill.layout import (COMPRESSED_PREFIX as _COMPRESSED, PREFIX, base_type, encoder_layers, family,
                                         hidden_width, is_early_exit, layers_path, num_layers)

LAYERS_KEY = "kdistill_exit_layers"
POOLING_KEY = "kdistill_exit_pooling"
DROPOUT_KEY = "kdistill_exit_dropout"
RULE_KEY = "kdistill_exit_rule"
THRESHOLD_KEY = "kdistill_exit_threshold"
PATIENCE_KEY = "kdistill_exit_patience"
POOLINGS = ("mean", "cls")

_CONFIG_CLASSES: dict[str, type] = {}  # base model_type -> early-exit config class
_MODEL_CLASSES: dict[type, type] = {}  # base task-model class -> early-exit class


@dataclass
class EarlyExitOutput(SequenceClassifierOutput):
    """:class:`~transformers.modeling_outputs.SequenceClassifierOutput` plus ``exit_layer``: ``[B]`` long, the 1-based
    layer whose classifier gave each row's ``logits`` (the layer count = the full model's own head)."""

    exit_layer: torch.LongTensor | None = None


class ExitHead(nn.Module):
    """One exit ("off-ramp", DeeBERT; "student classifier", FastBERT): pool → dropout → Linear(H, H) → tanh →
    dropout → Linear(H, C), BERT's pooler + classifier shape.

    Args:
        hidden: the layer's width ``H``; num_labels: ``C``; dropout: probability; pooling: ``mean`` (masked mean over
            real tokens; robust at shallow layers, where the first token has gathered little) or ``cls``.
    """

    def __init__(self, hidden: int, num_labels: int, dropout: float = 0.1, pooling: str = "mean"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ModelError(f"unknown exit pooling '{pooling}'; choose one of: {', '.join(POOLINGS)}")
        self.pooling = pooling
        self.dense = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, num_labels)

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """``[B, L, H]`` (+ mask ``[B, L]``, 1 = real token) → ``[B, H]``."""
        if self.pooling == "cls":
            return hidden[:, 0]
        if attention_mask is None or hidden.shape[0] == 1 and bool(attention_mask.all()):
            return hidden.mean(1)  # no padding (e.g. one unpadded row): the plain mean, fewer small ops
        m = attention_mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[B, C]`` from one layer's token states ``[B, L, H]``."""
        x = self.pool(hidden, attention_mask)
        if not self.training:  # dropout is the identity: skip its module calls (adaptive inference is latency-bound)
            return self.out(torch.tanh(self.dense(x)))
        return self.out(self.dropout(torch.tanh(self.dense(self.dropout(x)))))


# --------------------------------------------------------------------------- exit placement


def exit_layers_for(n_layers: int, every: int | None = 1, layers: Sequence[int] | None = None) -> list[int]:
    """The 1-based layers that get an exit: ``layers`` as given, else every ``every``-th layer below the last.

    Raises:
        ModelError: a model of one layer, ``every < 1``, or given layers that are not strictly increasing in
            ``1..n_layers - 1`` (the last layer has the model's own classifier).
    """
    if n_layers < 2:
        raise ModelError(f"early exits need at least 2 encoder layers; this model has {n_layers}")
    if layers is not None:
        out = [int(k) for k in layers]
        if not out or any(k < 1 or k >= n_layers for k in out) or sorted(set(out)) != out:
            raise ModelError(f"--exit-layers must be strictly increasing layers in 1..{n_layers - 1} (1-based; layer "
                             f"{n_layers} keeps the model's own classifier), got {out}")
        return out
    if every is None or int(every) < 1:
        raise ModelError(f"--exit-every must be >= 1, got {every}")
    out = list(range(int(every), n_layers, int(every)))
    if not out:
        raise ModelError(f"--exit-every {every} leaves no exit below the last of {n_layers} layers; use a smaller value")
    return out


# --------------------------------------------------------------------------- the model classes


class EarlyExitMixin:
    """What an early-exit model adds to its base task model (mixed in first; see the module docstring)."""

    _kdistill_base: type  # the class extended (stock, or a kdistill-compressed one)
    _kdistill_stock: type  # the stock transformers class under it

    def _kdistill_init(self, config, *args, **kwargs) -> None:
        base, stock = self._kdistill_base, self._kdistill_stock
        if base is stock:
            base.__init__(self, config, *args, **kwargs)
        else:  # a pruned base: the stock model, re-shaped by what the compressed config records
            from kdistill.compress.modeling import apply_layout, compressed_config_class

            stock.__init__(self, config, *args, **kwargs)
            d = config.to_dict()
            for k in ("model_type", "transformers_version", "architectures"):
                d.pop(k, None)
            real, self.config = self.config, compressed_config_class(family(config))(**d)
            try:
                apply_layout(self)
            finally:
                self.config = real
        n = num_layers(config)
        layers = exit_layers_for(n, layers=getattr(config, LAYERS_KEY, None) or list(range(1, n)))
        if getattr(config, "conv_kernel_size", 0):
            raise ModelError("DeBERTa-v2 models with a convolution after the first layer (conv_kernel_size > 0) cannot "
                             "run layer by layer; early exits support them without it")
        dropout = getattr(config, DROPOUT_KEY, None)
        for name in ("hidden_dropout_prob", "dropout", "hidden_dropout"):  # BERT-likes, DistilBERT, DeBERTa / ModernBERT
            if dropout is None and isinstance(getattr(config, name, None), (int, float)):
                dropout = float(getattr(config, name))
        dropout = 0.1 if dropout is None else dropout
        pooling = getattr(config, POOLING_KEY, None) or "mean"
        heads = [ExitHead(hidden_width(config), int(config.num_labels), dropout, pooling) for _ in layers]
        std = float(getattr(config, "initializer_range", 0.02) or 0.02)
        for head in heads:
            for lin in (head.dense, head.out):
                if lin.weight.device.type != "meta":
                    nn.init.normal_(lin.weight, std=std)
                    nn.init.zeros_(lin.bias)
        self.kdistill_exits = nn.ModuleList(heads)

    # ------------------------------------------------------------------ exits
    @property
    def exit_layers(self) -> list[int]:
        """The 1-based layers with an exit, in depth order."""
        n = num_layers(self.config)
        return exit_layers_for(n, layers=getattr(self.config, LAYERS_KEY, None) or list(range(1, n)))

    def exit_logits(self, hidden_states: Sequence[torch.Tensor], attention_mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Logits of every exit, ``[B, C]`` each in depth order, from ``output_hidden_states`` (``M + 1`` tensors
        ``[B, L, H]``: embeddings first, then one per layer; exit ``j`` reads ``hidden_states[exit_layers[j]]``).

        Raises:
            ModelError: fewer hidden states than the model has layers.
        """
        layers = self.exit_layers
        if len(hidden_states) <= layers[-1]:
            raise ModelError(f"exit logits need the hidden states of every layer (got {len(hidden_states)}); run the "
                             "model with output_hidden_states=True")
        return [head(hidden_states[k], attention_mask) for head, k in zip(self.kdistill_exits, layers)]

    def all_exit_logits(self, **inputs) -> torch.Tensor:
        """One full pass: ``[E + 1, B, C]``, the logits of the ``E`` exits then of the final layer's own classifier."""
        out = self._kdistill_stock.forward(self, **{k: v for k, v in inputs.items() if k != "labels"},
                                           output_hidden_states=True)
        exits = self.exit_logits(out.hidden_states, inputs.get("attention_mask"))
        return torch.stack([*exits, out.logits])

    # ------------------------------------------------------------------ inference rule
    def exit_rule(self):
        """The configured :class:`~kdistill.selfdistill.rules.ExitRule` (``none`` by default: full depth)."""
        from kdistill.selfdistill.rules import ExitRule

        rule = getattr(self.config, RULE_KEY, None) or "none"
        threshold = getattr(self.config, THRESHOLD_KEY, None)
        patience = getattr(self.config, PATIENCE_KEY, None)
        return ExitRule(rule, None if threshold is None else float(threshold), None if patience is None else int(patience))

    def set_exit_rule(self, rule: str = "none", threshold: float | None = None, patience: int | None = None):
        """Switch adaptive inference on (``entropy`` / ``max_prob`` with ``threshold``, ``patience`` with ``patience``)
        or off (``none``); saved with the config. Returns ``self``.

        Raises:
            KDistillError: unknown rule or a missing / bad setting.
        """
        from kdistill.selfdistill.rules import ExitRule

        ExitRule(rule, threshold, patience)  # validates
        setattr(self.config, RULE_KEY, rule)
        setattr(self.config, THRESHOLD_KEY, None if threshold is None else float(threshold))
        setattr(self.config, PATIENCE_KEY, None if patience is None else int(patience))
        return self

    # ------------------------------------------------------------------ forward / train
    def _kdistill_forward(self, *args, **kwargs):
        sig = self._kdistill_signature
        bound = sig.bind(*args, **kwargs)
        call = {}
        for name, value in bound.arguments.items():
            if sig.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                call.update(value)
            else:
                call[name] = value
        stock = self._kdistill_stock
        rule = self.exit_rule()
        full = (self.training or rule.rule == "none" or call.get("output_hidden_states") or call.get("output_attentions")
                or call.get("inputs_embeds") is not None or call.get("input_ids") is None)
        if full:
            return stock.forward(self, **call)
        from kdistill.selfdistill.adaptive import adaptive_forward

        labels = call.pop("labels", None)
        return_dict = call.pop("return_dict", None)
        logits, layer = adaptive_forward(self, call, rule)
        loss = None
        if labels is not None and labels.dtype in (torch.long, torch.int):
            loss = nn.functional.cross_entropy(logits, labels.view(-1))
        if return_dict is False:
            return (logits,) if loss is None else (loss, logits)
        return EarlyExitOutput(loss=loss, logits=logits, exit_layer=layer)

    def _kdistill_train(self, mode: bool = True):
        """``train()``; with a frozen backbone (FastBERT's second step) everything but the exits stays in eval mode, so
        the final classifier's soft targets and the exits' inputs carry no dropout noise."""
        self._kdistill_base.train(self, mode)
        if mode and getattr(self, "_kdistill_frozen_backbone", False):
            for name, child in self.named_children():
                if name != "kdistill_exits":
                    child.eval()
        return self


def early_exit_config_class(base: str) -> type:
    """The config class of ``kdistill-early-exit-<base>`` (a subclass of the base type's config class)."""
    if base not in _CONFIG_CLASSES:
        if base.startswith(_COMPRESSED):
            from kdistill.compress.modeling import compressed_config_class

            parent = compressed_config_class(base[len(_COMPRESSED):])
        else:
            from transformers.models.auto.configuration_auto import CONFIG_MAPPING

            parent = CONFIG_MAPPING[base]
        name = "KDistillEarlyExit" + parent.__name__.removeprefix("KDistillCompressed")
        if base.startswith(_COMPRESSED):
            name = "KDistillEarlyExitCompressed" + parent.__name__.removeprefix("KDistillCompressed")
        _CONFIG_CLASSES[base] = type(name, (parent,), {"model_type": PREFIX + base, "__module__": __name__,
                                                       "__doc__": f"{parent.__name__} plus early exits."})
        globals()[name] = _CONFIG_CLASSES[base]
    return _CONFIG_CLASSES[base]


def _stock_of(cls: type) -> type:
    """The stock class under a ``kdistill-compressed-*`` class (its direct base), else ``cls`` itself."""
    if str(getattr(getattr(cls, "config_class", None), "model_type", "")).startswith(_COMPRESSED):
        return cls.__bases__[0]
    return cls


def early_exit_model_class(base_cls: type) -> type:
    """The early-exit subclass of a task-model class (stock ``BertForSequenceClassification``, or a pruned one).

    Raises:
        ModelError: a class that is not a sequence classifier.
    """
    if base_cls in _MODEL_CLASSES.values():
        return base_cls
    if base_cls not in _MODEL_CLASSES:
        if not base_cls.__name__.endswith("ForSequenceClassification"):
            raise ModelError(f"early exits go on a sequence classifier, not {base_cls.__name__}")
        stock = _stock_of(base_cls)
        compressed = stock is not base_cls
        base = (_COMPRESSED if compressed else "") + _model_type_of(stock)
        cfg_cls = early_exit_config_class(base)
        signature = inspect.signature(stock.forward)
        params = list(signature.parameters.values())[1:]  # without self

        def __init__(self, config, *args, **kwargs):
            EarlyExitMixin._kdistill_init(self, config, *args, **kwargs)

        def forward(self, *args, **kwargs):
            return EarlyExitMixin._kdistill_forward(self, *args, **kwargs)

        forward.__signature__ = signature
        forward.__doc__ = (f"{stock.__name__}.forward (full depth) by default; with an exit rule in eval mode, batched "
                           "adaptive inference returning EarlyExitOutput (see kdistill.selfdistill.modeling).")

        def train(self, mode: bool = True):
            return EarlyExitMixin._kdistill_train(self, mode)

        name = ("KDistillEarlyExitCompressed" if compressed else "KDistillEarlyExit") + stock.__name__
        _MODEL_CLASSES[base_cls] = type(name, (EarlyExitMixin, base_cls), {
            "config_class": cfg_cls, "__init__": __init__, "forward": forward, "train": train,
            "_kdistill_base": base_cls, "_kdistill_stock": stock,
            "_kdistill_signature": signature.replace(parameters=params), "__module__": __name__,
            "__doc__": f"{base_cls.__name__} with early exits (kdistill.selfdistill.modeling)."})
        globals()[name] = _MODEL_CLASSES[base_cls]
    return _MODEL_CLASSES[base_cls]


def _model_type_of(stock: type) -> str:
    return str(stock.config_class.model_type)


def register_early_exit_classes() -> None:
    """Register ``kdistill-early-exit-<base>`` for every supported layout (stock and pruned) with ``AutoConfig`` and
    ``AutoModelForSequenceClassification``; and their encoder layouts with :data:`kdistill.students.LAYOUTS`.
    Idempotent; called on ``import kdistill.selfdistill``."""
    import transformers
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES as NAMES

    from kdistill.compress.modeling import FAMILIES, compressed_model_class, register_auto_classes
    from kdistill.students.transformer import LAYOUTS

    register_auto_classes()
    for fam, layout in list(LAYOUTS.items()):
        if fam.startswith(("kdistill-", PREFIX)) or fam not in NAMES:
            continue
        stock = getattr(transformers, NAMES[fam], None)
        if stock is None:
            continue
        bases = [(fam, stock)]
        if fam in FAMILIES:
            bases.append((_COMPRESSED + fam, compressed_model_class(stock)))
        for base, cls in bases:
            cfg_cls = early_exit_config_class(base)
            AutoConfig.register(cfg_cls.model_type, cfg_cls, exist_ok=True)
            AutoModelForSequenceClassification.register(cfg_cls, early_exit_model_class(cls), exist_ok=True)
            LAYOUTS.setdefault(PREFIX + base, layout)


def add_exits(model: PreTrainedModel, *, every: int | None = 1, layers: Sequence[int] | None = None,
              pooling: str = "mean", dropout: float | None = None, seed: int = 0) -> PreTrainedModel:
    """A new early-exit model: ``model`` (any supported sequence classifier, pruned too; the teacher or a student)
    with freshly initialised exits; the base weights are copied, ``model`` itself is not changed.

    Args:
        model: the task model. An early-exit model gets new exits (its own are dropped).
        every: an exit after every ``every``-th layer below the last (1 = after each).
        layers: or the exit layers themselves (1-based, in ``1..N-1``).
        pooling: ``mean`` | ``cls`` (see :class:`ExitHead`); dropout: in the heads (default the model's hidden dropout).
        seed: of the heads' initialisation (normal with the config's ``initializer_range``).

    Returns:
        The early-exit model (same device, dtype and train/eval mode), rule ``none``: it predicts exactly as ``model``.

    Raises:
        ModelError: an unsupported layout (BiLSTM, unknown architectures), one layer only, bad exit layers, a base
            whose weights do not fit.
    """
    register_early_exit_classes()
    config = model.config
    base_cls = type(model)
    if is_early_exit(config):
        base_cls = model._kdistill_base
    n = num_layers(config)
    chosen = exit_layers_for(n, every, layers)
    if pooling not in POOLINGS:
        raise ModelError(f"unknown exit pooling '{pooling}'; choose one of: {', '.join(POOLINGS)}")
    d = config.to_dict()
    for k in ("model_type", "transformers_version", "architectures"):
        d.pop(k, None)
    d.update({LAYERS_KEY: chosen, POOLING_KEY: pooling, DROPOUT_KEY: dropout, RULE_KEY: "none", THRESHOLD_KEY: None,
              PATIENCE_KEY: None})
    new_config = early_exit_config_class(base_type(config))(**d)
    if getattr(config, "_attn_implementation", None):
        new_config._attn_implementation = config._attn_implementation
    cls = early_exit_model_class(base_cls)
    ref = next(model.parameters())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with torch.device(ref.device):
            new = cls(new_config).to(ref.dtype)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("kdistill_exits.")}
    missing, unexpected = new.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("kdistill_exits.") and not k.endswith("position_ids")]
    if missing or unexpected:
        raise ModelError(f"the model's weights do not fit its early-exit copy: missing {missing[:4]}, unexpected {unexpected[:4]}")
    return new.train(model.training)


def strip_exits(model: PreTrainedModel) -> PreTrainedModel:
    """The base task model of an early-exit model (a new model without the exits; the same prediction as full depth)."""
    if not is_early_exit(model):
        return model
    d = model.config.to_dict()
    for k in ("model_type", "transformers_version", "architectures", LAYERS_KEY, POOLING_KEY, DROPOUT_KEY, RULE_KEY,
              THRESHOLD_KEY, PATIENCE_KEY):
        d.pop(k, None)
    base = base_type(model.config)
    if base.startswith(_COMPRESSED):
        from kdistill.compress.modeling import compressed_config_class

        cfg = compressed_config_class(base[len(_COMPRESSED):])(**d)
    else:
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING

        cfg = CONFIG_MAPPING[base](**d)
    ref = next(model.parameters())
    with torch.device(ref.device):
        plain = model._kdistill_base(cfg).to(ref.dtype)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("kdistill_exits.")}
    plain.load_state_dict(state, strict=False)
    return plain.train(model.training)


__all__ = ["PREFIX", "EarlyExitMixin", "EnsembleTeacher", "EarlyExitOutput", "ExitHead", "add_exits", "base_type", "early_exit_config_class",
           "early_exit_model_class", "encoder_layers", "exit_layers_for", "family", "hidden_width", "is_early_exit",
           "layers_path", "num_layers", "register_early_exit_classes", "strip_exits"]


class EnsembleTeacher(nn.Module):
    """Several classifiers as one teacher: ``logits = (1/M) Σ_m z_m`` (the born-again ensemble, Furlanello et al. 2018,
    Sec. 3.2). ``forward`` takes the members' inputs and returns an object with ``logits`` ``[B, C]`` float32."""

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        if not members:
            raise KDistillError("an ensemble teacher needs at least one member")
        self.members = nn.ModuleList(members)
        self.config = members[-1].config

    def forward(self, output_hidden_states: bool = False, **inputs):
        logits = torch.stack([m(**inputs).logits.float() for m in self.members]).mean(0)
        from types import SimpleNamespace

        return SimpleNamespace(logits=logits, hidden_states=None)
