"""ONNX export of a BiLSTM student (:class:`~kdistill.students.bilstm.model.BiLSTMForSequenceClassification`).

ONNX has no packed sequences, so the exported graph runs the model's unpacked path
(``pack_sequences = False``): the same logits, computed over all ``L`` positions. Loading a saved
folder, exporting it and checking ONNX Runtime against PyTorch is
:func:`kdistill.students.bilstm.build.export_bilstm`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch

from kdistill.deploy.graph import LogitsOf, export_module
from kdistill.errors import ModelError
from kdistill.students.bilstm.model import BiLSTMForSequenceClassification


def export_onnx(model: BiLSTMForSequenceClassification, path: str | Path,
                example_inputs: Mapping[str, torch.Tensor], *, opset_version: int = 17) -> Path:
    """Export ``model`` to ONNX with dynamic batch and sequence axes (TorchScript-based exporter).

    The graph uses the unpacked path of :meth:`BiLSTMForSequenceClassification.encode` (ONNX has
    no packed sequences): the same logits, with each LSTM direction run over all ``L`` positions.

    Args:
        model: the student (exported in eval mode; its training flag is restored).
        path: the ``.onnx`` file to write.
        example_inputs: ``input_ids`` ``[B, L]`` and optionally ``attention_mask`` and
            ``token_type_ids``; the ONNX graph takes the same names (``token_type_ids`` only for pair
            models, which use it) and returns ``logits`` ``[B, C]``.
        opset_version: ONNX opset.

    Returns:
        ``Path(path)``.

    Raises:
        ModelError: no ``input_ids`` in ``example_inputs``, or the ``onnx`` package is missing.
    """
    wanted = ("input_ids", "attention_mask", "token_type_ids") if model.config.pair else ("input_ids", "attention_mask")
    names = [k for k in wanted if k in example_inputs]
    if "input_ids" not in names:
        raise ModelError("export_onnx needs example_inputs with 'input_ids' (and optionally attention_mask, token_type_ids)")
    path = Path(path)
    was_training, was_packing = model.training, model.pack_sequences
    model.eval()
    model.pack_sequences = False
    try:
        args = tuple(example_inputs[k] for k in names)
        axes = {k: {0: "batch", 1: "sequence"} for k in names}
        axes["logits"] = {0: "batch"}
        # the TorchScript exporter (deploy's one export call); its LSTM batch-size warning does not apply (h0 is
        # built from the batch axis)
        export_module(LogitsOf(model, names).eval(), args, path, input_names=names, output_names=["logits"],
                      dynamic_axes=axes, what=type(model).__name__, opset_version=opset_version)
    finally:
        model.train(was_training)
        model.pack_sequences = was_packing
    return path


__all__ = ["export_onnx"]
