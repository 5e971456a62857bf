"""ONNX export of a BiLSTM student (:class:`~kdistill.students.bilstm.model.BiLSTMForSequenceClassification`).

ONNX has no packed sequences, so the exported graph runs the model's unpacked path
(``pack_sequences = False``): the same logits, computed over all ``L`` positions. Loading a saved
folder, exporting it and checking ONNX Runtime against PyTorch is
:func:`kdistill.students.bilstm.build.export_bilstm`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from kdistill.errors import ModelError
from kdistill.students.bilstm.model import BiLSTMForSequenceClassification


class _LogitsOnly(nn.Module):
    def __init__(self, model: BiLSTMForSequenceClassification, names: list[str]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.names, tensors))).logits


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
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ModelError("ONNX export needs the onnx package: pip install onnx") from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training, was_packing = model.training, model.pack_sequences
    model.eval()
    model.pack_sequences = False
    try:
        args = tuple(example_inputs[k] for k in names)
        axes = {k: {0: "batch", 1: "sequence"} for k in names}
        axes["logits"] = {0: "batch"}
        with warnings.catch_warnings():
            # The TorchScript exporter is deprecated but still the one that handles these ops without
            # onnxscript; its LSTM batch-size warning does not apply (h0 is built from the batch axis).
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1")
            torch.onnx.export(_LogitsOnly(model, names), args, str(path), input_names=names, output_names=["logits"],
                              dynamic_axes=axes, opset_version=opset_version, dynamo=False)
    finally:
        model.train(was_training)
        model.pack_sequences = was_packing
    return path


__all__ = ["export_onnx"]
