"""Latency of a model *on this machine* in the runtime it will be deployed in, with a cache of measurements.

Published speedups do not transfer across hardware (CoFi's 12× became 5× on another GPU; Xia et al. 2022), so a
budget is checked by measuring, here. Latency depends on the shape of a model, not on its weights, so a candidate
is measured with whatever weights it has (random ones suffice), and a measurement is cached under
``machine | runtime | batch size | sequence length | threads | shape``.

Units: latency in **milliseconds** (median and 90th percentile of ``n_runs`` timed forward passes after ``warmup``
untimed ones, ``time.perf_counter``, CPU, ``eval()``, ``torch.inference_mode()``); size in **MB = 1e6 bytes** (eager:
the fp32 weights in memory, ≈ the ``model.safetensors`` file; ORT: the ``.onnx`` file).

Runtimes (:data:`RUNTIMES`): ``eager`` (PyTorch fp32), ``ort`` (ONNX Runtime fp32, transformer fusions kept where
parity holds) and ``ort-int8`` (ONNX Runtime dynamic int8 of that graph), built with
:func:`kdistill.deploy.variants.ort_variants` — the same steps as the report's ORT rows.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from kdistill.errors import KDistillError

#: ``--runtime`` names → the report's runtime names (:data:`kdistill.deploy.variants.RUNTIMES`).
RUNTIMES = {"eager": "eager_fp32", "ort": "ort_fp32", "ort-int8": "ort_int8"}
CACHE_VERSION = 1


@dataclass
class Measurement:
    """One latency measurement (ms) and size (MB) of a model in one runtime on this machine."""

    latency_ms: float
    p90_ms: float
    size_mb: float | None
    runtime: str
    batch_size: int
    seq_len: int
    threads: int
    n_runs: int
    cached: bool = False
    measured_at: str = ""


def check_runtime(runtime: str) -> str:
    """``runtime`` if it is one of :data:`RUNTIMES` (ORT ones need onnx + onnxruntime), else a one-line error."""
    if runtime not in RUNTIMES:
        raise KDistillError(f"--runtime must be one of {', '.join(RUNTIMES)}; got '{runtime}'")
    if runtime != "eager":
        from kdistill.deploy.variants import onnxruntime_available

        if not onnxruntime_available():
            raise KDistillError(f"--runtime {runtime} needs onnx and onnxruntime: pip install onnx onnxruntime "
                                "(or measure with --runtime eager)")
    return runtime


# --------------------------------------------------------------------------- keys
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """This machine as the cache keys it: ``{"id": 12 hex digits, "description": ...}`` (host name, CPU model,
    cores, architecture, torch and onnxruntime versions — a new library version may change the speed)."""
    try:
        from importlib.metadata import version

        ort = version("onnxruntime")
    except Exception:  # noqa: BLE001 - not installed
        ort = None
    facts = {"host": platform.node(), "cpu": _cpu_model(), "cores": os.cpu_count(), "arch": platform.machine(),
             "torch": torch.__version__, "onnxruntime": ort}
    digest = hashlib.sha1(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:12]
    return {"id": digest, "description": f"{facts['host']}: {facts['cpu']}, {facts['cores']} cores, {facts['arch']}, "
                                         f"torch {facts['torch']}, onnxruntime {ort}", **facts}


def shape_of(net) -> dict[str, Any]:
    """What a model's speed depends on: its kind and sizes (layers, width, heads and FFN width per layer, vocabulary,
    BiLSTM sizes), not its weights."""
    cfg = getattr(net, "config", None)
    out: dict[str, Any] = {"class": type(net).__name__}
    for key in ("model_type", "num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size",
                "vocab_size", "embedding_dim", "fc_size", "pair", "embedding_mode", "n_layers", "dim", "hidden_dim",
                "n_heads"):
        value = getattr(cfg, key, None)
        if isinstance(value, (int, float, str, bool)):
            out[key] = value
    try:
        from kdistill.compress.modeling import ffn_per_layer, heads_per_layer

        out["heads_per_layer"] = heads_per_layer(net)
        out["ffn_per_layer"] = ffn_per_layer(net)
    except Exception:  # noqa: BLE001 - not a transformer encoder (BiLSTM)
        pass
    out["params"] = int(sum(p.numel() for p in net.parameters()))
    return out


def shape_key(shape: dict[str, Any]) -> str:
    """A short stable hash of :func:`shape_of`."""
    return hashlib.sha1(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- cache
def default_cache_file() -> Path:
    """``$KDISTILL_CACHE/latency_cache.json`` (default ``~/.cache/kdistill``)."""
    from kdistill.data.batching import default_cache_dir

    return default_cache_dir() / "latency_cache.json"


class LatencyCache:
    """Measurements in a JSON file: ``{"version", "machines": {id: {"description", "entries": {key: {...}}}}}``,
    ``key`` = ``runtime|bs<B>|len<L>|threads<T>|<shape hash>``; each entry holds the :class:`Measurement` and the
    shape. ``path=None``: in memory only. Written atomically after each new measurement."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else None
        self.machine = machine()
        self.data: dict[str, Any] = {"version": CACHE_VERSION, "machines": {}}
        if self.path is not None and self.path.exists():
            try:
                loaded = json.loads(self.path.read_text())
                if loaded.get("version") == CACHE_VERSION:
                    self.data = loaded
            except (OSError, ValueError):
                pass  # unreadable: start again (the file is rewritten)

    @staticmethod
    def key(runtime: str, batch_size: int, seq_len: int, threads: int, shape: dict) -> str:
        return f"{runtime}|bs{batch_size}|len{seq_len}|threads{threads}|{shape_key(shape)}"

    def _entries(self) -> dict[str, Any]:
        m = self.data["machines"].setdefault(self.machine["id"], {"description": self.machine["description"],
                                                                  "entries": {}})
        return m["entries"]

    def get(self, key: str) -> Measurement | None:
        hit = self._entries().get(key)
        if hit is None:
            return None
        return Measurement(**{**hit["measurement"], "cached": True})

    def put(self, key: str, m: Measurement, shape: dict) -> None:
        self._entries()[key] = {"measurement": {k: v for k, v in asdict(m).items() if k != "cached"}, "shape": shape}
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        tmp.replace(self.path)


# --------------------------------------------------------------------------- measuring
def length_texts(splits, *, min_words: int = 10, limit: int = 2000) -> list:
    """Texts whose token count sets the timed input length: the *full-length* train rows (at least ``min_words``
    words, as the selection slice takes them; SST-2's train split is mostly short phrases, its dev split sentences),
    or every train row when there are too few. Only lengths are used; the dev split is not read.

    Returns single strings, or ``(text_a, text_b)`` pairs for pair tasks (at most ``limit``).
    """
    train = splits["train"]
    n = min(len(train), limit * 5)
    a = train["text_a"][:n]
    b = train["text_b"][:n] if "text_b" in train.column_names else None
    rows = list(zip(a, b)) if b is not None else list(a)
    words = [len(" ".join(r if isinstance(r, tuple) else (r,)).split()) for r in rows]
    full = [r for r, w in zip(rows, words) if w >= min_words]
    return (full if len(full) >= 10 else rows)[:limit]


def seq_len_for(tokenizer, texts: Sequence) -> int:
    """Median token length of ``texts`` (special tokens included; :func:`kdistill.reporting.measure.median_token_length`)."""
    from kdistill.reporting.measure import median_token_length

    return median_token_length(tokenizer, texts)


def _batch_inputs(tokenizer, texts: Sequence, seq_len: int, batch_size: int, keys) -> dict[str, torch.Tensor]:
    """``batch_size`` copies of one real text tokenised to exactly ``seq_len`` tokens (shape ``(B, seq_len)``)."""
    from kdistill.data.batching import model_inputs

    first = texts[0]
    args = first if isinstance(first, tuple) else (first,)
    enc = tokenizer(*args, truncation=True, max_length=seq_len, padding="max_length", return_tensors="pt")
    return {k: v.repeat(batch_size, 1) for k, v in model_inputs(enc, keys).items()}


def _time_batch(module, inputs: dict, n_runs: int, warmup: int) -> tuple[float, float]:
    """(median, p90) ms of ``module(**inputs)`` — the protocol of :func:`kdistill.reporting.measure.measure_latency`."""
    import numpy as np

    mode = module.training
    module.eval()
    times = []
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                module(**inputs)
            for _ in range(n_runs):
                t0 = time.perf_counter()
                module(**inputs)
                times.append((time.perf_counter() - t0) * 1000.0)
    finally:
        module.train(mode)
    return float(statistics.median(times)), float(np.percentile(times, 90))


def _eager_mb(net) -> float:
    return sum(p.numel() * p.element_size() for p in net.parameters()) / 1e6


def measure(net, tokenizer, texts: Sequence, *, runtime: str = "eager", batch_size: int = 1, seq_len: int | None = None,
            n_runs: int = 50, warmup: int = 10, cache: LatencyCache | None = None,
            workdir: str | Path | None = None) -> Measurement:
    """Latency (ms) and size (MB) of ``net`` in ``runtime`` on this machine, from ``cache`` when it was measured before.

    Batch 1 goes through :func:`kdistill.reporting.measure.measure_latency` (the report's protocol: one real text of
    exactly ``seq_len`` tokens); a larger ``batch_size`` times ``batch_size`` copies of that input the same way.
    ORT runtimes export ``net`` first (:func:`kdistill.deploy.variants.ort_variants`, into ``workdir`` or a temporary
    folder) and time the ONNX Runtime session with torch's thread count.

    Args:
        net: a classifier (transformers encoder, pruned kdistill model or BiLSTM student), any weights.
        tokenizer: its tokenizer; texts: real inputs (strings or pairs) to take the timed one from.
        seq_len: tokens of the timed input (default: the median length of ``texts``).
        n_runs, warmup: timed and untimed forward passes.

    Raises:
        KDistillError / ModelError: an unknown runtime, a missing onnxruntime, an export that fails.
    """
    from kdistill.reporting.measure import measure_latency

    check_runtime(runtime)
    if batch_size < 1 or n_runs < 1 or warmup < 0:
        raise KDistillError(f"batch size and runs must be >= 1, warm-up >= 0; got {batch_size}, {n_runs}, {warmup}")
    texts = list(texts)
    seq_len = int(seq_len or seq_len_for(tokenizer, texts))
    threads = torch.get_num_threads()
    shape = shape_of(net)
    key = LatencyCache.key(runtime, batch_size, seq_len, threads, shape)
    if cache is not None and (hit := cache.get(key)) is not None:
        return hit
    with tempfile.TemporaryDirectory(prefix="kdistill-latency-") as tmp:
        module, size = net, _eager_mb(net)
        if runtime != "eager":
            import logging

            from kdistill.deploy.variants import ort_variants

            noisy = logging.getLogger("fusion_attention")  # ORT's optimizer on pruned layers: "Failed to detect num_heads"
            level = noisy.level
            noisy.setLevel(logging.ERROR)
            try:
                variants = {v.runtime: v for v in ort_variants(net, tokenizer, Path(workdir or tmp))}
            finally:
                noisy.setLevel(level)
            chosen = variants[RUNTIMES[runtime]]
            module, size = chosen.module, chosen.disk_mb
        if batch_size == 1:
            # the report's protocol; its throughput pass (a batch of one text) is a negligible side cost here
            stats = measure_latency(module, tokenizer, texts, seq_len=seq_len, n_runs=n_runs, warmup=warmup,
                                    batch_size=1, max_throughput_examples=1)
            median, p90 = stats.batch1_median_ms, stats.batch1_p90_ms
        else:
            from kdistill.data.batching import forward_keys

            inputs = _batch_inputs(tokenizer, texts, seq_len, batch_size, forward_keys(module))
            median, p90 = _time_batch(module, inputs, n_runs, warmup)
        del module
    m = Measurement(latency_ms=median, p90_ms=p90, size_mb=None if size is None else float(size), runtime=runtime,
                    batch_size=batch_size, seq_len=seq_len, threads=threads, n_runs=n_runs,
                    measured_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
    if cache is not None:
        cache.put(key, m, shape)
    return m


def measure_dir(model_dir: str | Path, task, texts: Sequence, **kwargs: Any) -> Measurement:
    """:func:`measure` of a saved classifier (a run folder); ``task`` its :class:`~kdistill.data.tasks.TaskSpec`."""
    from kdistill.models import load_classifier, load_tokenizer

    net = load_classifier(str(model_dir), task, require_trained_head=True, what="student")
    return measure(net, load_tokenizer(str(model_dir)), texts, **kwargs)
