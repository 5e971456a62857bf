"""``kdistill export``: a saved classifier → a verified ONNX Runtime folder (fp32, optionally int8), or nothing.

The folder is built aside (``.<name>.partial``) and moved into place only when every check passed, so a refused
export leaves no model behind:

1. export (:func:`kdistill.deploy.graph.export_graph`) and, with ``optimize``, ONNX Runtime's transformer fusions;
2. **parity**: ORT's fp32 logits on the whole dev split against PyTorch's; above ``parity_atol`` (1e-4) the export
   is refused with the measured difference (an optimised graph that fails falls back to the plain one, recorded);
3. **int8 with a gate**: dynamic or static (QDQ, calibrated on training rows outside the selection slice), or
   ``auto`` — both, the one with the better metric on the *selection slice* kept (never chosen on dev); the int8
   dev metric may fall at most ``max_drop`` points below the fp32 graph's, else the export is refused printing both;
4. tokenizer, ``config.json``, ``kdistill_export.json`` (what was done and measured), ``predict.py``
   (:mod:`kdistill.serve`, torch-free) and a model card ``README.md``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kdistill.config import DataConfig
from kdistill.errors import KDistillError, ModelError, os_error
from kdistill.locks import hold_lock

QUANTIZE_MODES = ("none", "dynamic", "static", "auto")
EXPORT_FILE = "kdistill_export.json"
FP32_FILE, INT8_FILE = "model.onnx", "model_quantized.onnx"


def lock_path(output: Path) -> Path:
    """The lock file of an export into ``output``: ``.<name>.kdistill.lock`` beside it (the folder itself is replaced)."""
    return output.with_name(f".{output.name}.kdistill.lock")


def _in_use(output: Path, holder: dict) -> str:
    return (f"--output '{output}' is being written by another kdistill export (process {holder.get('pid')} on "
            f"{holder.get('host')}); wait for it to end or choose another --output")


def _check_output(output: Path, model: str, overwrite: bool) -> None:
    from kdistill.locks import is_this_process, live_holder

    holder = live_holder(lock_path(output))
    if holder is not None and not is_this_process(holder):  # another export is writing it: say so first
        raise KDistillError(_in_use(output, holder))
    if output.exists() and not output.is_dir():
        raise KDistillError(f"--output '{output}' is a file; pass a folder for the exported model")
    src = Path(model).expanduser().resolve()
    if output.resolve() == src or (src.exists() and src.is_relative_to(output.resolve())):
        raise KDistillError(f"--output '{output}' holds the model being exported; export into another folder")
    if output.is_dir() and any(output.iterdir()):
        if not overwrite:
            raise KDistillError(f"--output '{output}' is not empty; pass --overwrite to replace an earlier export")
        if not (output / EXPORT_FILE).exists():
            raise KDistillError(f"--output '{output}' is not a kdistill export folder (no {EXPORT_FILE}); "
                                "--overwrite replaces only earlier exports: choose another folder")


def _check_model(model: str) -> None:
    path = Path(model).expanduser()
    if path.is_dir() and not (path / "config.json").exists():
        raise ModelError(f"'{model}' holds no saved model (no config.json); pass a folder written by kdistill or "
                         "save_pretrained")
    if path.is_dir() and '"kdistill-early-exit' in (path / "config.json").read_text():
        raise ModelError(f"'{model}' is an early-exit model: one graph cannot keep exiting; export it with "
                         "`kdistill export-early-exit` (one graph per segment)")


def _batches(ds, tok, names: list[str], batch_size: int):
    from kdistill.data.batching import eval_loader

    for batch in eval_loader(ds, tok, batch_size=batch_size):
        feed = {}
        for n in names:
            value = batch.get(n)
            feed[n] = (value if value is not None else torch.zeros_like(batch["input_ids"])).numpy().astype(np.int64)
        yield feed


def _logits(net, ds, tok, desc: str):
    from kdistill.data.batching import eval_loader
    from kdistill.engine.evaluation import predict

    with torch.inference_mode():
        return predict(net, eval_loader(ds, tok, batch_size=64), desc=desc, show_progress=False)


def _metric(spec, logits, gold, threshold: float | None = None) -> float:
    from kdistill.metrics import compute_metrics

    return float(compute_metrics(spec, logits, gold, threshold=threshold)[spec.main_metric])


def _mb(path: Path) -> float:
    return round(path.stat().st_size / 1e6, 3)


def export_model(model: str, output: str | Path, *, data: DataConfig, quantize: str = "none", optimize: bool = False,
                 max_drop: float = 1.0, calibration_size: int = 300, parity_atol: float = 1e-4, seed: int = 42,
                 overwrite: bool = False, card: bool = True) -> dict[str, Any]:
    """Export ``model`` to ONNX Runtime, verify it, optionally quantize it to int8 behind an accuracy gate.

    Args:
        model: a saved classifier folder (any layout kdistill makes or takes: BERT/RoBERTa/DistilBERT/ELECTRA,
            pruned ``kdistill-compressed-*``, factorised, vocabulary-pruned, BiLSTM) or a hub id.
        output: the folder to write (``model.onnx``, ``model_quantized.onnx`` when quantized, tokenizer files,
            ``config.json``, ``kdistill_export.json``, ``predict.py``, ``README.md``).
        data: the task data: its dev split checks parity and measures the metric; its train split gives the
            calibration rows (``static``) and the selection slice (``auto``), drawn as in training (``seed``).
        quantize: ``none`` | ``dynamic`` (int8 weights per channel, dynamic activations) | ``static`` (QDQ,
            MinMax-calibrated on ``calibration_size`` train rows) | ``auto`` (both; keep the better on the
            selection slice).
        optimize: apply ONNX Runtime's transformer optimizer (fusions) to the fp32 graph first.
        max_drop: largest allowed fall of the int8 dev metric below the fp32 graph's, in points (metric x 100).
        parity_atol: largest allowed ``max |logits_ort - logits_torch|`` of the fp32 graph on the dev split.
        seed: the seed of the selection slice (a run's ``--seed``, default 42).
        overwrite: replace an earlier export in ``output``.
        card: write the model card.

    Returns:
        The contents of ``kdistill_export.json`` (see the README's "Deployment" section).

    Raises:
        KDistillError / ModelError: a folder with no model, an unknown ``quantize``, a NaN/inf or negative
            ``max_drop``, a non-empty ``output``, an ``output`` another export is writing (its lock
            ``.<name>.kdistill.lock`` beside it names a live process), a parity failure (with the measured
            difference), an int8 metric drop above ``max_drop`` (with both figures) or an undefined one, a
            non-finite number for ``kdistill_export.json`` (strict JSON) — in every case nothing is written to
            ``output``.
    """
    if quantize not in QUANTIZE_MODES:
        raise KDistillError(f"--quantize must be one of {', '.join(QUANTIZE_MODES)}; got '{quantize}'")
    for name, value in (("--max-drop", max_drop), ("the parity tolerance", parity_atol)):
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise KDistillError(f"{name} must be a finite number; got {value!r}")
    if max_drop < 0 or calibration_size < 1 or parity_atol <= 0:
        raise KDistillError("--max-drop must be >= 0, --calibration-size >= 1 and the parity tolerance > 0")
    output = Path(output)
    _check_model(model)
    _check_output(output, model, overwrite)
    missing = [d for d in (output.parent, *output.parent.parents) if not d.exists()]  # deepest first
    try:
        output.parent.mkdir(parents=True, exist_ok=True)  # the lock file lives beside the output
    except OSError as err:
        raise os_error(err, output.parent, "create the folder of --output") from None
    try:
        with hold_lock(lock_path(output), lambda holder: _in_use(output, holder), reentrant=False):
            _check_output(output, model, overwrite)  # again, now that no other export can change it
            meta = _export_locked(model, output, data=data, quantize=quantize, optimize=optimize, max_drop=max_drop,
                                  calibration_size=calibration_size, parity_atol=parity_atol, seed=seed, card=card)
    except BaseException:
        for d in missing:  # a refused export leaves no folder behind
            with contextlib.suppress(OSError):
                d.rmdir()
        raise
    meta["output"] = str(output)
    return meta


def _export_locked(model: str, output: Path, *, data: DataConfig, quantize: str, optimize: bool, max_drop: float,
                   calibration_size: int, parity_atol: float, seed: int, card: bool) -> dict[str, Any]:
    """The body of :func:`export_model`, run while this process holds the output's lock."""
    from kdistill.data.batching import tokenize
    from kdistill.data.loading import load_data
    from kdistill.models import load_classifier, load_tokenizer

    splits, spec = load_data(data)
    if quantize in ("static", "auto") and "train" not in splits:
        raise KDistillError(f"--quantize {quantize} needs the train split (calibration rows / the selection slice): "
                            "pass --train-file or --data-dir")
    net = load_classifier(model, spec, require_trained_head=True)
    tok = load_tokenizer(model)
    dev = tokenize(splits["validation"], tok, max_length=data.max_length, doc_stride=data.doc_stride, cache_dir=data.cache_dir, desc="tokenize dev")
    staging = output.with_name(f".{output.name}.partial")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        meta = _build(net, tok, spec, splits, dev, staging, data=data, quantize=quantize, optimize=optimize,
                      max_drop=max_drop, calibration_size=calibration_size, parity_atol=parity_atol, seed=seed)
        meta["source"] = str(model)
        _write_folder(net, tok, staging, meta, data)
        if card:
            from kdistill.deploy.card import write_model_card

            write_model_card(staging, meta, model)
        if output.exists():
            shutil.rmtree(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return meta


def _build(net, tok, spec, splits, dev, staging: Path, *, data, quantize, optimize, max_drop, calibration_size,
           parity_atol, seed) -> dict[str, Any]:
    from kdistill.data.batching import tokenize
    from kdistill.deploy.graph import export_graph, optimize_graph, quantize_dynamic_graph, quantize_static_graph
    from kdistill.deploy.runtime import OrtModel
    from kdistill.metrics import decision_threshold

    # multi-label: decisions at the run's threshold (config.json kdistill_threshold, chosen on its selection slice)
    threshold = decision_threshold(net.config) if spec.multi_label else None
    fp32 = staging / FP32_FILE
    names = export_graph(net, tok, fp32)
    ref, gold = _logits(net, dev, tok, "PyTorch dev")
    got, _ = _logits(OrtModel(fp32, net.config), dev, tok, "ORT dev")
    diff = float(np.abs(got - ref).max())
    if not diff <= parity_atol:
        raise ModelError(f"ONNX Runtime's fp32 logits differ from PyTorch's by {diff:.2e} on the dev split (limit "
                         f"{parity_atol:.0e}); not exported — please report this model layout")
    opt_info: dict[str, Any] = {"requested": bool(optimize), "applied": False}
    plain = fp32  # static QDQ calibrates the plain graph: fused ORT ops defeat its shape inference
    if optimize:
        candidate = staging / "model.optimized.onnx"
        info = optimize_graph(fp32, candidate, net.config)
        opt_info.update(info)
        if info["applied"]:
            opt_logits, _ = _logits(OrtModel(candidate, net.config), dev, tok, "ORT dev (optimised)")
            opt_diff = float(np.abs(opt_logits - ref).max())
            if opt_diff <= parity_atol:
                plain = staging / "model.plain.onnx"
                fp32.replace(plain)
                candidate.replace(fp32)
                got, diff = opt_logits, opt_diff
            else:
                candidate.unlink()
                opt_info.update(applied=False, reason=f"the optimised graph's logits differ from PyTorch's by "
                                                      f"{opt_diff:.2e} (limit {parity_atol:.0e}): kept the plain graph")
    fp32_metric = _metric(spec, got, gold, threshold)
    meta: dict[str, Any] = {
        "task": spec.name, "metric_name": spec.main_metric, "problem_type": spec.problem_type,
        **({"null_threshold": spec.null_threshold} if spec.qa else {}),
        **({"threshold": threshold} if threshold is not None else {}),  # read by the predictor (predict.py)
        "exporter": "torch.onnx.export (TorchScript, dynamo=False)", "opset": 17, "inputs": names,
        "optimize": opt_info, "parity": {"max_abs_diff": diff, "atol": parity_atol, "rows": int(len(dev)),
                                         "split": "dev"},
        "pytorch_metric": _metric(spec, ref, gold, threshold), "fp32_metric": fp32_metric, "dev_examples": int(len(splits["validation"])),
        "files": {"fp32": FP32_FILE}, "sizes_mb": {"fp32": _mb(fp32)}, "quantization": {"mode": "none"},
    }
    if quantize == "none":
        return meta
    modes = ["dynamic", "static"] if quantize == "auto" else [quantize]
    rest, selection = splits.get("train"), None
    if "static" in modes or quantize == "auto":
        from kdistill.data.selection import selection_split

        rest, selection, sel_info = selection_split(data, splits["train"], spec, seed=seed)
        meta["selection"] = sel_info
    made: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    for mode in modes:
        path = staging / f"model.{mode}.onnx"
        try:
            if mode == "dynamic":
                info = quantize_dynamic_graph(fp32, path) | {"graph": "optimised fp32" if plain != fp32 else "fp32"}
            else:
                n = min(calibration_size, len(rest))
                calib = tokenize(rest.shuffle(seed=seed).select(range(n)), tok, max_length=data.max_length, doc_stride=data.doc_stride,
                                 cache_dir=data.cache_dir, desc="tokenize calibration rows")
                info = quantize_static_graph(plain, path, _batches(calib, tok, names, 16), n_examples=n) | {
                    "graph": "plain fp32 (unfused)"}
        except ModelError as err:
            if quantize != "auto":
                raise
            failed[mode] = str(err)
            continue
        made[mode] = {"path": path, "info": info}
    if plain != fp32:
        plain.unlink(missing_ok=True)
    if not made:
        raise ModelError(f"no int8 mode worked: {'; '.join(failed.values())}")
    modes = [m for m in modes if m in made]
    chosen = modes[0]
    if quantize == "auto":
        sel_ds = tokenize(selection, tok, max_length=data.max_length, doc_stride=data.doc_stride, cache_dir=data.cache_dir, desc="tokenize selection")
        fp32_sel = _metric(spec, *_logits(OrtModel(fp32, net.config), sel_ds, tok, "ORT selection"), threshold)
        scores = {m: _metric(spec, *_logits(OrtModel(v["path"], net.config), sel_ds, tok, f"{m} selection"), threshold)
                  for m, v in made.items()}
        chosen = max(modes, key=lambda m: (scores[m], m == "dynamic"))
        meta["auto"] = {"chosen_on": "selection slice of the train split (never the dev split)",
                        "fp32_selection_metric": fp32_sel, "selection_metrics": scores, "chosen": chosen,
                        "failed": failed}
    q_logits, _ = _logits(OrtModel(made[chosen]["path"], net.config), dev, tok, "int8 dev")
    q_metric = _metric(spec, q_logits, gold, threshold)
    drop = 100.0 * (fp32_metric - q_metric)
    if not math.isfinite(drop):  # an undefined metric cannot pass the gate (NaN > max_drop is always false)
        raise ModelError(f"int8 ({chosen}) gate: the dev {spec.main_metric} is undefined (int8 {q_metric}, fp32 "
                         f"{fp32_metric}), so the drop cannot be measured; nothing written — export with --quantize none, "
                         "or check the model and the dev split")
    if drop > max_drop:
        raise ModelError(f"int8 ({chosen}) dev {spec.main_metric} {q_metric:.4f} is {drop:.2f} points below the fp32 "
                         f"graph's {fp32_metric:.4f} (limit --max-drop {max_drop:g}); nothing written — try --quantize "
                         f"{' or '.join(m for m in ('static', 'dynamic', 'none') if m != chosen and (quantize != 'auto' or m == 'none'))}"
                         ", or a larger --max-drop")
    made[chosen]["path"].replace(staging / INT8_FILE)
    for m, v in made.items():
        if m != chosen:
            v["path"].unlink(missing_ok=True)
    agree = float((q_logits.argmax(1) == got.argmax(1)).mean()) if q_logits.ndim == 2 and q_logits.shape[1] > 1 else None
    meta.update(files={"fp32": FP32_FILE, "int8": INT8_FILE}, int8_metric=q_metric, int8_drop_points=drop,
                max_drop_points=max_drop, int8_agreement_with_fp32=agree,
                sizes_mb={"fp32": _mb(fp32), "int8": _mb(staging / INT8_FILE)},
                quantization=made[chosen]["info"] | {"requested": quantize})
    return meta


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in ("torch", "transformers", "onnx", "onnxruntime", "tokenizers", "kdistill"):
        try:
            out[name] = metadata.version(name)
        except Exception:  # noqa: BLE001 - not installed as a distribution
            pass
    return out


def _write_folder(net, tok, staging: Path, meta: dict[str, Any], data: DataConfig) -> None:
    import kdistill.serve as serve

    tok.save_pretrained(staging)
    net.config.save_pretrained(staging)
    shutil.copyfile(serve.__file__, staging / "predict.py")
    cfg = net.config
    labels = [str((cfg.id2label or {}).get(i, i)) for i in range(int(cfg.num_labels))]
    if meta.get("problem_type") == "question_answering":  # the predictor's windows and answer search
        meta.update(doc_stride=int(data.doc_stride), max_answer_length=int(data.max_answer_length),
                    n_best=int(data.n_best), null_threshold=meta.pop("null_threshold", None))
    meta.update(labels=labels, max_length=int(data.max_length),
                pad_id=int(tok.pad_token_id if tok.pad_token_id is not None else 0),
                pad_token=str(tok.pad_token or "[PAD]"), predictor="predict.py (kdistill.serve.Predictor)",
                versions=_versions(),
                date=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    try:
        text = json.dumps(meta, indent=1, default=str, allow_nan=False)  # a NaN is never written silently
    except ValueError:
        bad = ", ".join(_non_finite(meta)) or "a value"
        raise ModelError(f"{EXPORT_FILE} would hold a non-finite number ({bad}: undefined on this dev split); "
                         "nothing written — check the model and the dev split") from None
    (staging / EXPORT_FILE).write_text(text + "\n")


def _non_finite(obj: Any, where: str = "") -> list[str]:
    """The keys (``a.b``) of the NaN / ±inf numbers inside ``obj``."""
    if isinstance(obj, dict):
        return [k for key, v in obj.items() for k in _non_finite(v, f"{where}.{key}" if where else str(key))]
    if isinstance(obj, (list, tuple)):
        return [k for i, v in enumerate(obj) for k in _non_finite(v, f"{where}[{i}]")]
    return [where] if isinstance(obj, float) and not math.isfinite(obj) else []


def push_folder(folder: str | Path, repo_id: str, *, repo_type: str = "model", what: str = "export") -> str:
    """Upload a folder (an export; with ``repo_type="dataset"`` a transfer set) to the Hugging Face Hub
    (``create_repo(exist_ok=True)`` + ``upload_folder``).

    Returns:
        The repository URL.

    Raises:
        KDistillError: the hub is unreachable or refuses (offline mode, no token, no rights): one line; the local
            export is kept.
    """
    try:
        from huggingface_hub import HfApi

        hub = HfApi()
        url = hub.create_repo(repo_id, exist_ok=True, repo_type=repo_type)
        hub.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type=repo_type,
                          commit_message=f"kdistill {what}")
    except Exception as err:  # noqa: BLE001 - whatever the hub says, in one line
        raise KDistillError(f"--push-to-hub {repo_id}: upload failed ({type(err).__name__}: "
                            f"{str(err).splitlines()[0][:160] if str(err) else ''}); the {what} in {folder} is "
                            "kept") from err
    return str(url)


__all__ = ["QUANTIZE_MODES", "push_folder", "EXPORT_FILE", "FP32_FILE", "INT8_FILE", "export_model"]
