"""Building a BiLSTM student for a run, and exporting a saved one to ONNX.

* :func:`build_bilstm_student` — the student of a ``--student bilstm`` run: sizes, dropout and
  embedding mode from the run's :class:`~kdistill.config.BiLSTMStudent`, embeddings from a word-vector
  file or copied from the teacher, labels from the teacher's config, the pair (siamese) model for
  sentence-pair tasks.
* :func:`export_bilstm` — the deprecated ``kdistill.api.export_onnx``: load a saved student folder, export it with
  :func:`~kdistill.students.bilstm.onnx.export_onnx` and compare ONNX Runtime's logits with PyTorch's.
  The sample inputs come from the folder's own tokenizer (:func:`sample_inputs`), so the export works
  for any language and vocabulary.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from kdistill.data.samples import sample_inputs
from kdistill.errors import ModelError
from kdistill.students.bilstm.model import (BiLSTMConfig, BiLSTMForSequenceClassification, from_teacher_embeddings,
                                           is_bilstm_dir)
from kdistill.students.bilstm.onnx import export_onnx
from kdistill.students.bilstm.word_vectors import load_word_vectors

if TYPE_CHECKING:
    from kdistill.config import BiLSTMStudent
    from kdistill.data.tasks import TaskSpec


def build_bilstm_student(cfg: "BiLSTMStudent", teacher, task: "TaskSpec", tokenizer, *, seed: int = 42):
    """Tang et al. (2019) BiLSTM student over the teacher's tokenizer (:mod:`kdistill.students.bilstm`).

    Embeddings: ``cfg.word_vectors`` (word2vec/GloVe text; coverage is logged) or else a copy of the
    teacher's input word embeddings. Labels come from the teacher's config; the pair (siamese)
    model is built for sentence-pair tasks.

    Args:
        cfg: the student settings (:class:`~kdistill.config.BiLSTMStudent`, or any object with its
            fields); reads ``bilstm_hidden``, ``bilstm_fc``, ``bilstm_dropout``, ``word_vectors`` and
            ``embedding_mode``.
        teacher: the teacher model (its config gives the labels; its input embeddings the default tables).
        task: the task (``task.is_pair`` selects the siamese pair model).
        tokenizer: the teacher's tokenizer (the student reads its token ids).
        seed: seed for the random rows of the embedding table and the LSTM/FC initialisation.

    Returns:
        A :class:`BiLSTMForSequenceClassification` in training mode.

    Raises:
        ModelError / DataError: no tokenizer, a teacher without input embeddings, a bad vector file.
    """
    if tokenizer is None:
        raise ModelError("a bilstm student needs the teacher's tokenizer")
    sizes = {"hidden_size": cfg.bilstm_hidden, "fc_size": cfg.bilstm_fc, "dropout": cfg.bilstm_dropout}
    if not cfg.word_vectors:
        return from_teacher_embeddings(teacher, tokenizer, pair=task.is_pair, embedding_mode=cfg.embedding_mode,
                                       seed=seed, **sizes)
    vectors = load_word_vectors(cfg.word_vectors, tokenizer, seed=seed)
    logging.getLogger("kdistill").info("word vectors %s: %d of %d tokens found (%.1f%%)", cfg.word_vectors,
                                       vectors.found, vectors.total, 100 * vectors.coverage)
    tcfg = teacher.config
    config = BiLSTMConfig.from_tokenizer(
        tokenizer, embedding_dim=int(vectors.weight.shape[1]), pair=task.is_pair, embedding_mode=cfg.embedding_mode,
        num_labels=tcfg.num_labels, id2label=dict(tcfg.id2label), label2id=dict(tcfg.label2id or {}) or None,
        problem_type=tcfg.problem_type, **sizes)
    torch.manual_seed(seed)
    model = BiLSTMForSequenceClassification(config)
    model.init_embeddings(vectors)
    return model.train()


def export_bilstm(model_dir: str | Path, output: str | Path, *, check: bool = True) -> dict[str, Any]:
    """Export a saved BiLSTM student to ONNX (the deprecated ``kdistill.api.export_onnx``; ``kdistill export`` supersedes it).

    The graph takes the tokenizer's ``input_ids`` and ``attention_mask`` (and ``token_type_ids`` for
    sentence-pair models) with dynamic batch and sequence axes and returns ``logits``
    (see :func:`kdistill.students.bilstm.onnx.export_onnx`). The export traces a batch of 2 sentences
    of the tokenizer's own words (:func:`sample_inputs`); with ``check`` and ``onnxruntime``
    installed, the ONNX logits are compared with PyTorch's on a batch of another size and length (3 rows).

    Args:
        model_dir: a folder written by :meth:`BiLSTMForSequenceClassification.save_pretrained`, with the
            tokenizer saved beside it (as ``kdistill distill`` does).
        output: the ``.onnx`` file to write.
        check: compare with ONNX Runtime when it is installed.

    Returns:
        ``{"path", "inputs", "max_abs_diff"}`` (``max_abs_diff`` None when not checked).

    Raises:
        ModelError: ``model_dir`` is not a saved BiLSTM student, has no loadable tokenizer, or ``onnx``
            is not installed.
    """
    from kdistill.models import load_tokenizer

    if not is_bilstm_dir(model_dir):
        raise ModelError(f"'{model_dir}' is not a saved BiLSTM student (config.json model_type 'kdistill-bilstm'); "
                         "use kdistill export for other models")
    net = BiLSTMForSequenceClassification.from_pretrained(model_dir)
    tok = load_tokenizer(str(model_dir))
    pair = bool(net.config.pair)
    path = export_onnx(net, output, sample_inputs(tok, [6, 3], [2, 5] if pair else None))
    diff, names = None, ["input_ids", "attention_mask"] + (["token_type_ids"] if pair else [])
    if check:
        try:
            import onnxruntime as ort
        except ImportError:
            ort = None
        if ort is not None:
            enc = sample_inputs(tok, [9, 1, 4], [3, 7, 1] if pair else None, seed=1)
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            names = [i.name for i in sess.get_inputs()]
            got = sess.run(None, {k: enc[k].numpy() for k in names})[0]
            with torch.inference_mode():
                ref = net(**enc).logits.numpy()
            diff = float(abs(got - ref).max())
    return {"path": str(path), "inputs": names, "max_abs_diff": diff}


__all__ = ["build_bilstm_student", "export_bilstm", "sample_inputs"]
