"""Replacement candidates for TinyBERT's data augmentation (Jiao et al. 2020, Sec. 3.3, Algorithm 1).

Algorithm 1 (:mod:`kdistill.data.augment.tinybert`) draws the replacement of a word from a set of ``K``
candidates:

* :class:`MaskedLMCandidates` — a **single-piece** word is masked and a masked language model
  (any Hugging Face ``AutoModelForMaskedLM``) predicts it: its top-``K`` predictions;
* :class:`EmbeddingNeighbours` — a **multi-piece** word (every word, without a masked LM) gets its
  ``K`` nearest neighbours by cosine similarity in a word-embedding space: a model's input
  embeddings (e.g. the teacher's, :meth:`EmbeddingNeighbours.from_pretrained`) or a GloVe/word2vec
  text file (:meth:`EmbeddingNeighbours.from_word_vectors`; GloVe in the paper).

Both are batched (one ``[B, E] @ [E, C]`` product per block of words; masked copies of many
sentences in one forward pass) and have a ``fingerprint`` for cache keys. :func:`piece_ids` and
:func:`tokenizer_key` are shared with the augmenter.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from kdistill.data.files import iter_word_vectors, parse_vector
from kdistill.errors import DataError, KDistillError, ModelError

#: default pattern a candidate (vocabulary entry) must match in full: ASCII letters, 2 or more
DEFAULT_ALLOWED = r"[A-Za-z]{2,}"

_UNUSED_RE = re.compile(r"\[unused\d+\]|<unused\d+>")


def _hash_tensor(h, t: torch.Tensor) -> None:
    t = t.detach().to("cpu").contiguous()
    h.update(f"{tuple(t.shape)}|{t.dtype}".encode())
    h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")


def tokenizer_key(tokenizer) -> str:
    """16 hex digits identifying a tokenizer for cache keys (:func:`kdistill.data.batching.tokenizer_key`); ``"none"`` for ``None``."""
    from kdistill.data.batching import tokenizer_key as whole_tokenizer_key

    return "none" if tokenizer is None else whole_tokenizer_key(tokenizer)


class _QuietLoading:
    """Silence transformers' loading messages and weight-loading bar (a classifier loaded as ``AutoModel`` reports its head)."""

    def __enter__(self):
        from transformers.utils import logging as hf_logging

        self._log, self._bar = hf_logging, hf_logging.is_progress_bar_enabled()
        self._verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        return self

    def __exit__(self, *exc):
        self._log.set_verbosity(self._verbosity)
        if self._bar:
            self._log.enable_progress_bar()
        return False


def piece_ids(tokenizer, words: Iterable[str]) -> dict[str, list[int]]:
    """Word pieces (ids, no special tokens) of each distinct word, in one batched tokenizer call."""
    words = list(dict.fromkeys(words))
    if not words:
        return {}
    ids = tokenizer(words, add_special_tokens=False)["input_ids"]
    return dict(zip(words, ids))


# ----------------------------------------------------------------------------- embedding neighbours
class EmbeddingNeighbours:
    """Cosine nearest neighbours of words in a word-embedding space (the paper's GloVe step).

    Two kinds of space:

    * **a model's input word embeddings** (``tokenizer`` given; :meth:`from_pretrained`): ``table``
      is the ``[V, E]`` word-embedding matrix and ``words`` the vocabulary by id. A word is
      embedded as its single piece's row, or the mean of its word pieces' rows (``[UNK]`` pieces
      dropped). Candidates are the whole-word vocabulary entries: no ``##`` continuation pieces,
      special tokens, ``[unused*]`` slots or punctuation-only entries, and only entries matching
      ``allowed`` (default ASCII words of 2+ letters);
    * **a word-vector file** (GloVe/word2vec text, :meth:`from_word_vectors`): ``table`` ``[N, E]``
      holds one row per word of ``words``; a word is found as is, else lower-cased, and has no
      neighbours when absent. Candidates are the file's words matching ``allowed``.

    The word itself (case-insensitively) and, for a model space, its own word pieces are never
    candidates. Neighbour lists are computed in batches (one ``[B, E] @ [E, C]`` product per
    ``batch_size`` words) and cached per word.

    Args:
        table: ``[N, E]`` float embeddings (copied to float32 CPU).
        words: ``N`` strings, the word (or token) of each row.
        tokenizer: the tokenizer whose ids index ``table`` (model space), or ``None`` (word-vector file).
        allowed: regular expression a candidate must match in full; ``None`` for any entry with a
            letter or digit.
        exclude: words never used as candidates.
        batch_size: query words per matrix product.
        name: shown in the cache key and messages.

    Raises:
        ModelError: ``table`` is not 2-D, its row count differs from ``len(words)``, or no entry
            qualifies as a candidate.
    """

    def __init__(self, table: torch.Tensor, words: Sequence[str], *, tokenizer=None, allowed: str | None = DEFAULT_ALLOWED,
                 exclude: Iterable[str] = (), batch_size: int = 1024, name: str = ""):
        table = torch.as_tensor(table).detach().to("cpu", torch.float32)
        words = [str(w) if w is not None else "" for w in words]
        if table.dim() != 2 or table.shape[0] != len(words):
            raise ModelError(f"an embedding space needs a [N, E] table with one row per word; got shape "
                             f"{tuple(table.shape)} for {len(words)} words")
        self.table, self.words, self.tokenizer = table, words, tokenizer
        self.allowed, self.exclude, self.batch_size, self.name = allowed, frozenset(exclude), int(batch_size), name
        special = set(getattr(tokenizer, "all_special_tokens", []) or []) if tokenizer is not None else set()
        pattern = re.compile(allowed) if allowed else None
        keep = [i for i, w in enumerate(words)
                if w and w not in special and not w.startswith("##") and not _UNUSED_RE.fullmatch(w)
                and any(c.isalnum() for c in w) and (pattern is None or pattern.fullmatch(w)) and w not in self.exclude]
        if not keep:
            raise ModelError(f"no entry of the embedding space {name or ''} qualifies as a replacement word "
                             f"(pattern {allowed!r}); check the vocabulary or pass allowed=None")
        self.candidate_ids = torch.tensor(keep, dtype=torch.long)
        self.candidate_words = [words[i] for i in keep]
        self._cand = torch.nn.functional.normalize(table[self.candidate_ids], dim=1)  # [C, E]
        self._by_lower: dict[str, list[int]] = {}
        for j, w in enumerate(self.candidate_words):
            self._by_lower.setdefault(w.lower(), []).append(j)
        self._row: dict[str, int] = {}
        if tokenizer is None:
            for i, w in enumerate(words):
                self._row.setdefault(w, i)
        self._cache: dict[tuple[str, int], list[str]] = {}
        self._fingerprint: str | None = None

    # -- construction
    @classmethod
    def from_model(cls, model, tokenizer, **kwargs) -> "EmbeddingNeighbours":
        """The input word embeddings of a loaded model (``model.get_input_embeddings().weight``, ``[V, E]``)."""
        emb = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
        if emb is None or not hasattr(emb, "weight"):
            raise ModelError(f"{type(model).__name__} has no input word-embedding matrix to take neighbours from")
        weight = emb.weight.detach()
        n = min(len(tokenizer), weight.shape[0])
        words = tokenizer.convert_ids_to_tokens(list(range(n))) + [""] * (weight.shape[0] - n)
        kwargs.setdefault("name", str(getattr(model, "name_or_path", "") or getattr(model.config, "_name_or_path", "")))
        return cls(weight, words, tokenizer=tokenizer, **kwargs)

    @classmethod
    def from_pretrained(cls, path: str | Path, tokenizer=None, **kwargs) -> "EmbeddingNeighbours":
        """The input word embeddings of a saved model (any architecture ``AutoModel`` loads; e.g. the teacher).

        Raises:
            ModelError: the folder holds no loadable model or tokenizer.
        """
        from transformers import AutoModel, AutoTokenizer

        path = Path(path)
        if not path.is_dir():
            raise ModelError(f"model folder {path} does not exist; pass a saved model (e.g. the teacher) for the embedding space")
        try:
            with _QuietLoading():
                tokenizer = tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(str(path))
                model = AutoModel.from_pretrained(str(path))
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load a model and tokenizer from {path} ({' '.join(str(exc).split())[:160]})") from exc
        kwargs.setdefault("name", str(path))
        return cls.from_model(model, tokenizer, **kwargs)

    @classmethod
    def from_word_vectors(cls, path: str | Path, *, max_words: int | None = 100_000, **kwargs) -> "EmbeddingNeighbours":
        """A GloVe/word2vec *text* file (``word v1 ... vE`` per line; ``.gz`` read directly).

        An optional word2vec header line ``count dim`` is skipped. Like the reference, only the first
        ``max_words`` vectors are read (the files are sorted by frequency; ``None`` reads all).
        The file is read with :func:`kdistill.data.files.iter_word_vectors`, like
        :func:`kdistill.students.bilstm.word_vectors.load_word_vectors` (which maps it onto a tokenizer's vocabulary;
        here the file's own words are the space).

        Raises:
            DataError: missing or non-UTF-8 file, inconsistent widths, non-numbers, or no vectors.
        """
        words: list[str] = []
        rows = []  # float32 numpy vectors
        for lineno, word, numbers in iter_word_vectors(path, max_words=max_words):
            rows.append(parse_vector(path, lineno, numbers))
            words.append(word)
        if not words:
            raise DataError(f"{path} holds no word vectors; pass a GloVe/word2vec text file")
        kwargs.setdefault("name", str(path))
        return cls(torch.from_numpy(np.stack(rows)), words, tokenizer=None, **kwargs)

    # -- queries
    @property
    def fingerprint(self) -> str:
        """A hash of the space (table, words, settings) for cache keys."""
        if self._fingerprint is None:
            h = hashlib.sha1(f"neighbours|{self.allowed}|{sorted(self.exclude)}|{tokenizer_key(self.tokenizer)}".encode())
            _hash_tensor(h, self.table)
            h.update("\n".join(self.words).encode())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def _embed(self, words: Sequence[str]) -> tuple[torch.Tensor, list[bool], list[set[int]]]:
        """``([B, E] vectors, found flags, candidate columns to exclude per word)``."""
        E = self.table.shape[1]
        out = torch.zeros(len(words), E)
        found = [False] * len(words)
        banned: list[set[int]] = [set(self._by_lower.get(w.lower(), [])) for w in words]
        if self.tokenizer is not None:
            pieces = piece_ids(self.tokenizer, words)
            unk = getattr(self.tokenizer, "unk_token_id", None)
            for b, w in enumerate(words):
                ids = [i for i in pieces[w] if i != unk and 0 <= i < self.table.shape[0]]
                if ids:
                    out[b] = self.table[ids].mean(0)
                    found[b] = True
                    if len(ids) > 1:  # a multi-piece word's own pieces are no replacement for it
                        for i in ids:
                            banned[b].update(self._by_lower.get(self.words[i].removeprefix("##").lower(), []))
        else:
            for b, w in enumerate(words):
                row = self._row.get(w, self._row.get(w.lower()))
                if row is not None:
                    out[b] = self.table[row]
                    found[b] = True
        return out, found, banned

    def neighbours_many(self, words: Iterable[str], k: int = 15, *, show_progress: bool = False) -> dict[str, list[str]]:
        """The ``k`` nearest candidates of each word, most similar first (cached per ``(word, k)``).

        Args:
            words: query words (any order, repeats allowed).
            k: neighbours per word (fewer only when the space has fewer candidates).

        Returns:
            ``{word: [neighbour, ...]}``; ``[]`` for a word the space cannot embed.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise KDistillError(f"k (neighbours per word) must be a whole number >= 1, got {k!r}")
        words = list(dict.fromkeys(words))
        todo = [w for w in words if (w, k) not in self._cache]
        kk = min(k, len(self.candidate_words))
        bar = tqdm(total=len(todo), desc="embedding neighbours", disable=not show_progress or not todo)
        for s in range(0, len(todo), self.batch_size):
            chunk = todo[s:s + self.batch_size]
            vecs, found, banned = self._embed(chunk)
            q = torch.nn.functional.normalize(vecs, dim=1)
            scores = q @ self._cand.T  # [B, C]
            for b, cols in enumerate(banned):
                if cols:
                    scores[b, list(cols)] = -math.inf
            extra = min(kk + 8, scores.shape[1])
            top = scores.topk(extra, dim=1)
            for b, w in enumerate(chunk):
                if not found[b]:
                    self._cache[(w, k)] = []
                    continue
                vals, idx = top.values[b].tolist(), top.indices[b].tolist()
                self._cache[(w, k)] = [self.candidate_words[j] for v, j in zip(vals, idx) if v != -math.inf][:kk]
            bar.update(len(chunk))
        bar.close()
        return {w: list(self._cache[(w, k)]) for w in words}

    def neighbours(self, word: str, k: int = 15) -> list[str]:
        """The ``k`` nearest candidates of one word (see :meth:`neighbours_many`)."""
        return self.neighbours_many([word], k)[word]


# ----------------------------------------------------------------------------- masked-LM candidates
class MaskedLMCandidates:
    """Top-``K`` masked-LM predictions for single-piece words (Algorithm 1's MLM step).

    The word at each asked position is replaced by the mask token (all its pieces by one mask, should
    this tokenizer split it) in ``[CLS] sentence [SEP]``; one forward pass per masked copy, many
    copies per batch (sorted by length, padded). Predictions exclude special tokens, ``##``
    continuation pieces, ``[unused*]`` slots, entries not matching ``allowed`` and the original word
    (case-insensitively) before the top-``K`` cut. Only the logits at the masked position are
    computed (a pre-hook on the output-embedding layer selects that hidden state).

    Args:
        model: a Hugging Face ``AutoModelForMaskedLM`` (put in eval mode).
        tokenizer: its tokenizer.
        batch_size: masked copies per forward pass.
        max_length: longest input in pieces; longer sentences are cut to a window around the mask.
        device: where the model runs (default: where it is).
        allowed: regular expression a predicted token must match in full (``None``: any with a letter or digit).

    Raises:
        ModelError: the model has no output-embedding (vocabulary) layer.
    """

    def __init__(self, model, tokenizer, *, batch_size: int = 64, max_length: int = 128, device: str | None = None,
                 allowed: str | None = DEFAULT_ALLOWED):
        if tokenizer.mask_token_id is None:
            raise ModelError("the masked-LM tokenizer has no mask token")
        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        if head is None:
            raise ModelError(f"{type(model).__name__} has no masked-LM head; pass an AutoModelForMaskedLM checkpoint")
        self.model, self.tokenizer, self.head = model.eval(), tokenizer, head
        if device is not None:
            self.model.to(device)
        self.device = next(model.parameters()).device
        self.batch_size, self.max_length, self.allowed = int(batch_size), max(int(max_length), 3), allowed
        V = int(head.weight.shape[0])
        tokens = tokenizer.convert_ids_to_tokens(list(range(min(V, len(tokenizer)))))
        special = set(tokenizer.all_special_ids)
        pattern = re.compile(allowed) if allowed else None
        ok = torch.zeros(V, dtype=torch.bool)
        for i, t in enumerate(tokens):
            if t and i not in special and not t.startswith("##") and not _UNUSED_RE.fullmatch(t) \
                    and any(c.isalnum() for c in t) and (pattern is None or pattern.fullmatch(t)):
                ok[i] = True
        self._banned = ~ok  # [V]
        self.vocab_tokens = tokens
        self._fingerprint: str | None = None

    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs) -> "MaskedLMCandidates":
        """Load ``AutoModelForMaskedLM`` and its tokenizer from a folder.

        Raises:
            ModelError: nothing loadable there, or the checkpoint has no trained masked-LM head
                (e.g. a sequence classifier such as our teacher: use :class:`EmbeddingNeighbours` alone).
        """
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        path = Path(path)
        if not path.is_dir():
            raise ModelError(f"masked-LM folder {path} does not exist; pass a saved AutoModelForMaskedLM (e.g. bert-base-uncased)")
        try:
            with _QuietLoading():
                tokenizer = AutoTokenizer.from_pretrained(str(path))
                model, info = AutoModelForMaskedLM.from_pretrained(str(path), output_loading_info=True)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load a masked LM from {path} ({' '.join(str(exc).split())[:160]})") from exc
        prefix = getattr(model, "base_model_prefix", "") or ""
        missing = [m for m in info.get("missing_keys", []) if not (prefix and m.startswith(prefix + "."))]
        if missing:
            raise ModelError(f"{path} has no trained masked-LM head (missing {missing[:3]}); pass an MLM checkpoint "
                             "with --mlm, or leave --mlm out to use embedding neighbours only")
        return cls(model, tokenizer, **kwargs)

    @property
    def fingerprint(self) -> str:
        """A hash of the model's parameters, tokenizer and settings, for cache keys."""
        if self._fingerprint is None:
            h = hashlib.sha1(f"mlm|{type(self.model).__name__}|{self.max_length}|{self.allowed}|"
                             f"{tokenizer_key(self.tokenizer)}".encode())
            for name, t in sorted(self.model.state_dict().items()):
                h.update(name.encode())
                _hash_tensor(h, t)
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def _window(self, ids: list[int], mask_at: int) -> tuple[list[int], int]:
        """``[CLS] ids [SEP]`` cut to ``max_length`` around ``mask_at``; returns ``(ids, new mask index)``."""
        room = self.max_length - 2
        if len(ids) > room:
            start = max(0, min(mask_at - room // 2, len(ids) - room))
            ids, mask_at = ids[start:start + room], mask_at - start
        cls_id = self.tokenizer.cls_token_id if self.tokenizer.cls_token_id is not None else self.tokenizer.bos_token_id
        sep_id = self.tokenizer.sep_token_id if self.tokenizer.sep_token_id is not None else self.tokenizer.eos_token_id
        pre = [cls_id] if cls_id is not None else []
        post = [sep_id] if sep_id is not None else []
        return pre + ids + post, mask_at + len(pre)

    def candidates(self, sentences: Sequence[Sequence[str]], positions: Sequence[Sequence[int]], k: int = 15, *,
                   show_progress: bool = False) -> list[list[list[str]]]:
        """MLM candidates for the given word positions of many sentences.

        Args:
            sentences: each a list of tokens (words and punctuation, as from
                :func:`kdistill.data.augment.tinybert.split_words`).
            positions: for each sentence, the token indices to predict (each gets its own masked copy).
            k: candidates per position.

        Returns:
            ``out[s][j]``: up to ``k`` predicted tokens (most likely first) for ``positions[s][j]``.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise KDistillError(f"k (candidates per word) must be a whole number >= 1, got {k!r}")
        if len(sentences) != len(positions):
            raise KDistillError("MaskedLMCandidates.candidates needs one list of positions per sentence")
        pieces = piece_ids(self.tokenizer, (t for s in sentences for t in s))
        jobs: list[tuple[int, int, list[int], int, str]] = []  # (sentence, j, ids, mask index, word)
        mask_id = self.tokenizer.mask_token_id
        for s, (toks, pos) in enumerate(zip(sentences, positions)):
            if not pos:
                continue
            offsets, total = [], 0
            for t in toks:
                offsets.append(total)
                total += len(pieces[t])
            flat = [i for t in toks for i in pieces[t]]
            for j, p in enumerate(pos):
                a, n = offsets[p], len(pieces[toks[p]])
                ids = flat[:a] + [mask_id] + flat[a + n:]
                ids, m = self._window(ids, a)
                jobs.append((s, j, ids, m, toks[p]))
        out: list[list[list[str]]] = [[[] for _ in pos] for pos in positions]
        order = sorted(range(len(jobs)), key=lambda i: len(jobs[i][2]))
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        selected: dict[str, torch.Tensor] = {}

        def pick(_module, args):  # [B, L, H] -> [B, 1, H]: logits only at the masked positions
            h = args[0]
            if h.dim() == 3 and "rows" in selected:
                return (h[selected["rows"], selected["cols"]].unsqueeze(1), *args[1:])
            return None

        handle = self.head.register_forward_pre_hook(pick)
        bar = tqdm(total=len(jobs), desc="masked-LM candidates", disable=not show_progress or not jobs)
        try:
            with torch.inference_mode():
                for b0 in range(0, len(order), self.batch_size):
                    batch = [jobs[i] for i in order[b0:b0 + self.batch_size]]
                    L = max(len(x[2]) for x in batch)
                    ids = torch.full((len(batch), L), pad, dtype=torch.long)
                    att = torch.zeros((len(batch), L), dtype=torch.long)
                    for r, x in enumerate(batch):
                        ids[r, :len(x[2])] = torch.tensor(x[2])
                        att[r, :len(x[2])] = 1
                    rows = torch.arange(len(batch), device=self.device)
                    cols = torch.tensor([x[3] for x in batch], device=self.device)
                    selected.update(rows=rows, cols=cols)
                    logits = self.model(input_ids=ids.to(self.device), attention_mask=att.to(self.device)).logits
                    logits = logits[:, 0] if logits.shape[1] == 1 else logits[rows, cols]  # [B, V]
                    logits = logits.float().cpu()
                    V = min(logits.shape[1], self._banned.shape[0])
                    logits = logits[:, :V].masked_fill(self._banned[:V], -math.inf)
                    top = logits.topk(min(k + 4, V), dim=1)
                    for r, x in enumerate(batch):
                        word = x[4].lower()
                        cands = [self.vocab_tokens[i] for v, i in zip(top.values[r].tolist(), top.indices[r].tolist())
                                 if v != -math.inf and i < len(self.vocab_tokens)]
                        out[x[0]][x[1]] = [c for c in cands if c.lower() != word][:k]
                    bar.update(len(batch))
        finally:
            handle.remove()
            selected.clear()
            bar.close()
        return out


__all__ = ["DEFAULT_ALLOWED", "EmbeddingNeighbours", "MaskedLMCandidates", "piece_ids", "tokenizer_key"]
