"""Sample model inputs made of a tokenizer's own vocabulary words: for tracing exports and checking them
without any data (:func:`sample_inputs`)."""

from __future__ import annotations

import random
from typing import Sequence

import torch

from kdistill.errors import ModelError


def _vocabulary_words(tokenizer, count: int, seed: int) -> list[str]:
    """``count`` words of the tokenizer's own vocabulary (seeded): ids that are not special tokens and
    decode to letters only (``##`` pieces, punctuation and byte tokens are passed over)."""
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    rng = random.Random(seed)
    V = len(tokenizer)
    words: list[str] = []
    fallback: list[str] = []
    for _ in range(max(50 * count, 1000)):
        i = rng.randrange(V)
        if i in special:
            continue
        word = tokenizer.decode([i]).strip()
        if word.isalpha():
            words.append(word)
            if len(words) == count:
                return words
        elif word and len(fallback) < count:
            fallback.append(word)
    words += fallback[: count - len(words)]
    if not words:
        raise ModelError("the tokenizer has no ordinary (non-special) tokens to build sample inputs from")
    return (words * count)[:count]


def sample_inputs(tokenizer, lengths: Sequence[int], pair_lengths: Sequence[int] | None = None, *,
                  seed: int = 0) -> dict[str, torch.Tensor]:
    """A padded batch of sentences made of the tokenizer's own vocabulary words, encoded by the tokenizer.

    Row ``r`` has ``lengths[r]`` words (and a second sentence of ``pair_lengths[r]`` words for a
    pair model); the tokenizer adds its special tokens, ``token_type_ids`` (when it makes them) and
    padding, so the batch looks like the model's training inputs whatever the language.

    Returns:
        ``{"input_ids": [B, L], "attention_mask": [B, L], ...}`` as ``torch.long`` tensors, ``B = len(lengths)``.

    Raises:
        ModelError: the tokenizer has no ordinary tokens.
    """
    total = sum(lengths) + sum(pair_lengths or ())
    words = iter(_vocabulary_words(tokenizer, total, seed))
    first = [" ".join(next(words) for _ in range(n)) for n in lengths]
    second = [" ".join(next(words) for _ in range(n)) for n in pair_lengths] if pair_lengths is not None else None
    return dict(tokenizer(first, second, padding=True, return_tensors="pt"))


__all__ = ["sample_inputs"]
