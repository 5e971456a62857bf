"""TinyBERT data augmentation (Jiao et al. 2020, Algorithm 1): candidates, seeding, p_t = 0, pairs, cache, errors."""

from __future__ import annotations

import random
from pathlib import Path

import datasets
import pytest
import torch

from kdistill.data.augment.candidates import EmbeddingNeighbours, MaskedLMCandidates
from kdistill.data.augment.tinybert import (
    augment_dataset,
    augment_once,
    is_eligible,
    match_case,
    split_words,
)
from kdistill.data.augment.tinybert_io import run_augment
from kdistill.errors import DataError, KDistillError, ModelError

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TEACHER = SHARED / "teachers" / "minilm-l6-sst2"
SST2_TRAIN = SHARED / "data" / "glue" / "SST-2" / "train.tsv"

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused0]", "[unused1]"]
WORDS = ["good", "great", "bad", "awful", "movie", "film", "plot", "actors", "charming", "dull", "fun", "story",
         "un", "watch", "splendid", "boring", "the", "a", "is", "was", "and", "it", "x"]
PIECES = ["##watch", "##able", "##ing", "##s", "##ly"]
PUNCT = [".", ",", "!", "'"]
VOCAB = SPECIAL + WORDS + PIECES + PUNCT
K = 3

SENTS = ["the movie is good .", "a charming and unwatchable film !", "the plot was dull , the actors great",
         "Good fun", "it is a splendid story"]


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    from transformers import BertTokenizer

    d = tmp_path_factory.mktemp("vocab")
    (d / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    return BertTokenizer(vocab=str(d / "vocab.txt"), do_lower_case=True)


def _config(**kw):
    from transformers import BertConfig

    return BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=32, max_position_embeddings=64, **kw)


@pytest.fixture(scope="module")
def encoder():
    from transformers import BertModel

    torch.manual_seed(0)
    return BertModel(_config()).eval()


@pytest.fixture(scope="module")
def mlm_model():
    from transformers import BertForMaskedLM

    torch.manual_seed(1)
    return BertForMaskedLM(_config()).eval()


@pytest.fixture(scope="module")
def space(encoder, tok):
    return EmbeddingNeighbours.from_model(encoder, tok)


def _ds(texts, pair_with=None):
    data = {"text_a": list(texts)}
    if pair_with is not None:
        data["text_b"] = list(pair_with)
    data["label"] = [i % 2 for i in range(len(texts))]
    data["idx"] = list(range(len(texts)))
    return datasets.Dataset.from_dict(data)


def _rows(ds):
    return [tuple(r[c] for c in ds.column_names) for r in ds]


# ------------------------------------------------------------------------------------------- words
def test_split_and_rebuild_keep_text():
    text = "A charming, unwatchable film!"
    toks = split_words(text)
    assert [t for t, _, _ in toks] == ["A", "charming", ",", "unwatchable", "film", "!"]
    assert augment_once(text, toks, {1: ["dull"], 4: ["movie"]}, random.Random(0), 0.0) == text
    out = augment_once(text, toks, {1: ["dull"], 4: ["movie"]}, random.Random(0), 1.0)
    assert out == "A dull, unwatchable movie!"
    assert match_case("Movie", "film") == "Film" and match_case("MOVIE", "film") == "FILM"
    assert is_eligible("film") and not is_eligible("the") and not is_eligible(",") and not is_eligible("1990")
    assert is_eligible("the", skip_stopwords=False)


# ------------------------------------------------------------------------------------------- candidates
def test_embedding_neighbours_are_valid_whole_words(space, tok):
    vocab = set(tok.get_vocab())
    for word in ["good", "movie", "Film", "unwatchable", "charmingly"]:
        nb = space.neighbours(word, K)
        assert len(nb) == K, (word, nb)
        assert len(set(nb)) == K
        for c in nb:
            assert c in vocab and not c.startswith("##") and c not in SPECIAL and c not in PUNCT
            assert c.lower() != word.lower()
    # a multi-piece word's own pieces are not offered as its replacement
    assert not {"un", "watch"} & set(space.neighbours("unwatchable", 10))
    # cosine neighbours: the best one really is the most similar candidate
    W = space.table
    ids = tok("good", add_special_tokens=False)["input_ids"]
    sims = {w: float(torch.cosine_similarity(W[ids].mean(0), W[tok.convert_tokens_to_ids(w)], dim=0))
            for w in space.candidate_words if w != "good"}
    assert space.neighbours("good", 1)[0] == max(sims, key=sims.get)
    # K larger than the candidate set: all candidates but the word
    assert len(space.neighbours("good", 1000)) == len(space.candidate_words) - 1
    # cached per word
    assert ("good", K) in space._cache


def test_word_vector_file_space(tmp_path):
    f = tmp_path / "vecs.txt"
    f.write_text("5 3\ngood 1 0 0\ngreat 0.9 0.1 0\nbad -1 0 0\nfilm 0 1 0\nmovie 0 0.95 0.1\n, 0.9 0 0\n")
    space = EmbeddingNeighbours.from_word_vectors(f)
    assert space.neighbours("good", 1) == ["great"]  # "," is close but punctuation is no candidate
    assert space.neighbours("Movie", 1) == ["film"]  # looked up lower-cased
    assert space.neighbours("unknownword", 3) == []
    assert len(space.neighbours("good", 3)) == 3
    with pytest.raises(DataError):
        EmbeddingNeighbours.from_word_vectors(tmp_path / "missing.txt")
    (tmp_path / "bad.txt").write_text("good 1 0 0\ngreat 1 x 0\n")
    with pytest.raises(DataError):
        EmbeddingNeighbours.from_word_vectors(tmp_path / "bad.txt")


def test_mlm_candidates_valid_and_batched(mlm_model, tok):
    mlm = MaskedLMCandidates(mlm_model, tok, batch_size=2)
    sents = [[t for t, _, _ in split_words(s)] for s in SENTS]
    pos = [[i for i, w in enumerate(s) if is_eligible(w)] for s in sents]
    out = mlm.candidates(sents, pos, K)
    vocab = set(tok.get_vocab())
    for s, p, o in zip(sents, pos, out):
        assert len(o) == len(p)
        for i, cands in zip(p, o):
            assert len(cands) == K
            for c in cands:
                assert c in vocab and not c.startswith("##") and c not in SPECIAL and c not in PUNCT
                assert c != s[i].lower()
    # batching does not change the predictions
    mlm1 = MaskedLMCandidates(mlm_model, tok, batch_size=64)
    assert mlm1.candidates(sents, pos, K) == out
    # the prediction is the masked LM's own argmax at that position
    ids = tok("the [MASK] is good .", return_tensors="pt")
    with torch.no_grad():
        logits = mlm_model(**ids).logits[0, 2]
    logits[mlm._banned] = -float("inf")
    logits[tok.convert_tokens_to_ids("movie")] = -float("inf")
    assert out[0][0][0] == tok.convert_ids_to_tokens(int(logits.argmax()))


def test_single_piece_words_use_mlm_and_multi_piece_use_embeddings(space, mlm_model, tok, tmp_path):
    asked_nb, asked_mlm = [], []

    class SpyNeighbours(EmbeddingNeighbours):
        def neighbours_many(self, words, k=15, **kw):
            words = list(words)
            asked_nb.extend(words)
            return super().neighbours_many(words, k, **kw)

    class SpyMLM(MaskedLMCandidates):
        def candidates(self, sentences, positions, k=15, **kw):
            asked_mlm.extend(s[i] for s, p in zip(sentences, positions) for i in p)
            return super().candidates(sentences, positions, k, **kw)

    nb = SpyNeighbours(space.table, space.words, tokenizer=tok)
    mlm = SpyMLM(mlm_model, tok)
    ds = _ds(SENTS)
    out = augment_dataset(ds, tokenizer=tok, neighbours=nb, mlm=mlm, p_t=1.0, k=K, n_aug=4, cache_dir=False,
                          show_progress=False)
    assert "unwatchable" in asked_nb and "unwatchable" not in asked_mlm  # un ##watch ##able
    for w in ["movie", "good", "charming", "film", "dull", "splendid"]:
        assert w in asked_mlm and w not in asked_nb
    assert "the" not in asked_mlm and "the" not in asked_nb  # stop words are never replaced
    # with p_t = 1 every replaced word comes from its own candidate set
    sents = [[t for t, _, _ in split_words(s)] for s in SENTS]
    pos = [[i for i, w in enumerate(s) if is_eligible(w) and w != "unwatchable"] for s in sents]
    mlm_c = MaskedLMCandidates(mlm_model, tok).candidates(sents, pos, K)
    emb_c = space.neighbours("unwatchable", K)
    for row in out.filter(lambda r: r["augmented"]):
        src = row["source_idx"]
        new = [t for t, _, _ in split_words(row["text_a"])]
        assert len(new) == len(sents[src])
        for i, (old, w) in enumerate(zip(sents[src], new)):
            if i in pos[src]:
                assert w.lower() in mlm_c[src][pos[src].index(i)], (old, w)
            elif old == "unwatchable":
                assert w in emb_c
            else:
                assert w == old


def test_mlm_from_pretrained_needs_a_head(tmp_path, tok, mlm_model):
    from transformers import BertForSequenceClassification

    d = tmp_path / "mlm"
    mlm_model.save_pretrained(d)
    tok.save_pretrained(d)
    assert isinstance(MaskedLMCandidates.from_pretrained(d), MaskedLMCandidates)
    c = tmp_path / "clf"
    BertForSequenceClassification(_config()).save_pretrained(c)
    tok.save_pretrained(c)
    with pytest.raises(ModelError, match="masked-LM head"):
        MaskedLMCandidates.from_pretrained(c)
    # ... but its input embeddings make a neighbour space
    assert len(EmbeddingNeighbours.from_pretrained(c).neighbours("good", K)) == K


# ------------------------------------------------------------------------------------------- the data set
def test_seeded_determinism(space, tok):
    ds = _ds(SENTS)
    kw = dict(tokenizer=tok, neighbours=space, k=K, n_aug=5, cache_dir=False, show_progress=False)
    a = augment_dataset(ds, seed=1, **kw)
    assert _rows(a) == _rows(augment_dataset(ds, seed=1, **kw))
    assert _rows(a) != _rows(augment_dataset(ds, seed=2, **kw))
    assert a.column_names == ["text_a", "label", "idx", "augmented", "source_idx"]
    n = len(ds)
    assert a["idx"] == list(range(len(a)))
    assert a["text_a"][:n] == SENTS and not any(a["augmented"][:n]) and all(a["augmented"][n:])
    assert len(a) > n
    for r in a.select(range(n, len(a))):  # augmented rows keep the original's label
        assert r["label"] == ds[r["source_idx"]]["label"]
    keys = [" ".join(t.split()) for t in a["text_a"]]
    assert len(keys) == len(set(keys))  # duplicates dropped
    assert len(a) <= n * (5 + 1)


def test_p_t_zero_leaves_text_unchanged(space, tok):
    ds = _ds(SENTS)
    out = augment_dataset(ds, tokenizer=tok, neighbours=space, p_t=0.0, k=K, n_aug=20, cache_dir=False,
                          show_progress=False)
    assert _rows(out.remove_columns(["augmented", "source_idx"])) == _rows(ds)
    toks = split_words(SENTS[1])
    cands = {i: space.neighbours(t, K) for i, (t, _, _) in enumerate(toks) if is_eligible(t)}
    rng = random.Random(0)
    assert all(augment_once(SENTS[1], toks, cands, rng, 0.0) == SENTS[1] for _ in range(20))
    # n_aug = 0: the originals only
    none = augment_dataset(ds, tokenizer=tok, neighbours=space, n_aug=0, k=K, cache_dir=False, show_progress=False)
    assert none["text_a"] == SENTS and not any(none["augmented"])


def test_pairs_are_augmented_field_by_field(space, tok):
    a, b = SENTS[:3], ["good fun", "a dull story .", "the film was charming"]
    ds = _ds(a, pair_with=b)
    out = augment_dataset(ds, tokenizer=tok, neighbours=space, p_t=0.6, k=K, n_aug=6, seed=3, cache_dir=False,
                          show_progress=False)
    assert out.column_names == ["text_a", "text_b", "label", "idx", "augmented", "source_idx"]
    changed = {"a": 0, "b": 0}
    for r in out.filter(lambda r: r["augmented"]):
        s = r["source_idx"]
        da, db = r["text_a"] != a[s], r["text_b"] != b[s]
        assert da != db  # exactly one field changed per augmented row
        changed["a" if da else "b"] += 1
    assert changed["a"] > 0 and changed["b"] > 0


def test_cache_is_reused(space, tok, tmp_path):
    ds = _ds(SENTS)
    kw = dict(tokenizer=tok, k=K, n_aug=4, seed=5, cache_dir=tmp_path, show_progress=False)
    first = augment_dataset(ds, neighbours=space, **kw)
    assert len(list(tmp_path.glob("aug-tinybert-*"))) == 1

    class Exploding(EmbeddingNeighbours):
        def neighbours_many(self, *a, **k):
            raise AssertionError("the cache should have been used")

    same = Exploding(space.table, space.words, tokenizer=tok)
    again = augment_dataset(ds, neighbours=same, **kw)
    assert _rows(again) == _rows(first)
    # other settings: a new entry
    augment_dataset(ds, neighbours=space, **{**kw, "seed": 6})
    assert len(list(tmp_path.glob("aug-tinybert-*"))) == 2


def test_bad_parameters_raise(space, tok):
    ds = _ds(SENTS)
    kw = dict(tokenizer=tok, neighbours=space, cache_dir=False, show_progress=False)
    for bad in [dict(p_t=-0.1), dict(p_t=1.5), dict(k=0), dict(k=2.5), dict(k=True), dict(n_aug=-1), dict(n_aug=1.5)]:
        with pytest.raises(KDistillError):
            augment_dataset(ds, **kw, **bad)
    with pytest.raises(KDistillError, match="embedding space"):
        augment_dataset(ds, tokenizer=tok, neighbours=None, cache_dir=False)
    with pytest.raises(DataError, match="text_a"):
        augment_dataset(datasets.Dataset.from_dict({"sentence": ["x"], "label": [0]}), **kw)
    with pytest.raises(KDistillError):
        space.neighbours("good", 0)
    with pytest.raises(ModelError):
        EmbeddingNeighbours(torch.zeros(3, 4), ["a", "b"])


def test_run_augment_writes_glue_tsv_and_jsonl(tmp_path, tok):
    from transformers import BertForSequenceClassification

    from kdistill.data import load_splits

    task_dir = tmp_path / "glue" / "SST-2"
    task_dir.mkdir(parents=True)
    body = "sentence\tlabel\n" + "".join(f"{s}\t{i % 2}\n" for i, s in enumerate(SENTS))
    (task_dir / "train.tsv").write_text(body)
    (task_dir / "dev.tsv").write_text(body)
    teacher = tmp_path / "teacher"
    torch.manual_seed(0)
    BertForSequenceClassification(_config()).save_pretrained(teacher)
    tok.save_pretrained(teacher)
    out = run_augment("sst2", data_dir=tmp_path / "glue", teacher=teacher, output=tmp_path / "aug.tsv", k=K, n_aug=3,
                      cache_dir=tmp_path / "cache", show_progress=False)
    lines = out.read_text().splitlines()
    assert lines[0] == "sentence\tlabel" and lines[1:6] == body.splitlines()[1:]
    splits, _ = load_splits("sst2", train_file=out, validation_file=task_dir / "dev.tsv")
    assert len(splits["train"]) == len(lines) - 1 > len(SENTS)
    j = run_augment("sst2", data_dir=tmp_path / "glue", teacher=teacher, output=tmp_path / "aug.jsonl", k=K, n_aug=3,
                    cache_dir=tmp_path / "cache", show_progress=False)
    assert sum(1 for _ in j.open()) == len(lines) - 1
    with pytest.raises(DataError):
        run_augment("sst2", data_dir=tmp_path / "glue", teacher=teacher, output=tmp_path / "aug.csv")
    with pytest.raises(KDistillError):
        run_augment("sst2", data_dir=tmp_path / "glue", output=tmp_path / "aug.tsv")


# ------------------------------------------------------------------------------------------- real data
@pytest.mark.skipif(not (TEACHER.exists() and SST2_TRAIN.exists()), reason="../shared teacher or SST-2 data missing")
def test_real_teacher_neighbours_on_sst2(tmp_path):
    from kdistill.data import load_splits

    space = EmbeddingNeighbours.from_pretrained(TEACHER)
    nb = space.neighbours_many(["good", "movie", "funny", "boring"], 15)
    assert {"great", "excellent", "bad", "nice", "better", "best"} & set(nb["good"])
    assert "film" in nb["movie"]
    assert {"hilarious", "humorous", "amusing", "comic"} & set(nb["funny"])
    assert {"dull", "bored", "tedious", "bland"} & set(nb["boring"])
    splits, _ = load_splits("sst2", data_dir=SST2_TRAIN.parent.parent, max_train_samples=20, max_eval_samples=1)
    out = augment_dataset(splits["train"], tokenizer=space.tokenizer, neighbours=space, n_aug=5, cache_dir=False,
                          show_progress=False)
    assert 20 < len(out) <= 20 * 6
    assert out["text_a"][:20] == splits["train"]["text_a"]
