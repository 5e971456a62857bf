"""A model's deployment variants for the report: ONNX Runtime fp32 (fused where parity holds) and dynamic int8.

The report runs teacher and student through the same steps, so their ORT rows compare like with like; what
each step did (fusions, parity, quantization) is recorded next to its numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kdistill.errors import KDistillError

#: The runtimes a report row can name, in the order they are shown.
RUNTIMES = ("eager_fp32", "ort_fp32", "ort_int8")


@dataclass
class Variant:
    """One way to run a model: ``runtime`` (one of :data:`RUNTIMES`), the module that runs it (PyTorch, or an
    :class:`~kdistill.deploy.runtime.OrtModel`), its file size in MB (1e6 bytes; None for eager, whose size is the
    checkpoint's) and what was done to make it (``facts``: fusions, parity, quantization)."""

    runtime: str
    module: torch.nn.Module
    disk_mb: float | None
    facts: dict[str, Any] = field(default_factory=dict)


def ort_variants(net: torch.nn.Module, tokenizer, workdir: str | Path, *, parity_inputs=None,
                 parity_atol: float = 1e-4) -> list[Variant]:
    """Export ``net`` to ONNX Runtime in ``workdir``: fp32 (ORT's transformer fusions kept only when its logits
    stay within ``parity_atol`` of PyTorch's on ``parity_inputs``) and dynamic int8 of that graph.

    Args:
        net: a classifier (any layout :func:`kdistill.deploy.graph.export_graph` takes).
        tokenizer: its tokenizer.
        workdir: where the ``.onnx`` files go (a temporary folder; the report keeps only numbers).
        parity_inputs: a batch ``{"input_ids": [B, L], ...}`` to compare logits on (default: the trace batch).

    Returns:
        ``[Variant("ort_fp32", ...), Variant("ort_int8", ...)]``.

    Raises:
        KDistillError / ModelError: the export or the fp32 parity failed (the report records the message).
    """
    from kdistill.data.batching import model_logits
    from kdistill.data.samples import sample_inputs
    from kdistill.deploy.graph import export_graph, optimize_graph, quantize_dynamic_graph
    from kdistill.deploy.runtime import OrtModel

    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    plain, fused, int8 = work / "model.onnx", work / "model.optimized.onnx", work / "model.int8.onnx"
    names = export_graph(net, tokenizer, plain)
    if parity_inputs is None:
        pair = bool(getattr(net.config, "pair", False))
        parity_inputs = sample_inputs(tokenizer, [9, 2, 5], [3, 6, 1] if pair else None, seed=1)
    feed = {k: v for k, v in parity_inputs.items() if k in names}
    was_training = net.training
    net.eval()
    with torch.inference_mode():
        ref = model_logits(net(**feed)).float().numpy()
    net.train(was_training)

    def diff(path: Path) -> float:
        return float(np.abs(model_logits(OrtModel(path, net.config)(**feed)).numpy() - ref).max())

    plain_diff = diff(plain)
    if not plain_diff <= parity_atol:
        raise KDistillError(f"ONNX Runtime fp32 logits differ from PyTorch's by {plain_diff:.2e}")
    fp32, facts = plain, {"parity_max_abs_diff": plain_diff, "fusions": {}}
    info = optimize_graph(plain, fused, net.config)
    if info["applied"]:
        fused_diff = diff(fused)
        if fused_diff <= parity_atol:
            fp32, facts = fused, {"parity_max_abs_diff": fused_diff, "fusions": info["fusions"]}
        else:
            facts["fusions_rejected"] = f"parity {fused_diff:.2e}"
    q = quantize_dynamic_graph(fp32, int8)
    return [Variant("ort_fp32", OrtModel(fp32, net.config), round(fp32.stat().st_size / 1e6, 3), facts),
            Variant("ort_int8", OrtModel(int8, net.config), round(int8.stat().st_size / 1e6, 3), {"quantization": q})]


def onnxruntime_available() -> bool:
    """True when ``onnxruntime`` and ``onnx`` import (the report's ORT rows need both)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


__all__ = ["RUNTIMES", "Variant", "onnxruntime_available", "ort_variants"]
