"""BiLSTM students of Tang et al. (2019), "Distilling Task-Specific Knowledge from BERT into Simple Neural Networks".

Modules:

* :mod:`~kdistill.students.bilstm.model` — :class:`BiLSTMConfig` and
  :class:`BiLSTMForSequenceClassification` (the paper's Sec. 3 architecture over the teacher's
  tokenisation), saving/loading (:func:`load_student`, :func:`is_bilstm_dir`) and
  :func:`from_teacher_embeddings`;
* :mod:`~kdistill.students.bilstm.word_vectors` — :func:`load_word_vectors`: word2vec/GloVe text
  files mapped onto a tokenizer's vocabulary (:class:`WordVectors`);
* :mod:`~kdistill.students.bilstm.onnx` — :func:`export_onnx` (the unpacked, ONNX-exportable path);
* :mod:`~kdistill.students.bilstm.build` — :func:`build_bilstm_student` (the student of a run, from a
  :class:`~kdistill.config.BiLSTMStudent`) and :func:`export_bilstm` (``kdistill.api.export_onnx``, deprecated: a saved
  folder to ONNX, checked against PyTorch).

Every public name is re-exported here, so ``from kdistill.students.bilstm import X`` works for all of them.
"""

from kdistill.students.bilstm.build import build_bilstm_student, export_bilstm, sample_inputs
from kdistill.students.bilstm.model import (
    CONFIG_NAME,
    EMBEDDING_MODES,
    MODEL_TYPE,
    MULTICHANNEL_MERGES,
    PAPER_SIZES,
    WEIGHTS_NAME,
    BiLSTMConfig,
    BiLSTMForSequenceClassification,
    from_teacher_embeddings,
    is_bilstm_dir,
    load_student,
)
from kdistill.students.bilstm.onnx import export_onnx
from kdistill.students.bilstm.word_vectors import WordVectors, load_word_vectors

__all__ = [
    "CONFIG_NAME", "EMBEDDING_MODES", "MODEL_TYPE", "MULTICHANNEL_MERGES", "PAPER_SIZES", "WEIGHTS_NAME",
    "BiLSTMConfig", "BiLSTMForSequenceClassification", "WordVectors", "build_bilstm_student", "export_bilstm",
    "export_onnx", "from_teacher_embeddings", "is_bilstm_dir", "load_student", "load_word_vectors", "sample_inputs",
]
