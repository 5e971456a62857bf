"""Pretrained word vectors for the BiLSTM student's embedding table(s).

Tang et al. (2019), Sec. 4, initialise the BiLSTM with 300-d word2vec vectors. The student reads the
teacher's tokenisation, so :func:`load_word_vectors` maps a word2vec/GloVe *text* file onto the rows of
a tokenizer's vocabulary (ids ``0..V-1``); :meth:`BiLSTMForSequenceClassification.init_embeddings
<kdistill.students.bilstm.model.BiLSTMForSequenceClassification.init_embeddings>` copies the result
into the tables. The file itself is read by :func:`kdistill.data.files.iter_word_vectors`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from kdistill.data.files import iter_word_vectors, parse_vector
from kdistill.errors import DataError


@dataclass
class WordVectors:
    """Embedding rows for a tokenizer's vocabulary filled from a word-vector file.

    Attributes:
        weight: ``[V, E]`` float32; rows of tokens found hold their vectors, the others are random.
        found: number of vocabulary entries that got a pretrained vector.
        total: vocabulary size ``V``.
        missing_examples: up to 20 vocabulary tokens without a vector (for the log).
    """

    weight: torch.Tensor
    found: int
    total: int
    missing_examples: list[str] = field(default_factory=list)

    @property
    def coverage(self) -> float:
        """Fraction of the vocabulary that got a pretrained vector, in ``[0, 1]``."""
        return self.found / max(self.total, 1)


def load_word_vectors(path: str | Path, tokenizer, *, seed: int = 0, max_words: int | None = None) -> WordVectors:
    """Read word2vec/GloVe vectors in *text* format for a tokenizer's vocabulary.

    The paper (Sec. 4) initialises the BiLSTM with 300-d word2vec vectors. Each line is
    ``word v1 v2 ... vE``; an optional first line ``count dim`` (word2vec's header) is skipped;
    ``.gz`` files are read directly. Vocabulary token ``t`` (id ``i``) takes the vector of
    ``t``, else of ``t.lower()``, else — for a WordPiece continuation ``##x`` — of ``x``, and
    only then of a file word that lower-cases to one of these (e.g. ``Movie`` for ``movie``). Rows
    without a vector are drawn from ``N(0, σ²)`` with ``σ`` the standard deviation of the
    vectors found (0.1 if it cannot be estimated), seeded by ``seed``.

    Args:
        path: the text file (``.txt``, ``.vec`` or ``.gz``).
        tokenizer: the tokenizer whose ids index the rows (``V = len(tokenizer)``).
        seed: seed for the random rows.
        max_words: read only the first this many vectors (word2vec files are sorted by frequency).

    Returns:
        :class:`WordVectors` (``.coverage`` says how much of the vocabulary was found).

    Raises:
        DataError: missing/binary file, inconsistent vector widths, or no vocabulary token in the file.
    """
    vocab: dict[str, int] = dict(tokenizer.get_vocab())
    V = len(tokenizer)
    wanted: dict[str, list[tuple[int, int]]] = {}
    for token, idx in vocab.items():
        if idx >= V:
            continue
        keys = [token, token.lower()]
        if token.startswith("##") and len(token) > 2:
            keys += [token[2:], token[2:].lower()]
        for rank, key in enumerate(dict.fromkeys(keys)):
            wanted.setdefault(key, []).append((rank, idx))
    best: dict[int, tuple[int, torch.Tensor]] = {}  # id -> (match rank, vector)
    dim = None
    for lineno, word, numbers in iter_word_vectors(path, max_words=max_words):
        dim = len(numbers)
        targets = wanted.get(word, [])
        if word != word.lower():  # a cased file word also serves an uncased vocabulary, last
            targets = targets + [(rank + 10, idx) for rank, idx in wanted.get(word.lower(), [])]
        vec = None
        for rank, idx in targets:
            if idx not in best or rank < best[idx][0]:
                if vec is None:
                    vec = torch.from_numpy(parse_vector(path, lineno, numbers))
                best[idx] = (rank, vec)
    if not best or dim is None:
        raise DataError(f"no token of the tokenizer's vocabulary has a vector in {path}; "
                        "check that the file is word2vec/GloVe text for the same language")
    found = torch.stack([v for _, v in best.values()])
    std = float(found.std()) if found.numel() > 1 and math.isfinite(float(found.std())) else 0.1
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(V, dim, generator=g) * std
    for idx, (_, vec) in best.items():
        weight[idx] = vec
    id_to_token = {i: t for t, i in vocab.items() if i < V}
    missing = [id_to_token[i] for i in range(V) if i not in best and i in id_to_token][:20]
    return WordVectors(weight=weight, found=len(best), total=V, missing_examples=missing)


__all__ = ["WordVectors", "load_word_vectors"]
