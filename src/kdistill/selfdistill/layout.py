"""Where things are in the models early exits go on: the base type under a kdistill type, the encoder layers.

Shared by :mod:`~kdistill.selfdistill.modeling` and :mod:`~kdistill.selfdistill.adaptive` (no import cycle).
"""

from __future__ import annotations

from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from kdistill.errors import ModelError

PREFIX = "kdistill-early-exit-"
COMPRESSED_PREFIX = "kdistill-compressed-"


def base_type(config: PretrainedConfig) -> str:
    """The model type an early-exit config extends (``bert``, ``kdistill-compressed-bert`` ...); others: their own."""
    mt = str(config.model_type)
    return mt[len(PREFIX):] if mt.startswith(PREFIX) else mt


def family(config: PretrainedConfig) -> str:
    """The stock architecture under any kdistill type (``bert`` for ``kdistill-early-exit-kdistill-compressed-bert``)."""
    mt = base_type(config)
    return mt[len(COMPRESSED_PREFIX):] if mt.startswith(COMPRESSED_PREFIX) else mt


def is_early_exit(obj) -> bool:
    """True for an early-exit model or config."""
    config = getattr(obj, "config", obj)
    return str(getattr(config, "model_type", "")).startswith(PREFIX)


def layout_of(config: PretrainedConfig):
    """The :class:`~kdistill.students.transformer.EncoderLayout` of ``config``'s architecture.

    Raises:
        ModelError: a model without a supported encoder layout (a BiLSTM student, unknown architectures).
    """
    from kdistill.students.transformer import LAYOUTS

    fam = family(config)
    if fam not in LAYOUTS:
        what = "a BiLSTM student" if fam == "kdistill-bilstm" else f"model type '{config.model_type}'"
        raise ModelError(f"early exits need a transformer encoder with a supported layout ({', '.join(sorted(LAYOUTS))}); "
                         f"{what} has no encoder layers to put exits after")
    return LAYOUTS[fam]


def num_layers(config: PretrainedConfig) -> int:
    """Encoder layers of ``config``'s architecture."""
    return int(getattr(config, layout_of(config).num_layers_attr))


def hidden_width(config: PretrainedConfig) -> int:
    """Width of the encoder's token states (``hidden_size``; DistilBERT's ``dim``)."""
    return int(getattr(config, "hidden_size", None) or getattr(config, "dim"))


def layers_path(model: PreTrainedModel) -> str:
    """Dotted path of the encoder layers inside ``model`` (a task model)."""
    return layout_of(model.config).layers_path


def encoder_layers(model: PreTrainedModel) -> nn.ModuleList:
    """The ``nn.ModuleList`` of encoder layers of a task model of a supported layout."""
    return model.get_submodule(layers_path(model))


__all__ = ["COMPRESSED_PREFIX", "PREFIX", "base_type", "encoder_layers", "family", "hidden_width", "is_early_exit",
           "layers_path", "layout_of", "num_layers"]
