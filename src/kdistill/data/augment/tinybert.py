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
the candidate generators (:mod:`kdistill.data.augment.cache`).

Modules: this one (words, Algorithm 1's sampling, :func:`augment_dataset`);
:mod:`kdistill.data.augment.candidates` (:class:`EmbeddingNeighbours`, :class:`MaskedLMCandidates`);
:mod:`kdistill.data.augment.tinybert_io` (:func:`~kdistill.data.augment.tinybert_io.write_augmented`
and ``kdistill augment``'s :func:`~kdistill.data.augment.tinybert_io.run_augment`).
"""

from __future__ import annotations

import random
import re
import time
from pathlib import Path
from typing import Sequence

from tqdm.auto import tqdm

from kdistill.data.augment.cache import (SOURCE_COLUMN, augmented_rows, cache_key, cache_path, load_cached,
                                         save_cached)
from kdistill.data.augment.candidates import EmbeddingNeighbours, MaskedLMCandidates, piece_ids, tokenizer_key
from kdistill.errors import DataError, KDistillError

#: bump when the algorithm changes so old on-disk caches are not reused
CACHE_VERSION = 1

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


_TOKEN_RE = re.compile(r"\w+|[^\w\s]")  # BERT basic tokenization: word runs; each punctuation mark alone
_WORD_RE = re.compile(r"[A-Za-z]+")  # words the reference augments (its `_is_valid`)


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
def check_params(p_t: float, k: int, n_aug: int) -> None:
    """Raise :class:`KDistillError` unless ``0 <= p_t <= 1``, ``k`` is a whole number ``>= 1`` and ``n_aug`` one ``>= 0``."""
    if isinstance(p_t, bool) or not isinstance(p_t, (int, float)) or not 0.0 <= float(p_t) <= 1.0:
        raise KDistillError(f"p_t (the probability of replacing a word) must be in [0, 1], got {p_t!r}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise KDistillError(f"k (candidates per word) must be a whole number >= 1, got {k!r}")
    if isinstance(n_aug, bool) or not isinstance(n_aug, int) or n_aug < 0:
        raise KDistillError(f"n_aug (augmented copies per example) must be a whole number >= 0, got {n_aug!r}")



# ----------------------------------------------------------------------------- the data set
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

    check_params(p_t, k, n_aug)
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
        settings = {"v": CACHE_VERSION, "p_t": float(p_t), "k": k, "n_aug": n_aug, "seed": seed,
                    "skip_stopwords": skip_stopwords,
                    "neighbours": None if neighbours is None else neighbours.fingerprint,
                    "mlm": None if mlm is None else mlm.fingerprint,
                    "tokenizer": tokenizer_key(tokenizer) if mlm is not None else None}
        path = cache_path(cache_dir, "tinybert", cache_key(settings, ds))
        cached = load_cached(path)
        if cached is not None:
            return _with_originals(ds, cached[0])

    t0 = time.perf_counter()
    fields = ["text_a", "text_b"] if pair else ["text_a"]
    texts = {f: list(ds[f]) for f in fields}
    n = len(ds)
    tokens, candidates_of = _candidates(texts, fields, tokenizer=tokenizer, neighbours=neighbours, mlm=mlm, k=k,
                                        skip_stopwords=skip_stopwords, show_progress=show_progress)
    new_rows = _sample_copies(texts, fields, tokens, candidates_of, n=n, n_aug=n_aug, p_t=p_t, seed=seed,
                              show_progress=show_progress)
    new_texts = {f: [row[fi] for _, row in new_rows] for fi, f in enumerate(fields)}
    rows = augmented_rows(ds, [r for r, _ in new_rows], new_texts)
    if path is not None:
        info = {"original_rows": n, "augmented_rows": len(new_rows), "p_t": p_t, "k": k, "n_aug": n_aug, "seed": seed,
                "skip_stopwords": skip_stopwords, "mlm": mlm is not None, "neighbours": getattr(neighbours, "name", None),
                "seconds": round(time.perf_counter() - t0, 2)}
        rows = save_cached(rows, path, info)
    return _with_originals(ds, rows)


def _candidates(texts: dict[str, list[str]], fields: list[str], *, tokenizer, neighbours, mlm, k: int,
                skip_stopwords: bool, show_progress: bool):
    """Steps 1-4 of :func:`augment_dataset`: the words of every text, and per (field, row) the replacement
    candidates of each eligible position (masked-LM candidates for single-piece words, embedding neighbours for the
    rest). Returns ``(tokens, candidates_of)``: ``tokens[field][row]`` the words with their spans;
    ``candidates_of(field, row)`` -> ``{position: [word, ...]}``."""
    # 1. words and eligible positions, per example and field
    tokens = {f: [split_words(t) for t in texts[f]] for f in fields}
    eligible = {f: [[i for i, (w, _, _) in enumerate(toks) if is_eligible(w, skip_stopwords=skip_stopwords)]
                    for toks in tokens[f]] for f in fields}
    words = {toks[i][0] for f in fields for toks, pos in zip(tokens[f], eligible[f]) for i in pos}
    # 2. single- vs multi-piece (only matters when an MLM is there to take the single-piece ones)
    if mlm is not None:
        pieces = piece_ids(tokenizer, sorted(words))
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

    return tokens, candidates_of


def _sample_copies(texts: dict[str, list[str]], fields: list[str], tokens, candidates_of, *, n: int, n_aug: int,
                   p_t: float, seed: int, show_progress: bool) -> list[tuple[int, tuple[str, ...]]]:
    """Step 5 of :func:`augment_dataset` (Algorithm 1's sampling loop): ``n_aug`` copies per example and field,
    each word replaced with probability ``p_t``; rows equal (whitespace-normalised) to an original or an earlier
    copy dropped. Returns ``[(source row, (text_a[, text_b])), ...]`` in order."""
    # 5. N_a copies per example and field (Algorithm 1's sampling loop), duplicates dropped
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

    return new_rows


def _with_originals(ds, rows):
    """:func:`augment_dataset`'s result from the split and its stored augmented rows
    (:mod:`~kdistill.data.augment.cache`): the originals with ``idx`` ``0..n-1``, ``augmented=False``
    and ``source_idx`` = their ``idx``, then the stored rows (their ``idx`` is already ``n..N-1``)
    with ``augmented=True``."""
    import datasets

    n, order = len(ds), list(ds.column_names) + ["augmented", SOURCE_COLUMN]
    idx, flag, src = datasets.Value("int64"), datasets.Value("bool"), datasets.Value("int64")
    originals = (ds.add_column(SOURCE_COLUMN, [int(x) for x in list(ds["idx"])], feature=src)
                 .remove_columns("idx").add_column("idx", list(range(n)), feature=idx)
                 .add_column("augmented", [False] * n, feature=flag).select_columns(order))
    augmented = (rows.cast_column("idx", idx).add_column("augmented", [True] * len(rows), feature=flag)
                 .select_columns(order))
    return datasets.concatenate_datasets([originals, augmented])


__all__ = [
    "CACHE_VERSION", "STOP_WORDS", "augment_dataset", "augment_once", "check_params", "is_eligible", "match_case",
    "rebuild", "split_words",
]
