"""TinyBERT data augmentation: Jiao et al. (2020), Sec. 3.3 "Data Augmentation", Algorithm 1.

Task-specific distillation of TinyBERT trains on an augmented task set. For every example, the
words are split and each eligible word ``w`` gets a candidate set of ``K`` replacements:

* ``w`` is a **single word piece** under the BERT tokenizer — ``w`` is masked in the sentence
  and a masked language model predicts it: the candidates are its top-``K`` predictions
  (:class:`MaskedLMCandidates`, any Hugging Face ``AutoModelForMaskedLM``);
* ``w`` is **several word pieces** — the candidates are its ``K`` nearest neighbours by cosine
  similarity in a word-embedding space (GloVe in the paper; :class:`EmbeddingNeighbours`).

Then ``N_a`` augmented copies are drawn: in each copy, every eligible word is replaced by a
random candidate with probability ``p_t``. The paper's values are ``p_t = 0.4``, ``K = 15``,
``N_a = 20`` (the defaults here). Originals are kept and duplicates dropped.

Without a masked LM (``mlm=None``) every eligible word takes embedding neighbours, so the
teacher's own input embeddings (:meth:`EmbeddingNeighbours.from_pretrained`) suffice: no MLM head,
no GloVe file and no network needed. A GloVe/word2vec text file also works
(:meth:`EmbeddingNeighbours.from_word_vectors`).

Details that follow the reference implementation (``TinyBERT/data_augmentation.py``):

* words are split like BERT's basic tokenizer (runs of word characters; each punctuation mark
  on its own). Only words of ASCII letters that are not English stop words are augmented; the
  rest of the text (punctuation, spacing, numbers) is kept verbatim, so an unmodified copy is
  exactly the original text. ``skip_stopwords=False`` augments stop words too;
* a word without candidates (not in the embedding space, or the MLM predicts nothing usable)
  is kept;
* sentence pairs are augmented field by field: ``N_a`` copies with ``text_a`` augmented and
  ``text_b`` as is, then ``N_a`` copies the other way round (the reference changes one field
  at a time too);
* neighbours of a title-cased word are title-cased (and upper-cased for an all-capitals word).

Differences from the reference, on purpose: the masked sentence alone is the MLM input (the
paper's description; the reference also appends the unmasked sentence as segment B), MLM
candidates exclude the original word and sub-word/special tokens *before* the top-``K`` cut (so
there are ``K`` of them), and embedding candidates exclude punctuation-only and non-alphabetic
entries and the word's own word pieces.

Everything is seeded (each example draws from its own ``random.Random`` seeded by
``(seed, index)``), batched (one matrix product per block of words; masked copies of many
sentences in one forward pass) and cached on disk, keyed by a hash of the data, the settings and
the candidate generators.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from kdistill.data.files import iter_word_vectors, parse_vector, save_dataset_atomically
from kdistill.errors import DataError, KDistillError, ModelError

#: bump when the algorithm changes so old on-disk caches are not reused
CACHE_VERSION = 1
CACHE_INFO = "kdistill_augment_tinybert.json"

#: English stop words that are never replaced (NLTK's list, as used by the reference).
STOP_WORDS = frozenset("""
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her hers herself it
its itself they them their theirs themselves what which who whom this that these those am is are was were be been
being have has had having do does did doing a an the and but if or because as until while of at by for with about
against between into through during before after above below to from up down in out on off over under again further
then once here there when where why how all any both each few more most other some such no nor not only own same so
than too very s t can will just don should now d ll m o re ve y ain aren couldn didn doesn hadn hasn haven isn ma
mightn mustn needn shan shouldn wasn weren won wouldn
""".split())

#: default pattern a candidate (vocabulary entry) must match in full: ASCII letters, 2 or more
DEFAULT_ALLOWED = r"[A-Za-z]{2,}"

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")  # BERT basic tokenization: word runs; each punctuation mark alone
_WORD_RE = re.compile(r"[A-Za-z]+")  # words the reference augments (its `_is_valid`)
_UNUSED_RE = re.compile(r"\[unused\d+\]|<unused\d+>")


# ----------------------------------------------------------------------------- words
def split_words(text: str) -> list[tuple[str, int, int]]:
    """``(token, start, end)`` of every word and punctuation mark of ``text`` (character offsets).

    Words are maximal runs of word characters (``\\w``); every other non-space character is a token
    of its own, as in BERT's basic tokenizer. Whitespace is not a token; it is kept when a text is
    rebuilt with :func:`rebuild`.
    """
    return [(m.group(), m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]


def is_eligible(word: str, *, skip_stopwords: bool = True) -> bool:
    """Whether Algorithm 1 may replace ``word``: ASCII letters only, and not a stop word (unless ``skip_stopwords=False``)."""
    return bool(_WORD_RE.fullmatch(word)) and not (skip_stopwords and word.lower() in STOP_WORDS)


def match_case(word: str, candidate: str) -> str:
    """``candidate`` in the case pattern of ``word`` (``Movie`` → ``Film``, ``MOVIE`` → ``FILM``); others unchanged."""
    if not candidate.islower():
        return candidate
    if len(word) > 1 and word.isupper():
        return candidate.upper()
    if word[:1].isupper():
        return candidate[:1].upper() + candidate[1:]
    return candidate


def rebuild(text: str, tokens: Sequence[tuple[str, int, int]], replacements: dict[int, str]) -> str:
    """``text`` with token ``i`` (an index into ``tokens`` from :func:`split_words`) replaced by ``replacements[i]``."""
    if not replacements:
        return text
    parts, last = [], 0
    for i in sorted(replacements):
        _, start, end = tokens[i]
        parts += [text[last:start], replacements[i]]
        last = end
    parts.append(text[last:])
    return "".join(parts)


def augment_once(
    text: str,
    tokens: Sequence[tuple[str, int, int]],
    candidates: dict[int, Sequence[str]],
    rng,
    p_t: float,
) -> str:
    """One augmented copy of ``text`` (the inner loop of Algorithm 1).

    For every eligible position ``i`` (the keys of ``candidates``, in increasing order) a candidate
    is drawn uniformly, then kept with probability ``p_t`` (two draws per position, always, so the
    random stream does not depend on earlier outcomes). An empty candidate list keeps the word.

    Args:
        text: the original text; ``tokens`` is ``split_words(text)``.
        candidates: token index → replacement words (already case-matched or not; this function
            applies :func:`match_case`).
        rng: a ``random.Random``, advanced by the call.
        p_t: replacement probability.

    Returns:
        The new text (``text`` itself when nothing was replaced).
    """
    repl: dict[int, str] = {}
    for i in sorted(candidates):
        cands = candidates[i]
        word = tokens[i][0]
        choice = rng.choice(cands) if cands else word
        if rng.random() < p_t and choice != word:
            repl[i] = match_case(word, choice)
    return rebuild(text, tokens, repl)


# ----------------------------------------------------------------------------- helpers
def _check_params(p_t: float, k: int, n_aug: int) -> None:
    if isinstance(p_t, bool) or not isinstance(p_t, (int, float)) or not 0.0 <= float(p_t) <= 1.0:
        raise KDistillError(f"p_t (the probability of replacing a word) must be in [0, 1], got {p_t!r}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise KDistillError(f"k (candidates per word) must be a whole number >= 1, got {k!r}")
    if isinstance(n_aug, bool) or not isinstance(n_aug, int) or n_aug < 0:
        raise KDistillError(f"n_aug (augmented copies per example) must be a whole number >= 0, got {n_aug!r}")


def _hash_tensor(h, t: torch.Tensor) -> None:
    t = t.detach().to("cpu").contiguous()
    h.update(f"{tuple(t.shape)}|{t.dtype}".encode())
    h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")


def _tokenizer_key(tokenizer) -> str:
    if tokenizer is None:
        return "none"
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    h = hashlib.sha1(f"{type(tokenizer).__name__}|{len(tokenizer)}".encode())
    h.update(json.dumps(vocab).encode())
    h.update(repr(tokenizer("Hello World unaffable", add_special_tokens=False)["input_ids"]).encode())
    return h.hexdigest()[:16]


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


def _piece_ids(tokenizer, words: Iterable[str]) -> dict[str, list[int]]:
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
        :func:`kdistill.students.bilstm.load_word_vectors` (which maps it onto a tokenizer's vocabulary;
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
            h = hashlib.sha1(f"neighbours|{self.allowed}|{sorted(self.exclude)}|{_tokenizer_key(self.tokenizer)}".encode())
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
            pieces = _piece_ids(self.tokenizer, words)
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
                             f"{_tokenizer_key(self.tokenizer)}".encode())
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
            sentences: each a list of tokens (words and punctuation, as from :func:`split_words`).
            positions: for each sentence, the token indices to predict (each gets its own masked copy).
            k: candidates per position.

        Returns:
            ``out[s][j]``: up to ``k`` predicted tokens (most likely first) for ``positions[s][j]``.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise KDistillError(f"k (candidates per word) must be a whole number >= 1, got {k!r}")
        if len(sentences) != len(positions):
            raise KDistillError("MaskedLMCandidates.candidates needs one list of positions per sentence")
        pieces = _piece_ids(self.tokenizer, (t for s in sentences for t in s))
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


# ----------------------------------------------------------------------------- the data set
def _dataset_key(ds) -> str:
    h = hashlib.sha1(f"{len(ds)}|{sorted(ds.column_names)}".encode())
    for col in ("text_a", "text_b", "label", "idx"):
        if col in ds.column_names:
            h.update(col.encode())
            for chunk in ds.with_format("arrow").iter(batch_size=10_000):
                h.update(json.dumps(chunk[col].to_pylist(), default=str).encode())
    return h.hexdigest()[:16]


def augment_dataset(
    ds,
    *,
    tokenizer=None,
    neighbours: EmbeddingNeighbours | None,
    mlm: MaskedLMCandidates | None = None,
    p_t: float = 0.4,
    k: int = 15,
    n_aug: int = 20,
    seed: int = 0,
    skip_stopwords: bool = True,
    cache_dir: str | Path | bool | None = None,
    show_progress: bool = True,
):
    """TinyBERT's augmented task set (Jiao et al. 2020, Sec. 3.3, Algorithm 1): originals + augmented rows.

    Args:
        ds: a split from :func:`kdistill.data.load_splits`: ``text_a`` [, ``text_b``], ``label``, ``idx``.
        tokenizer: the BERT tokenizer deciding whether a word is a single word piece (MLM) or several
            (embedding neighbours); default: ``mlm.tokenizer``. Not needed without ``mlm``.
        neighbours: the embedding space for multi-piece words (for every word when ``mlm`` is None).
            May be ``None`` only with ``mlm`` (multi-piece words are then kept).
        mlm: masked-LM candidates for single-piece words, or ``None`` (embedding neighbours only).
        p_t: probability of replacing each eligible word (paper: 0.4).
        k: candidates per word (paper: 15).
        n_aug: augmented copies per example and field, ``N_a`` (paper: 20; 0 returns the originals).
        seed: the output depends only on the data, the generators, the settings and ``seed``.
        skip_stopwords: never replace English stop words (as the reference does).
        cache_dir: where the result is cached (folder ``aug-tinybert-<hash>``), keyed by a hash of all of
            the above; ``None``: :func:`kdistill.data.batching.default_cache_dir`; ``False``: no cache.
        show_progress: tqdm bars for the candidate and generation steps.

    Returns:
        A ``datasets.Dataset`` with the columns of ``ds`` plus ``augmented`` (bool) and ``source_idx``
        (int64, the ``idx`` of the original it came from): first every original row unchanged (in order),
        then the augmented rows, example by example (for a pair: the ``text_a`` copies, then the ``text_b``
        copies). Augmented rows keep the original's ``label`` (TinyBERT relabels them with the teacher; the
        caller may override it). Rows equal to an earlier row (whitespace-normalised) are dropped.
        ``idx`` is renumbered ``0..N-1`` (originals first, so they keep positions ``0..n-1``).

    Raises:
        KDistillError: ``p_t`` outside ``[0, 1]``, ``k < 1``, ``n_aug < 0``, or neither ``neighbours`` nor ``mlm``.
        DataError: ``ds`` lacks ``text_a``/``label``/``idx``.
    """
    import datasets

    _check_params(p_t, k, n_aug)
    if neighbours is None and mlm is None:
        raise KDistillError("TinyBERT augmentation needs an embedding space (neighbours) or a masked LM (mlm), or both")
    cols = list(ds.column_names)
    missing = [c for c in ("text_a", "label", "idx") if c not in cols]
    if missing:
        raise DataError(f"augment_dataset needs a split with columns text_a [, text_b], label, idx; missing {missing} "
                        f"(found {cols}); load it with kdistill.data.load_splits")
    if mlm is not None and tokenizer is None:
        tokenizer = mlm.tokenizer
    pair = "text_b" in cols

    path = None
    if cache_dir is not False:
        from kdistill.data.batching import default_cache_dir

        settings = {"v": CACHE_VERSION, "p_t": float(p_t), "k": k, "n_aug": n_aug, "seed": seed,
                    "skip_stopwords": skip_stopwords, "data": _dataset_key(ds),
                    "neighbours": None if neighbours is None else neighbours.fingerprint,
                    "mlm": None if mlm is None else mlm.fingerprint,
                    "tokenizer": _tokenizer_key(tokenizer) if mlm is not None else None}
        key = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
        root = Path(cache_dir) if cache_dir else default_cache_dir()
        path = root / f"aug-tinybert-{key}"
        if (path / CACHE_INFO).is_file():
            return datasets.load_from_disk(str(path))

    t0 = time.perf_counter()
    fields = ["text_a", "text_b"] if pair else ["text_a"]
    texts = {f: list(ds[f]) for f in fields}
    n = len(ds)
    # 1. words and eligible positions, per example and field
    tokens = {f: [split_words(t) for t in texts[f]] for f in fields}
    eligible = {f: [[i for i, (w, _, _) in enumerate(toks) if is_eligible(w, skip_stopwords=skip_stopwords)]
                    for toks in tokens[f]] for f in fields}
    words = {toks[i][0] for f in fields for toks, pos in zip(tokens[f], eligible[f]) for i in pos}
    # 2. single- vs multi-piece (only matters when an MLM is there to take the single-piece ones)
    if mlm is not None:
        pieces = _piece_ids(tokenizer, sorted(words))
        unk = getattr(tokenizer, "unk_token_id", None)
        single = {w for w, ids in pieces.items() if len(ids) == 1 and ids[0] != unk}
    else:
        single = set()
    # 3. embedding neighbours for the rest, one batched pass over the distinct words
    emb = neighbours.neighbours_many(sorted(words - single), k, show_progress=show_progress) if neighbours is not None else {}
    # 4. MLM candidates for every single-piece position of every sentence, batched across sentences
    mlm_out: dict[str, list[list[list[str]]]] = {}
    if mlm is not None:
        for f in fields:
            pos = [[i for i in p if toks[i][0] in single] for toks, p in zip(tokens[f], eligible[f])]
            res = mlm.candidates([[w for w, _, _ in toks] for toks in tokens[f]], pos, k, show_progress=show_progress)
            mlm_out[f] = [dict(zip(p, r)) for p, r in zip(pos, res)]  # type: ignore[misc]

    def candidates_of(f: str, r: int) -> dict[int, list[str]]:
        toks, out = tokens[f][r], {}
        by_mlm = mlm_out[f][r] if f in mlm_out else {}
        for i in eligible[f][r]:
            w = toks[i][0]
            out[i] = list(by_mlm.get(i, [])) if w in single else list(emb.get(w, []))
        return out

    # 5. N_a copies per example and field (Algorithm 1's sampling loop), duplicates dropped
    import random

    def norm(row: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(" ".join(s.split()) for s in row)

    originals = [tuple(texts[f][r] for f in fields) for r in range(n)]
    seen = {norm(row) for row in originals}
    new_rows: list[tuple[int, tuple[str, ...]]] = []
    if n_aug > 0 and p_t > 0:
        for r in tqdm(range(n), desc="augment (TinyBERT)", disable=not show_progress):
            rng = random.Random(f"{seed}:{r}")
            for fi, f in enumerate(fields):
                cands = candidates_of(f, r)
                for _ in range(n_aug):
                    text = augment_once(texts[f][r], tokens[f][r], cands, rng, p_t)
                    row = originals[r][:fi] + (text,) + originals[r][fi + 1:]
                    key = norm(row)
                    if key not in seen:
                        seen.add(key)
                        new_rows.append((r, row))

    labels, src = list(ds["label"]), list(ds["idx"])
    data: dict[str, list[Any]] = {f: texts[f] + [row[fi] for _, row in new_rows] for fi, f in enumerate(fields)}
    data["label"] = labels + [labels[r] for r, _ in new_rows]
    data["idx"] = list(range(n + len(new_rows)))
    data["augmented"] = [False] * n + [True] * len(new_rows)
    data["source_idx"] = [int(x) for x in src] + [int(src[r]) for r, _ in new_rows]
    extra_cols = [c for c in cols if c not in data]
    for c in extra_cols:  # any other column of ds is copied from the original
        values = list(ds[c])
        data[c] = values + [values[r] for r, _ in new_rows]
    features = dict(ds.features)
    features.update(augmented=datasets.Value("bool"), source_idx=datasets.Value("int64"), idx=datasets.Value("int64"))
    order = cols + ["augmented", "source_idx"]
    out = datasets.Dataset.from_dict({c: data[c] for c in order}, features=datasets.Features({c: features[c] for c in order}))
    if path is not None:
        info = {"original_rows": n, "augmented_rows": len(new_rows), "p_t": p_t, "k": k, "n_aug": n_aug, "seed": seed,
                "skip_stopwords": skip_stopwords, "mlm": mlm is not None, "neighbours": getattr(neighbours, "name", None),
                "seconds": round(time.perf_counter() - t0, 2)}
        out = save_dataset_atomically(out, path, CACHE_INFO, info)
    return out


# ----------------------------------------------------------------------------- files and the CLI entry point
_OUT_FORMATS = {".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def write_augmented(ds, path: str | Path, spec, *, fmt: str | None = None) -> Path:
    """Write an augmented split in the task's file layout, so :func:`kdistill.data.load_splits` reads it back.

    ``tsv``: a header of the task's text column(s) and label column (for SST-2 ``sentence\\tlabel``,
    the GLUE header), labels written as the task's label values (tabs/newlines inside texts become
    spaces). ``jsonl``: one object per row with the same keys plus ``augmented`` and ``source_idx``.
    Read it back with ``load_splits(task, train_file=path, validation_file=<the original dev file>)``.

    Raises:
        DataError: unknown format (from ``fmt`` or the extension).
    """
    path = Path(path)
    fmt = fmt or _OUT_FORMATS.get(path.suffix.lower())
    if fmt not in ("tsv", "jsonl"):
        raise DataError(f"cannot tell the output format of {path}; name it .tsv or .jsonl (or pass fmt)")
    text_cols = list(spec.text_columns)
    fields = ["text_a", "text_b"][: len(text_cols)]

    def label_value(v):
        if spec.labels is None:
            return float(v)
        return spec.labels[int(v)] if 0 <= int(v) < len(spec.labels) else int(v)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    has_meta = "augmented" in ds.column_names and "source_idx" in ds.column_names
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        if fmt == "tsv":
            # GLUE TSV: no quoting (the loader reads with csv.QUOTE_NONE); texts are whitespace-normalised
            fh.write("\t".join([*text_cols, spec.label_column]) + "\n")
            for row in _rows(ds):
                fh.write("\t".join([" ".join(str(row[f]).split()) for f in fields] + [str(label_value(row["label"]))]) + "\n")
        else:
            for row in _rows(ds):
                obj = {c: row[f] for c, f in zip(text_cols, fields)}
                obj[spec.label_column] = label_value(row["label"])
                if has_meta:
                    obj["augmented"], obj["source_idx"] = bool(row["augmented"]), int(row["source_idx"])
                fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def _rows(ds, batch_size: int = 10_000):
    """The rows of a ``datasets.Dataset`` as dicts, read a batch of columns at a time (row access is slow)."""
    for chunk in ds.iter(batch_size=batch_size):
        cols = list(chunk)
        yield from (dict(zip(cols, values)) for values in zip(*(chunk[c] for c in cols)))


def run_augment(
    task: str | None = None,
    *,
    output: str | Path,
    teacher: str | Path | None = None,
    embeddings: str | Path | None = None,
    mlm: str | Path | None = None,
    data_dir: str | Path | None = None,
    train_file: str | Path | None = None,
    validation_file: str | Path | None = None,
    text_columns: Sequence[str] | None = None,
    label_column: str | None = None,
    labels: Sequence[str] | None = None,
    max_train_samples: int | None = None,
    p_t: float = 0.4,
    k: int = 15,
    n_aug: int = 20,
    seed: int = 0,
    skip_stopwords: bool = True,
    batch_size: int = 64,
    device: str | None = None,
    fmt: str | None = None,
    cache_dir: str | Path | bool | None = None,
    show_progress: bool = True,
) -> Path:
    """Augment a task's train split with TinyBERT's Algorithm 1 and write it to ``output`` (``kdistill augment``).

    Args:
        task, data_dir, train_file, validation_file, text_columns, label_column, labels, max_train_samples:
            as for :func:`kdistill.data.load_splits` (only the train split is augmented).
        output: the file to write, ``.tsv`` (GLUE layout) or ``.jsonl`` (see :func:`write_augmented`).
        teacher: the teacher's folder; its input embeddings are the default embedding space.
        embeddings: another embedding space: a model folder, or a GloVe/word2vec text file
            (``.txt``/``.vec``/``.gz``). Default: ``teacher``.
        mlm: an ``AutoModelForMaskedLM`` folder for single-piece words (default: none, embedding
            neighbours for every word).
        p_t, k, n_aug, seed, skip_stopwords, cache_dir, show_progress: see :func:`augment_dataset`.
        batch_size, device: masked-LM batching and device.
        fmt: ``"tsv"`` or ``"jsonl"``; default from the extension of ``output``.

    Returns:
        The path written.

    Raises:
        KDistillError: bad settings, or no embedding space and no masked LM.
        DataError / ModelError: unreadable data, model or vector file.
    """
    from kdistill.data import load_splits

    _check_params(p_t, k, n_aug)
    output = Path(output)
    if (fmt or _OUT_FORMATS.get(output.suffix.lower())) not in ("tsv", "jsonl"):
        raise DataError(f"cannot tell the output format of {output}; name it .tsv or .jsonl")
    source = embeddings if embeddings is not None else teacher
    if source is None and mlm is None:
        raise KDistillError("TinyBERT augmentation needs an embedding space: pass the teacher (its input embeddings), "
                            "--embeddings <model folder or GloVe file>, or --mlm <masked-LM folder>")
    splits, spec = load_splits(task, data_dir=data_dir, train_file=train_file, validation_file=validation_file,
                               text_columns=text_columns, label_column=label_column, labels=labels,
                               max_train_samples=max_train_samples)
    masked = MaskedLMCandidates.from_pretrained(mlm, batch_size=batch_size, device=device) if mlm is not None else None
    neighbours = None
    if source is not None:
        src = Path(source)
        if src.is_file():
            neighbours = EmbeddingNeighbours.from_word_vectors(src)
        else:
            neighbours = EmbeddingNeighbours.from_pretrained(src)
    tokenizer = masked.tokenizer if masked is not None else getattr(neighbours, "tokenizer", None)
    out = augment_dataset(splits["train"], tokenizer=tokenizer, neighbours=neighbours, mlm=masked, p_t=p_t, k=k,
                          n_aug=n_aug, seed=seed, skip_stopwords=skip_stopwords, cache_dir=cache_dir,
                          show_progress=show_progress)
    return write_augmented(out, output, spec, fmt=fmt)


__all__ = [
    "DEFAULT_ALLOWED", "STOP_WORDS", "EmbeddingNeighbours", "MaskedLMCandidates", "augment_dataset", "augment_once",
    "is_eligible", "match_case", "rebuild", "run_augment", "split_words", "write_augmented",
]
