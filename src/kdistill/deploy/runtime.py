"""ONNX Runtime sessions, and an ORT graph wrapped as a module so the engine's ``predict`` and the report's
interleaved timing run it exactly like a PyTorch model."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from kdistill.errors import ModelError


def ort_session(path: str | Path, *, threads: int | None = None, spinning: bool = False):
    """An ``onnxruntime.InferenceSession`` on the CPU execution provider.

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads (default: torch's current thread count, so ORT and PyTorch are timed alike).
        spinning: let ORT's worker threads spin after each run (ORT's default). Off here: timed interleaved with
            PyTorch in one process, the spinning threads steal the cores PyTorch needs next (on a 2-core machine
            it made the eager teacher look 3.8x slower than ORT instead of 1.5x).

    Raises:
        ModelError: onnxruntime is not installed, or the file does not load.
    """
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelError("ONNX Runtime is not installed: pip install onnxruntime") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or torch.get_num_threads())
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - one line naming the file
        raise ModelError(f"ONNX Runtime cannot load '{path}' ({type(err).__name__}: {str(err).splitlines()[0][:160]})") from err


class OrtModel(torch.nn.Module):
    """An ONNX classifier graph behind a ``torch.nn.Module`` face.

    ``forward(input_ids [B, L], attention_mask [B, L], token_type_ids [B, L])`` (long tensors; extra keys the
    graph does not take are ignored) runs the session and returns ``SimpleNamespace(logits=[B, C] float32)``
    (``start_logits``, ``end_logits`` ``[B, L]`` for a question-answering graph).
    ``config`` is the source model's config (``max_position_embeddings``, labels), so code that reads it works.
    The module holds no parameters except an empty placeholder (``predict`` asks it for a device).

    Args:
        path: the ``.onnx`` file; ``config``: the source model's config; ``threads``: see :func:`ort_session`.
    """

    def __init__(self, path: str | Path, config=None, *, threads: int | None = None):
        super().__init__()
        self.path = Path(path)
        self.session = ort_session(path, threads=threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.config = config
        self._device_anchor = torch.nn.Parameter(torch.zeros(0), requires_grad=False)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, **_):
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        feed = {}
        for name in self.input_names:
            value = given.get(name)
            if value is None:  # the graph takes it, the batch lacks it: ones for the mask, zeros otherwise
                fill = torch.ones_like if name == "attention_mask" else torch.zeros_like
                value = fill(input_ids)
            feed[name] = np.ascontiguousarray(value.detach().cpu().numpy().astype(np.int64, copy=False))
        found = self.session.run(None, feed)
        if self.output_names[:2] == ["start_logits", "end_logits"]:  # question answering
            start, end = (torch.from_numpy(np.asarray(x, dtype=np.float32)) for x in found[:2])
            return SimpleNamespace(start_logits=start, end_logits=end)
        return SimpleNamespace(logits=torch.from_numpy(np.asarray(found[0], dtype=np.float32)))


__all__ = ["OrtModel", "ort_session"]
