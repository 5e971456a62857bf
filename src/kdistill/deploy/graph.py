"""PyTorch classifier → ONNX graph → (ONNX Runtime's transformer optimizer) → int8, with ONNX Runtime's own tools.

Which exporter: Hugging Face's ``optimum`` exporter would be the well-kept choice, but its current release
(optimum-onnx 0.1.0, optimum 2.1) requires ``transformers < 4.58`` and this project runs on transformers 5, so
every model kind takes ``torch.onnx.export`` (the TorchScript exporter, opset 17, dynamic batch and sequence axes;
the dynamo exporter needs ``onnxscript`` and gave no gain here). Transformer encoders are exported with *eager*
attention: its MatMul/Softmax pattern is the one ONNX Runtime's attention fusion recognises (SDPA exports correctly
but fuses only LayerNorm and GELU). The trace batch always holds a padded row, so no mask branch is frozen away.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import torch
from torch import nn

from kdistill.errors import ModelError

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17


class LogitsOf(nn.Module):
    """``forward(*tensors)`` → ``model(**dict(zip(names, tensors))).logits`` — or, for a question-answering model,
    its ``(start_logits, end_logits)``: the traced function."""

    def __init__(self, model: nn.Module, names: list[str]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *tensors: torch.Tensor):
        out = self.model(**dict(zip(self.names, tensors)))
        if is_qa_model(self.model):
            return out.start_logits, out.end_logits
        return out.logits


def is_qa_model(model: nn.Module) -> bool:
    """True for an extractive question-answering model (``*ForQuestionAnswering``: start and end logits)."""
    return type(model).__name__.endswith("ForQuestionAnswering")


def graph_outputs(model: nn.Module) -> list[str]:
    """The graph's output names: ``logits``, or ``start_logits`` and ``end_logits`` for question answering."""
    return ["start_logits", "end_logits"] if is_qa_model(model) else ["logits"]


def graph_inputs(model: nn.Module, tokenizer) -> list[str]:
    """Names the graph takes: those of ``input_ids, attention_mask, token_type_ids`` that both the tokenizer produces
    and ``model.forward`` names as parameters (a ``**kwargs`` that would swallow an unused input does not count:
    DistilBERT takes no ``token_type_ids``); a single-sentence BiLSTM ignores token types."""
    import inspect

    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        params = {}
    made = set(getattr(tokenizer, "model_input_names", MODEL_INPUTS))
    names = [n for n in MODEL_INPUTS if n in made and (not params or n in params)]
    if getattr(getattr(model, "config", None), "pair", None) is False:
        names = [n for n in names if n != "token_type_ids"]
    return names


def export_module(module: nn.Module, args: tuple, path: str | Path, *, input_names: list[str],
                  output_names: list[str], dynamic_axes: Mapping[str, Mapping[int, str]], what: str,
                  opset_version: int = OPSET) -> None:
    """kdistill's one call of ``torch.onnx.export``: every graph (a classifier, a BiLSTM, an early-exit segment) goes
    through here — the TorchScript exporter (``dynamo=False``), its tracer warnings silenced (parity is checked after,
    by the caller), the parent folder created, any failure one line.

    Args:
        module: called as ``module(*args)`` (in eval mode; the caller sets it).
        args: the trace inputs (tensors), in the order of ``input_names``.
        path: the ``.onnx`` file to write.
        input_names / output_names: the graph's names; ``dynamic_axes``: per name, ``{axis: name}``.
        what: the model, in the error message.
        opset_version: ONNX opset (17: LayerNormalization is one op).

    Raises:
        ModelError: ``onnx`` is missing, or the exporter fails (one line with its reason).
    """
    try:
        import onnx  # noqa: F401 - the exporter writes through it
    except ImportError:
        raise ModelError("ONNX export needs the onnx package: pip install onnx") from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about Python-level shape checks; parity is checked after
            torch.onnx.export(module, args, str(path), input_names=input_names, output_names=output_names,
                              dynamic_axes=dict(dynamic_axes), opset_version=opset_version, dynamo=False)
    except Exception as err:  # noqa: BLE001 - one line
        raise ModelError(f"torch.onnx.export failed for {what} ({type(err).__name__}: "
                         f"{str(err).splitlines()[0][:200] if str(err) else ''})") from err


def export_graph(model: nn.Module, tokenizer, path: str | Path, *, example: Mapping[str, torch.Tensor] | None = None,
                 opset_version: int = OPSET) -> list[str]:
    """Export ``model`` (a sequence or token classifier returning ``.logits``, or a question-answering model) to ONNX
    at ``path``.

    The graph takes :func:`graph_inputs` (``[batch, sequence]`` int64, both axes dynamic) and returns ``logits``
    ``[batch, C]`` float32 (``[batch, sequence, C]`` per token), or ``start_logits`` and ``end_logits``
    ``[batch, sequence]`` for question answering. A BiLSTM student runs its unpacked path (ONNX has no packed sequences; same logits).

    Args:
        model: a transformers classifier (any layout, incl. pruned/factorised kdistill models) or a BiLSTM student.
        tokenizer: the model's tokenizer; it builds the trace batch (its own words, one padded row) unless
            ``example`` is given.
        path: the ``.onnx`` file to write.
        opset_version: ONNX opset (17: LayerNormalization is one op).

    Returns:
        The input names of the graph, in order.

    Raises:
        ModelError: ``onnx`` is missing, or the exporter fails (one line with its reason).
    """
    from kdistill.data.samples import sample_inputs

    names = graph_inputs(model, tokenizer)
    if example is None:
        pair = bool(getattr(model.config, "pair", False))
        example = sample_inputs(tokenizer, [6, 3], [2, 5] if pair else None)
    args = tuple(example[k] for k in names)
    was_training = model.training
    restore = _prepare_for_export(model)
    model.eval()
    wrapper = LogitsOf(model, names).eval()  # export restores the wrapper's mode: it must be eval too
    axes = {k: {0: "batch", 1: "sequence"} for k in names}
    outputs = graph_outputs(model)
    for name in outputs:  # per-token outputs (token classification, QA) keep the sequence axis dynamic too
        axes[name] = {0: "batch"} if name == "logits" else {0: "batch", 1: "sequence"}
    try:
        export_module(wrapper, args, path, input_names=names, output_names=outputs, dynamic_axes=axes,
                      what=type(model).__name__, opset_version=opset_version)
    finally:
        restore()
        model.train(was_training)
    return names


def _prepare_for_export(model: nn.Module):
    """Eager attention for transformers (fusable), the unpacked path for a BiLSTM; returns the undo function."""
    if hasattr(model, "pack_sequences"):
        before = model.pack_sequences
        model.pack_sequences = False
        return lambda: setattr(model, "pack_sequences", before)
    return eager_attention(model)


def eager_attention(model: nn.Module):
    """Switch a transformers model to eager attention (its MatMul/Softmax pattern exports and fuses best in ONNX
    Runtime); returns the function that switches it back (a no-op where there is nothing to switch)."""
    before = getattr(getattr(model, "config", None), "_attn_implementation", None)
    if before and before != "eager" and hasattr(model, "set_attn_implementation"):
        try:
            model.set_attn_implementation("eager")
            return lambda: model.set_attn_implementation(before)
        except Exception:  # noqa: BLE001 - a model without the eager path exports with its own
            pass
    return lambda: None


def transformer_geometry(config) -> tuple[str, int, int] | None:
    """``(ort model_type, num_heads, hidden_size)`` for ONNX Runtime's optimizer, or None (not a transformer).

    ``num_heads`` is 0 (let the optimizer read it per node) when pruning left layers with different head counts.
    """
    hidden = getattr(config, "hidden_size", None) or getattr(config, "dim", None)
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_heads", None)
    if not hidden or not heads or getattr(config, "model_type", "") == "kdistill-bilstm":
        return None
    per_layer = getattr(config, "kdistill_heads_per_layer", None)
    if per_layer and len(set(per_layer)) == 1:
        heads = int(per_layer[0])
    elif per_layer:
        heads = 0
    if getattr(config, "kdistill_lowrank", None):
        heads = 0  # factorised projections: the fused Attention op's packed weights do not apply
    return "bert", int(heads), int(hidden)


def optimize_graph(src: str | Path, dst: str | Path, config) -> dict[str, Any]:
    """ONNX Runtime's transformer optimizer (attention, LayerNorm, GELU, embedding fusion) on ``src`` → ``dst``.

    Returns:
        ``{"applied": bool, "fusions": {op: count}}``; ``applied`` False (and ``dst`` not written) for a model that
        is not a transformer encoder (a BiLSTM) or when no fusion applied.
    """
    geometry = transformer_geometry(config)
    if geometry is None:
        return {"applied": False, "reason": "not a transformer encoder", "fusions": {}}
    from onnxruntime.transformers.optimizer import optimize_model

    kind, heads, hidden = geometry
    import logging

    quiet = logging.getLogger("onnxruntime.transformers")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        opt = optimize_model(str(src), model_type=kind, num_heads=heads, hidden_size=hidden if heads else 0)
    finally:
        quiet.setLevel(level)
    fusions = {k: int(v) for k, v in (opt.get_fused_operator_statistics() or {}).items() if v}
    if not fusions:
        return {"applied": False, "reason": "no fusion pattern matched", "fusions": {}}
    opt.save_model_to_file(str(dst))
    return {"applied": True, "fusions": fusions}


#: Fused ONNX Runtime ops (com.microsoft domain) defeat ONNX shape inference; their outputs are float.
_DEFAULT_FLOAT = {"DefaultTensorType": 1}  # onnx.TensorProto.FLOAT


@contextmanager
def _quantizer(mode: str):
    """ONNX Runtime's quantizer failing becomes one line naming the mode; its per-tensor root-logger warnings are muted."""
    import logging

    logging.disable(logging.WARNING)
    try:
        yield
    except Exception as err:  # noqa: BLE001
        raise ModelError(f"ONNX Runtime's {mode} int8 quantizer failed ({type(err).__name__}: "
                         f"{str(err).splitlines()[0][:200]}); try another --quantize mode or none") from err
    finally:
        logging.disable(logging.NOTSET)


def quantize_dynamic_graph(src: str | Path, dst: str | Path) -> dict[str, Any]:
    """Dynamic int8 quantization (ONNX Runtime ``quantize_dynamic``): int8 weights per output channel, activations
    quantized at run time from their observed range. Returns what was used."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quantizer("dynamic"):
        quantize_dynamic(str(src), str(dst), per_channel=True, weight_type=QuantType.QInt8,
                         extra_options=_DEFAULT_FLOAT)
    return {"mode": "dynamic", "weights": "int8, per channel", "activations": "uint8, dynamic range per run"}


class _Calibration:
    """ONNX Runtime ``CalibrationDataReader`` over a list of feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]):
        self._it = iter(feeds)

    def get_next(self):
        return next(self._it, None)

    def rewind(self):  # pragma: no cover - newer ORT versions may call it
        pass


def quantize_static_graph(src: str | Path, dst: str | Path, feeds: Iterable[dict[str, np.ndarray]], *,
                          n_examples: int) -> dict[str, Any]:
    """Static int8 quantization in QDQ format (ONNX Runtime ``quantize_static``), calibrated on ``feeds``.

    MatMul/Gemm (and fused Attention) inputs and weights are quantized: int8 weights per channel, uint8 activations
    with ranges fixed by MinMax calibration over the feeds (batches of training examples). ``n_examples`` is only
    recorded. Returns what was used.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    dst = Path(dst)
    prep = dst.with_name(dst.stem + ".prep.onnx")
    try:
        try:
            quant_pre_process(str(src), str(prep), skip_symbolic_shape=True)
        except Exception:  # noqa: BLE001 - pre-processing is an optimisation; quantize the graph as it is
            prep = Path(src)
        with _quantizer("static"):
            quantize_static(str(prep), str(dst), _Calibration(list(feeds)), quant_format=QuantFormat.QDQ,
                            op_types_to_quantize=["MatMul", "Gemm", "Attention"], per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax, extra_options=_DEFAULT_FLOAT)
    finally:
        if prep != Path(src) and prep.exists():
            prep.unlink()
        for extra in dst.parent.glob("augmented_model*.onnx"):
            extra.unlink()
    return {"mode": "static", "format": "QDQ", "weights": "int8, per channel", "activations": "uint8, MinMax-calibrated",
            "calibration_examples": int(n_examples), "ops": ["MatMul", "Gemm", "Attention"]}


__all__ = ["MODEL_INPUTS", "OPSET", "export_graph", "graph_inputs", "optimize_graph", "quantize_dynamic_graph",
           "quantize_static_graph", "transformer_geometry"]
