"""Tokenisation (cached on disk), dynamic padding and length-grouped, seeded, resumable batching."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterator

import datasets
import torch
from torch.utils.data import DataLoader, Sampler
from transformers import DataCollatorWithPadding
from transformers.trainer_pt_utils import LengthGroupedSampler

MODEL_COLUMNS = ("input_ids", "attention_mask", "token_type_ids")


def default_cache_dir() -> Path:
    """``$KDISTILL_CACHE`` or ``~/.cache/kdistill``."""
    return Path(os.environ.get("KDISTILL_CACHE", Path.home() / ".cache" / "kdistill"))


def tokenizer_key(tokenizer) -> str:
    """A hash of the whole tokenizer: its serialised JSON (vocabulary, normaliser, pre-tokeniser, post-processor)
    when it has a fast backend, else its full vocabulary, plus its special tokens and init options."""
    h = hashlib.sha1(f"{type(tokenizer).__name__}|{len(tokenizer)}".encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    h.update(backend.to_str().encode() if backend is not None else repr(sorted(tokenizer.get_vocab().items())).encode())
    h.update(json.dumps(getattr(tokenizer, "special_tokens_map", {}), sort_keys=True, default=str).encode())
    opts = {k: v for k, v in (getattr(tokenizer, "init_kwargs", None) or {}).items() if k != "name_or_path"}
    h.update(json.dumps(opts, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def dataset_key(ds: datasets.Dataset, tokenizer, max_length: int) -> str:
    """Key of a split's tokenisation: its texts and labels, the whole tokenizer (:func:`tokenizer_key`) and ``max_length``."""
    h = hashlib.sha1()
    h.update(f"{tokenizer_key(tokenizer)}|{tokenizer.name_or_path}|{max_length}|{len(ds)}".encode())
    for col in ("text_a", "text_b", "label", "tokens", "question", "context", "answer_starts"):
        if col in ds.column_names:
            for chunk in ds.with_format("arrow").iter(batch_size=10_000):
                h.update(str(chunk[col].to_pylist()).encode())
    return h.hexdigest()[:16]


def word_index(text_a: str, text_b: str | None, offsets: list[tuple[int, int]], sequence_ids: list[int | None]) -> list[int]:
    """For each token, the index of the whitespace-separated word of the raw text it starts in, or -1.

    Words are numbered over ``text_a`` and then ``text_b`` (pairs), so two tokenizers that split the same words into
    different pieces give the same word numbers: the key of word-level alignment across tokenizers. Special tokens
    (``sequence_ids`` None) and pieces that start in whitespace get -1.

    Args:
        text_a, text_b: the raw texts; offsets: ``(start, end)`` character span of each token in its own text
            (a fast tokenizer's ``offset_mapping``); sequence_ids: 0 / 1 / None per token (which text it is from).

    Returns:
        ``[L]`` word indices (int), -1 for tokens outside any word.
    """
    starts: list[list[int]] = []
    for text in (text_a, text_b or ""):
        spans, pos = [], 0
        for word in text.split():
            pos = text.index(word, pos)
            spans.append(pos)
            pos += len(word)
        starts.append(spans)
    first_b = len(starts[0])
    out = []
    for (start, end), seq in zip(offsets, sequence_ids):
        if seq is None or end <= start:
            out.append(-1)
            continue
        spans = starts[seq]
        # the last word starting at or before the token's first character
        lo, hi = 0, len(spans)
        while lo < hi:
            mid = (lo + hi) // 2
            if spans[mid] <= start:
                lo = mid + 1
            else:
                hi = mid
        w = lo - 1
        out.append(-1 if w < 0 else w + (first_b if seq == 1 else 0))
    return out


def tokenize(
    ds: datasets.Dataset, tokenizer, *, max_length: int = 128, cache_dir: str | Path | None = None, desc: str = "tokenize",
    key: str | None = None, word_ids: bool = False, window_with=(), doc_stride: int = 128,
) -> datasets.Dataset:
    """Tokenise a split produced by :func:`kdistill.data.load_splits`, caching the result on disk.

    The cache key (:func:`dataset_key`) hashes the texts, labels, the whole tokenizer and ``max_length``, so a
    changed file or tokenizer never reuses stale ids.

    Args:
        ds: columns ``text_a`` [, ``text_b``], ``label``, ``idx``.
        tokenizer: a Hugging Face tokenizer.
        max_length: truncation length in tokens.
        cache_dir: where the Arrow cache lives (default :func:`default_cache_dir`).
        key: :func:`dataset_key` of ``ds`` when the caller already has it (it hashes every text).
        word_ids: also add ``word_ids`` (:func:`word_index` per token; needs a fast tokenizer) for word-level
            alignment of hidden states across tokenizers.
        window_with: token classification: other tokenizers the sentence windows must also fit
            (:func:`kdistill.tokens.data.encode_words`).
        doc_stride: question answering: the overlap of context windows, in tokens (:func:`kdistill.qa.features.tokenize_qa`).

    Returns:
        Dataset with ``input_ids``, ``attention_mask`` [, ``token_type_ids``], ``labels``,
        ``idx`` and ``length`` (tokens, for length grouping) [, ``word_ids``], formatted as torch tensors.

    Raises:
        DataError: the cache folder is not writable; ``word_ids`` with a tokenizer that gives no offsets.
    """
    if "context" in ds.column_names and "question" in ds.column_names:  # question answering: windows of the context
        from kdistill.qa.features import tokenize_qa

        return tokenize_qa(ds, tokenizer, max_length=max_length, doc_stride=doc_stride)
    if "tokens" in ds.column_names:  # token classification: words -> sub-tokens, labels on first sub-tokens, windows
        from kdistill.tokens.data import tokenize_words

        return tokenize_words(ds, tokenizer, max_length=max_length, window_with=window_with)
    cache_root = Path(cache_dir) if cache_dir else default_cache_dir()
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
        if not os.access(cache_root, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as err:
        from kdistill.errors import DataError

        raise DataError(f"cannot write the data cache in '{cache_root}' ({err.strerror or err}); make it writable or "
                        "set KDISTILL_CACHE (or --cache-dir) to a writable folder") from None
    cache_file = cache_root / f"tok-{key or dataset_key(ds, tokenizer, max_length)}{'-w' if word_ids else ''}.arrow"
    pair = "text_b" in ds.column_names
    if word_ids and not getattr(tokenizer, "is_fast", False):
        from kdistill.errors import DataError

        raise DataError(f"word-level alignment needs a fast tokenizer (character offsets); {type(tokenizer).__name__} "
                        "is not one: save the model with its tokenizer.json")

    def encode(batch):
        enc = tokenizer(batch["text_a"], batch["text_b"] if pair else None, truncation=True, max_length=max_length,
                        return_offsets_mapping=word_ids)
        enc["length"] = [len(x) for x in enc["input_ids"]]
        if word_ids:
            offsets = enc.pop("offset_mapping")
            enc["word_ids"] = [word_index(batch["text_a"][i], batch["text_b"][i] if pair else None, offsets[i],
                                          enc.sequence_ids(i)) for i in range(len(offsets))]
        return enc

    drop = [c for c in ds.column_names if c not in ("label", "idx")]
    out = ds.map(encode, batched=True, batch_size=2000, remove_columns=drop, cache_file_name=str(cache_file),
                 load_from_cache_file=True, desc=desc)
    out = out.rename_column("label", "labels")
    return out.with_format("torch")


class EpochLengthGroupedSampler(Sampler[int]):
    """Length-grouped random order that depends only on ``(seed, epoch)``.

    Wraps transformers' :class:`LengthGroupedSampler` (shuffle, then sort by length inside
    mega-batches of 50 batches) with a generator reseeded at :meth:`set_epoch`, so a resumed
    run sees exactly the order an uninterrupted one would, and every DDP process agrees on it.
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int, group_by_length: bool = True):
        self.lengths, self.batch_size, self.seed, self.group_by_length = list(lengths), batch_size, seed, group_by_length
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + 1_000_003 * self.epoch)
        if self.group_by_length:
            return iter(LengthGroupedSampler(self.batch_size, lengths=self.lengths, generator=g))
        return iter(torch.randperm(len(self.lengths), generator=g).tolist())


class TokenBudgetBatchSampler(Sampler[list[int]]):
    """Batches of at most ``max_tokens`` padded tokens (dynamic batch size), fixed membership, order reshuffled per epoch.

    As fairseq's ``batch_by_size``: rows are sorted by length (ties broken by a seeded shuffle) and cut greedily so
    that ``rows × longest length ≤ max_tokens`` (and at most ``max_batch_size`` rows); each epoch visits the batches in
    an order that depends only on ``(seed, epoch)``, so the number of batches per epoch is fixed (the run plan and the
    learning-rate schedule stay exact) and a resumed run sees the order an uninterrupted one would.

    Args:
        lengths: tokens per row (``length`` column of :func:`tokenize`).
        max_tokens: padded-token budget per batch; a row longer than it is a batch of its own.
        seed: order seed. max_batch_size: cap on rows per batch (None: no cap).
    """

    def __init__(self, lengths: list[int], max_tokens: int, seed: int, max_batch_size: int | None = None):
        self.max_tokens, self.seed, self.epoch = int(max_tokens), int(seed), 0
        g = torch.Generator().manual_seed(self.seed)
        tie = torch.randperm(len(lengths), generator=g).tolist()
        order = sorted(range(len(lengths)), key=lambda i: (int(lengths[i]), tie[i]))
        self.batches: list[list[int]] = []
        batch: list[int] = []
        longest = 0
        for i in order:
            n = max(longest, int(lengths[i]))
            if batch and (n * (len(batch) + 1) > self.max_tokens or (max_batch_size and len(batch) >= max_batch_size)):
                self.batches.append(batch)
                batch, n = [], int(lengths[i])
            batch.append(i)
            longest = n
        if batch:
            self.batches.append(batch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        g = torch.Generator().manual_seed(self.seed + 1_000_003 * self.epoch)
        return iter([self.batches[j] for j in torch.randperm(len(self.batches), generator=g).tolist()])


class Collator:
    """Dynamic padding of model inputs; passes ``labels`` and ``idx`` through as tensors."""

    def __init__(self, tokenizer):
        self.pad = DataCollatorWithPadding(tokenizer, return_tensors="pt")

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        model_part = [{k: f[k] for k in MODEL_COLUMNS if k in f} for f in features]
        batch = dict(self.pad(model_part))
        if "word_ids" in features[0]:  # padded with -1 (no word), on the tokenizer's padding side
            width = batch["input_ids"].shape[1]
            left = getattr(self.pad.tokenizer, "padding_side", "right") == "left"
            rows = [torch.as_tensor(f["word_ids"], dtype=torch.long) for f in features]
            fill = [torch.full((width - len(r),), -1, dtype=torch.long) for r in rows]
            batch["word_ids"] = torch.stack([torch.cat([f, r] if left else [r, f]) for r, f in zip(rows, fill)])
        if "labels" in features[0]:  # unlabeled text (general distillation) has none
            rows = [torch.as_tensor(f["labels"]) for f in features]
            if "sentence" in features[0]:  # token classification (windows of sentences): one label per position
                width = batch["input_ids"].shape[1]
                left = getattr(self.pad.tokenizer, "padding_side", "right") == "left"
                fill = [torch.full((width - len(r),), -100, dtype=torch.long) for r in rows]
                batch["labels"] = torch.stack([torch.cat([f, r] if left else [r, f]) for r, f in zip(rows, fill)])
            else:
                batch["labels"] = torch.stack(rows)
        if "idx" in features[0]:
            batch["idx"] = torch.as_tensor([int(f["idx"]) for f in features], dtype=torch.long)
        if "sentence" in features[0]:  # token classification: the sentence each window comes from
            batch["sentence"] = torch.as_tensor([int(f["sentence"]) for f in features], dtype=torch.long)
        return batch


def train_loader(ds: datasets.Dataset, tokenizer, *, batch_size: int, seed: int, group_by_length: bool = True,
                 max_tokens: int | None = None) -> DataLoader:
    """DataLoader over a tokenised train split with :class:`EpochLengthGroupedSampler`, or with ``max_tokens`` batches
    of a padded-token budget (:class:`TokenBudgetBatchSampler`, at most ``4 × batch_size`` rows each).

    The loader owns its generator so that creating an iterator never draws from the global
    RNG (which would change dropout masks after a resume).
    """
    if max_tokens:
        batches = TokenBudgetBatchSampler(list(ds.with_format(None)["length"]), max_tokens, seed, 4 * batch_size)
        return DataLoader(ds, batch_sampler=batches, collate_fn=Collator(tokenizer),
                          generator=torch.Generator().manual_seed(seed))
    sampler = EpochLengthGroupedSampler(list(ds.with_format(None)["length"]), batch_size, seed, group_by_length)
    return DataLoader(ds, batch_size=batch_size, sampler=sampler, collate_fn=Collator(tokenizer),
                      generator=torch.Generator().manual_seed(seed), drop_last=False)


def eval_loader(ds: datasets.Dataset, tokenizer, *, batch_size: int) -> DataLoader:
    """Sequential DataLoader (order = ``idx``) for evaluation and teacher-output caching."""
    return DataLoader(ds, batch_size=batch_size, shuffle=False, collate_fn=Collator(tokenizer))


def forward_keys(model) -> set[str] | None:
    """Keyword names ``model.forward`` accepts, or ``None`` if it takes ``**kwargs`` (or has no signature)."""
    import inspect

    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}


def model_logits(out):
    """The logits of a model's output: ``out.logits`` (``[B, C]``, per token ``[B, T, C]``), or for a
    question-answering model its ``start_logits`` and ``end_logits`` stacked, ``[B, T, 2]``; ``None`` for a bare
    encoder."""
    logits = getattr(out, "logits", None)
    if logits is None and getattr(out, "start_logits", None) is not None:
        return torch.stack([out.start_logits, out.end_logits], dim=-1)
    return logits


def model_inputs(batch, keys: set[str] | None = None) -> dict:
    """The model inputs of a batch (``input_ids``, ``attention_mask``, ``token_type_ids``; no ``labels``/``idx``).

    Args:
        batch: a collated batch or a tokenizer's encoding.
        keys: only these names (e.g. :func:`forward_keys` of the model); ``None`` = all three.
    """
    return {k: batch[k] for k in MODEL_COLUMNS if k in batch and (keys is None or k in keys)}
