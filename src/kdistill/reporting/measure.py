"""Measurements for the teacher-vs-student "proof" report: size and CPU speed.

Units used throughout this module:

* parameter counts are plain integers (number of scalars);
* sizes on disk are in MB where **1 MB = 1e6 bytes** (not MiB);
* latencies are in **milliseconds** of wall-clock time (``time.perf_counter``);
* throughput is in **examples per second**.

Latency is always measured on CPU, in ``eval()`` mode under ``torch.inference_mode()``.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from kdistill.data.batching import forward_keys, model_inputs
from kdistill.errors import KDistillError

__all__ = [
    "SizeStats",
    "LatencyStats",
    "count_parameters",
    "disk_size_mb",
    "median_token_length",
    "measure_latency",
]

#: File suffixes counted as model weights by :func:`disk_size_mb`.
WEIGHT_SUFFIXES = (".safetensors", ".bin")


# --------------------------------------------------------------------------- size


@dataclass
class SizeStats:
    """Size of one model.

    Attributes:
        params_total: number of distinct parameters (scalars); tied weights count once.
        params_non_embedding: ``params_total`` minus the weights of every ``nn.Embedding``
            (word, position and token-type embeddings for BERT).
        disk_mb: total size of the saved weight files in MB (1 MB = 1e6 bytes), or ``None``
            when the model was not measured on disk.
    """

    params_total: int
    params_non_embedding: int
    disk_mb: float | None


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """Count a model's parameters.

    Args:
        model: any ``torch.nn.Module``.

    Returns:
        ``(total, non_embedding)``: ``total`` is the number of scalars in the model's distinct
        parameters (a weight shared by several modules, e.g. a decoder tied to the word
        embeddings, counts once); ``non_embedding`` is ``total`` minus the weight of every
        ``torch.nn.Embedding`` submodule (word, position, token-type, ...). Embedding LayerNorms
        are *not* embeddings and are counted as non-embedding parameters.

    Raises:
        KDistillError: if ``model`` is not a ``torch.nn.Module``.
    """
    if not isinstance(model, torch.nn.Module):
        raise KDistillError(f"count_parameters expects a torch.nn.Module, got {type(model).__name__}.")
    total = sum(p.numel() for p in model.parameters())  # parameters() de-duplicates shared tensors
    seen: set[int] = set()
    embedding = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Embedding):
            weight = module.weight
            if id(weight) not in seen:
                seen.add(id(weight))
                embedding += weight.numel()
    return int(total), int(total - embedding)


def disk_size_mb(path: str | Path) -> float:
    """Size of a saved model's weight files, in MB (1 MB = 1e6 bytes).

    Args:
        path: a directory written by ``save_pretrained`` (its ``model*.safetensors`` / ``pytorch_model*.bin``
            files are summed, which covers sharded checkpoints; other ``.safetensors`` files of a run
            folder, e.g. ``teacher_logits/``, are not the model), or a single
            ``.safetensors``/``.bin`` file.

    Returns:
        The summed file size in MB. Tokenizer, config and index files are not counted.

    Raises:
        KDistillError: if ``path`` does not exist or contains no weight file.
    """
    p = Path(path)
    if not p.exists():
        raise KDistillError(f"Cannot measure model size: {p} does not exist.")
    if p.is_file():
        files = [p] if p.name.endswith(WEIGHT_SUFFIXES) else []
    else:
        # the model's own weight files (sharded too); not a run's teacher-logit cache or TinyBERT projections
        files = sorted(f for f in p.iterdir() if f.is_file() and f.name.endswith(WEIGHT_SUFFIXES)
                       and f.name.startswith(("model", "pytorch_model")))
    if not files:
        raise KDistillError(f"Cannot measure model size: no *.safetensors or *.bin weight file in {p}.")
    return sum(f.stat().st_size for f in files) / 1e6


# --------------------------------------------------------------------------- latency


@dataclass
class LatencyStats:
    """CPU speed of one model.

    Attributes:
        seq_len: number of tokens (special tokens included) of the batch-1 input.
        batch1_median_ms: median latency of one forward pass at batch size 1, in ms.
        batch1_p90_ms: 90th percentile (linear interpolation) of the same timings, in ms.
        n_runs: number of timed batch-1 runs (warm-up runs excluded).
        throughput_bs32: examples per second over a pass of batched, dynamically padded inputs
            (batch size ``throughput_batch_size``, 32 by default); tokenisation is not timed.
        threads: torch intra-op thread count used during the measurement.
        throughput_batch_size: batch size used for ``throughput_bs32``.
    """

    seq_len: int
    batch1_median_ms: float
    batch1_p90_ms: float
    n_runs: int
    throughput_bs32: float
    threads: int
    throughput_batch_size: int = 32


def _split_texts(texts: Sequence[str] | Sequence[tuple[str, str]]) -> tuple[list[str], list[str] | None]:
    """Return ``(firsts, seconds)``; ``seconds`` is ``None`` for single-sentence inputs."""
    if isinstance(texts, str):
        raise KDistillError("Expected a sequence of texts, got a single string; wrap it in a list.")
    items = list(texts)
    if not items:
        raise KDistillError("Cannot measure on an empty list of texts; pass at least one dev-set text.")
    is_pair = [isinstance(t, (tuple, list)) for t in items]
    if all(is_pair):
        if any(len(t) != 2 for t in items):
            raise KDistillError("Text pairs must be (text_a, text_b) tuples of exactly two strings.")
        firsts = [str(a) for a, _ in items]
        seconds = [str(b) for _, b in items]
        return firsts, seconds
    if any(is_pair):
        raise KDistillError("Texts mix single strings and (text_a, text_b) pairs; use one kind only.")
    if not all(isinstance(t, str) for t in items):
        raise KDistillError("Texts must be strings or (text_a, text_b) tuples of strings.")
    return items, None


def _token_lengths(tokenizer: Any, firsts: list[str], seconds: list[str] | None) -> list[int]:
    enc = tokenizer(firsts, seconds) if seconds is not None else tokenizer(firsts)
    return [len(ids) for ids in enc["input_ids"]]


def median_token_length(tokenizer: Any, texts: Sequence[str] | Sequence[tuple[str, str]]) -> int:
    """Median tokenised length of ``texts``, special tokens ([CLS], [SEP]) included.

    Args:
        tokenizer: a Hugging Face tokenizer (callable returning ``input_ids``).
        texts: single sentences, or ``(text_a, text_b)`` pairs for pair tasks (tokenised
            as one pair input).

    Returns:
        The median length in tokens, without truncation. For an even number of texts the
        lower of the two middle values is returned (``statistics.median_low``), so the
        result is always the length of an actual text.

    Raises:
        KDistillError: if ``texts`` is empty or malformed.
    """
    firsts, seconds = _split_texts(texts)
    return int(statistics.median_low(_token_lengths(tokenizer, firsts, seconds)))


def _to_inputs(enc: Any, keys: set[str] | None) -> dict[str, torch.Tensor]:
    out = {k: torch.as_tensor(v, dtype=torch.long) for k, v in model_inputs(enc, keys).items()}
    if "input_ids" not in out:
        raise KDistillError("The model's forward() must accept an `input_ids` argument to be timed.")
    return out


def _max_positions(model: torch.nn.Module) -> int | None:
    cfg = getattr(model, "config", None)
    value = getattr(cfg, "max_position_embeddings", None)
    return int(value) if isinstance(value, int) and value > 0 else None


def _batch1_inputs(
    tokenizer: Any,
    firsts: list[str],
    seconds: list[str] | None,
    lengths: list[int],
    seq_len: int,
    keys: set[str] | None,
) -> dict[str, torch.Tensor]:
    """Tokenise one real text to exactly ``seq_len`` tokens (shape ``(1, seq_len)``).

    Preference: a text of exactly ``seq_len`` tokens; else the shortest longer text,
    truncated (the final [SEP] is kept); else the longest text, right-padded.
    """
    exact = [i for i, n in enumerate(lengths) if n == seq_len]
    longer = [i for i, n in enumerate(lengths) if n > seq_len]
    if exact:
        idx = exact[0]
    elif longer:
        idx = min(longer, key=lambda i: lengths[i])
    else:
        idx = max(range(len(lengths)), key=lambda i: lengths[i])
    args = (firsts[idx],) if seconds is None else (firsts[idx], seconds[idx])
    enc = tokenizer(
        *args,
        truncation=True,
        max_length=seq_len,
        padding="max_length",
        return_tensors="pt",
    )
    if enc["input_ids"].shape[-1] != seq_len:
        raise KDistillError(
            f"Could not build a {seq_len}-token input (got {enc['input_ids'].shape[-1]}); use a larger seq_len."
        )
    return _to_inputs(enc, keys)


def _throughput_batches(
    tokenizer: Any,
    firsts: list[str],
    seconds: list[str] | None,
    batch_size: int,
    limit: int,
    keys: set[str] | None,
) -> list[dict[str, torch.Tensor]]:
    n = min(len(firsts), limit)
    batches = []
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        args = (firsts[start:stop],) if seconds is None else (firsts[start:stop], seconds[start:stop])
        enc = tokenizer(*args, padding=True, truncation=True, max_length=128, return_tensors="pt")
        batches.append(_to_inputs(enc, keys))
    return batches


def measure_latency(
    model: torch.nn.Module,
    tokenizer: Any,
    texts: Sequence[str] | Sequence[tuple[str, str]],
    *,
    seq_len: int | None = None,
    n_runs: int = 100,
    warmup: int = 10,
    batch_size: int = 32,
    max_throughput_examples: int = 512,
    num_threads: int | None = None,
) -> LatencyStats:
    """Measure CPU latency at batch size 1 and throughput at batch size ``batch_size``.

    Batch 1: one real text from ``texts`` is tokenised to exactly ``seq_len`` tokens
    (input shape ``(1, seq_len)``; a text of that length if there is one, else a longer one
    truncated with its final [SEP] kept, else the longest one padded). ``model(**inputs)`` runs
    ``warmup`` times untimed, then ``n_runs`` times, each timed with ``time.perf_counter``.

    Throughput: the first ``max_throughput_examples`` texts, in order, are tokenised into
    batches of ``batch_size`` with dynamic padding (``padding=True, truncation=True,
    max_length=128``); after one untimed warm-up batch, the whole pass is timed (forward
    passes only, tokenisation excluded) and reported in examples per second.

    The model is run in ``eval()`` mode under ``torch.inference_mode()`` on CPU; if it lives on
    another device it is moved to CPU for the measurement. Its device and train/eval mode are
    restored afterwards, as is torch's thread count when ``num_threads`` is given. Only the
    tokenizer outputs that ``model.forward`` accepts (``input_ids``, ``attention_mask``,
    ``token_type_ids``; all of them if it takes ``**kwargs``) are passed, so any module
    returning logits or an object with ``.logits`` works.

    Args:
        model: a torch module taking ``input_ids`` (and optionally ``attention_mask``,
            ``token_type_ids``) as keyword arguments.
        tokenizer: the model's Hugging Face tokenizer.
        texts: dev-set sentences, or ``(text_a, text_b)`` pairs for pair tasks.
        seq_len: batch-1 input length in tokens, special tokens included; default
            :func:`median_token_length` of ``texts``.
        n_runs: number of timed batch-1 forward passes (>= 1; use >= 100 for a report).
        warmup: untimed batch-1 forward passes before timing (>= 0).
        batch_size: batch size of the throughput pass (>= 1).
        max_throughput_examples: at most this many texts are used for throughput (>= 1).
        num_threads: if given, ``torch.set_num_threads(num_threads)`` during the measurement.

    Returns:
        A :class:`LatencyStats` (latencies in ms, throughput in examples/s).

    Raises:
        KDistillError: on empty/malformed ``texts``, non-positive counts, a ``seq_len`` below 2
            or above the model's ``max_position_embeddings``, or a forward without ``input_ids``.
    """
    if not isinstance(model, torch.nn.Module):
        raise KDistillError(f"measure_latency expects a torch.nn.Module, got {type(model).__name__}.")
    if n_runs < 1:
        raise KDistillError(f"n_runs must be >= 1, got {n_runs}.")
    if warmup < 0:
        raise KDistillError(f"warmup must be >= 0, got {warmup}.")
    if batch_size < 1:
        raise KDistillError(f"batch_size must be >= 1, got {batch_size}.")
    if max_throughput_examples < 1:
        raise KDistillError(f"max_throughput_examples must be >= 1, got {max_throughput_examples}.")
    if num_threads is not None and num_threads < 1:
        raise KDistillError(f"num_threads must be >= 1, got {num_threads}.")

    firsts, seconds = _split_texts(texts)
    lengths = _token_lengths(tokenizer, firsts, seconds)
    if seq_len is None:
        seq_len = int(statistics.median_low(lengths))
    if seq_len < 2:
        raise KDistillError(f"seq_len must be >= 2 tokens ([CLS] and [SEP]), got {seq_len}.")
    max_pos = _max_positions(model)
    if max_pos is not None and seq_len > max_pos:
        raise KDistillError(f"seq_len {seq_len} exceeds the model's max_position_embeddings ({max_pos}).")

    first_param = next(iter(model.parameters()), None)
    orig_device = first_param.device if first_param is not None else torch.device("cpu")
    old_threads = torch.get_num_threads()
    try:
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        if orig_device.type != "cpu":
            model.to("cpu")
        return measure_latency_interleaved([model], [tokenizer], texts, seq_len=seq_len, n_runs=n_runs, warmup=warmup,
                                           batch_size=batch_size, max_throughput_examples=max_throughput_examples)[0]
    finally:
        if orig_device.type != "cpu":
            model.to(orig_device)
        if num_threads is not None:
            torch.set_num_threads(old_threads)

def measure_latency_interleaved(
    models: Sequence[torch.nn.Module],
    tokenizers: Sequence[Any],
    texts: Sequence[str] | Sequence[tuple[str, str]],
    *,
    seq_len: int | None = None,
    n_runs: int = 100,
    warmup: int = 10,
    batch_size: int = 32,
    max_throughput_examples: int = 512,
) -> list[LatencyStats]:
    """Like :func:`measure_latency` for several models at once, timed *interleaved*.

    Each timed round runs one batch-1 forward pass of every model in turn (and, for
    throughput, each batch through every model in turn), so slow drifts of the machine
    (frequency scaling, other processes) hit all models alike and the speedup between them
    is measured under the same conditions. ``seq_len`` defaults to the median token length
    under the first tokenizer (the teacher's). CPU, ``eval()``, ``torch.inference_mode()``.

    Args:
        models: modules as accepted by :func:`measure_latency` (on CPU).
        tokenizers: one tokenizer per model.

    Returns:
        One :class:`LatencyStats` per model, in order (ms; examples/s).

    Raises:
        KDistillError: as :func:`measure_latency`, or when the lists differ in length.
    """
    if len(models) != len(tokenizers) or not models:
        raise KDistillError("measure_latency_interleaved needs one tokenizer per model (and at least one model).")
    if n_runs < 1:
        raise KDistillError(f"n_runs must be >= 1, got {n_runs}.")
    firsts, seconds = _split_texts(texts)
    if seq_len is None:
        seq_len = int(statistics.median_low(_token_lengths(tokenizers[0], firsts, seconds)))
    singles, batch_sets = [], []
    for model, tok in zip(models, tokenizers):
        keys = forward_keys(model)
        lengths = _token_lengths(tok, firsts, seconds)
        max_pos = _max_positions(model)
        if max_pos is not None and seq_len > max_pos:
            raise KDistillError(f"seq_len {seq_len} exceeds the model's max_position_embeddings ({max_pos}).")
        singles.append(_batch1_inputs(tok, firsts, seconds, lengths, seq_len, keys))
        batch_sets.append(_throughput_batches(tok, firsts, seconds, batch_size, max_throughput_examples, keys))
    modes = [m.training for m in models]
    timings = np.zeros((len(models), n_runs))
    elapsed = np.zeros(len(models))
    try:
        with torch.inference_mode():
            for m in models:
                m.eval()
            for _ in range(warmup):
                for m, x in zip(models, singles):
                    m(**x)
            for i in range(n_runs):
                for j, (m, x) in enumerate(zip(models, singles)):
                    t0 = time.perf_counter()
                    m(**x)
                    timings[j, i] = time.perf_counter() - t0
            for m, bs in zip(models, batch_sets):
                m(**bs[0])
            for k in range(len(batch_sets[0])):
                for j, (m, bs) in enumerate(zip(models, batch_sets)):
                    t0 = time.perf_counter()
                    m(**bs[k])
                    elapsed[j] += time.perf_counter() - t0
    finally:
        for m, mode in zip(models, modes):
            m.train(mode)
    threads = torch.get_num_threads()
    out = []
    for j, bs in enumerate(batch_sets):
        ms = timings[j] * 1000.0
        n_examples = sum(int(b["input_ids"].shape[0]) for b in bs)
        out.append(LatencyStats(seq_len=int(seq_len), batch1_median_ms=float(np.median(ms)),
                                batch1_p90_ms=float(np.percentile(ms, 90)), n_runs=int(n_runs),
                                throughput_bs32=float(n_examples / elapsed[j]) if elapsed[j] > 0 else float("inf"),
                                threads=int(threads), throughput_batch_size=int(batch_size)))
    return out
