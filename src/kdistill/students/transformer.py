"""Transformer students: a copy of a subset of the teacher's layers, or a fresh model from a spec.

Works on Hugging Face encoders with the BERT layout (an embedding block, a list of
identical encoder layers, an optional pooler and a classification head): BERT,
RoBERTa, DistilBERT, ELECTRA (and their close relatives below). Anything else gets a
:class:`~kdistill.errors.ModelError` rather than a crash.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

import torch
from transformers import AutoModelForSequenceClassification, PretrainedConfig, PreTrainedModel

from kdistill.errors import ModelError


@dataclass(frozen=True)
class EncoderLayout:
    """Where an architecture keeps its encoder layers.

    Attributes:
        layers_path: dotted path, relative to the task model, of the ``nn.ModuleList`` of layers.
        num_layers_attr: config attribute holding the layer count.
    """

    layers_path: str
    num_layers_attr: str


LAYOUTS: dict[str, EncoderLayout] = {
    "bert": EncoderLayout("bert.encoder.layer", "num_hidden_layers"),
    "roberta": EncoderLayout("roberta.encoder.layer", "num_hidden_layers"),
    "xlm-roberta": EncoderLayout("roberta.encoder.layer", "num_hidden_layers"),
    "camembert": EncoderLayout("roberta.encoder.layer", "num_hidden_layers"),
    "electra": EncoderLayout("electra.encoder.layer", "num_hidden_layers"),
    "distilbert": EncoderLayout("distilbert.transformer.layer", "n_layers"),
    # the encoders users fine-tune today: layer copy, spec students, KD on logits and hidden states, export
    # (MPNet's relative-position bias and DeBERTa's relative embeddings sit outside the layers and are copied whole)
    "mpnet": EncoderLayout("mpnet.encoder.layer", "num_hidden_layers"),
    "deberta-v2": EncoderLayout("deberta.encoder.layer", "num_hidden_layers"),
    "modernbert": EncoderLayout("model.layers", "num_hidden_layers"),
}


#: Layouts whose attention cannot be captured (own attention code, not transformers' AttentionInterface).
NO_CAPTURE = frozenset({"deberta-v2", "modernbert"})  # MPNet is captured by hooks (kdistill.students.capture)


def layout_for(config: PretrainedConfig) -> EncoderLayout:
    """Return the :class:`EncoderLayout` of ``config.model_type``.

    Raises:
        ModelError: for an architecture without the BERT layout.
    """
    try:
        return LAYOUTS[config.model_type]
    except KeyError:
        raise ModelError(
            f"model type '{config.model_type}' is not supported for layer copying; supported: "
            f"{', '.join(sorted(LAYOUTS))} (use a BERT-layout encoder as teacher)"
        ) from None


def num_layers(config: PretrainedConfig) -> int:
    """Number of encoder layers of a supported model config."""
    return int(getattr(config, layout_for(config).num_layers_attr))


def default_layers(n_teacher: int, n_student: int | None = None) -> list[int]:
    """Evenly spaced teacher layers, always keeping the first and the last.

    With ``n_student = ceil(n_teacher / 2)`` (the default) this is "every other layer"
    as in DistilBERT (Sanh et al. 2019, Sec. 3: 12 → 6 gives ``[0, 2, 4, 7, 9, 11]``;
    6 → 3 gives ``[0, 2, 5]``).

    Raises:
        ModelError: if ``n_student`` is not in ``[1, n_teacher]``.
    """
    n_student = (n_teacher + 1) // 2 if n_student is None else n_student
    if not 1 <= n_student <= n_teacher:
        raise ModelError(f"a student needs 1..{n_teacher} layers of this teacher, got {n_student}")
    if n_student == 1:
        return [n_teacher - 1]
    step = (n_teacher - 1) / (n_student - 1)
    return [int(round(i * step)) for i in range(n_student)]


def layers_from_teacher(teacher: PreTrainedModel, layers: list[int] | None = None) -> PreTrainedModel:
    """Build a shallower student by copying the teacher's embeddings, a subset of its layers, pooler and head.

    DistilBERT's initialisation (Sanh et al. 2019, Sec. 3, "Student initialization"):
    student layer ``j`` starts as teacher layer ``layers[j]``; everything outside the
    layer stack (embeddings, pooler, classifier) is copied unchanged.

    Args:
        teacher: a task model (e.g. ``BertForSequenceClassification``) with a supported layout.
        layers: strictly increasing teacher layer indices to keep; default :func:`default_layers`.

    Returns:
        A new model of the teacher's class with ``len(layers)`` layers, in train mode.

    Raises:
        ModelError: unsupported architecture, or layer indices out of range / not increasing.
    """
    layout = layout_for(teacher.config)
    n_t = num_layers(teacher.config)
    layers = default_layers(n_t) if layers is None else [int(i) for i in layers]
    if not layers or any(i < 0 or i >= n_t for i in layers) or sorted(set(layers)) != layers:
        raise ModelError(
            f"--layers must be strictly increasing teacher layer indices in 0..{n_t - 1}, got {layers}"
        )
    config = copy.deepcopy(teacher.config)
    setattr(config, layout.num_layers_attr, len(layers))
    if isinstance(getattr(config, "layer_types", None), list):  # ModernBERT: each copied layer keeps its attention type
        config.layer_types = [teacher.config.layer_types[i] for i in layers]
    student = type(teacher)(config)
    prefix = layout.layers_path + "."
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.(.*)")
    remap = {t: s for s, t in enumerate(layers)}
    new_state = {}
    for key, value in teacher.state_dict().items():
        m = pattern.fullmatch(key)
        if m is None:
            new_state[key] = value.clone()
        elif int(m.group(1)) in remap:
            new_state[f"{prefix}{remap[int(m.group(1))]}.{m.group(2)}"] = value.clone()
    missing, unexpected = student.load_state_dict(new_state, strict=False)
    # Tied/buffer entries may legitimately be absent; real weights must all be copied.
    real_missing = [k for k in missing if not k.endswith("position_ids")]
    if real_missing or unexpected:
        raise ModelError(f"could not copy teacher weights into the student: missing {real_missing[:5]}, unexpected {unexpected[:5]}")
    student.config.kdistill_layers = list(layers)
    return student.train()


def from_spec(
    base_config: PretrainedConfig,
    *,
    num_layers: int,
    hidden_size: int,
    num_heads: int,
    intermediate_size: int | None = None,
    seed: int | None = None,
    head: str = "classifier",
) -> PreTrainedModel:
    """A randomly initialised student of the teacher's architecture family with a new shape.

    Keeps vocabulary, label set, position and type-vocab sizes of ``base_config`` (so the
    teacher's tokenizer serves the student); replaces depth, width, heads and FFN size.

    Args:
        base_config: the teacher's config.
        num_layers, hidden_size, num_heads: student shape; ``hidden_size % num_heads == 0``.
        intermediate_size: FFN width; default ``4 * hidden_size``.
        seed: seed for the random initialisation.
        head: ``classifier`` (``AutoModelForSequenceClassification``; ``AutoModelForTokenClassification`` or
            ``AutoModelForQuestionAnswering`` when the teacher is a token classifier or a question-answering model), ``tokens`` (``AutoModelForTokenClassification``) or ``mlm``
            (``AutoModelForMaskedLM``, decoder tied to the input embeddings: a student for DistilBERT's general
            distillation).

    Raises:
        ModelError: unsupported architecture or an inconsistent shape.
    """
    layout = layout_for(base_config)
    if num_layers < 1 or hidden_size < 1 or num_heads < 1 or hidden_size % num_heads:
        raise ModelError(
            f"student spec needs layers >= 1 and hidden size divisible by heads, got layers={num_layers}, "
            f"hidden={hidden_size}, heads={num_heads}"
        )
    config = copy.deepcopy(base_config)
    setattr(config, layout.num_layers_attr, num_layers)
    if isinstance(getattr(config, "layer_types", None), list):  # ModernBERT: the teacher's global/local pattern
        every = int(getattr(config, "global_attn_every_n_layers", 1) or 1)
        config.layer_types = ["full_attention" if i % every == 0 else "sliding_attention" for i in range(num_layers)]
    ffn = intermediate_size or 4 * hidden_size
    if config.model_type == "distilbert":
        config.dim, config.n_heads, config.hidden_dim = hidden_size, num_heads, ffn
    else:
        config.hidden_size, config.num_attention_heads, config.intermediate_size = hidden_size, num_heads, ffn
        if hasattr(config, "embedding_size"):  # ELECTRA
            config.embedding_size = hidden_size
        if hasattr(config, "pooler_hidden_size"):  # DeBERTa's pooler
            config.pooler_hidden_size = hidden_size
    if seed is not None:
        torch.manual_seed(seed)
    if head == "mlm":
        from transformers import AutoModelForMaskedLM

        return AutoModelForMaskedLM.from_config(config).train()
    if head == "tokens" or any(a.endswith("ForTokenClassification") for a in (config.architectures or [])):
        from transformers import AutoModelForTokenClassification  # a token-classification teacher: the same head

        return AutoModelForTokenClassification.from_config(config).train()
    if any(a.endswith("ForQuestionAnswering") for a in (config.architectures or [])):
        from transformers import AutoModelForQuestionAnswering  # a question-answering teacher: start/end head

        return AutoModelForQuestionAnswering.from_config(config).train()
    return AutoModelForSequenceClassification.from_config(config).train()




def check_layerwise_pair(student, teacher) -> None:
    """Raise :class:`ModelError` when the two models cannot be distilled layer by layer (TinyBERT, MiniLM).

    Both must run through transformers' attention interface (a supported encoder layout) and the
    student may not be deeper than the teacher.
    """
    for what, model in (("student", student), ("teacher", teacher)):
        layout_for(model.config)  # raises for unsupported architectures
        if not hasattr(model, "set_attn_implementation"):
            raise ModelError(f"TinyBERT needs a transformers encoder {what}; got {type(model).__name__}")
        if str(model.config.model_type).removeprefix("kdistill-compressed-") in NO_CAPTURE:
            raise ModelError(f"layer-wise distillation captures attention, which {model.config.model_type} models ({what}) do "
                             "not route through transformers' AttentionInterface; use --method kd (with --cos-weight for "
                             "hidden states)")
    m, n = num_layers(student.config), num_layers(teacher.config)
    if m > n:
        raise ModelError(f"the student has {m} layers, the teacher {n}: a TinyBERT student must not be deeper than its teacher")
