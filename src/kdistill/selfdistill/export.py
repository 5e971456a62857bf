"""An early-exit model in ONNX Runtime: one graph per segment, and a small driver that keeps exiting.

Segment ``j`` runs the encoder layers between exit ``j − 1`` and exit ``j`` and then exit ``j``'s head; the first also
runs the embeddings, the last runs the remaining layers and the model's own head:

* ``segment_0.onnx``: ``(input_ids, attention_mask[, token_type_ids]) → (hidden [B, L, H], exit_logits [B, C])``;
* ``segment_j.onnx``: ``(hidden, input_ids, attention_mask[, token_type_ids]) → (hidden, exit_logits)``;
* ``segment_E.onnx`` (final): ``(hidden, input_ids, attention_mask[, token_type_ids]) → logits [B, C]``.

Every segment is traced from the same code as the PyTorch adaptive path (:mod:`kdistill.selfdistill.adaptive`: the
library's own mask / position-bias code, recomputed inside each graph from the inputs), with eager attention, a trace
batch that holds a padded row, and dynamic batch and sequence axes. :class:`OrtEarlyExit` runs the segments in turn
with the exit rule of :mod:`kdistill.selfdistill.rules`: rows that exit leave the batch (and trailing all-padding
columns are dropped), exactly as in PyTorch. The export is parity-checked: full depth (no exit) against the PyTorch
logits, and the chosen rule's exit layers and logits against the PyTorch adaptive path; above ``atol`` it is refused.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from kdistill.deploy.graph import eager_attention, export_module
from kdistill.errors import KDistillError, ModelError
from kdistill.selfdistill.rules import ExitRule, RuleState

MANIFEST = "early_exit.json"


class _Segment(nn.Module):
    """The traced function of one segment (see the module docstring)."""

    def __init__(self, model, start: int, stop: int, head: int | None, names: list[str], first: bool):
        super().__init__()
        self.model, self.start, self.stop, self.head, self.names, self.first = model, start, stop, head, names, first

    def forward(self, *tensors):
        from kdistill.selfdistill.adaptive import capture, run_layer, tail
        from kdistill.selfdistill.layout import encoder_layers

        if self.first:
            inputs, hidden = dict(zip(self.names, tensors)), None
        else:
            hidden, inputs = tensors[0], dict(zip(self.names, tensors[1:]))
        layers = encoder_layers(self.model)
        h0, ctx = capture(self.model, inputs)
        h = h0 if hidden is None else hidden
        if self.head is None:  # the final segment: layers up to the last, then the model's own head
            for i in range(self.start, len(layers) - 1):
                h = run_layer(layers[i], h, ctx)
            return tail(self.model, h, inputs)
        for i in range(self.start, self.stop):
            h = run_layer(layers[i], h, ctx)
        return h, self.model.kdistill_exits[self.head](h, inputs.get("attention_mask"))


def export_early_exit(model_dir: str | Path, output: str | Path, *, rule: str | None = None, threshold: float | None = None,
                      patience: int | None = None, check_texts: list | None = None, atol: float = 1e-4,
                      overwrite: bool = False, opset_version: int = 17) -> dict[str, Any]:
    """Export the early-exit model saved in ``model_dir`` as per-segment ONNX graphs into ``output``.

    Args:
        model_dir: a saved early-exit model (with its tokenizer).
        output: the folder to write (``segment_*.onnx``, ``early_exit.json``, tokenizer, ``config.json``).
        rule / threshold / patience: the exit rule the driver uses by default (default: the model config's; ``none`` =
            full depth). The folder records it; :class:`OrtEarlyExit` takes another at load.
        check_texts: texts (or ``(a, b)`` pairs) for the parity check (default: a few made of the tokenizer's words).
        atol: the largest |ORT − PyTorch| logit difference accepted.
        overwrite: replace an earlier export in ``output``.

    Returns:
        The manifest (``early_exit.json``): segments, inputs, rule, parity (max differences, exit-layer agreement).

    Raises:
        ModelError: not an early-exit model, onnx / onnxruntime missing, the exporter failing, parity above ``atol``.
        KDistillError: ``output`` not empty without ``overwrite``, or a bad rule.
    """
    from kdistill.deploy.graph import graph_inputs
    from kdistill.models import load_tokenizer
    from kdistill.selfdistill.modeling import is_early_exit, register_early_exit_classes
    from transformers import AutoModelForSequenceClassification

    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise ModelError("the early-exit export needs onnx and onnxruntime: pip install onnx onnxruntime") from None
    output = Path(output)
    if output.exists() and any(output.iterdir()):
        if not overwrite:
            raise KDistillError(f"--output '{output}' is not empty; pass --overwrite to replace an earlier export")
        if not (output / MANIFEST).exists():
            raise KDistillError(f"--output '{output}' is not an early-exit export ({MANIFEST} missing); choose another folder")
    from transformers import AutoConfig
    from transformers.utils import logging as hf_logging

    register_early_exit_classes()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        if not is_early_exit(AutoConfig.from_pretrained(str(model_dir))):
            raise ModelError(f"'{model_dir}' has no early exits; train them with `kdistill early-exit --model {model_dir}`")
        model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()
    except ModelError:
        raise
    except Exception as err:  # noqa: BLE001 - one line
        raise ModelError(f"cannot load '{model_dir}' ({type(err).__name__}: {str(err).splitlines()[0][:160]})") from err
    finally:
        hf_logging.set_verbosity(verbosity)
    tok = load_tokenizer(str(model_dir))
    chosen = ExitRule(rule, threshold, patience) if rule is not None else model.exit_rule()
    names = graph_inputs(model, tok)
    tmp = output.with_name("." + output.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    restore = eager_attention(model)
    try:
        segments = _export_segments(model, tok, names, tmp, opset_version)
    finally:
        restore()
    tok.save_pretrained(tmp)
    model.config.save_pretrained(tmp)
    manifest = {"format": "kdistill-early-exit-onnx", "inputs": names, "segments": segments,
                "exit_layers": model.exit_layers, "layers": _n_layers(model),
                "rule": {"rule": chosen.rule, "threshold": chosen.threshold, "patience": chosen.patience},
                "opset": opset_version}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    manifest["parity"] = check_parity(model, tok, tmp, chosen, texts=check_texts, atol=atol)
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    if output.exists():
        shutil.rmtree(output)
    tmp.rename(output)
    return manifest


def _n_layers(model) -> int:
    from kdistill.selfdistill.layout import num_layers

    return num_layers(model.config)


def _export_segments(model, tok, names: list[str], folder: Path, opset: int) -> list[dict]:
    from kdistill.selfdistill.adaptive import capture, run_layer
    from kdistill.selfdistill.layout import encoder_layers

    from kdistill.data.samples import sample_inputs

    example = sample_inputs(tok, [6, 3])  # a padded row: the mask branch is traced
    inputs = [example[n] for n in names]
    exits = model.exit_layers
    layers = encoder_layers(model)
    with torch.no_grad():
        h, ctx = capture(model, {n: example[n] for n in names})
    bounds = [0, *exits]
    out = []
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    for j in range(len(exits) + 1):
        first, final = j == 0, j == len(exits)
        stop = exits[j] if not final else len(layers)
        seg = _Segment(model, bounds[j], stop, None if final else j, names, first).eval()
        args = tuple(inputs) if first else (h, *inputs)
        in_names = list(names) if first else ["hidden", *names]
        out_names = ["logits"] if final else ["hidden_out", "exit_logits"]
        dyn = dict(axes)
        if not first:
            dyn["hidden"] = {0: "batch", 1: "sequence"}
        for o in out_names:
            dyn[o] = {0: "batch", 1: "sequence"} if o == "hidden_out" else {0: "batch"}
        path = folder / f"segment_{j}.onnx"
        export_module(seg, args, path, input_names=in_names, output_names=out_names, dynamic_axes=dyn,
                      what=f"segment {j} of {type(model).__name__}", opset_version=opset)
        out.append({"file": path.name, "first_layer": bounds[j] + 1, "last_layer": stop, "inputs": in_names,
                    "outputs": out_names, "exit_layer": None if final else stop})
        if not final:
            with torch.no_grad():
                for i in range(bounds[j], stop):
                    h = run_layer(layers[i], h, ctx)
    return out


class OrtEarlyExit:
    """The ONNX Runtime driver of an exported early-exit model.

    ``__call__(input_ids, attention_mask, token_type_ids=None)`` (``[B, L]`` int arrays or tensors) runs the segments
    with the exit rule, rows leaving the batch as they exit; returns ``(logits [B, C] float32, exit_layer [B] int64)``.

    Args:
        folder: an :func:`export_early_exit` folder.
        rule / threshold / patience: override the recorded rule (``"none"``: full depth).
        threads: ORT intra-op threads (see :func:`kdistill.deploy.runtime.ort_session`).

    Raises:
        ModelError: not an export folder, or a segment that does not load.
    """

    def __init__(self, folder: str | Path, *, rule: str | None = None, threshold: float | None = None,
                 patience: int | None = None, threads: int | None = None):
        from kdistill.deploy.runtime import ort_session

        self.folder = Path(folder)
        if not (self.folder / MANIFEST).exists():
            raise ModelError(f"'{folder}' is not an early-exit ONNX export (no {MANIFEST})")
        self.manifest = json.loads((self.folder / MANIFEST).read_text())
        r = self.manifest["rule"]
        self.rule = ExitRule(rule, threshold, patience) if rule is not None else ExitRule(r["rule"], r["threshold"], r["patience"])
        self.names = list(self.manifest["inputs"])
        self.sessions = [ort_session(self.folder / s["file"], threads=threads) for s in self.manifest["segments"]]

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None) -> tuple[np.ndarray, np.ndarray]:
        def arr(x):
            return np.ascontiguousarray((x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)).astype(np.int64))

        ids = arr(input_ids)
        given = {"input_ids": ids, "attention_mask": arr(attention_mask) if attention_mask is not None else np.ones_like(ids),
                 "token_type_ids": arr(token_type_ids) if token_type_ids is not None else np.zeros_like(ids)}
        cur = {n: given[n] for n in self.names}
        batch = ids.shape[0]
        rows = np.arange(batch)
        layers = self.manifest["exit_layers"]
        out_layer = np.full(batch, int(self.manifest["layers"]), dtype=np.int64)
        out_logits = None
        state = RuleState(self.rule)
        hidden = None
        for j, sess in enumerate(self.sessions[:-1]):
            feed = dict(cur) if hidden is None else {"hidden": hidden, **cur}
            hidden, z = sess.run(None, feed)
            if out_logits is None:
                out_logits = np.zeros((batch, z.shape[-1]), dtype=np.float32)
            fired = state.fires(torch.from_numpy(np.asarray(z, dtype=np.float32))).numpy()
            if not fired.any():
                continue
            out_logits[rows[fired]] = z[fired]
            out_layer[rows[fired]] = layers[j]
            keep = ~fired
            if not keep.any():
                return out_logits, out_layer
            rows = rows[keep]
            state.keep(torch.from_numpy(keep))
            cur = {k: v[keep] for k, v in cur.items()}
            hidden = hidden[keep]
            real = cur["attention_mask"].astype(bool).any(0)
            width = int(np.flatnonzero(real).max()) + 1 if real.any() else 1
            if width < cur["attention_mask"].shape[1]:
                cur = {k: np.ascontiguousarray(v[:, :width]) for k, v in cur.items()}
                hidden = np.ascontiguousarray(hidden[:, :width])
        feed = dict(cur) if hidden is None else {"hidden": hidden, **cur}
        z = self.sessions[-1].run(None, feed)[0]
        if out_logits is None:
            out_logits = np.zeros((batch, z.shape[-1]), dtype=np.float32)
        out_logits[rows] = z
        return out_logits, out_layer


def check_parity(model, tok, folder: Path, rule: ExitRule, *, texts: list | None = None, atol: float = 1e-4) -> dict[str, Any]:
    """ORT against PyTorch on ``texts`` (batched, padded), full depth and under ``rule`` (and, for a rule that exits,
    also always at the first exit).

    Returns:
        ``{setting: {"max_abs_diff", "exit_layer_agreement"}}``.

    Raises:
        ModelError: a logit difference above ``atol`` where both exit at the same layer, or exit layers that differ
            for more than 1 row in 20 (decisions within float noise of the threshold may differ).
    """
    from kdistill.data.samples import sample_inputs

    if texts:
        pair = isinstance(texts[0], (tuple, list))
        enc = dict(tok([t[0] for t in texts] if pair else list(texts), [t[1] for t in texts] if pair else None,
                       padding=True, truncation=True, max_length=128, return_tensors="pt"))
    else:
        enc = sample_inputs(tok, [4, 9, 2, 12, 7, 5, 11, 3])
    settings = {"full depth": ExitRule("none"), "first exit": ExitRule("max_prob", 0.0)}
    if rule.rule != "none":
        settings[rule.describe()] = rule
    before = model.exit_rule()
    out = {}
    try:
        for name, r in settings.items():
            model.set_exit_rule(r.rule, r.threshold, r.patience)
            with torch.inference_mode():
                ref = model(**{k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")})
            ref_logits = ref.logits.float().numpy()
            n = _n_layers(model)
            ref_layer = ref.exit_layer.numpy() if getattr(ref, "exit_layer", None) is not None else np.full(len(ref_logits), n)
            got, layer = OrtEarlyExit(folder, rule=r.rule, threshold=r.threshold, patience=r.patience)(**enc)
            same = layer == ref_layer
            diff = float(np.abs(got[same] - ref_logits[same]).max()) if same.any() else 0.0
            out[name] = {"max_abs_diff": diff, "exit_layer_agreement": float(same.mean()), "rows": int(len(same))}
            if diff > atol or same.mean() < 0.95:
                raise ModelError(f"early-exit ONNX parity failed ({name}): max |ORT − PyTorch| = {diff:.2e} (atol {atol:g}), "
                                 f"exit layers agree on {100 * same.mean():.0f} % of rows")
    finally:
        model.set_exit_rule(before.rule, before.threshold, before.patience)
    return out


__all__ = ["MANIFEST", "OrtEarlyExit", "check_parity", "export_early_exit"]
