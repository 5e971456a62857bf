"""Token classification, part 1 (issue 28): the three NER layouts read alike (IOB1 converted once), labels inferred,
sub-token alignment and windows, and entity-level metrics checked against hand-computed cases and seqeval's report."""

import json

import numpy as np
import pytest

from kdistill.errors import DataError
from kdistill.tokens.data import (IGNORE, encode_words, infer_labels, iob1_to_iob2, read_sentences, word_predictions,
                                  word_windows)
from kdistill.tokens.metrics import entity_metrics, f1_interval, sentence_counts

SENT = [("EU", "B-ORG"), ("rejects", "O"), ("German", "B-MISC"), ("call", "O")]
SENT2 = [("Peter", "B-PER"), ("Blackburn", "I-PER")]


def test_the_three_layouts_give_the_same_sentences(tmp_path):
    three = tmp_path / "a.txt"
    three.write_text("\n".join(f"{w} {t} 0" for w, t in SENT) + "\n\n" + "\n".join(f"{w} {t} 0" for w, t in SENT2) + "\n")
    iob1 = {"B-ORG": "I-ORG", "B-MISC": "I-MISC", "B-PER": "I-PER"}  # IOB1: an entity starts with I-
    four = tmp_path / "b.txt"
    four.write_text("-DOCSTART- -X- O O\n\n" + "\n".join(f"{w} NNP I-NP {iob1.get(t, t)}" for w, t in SENT) + "\n\n"
                    + "\n".join(f"{w} NNP I-NP {iob1.get(t, t)}" for w, t in SENT2) + "\n")
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text("\n".join(json.dumps({"tokens": [w for w, _ in s], "ner_tags": [t for _, t in s]})
                               for s in (SENT, SENT2)) + "\n")
    a, b, c = read_sentences(three), read_sentences(four), read_sentences(jsonl)
    assert a.words == b.words == c.words == [[w for w, _ in SENT], [w for w, _ in SENT2]]
    assert a.tags == b.tags == c.tags and not a.converted_from_iob1 and b.converted_from_iob1
    assert b.dropped_document_lines == 1 and "4" not in a.layout and "POS" in b.layout
    ids = tmp_path / "d.jsonl"
    names = infer_labels(a.tags)
    ids.write_text(json.dumps({"tokens": ["EU"], "ner_tags": [names.index("B-ORG")]}) + "\n")
    assert read_sentences(ids, label_names=names).tags == [["B-ORG"]]
    with pytest.raises(DataError, match="ids; give the tag names"):
        read_sentences(ids)


def test_iob1_to_iob2_and_labels():
    assert iob1_to_iob2(["I-PER", "I-PER", "O", "I-LOC", "I-ORG", "B-ORG", "I-ORG"]) == \
        ["B-PER", "I-PER", "O", "B-LOC", "B-ORG", "B-ORG", "I-ORG"]
    assert iob1_to_iob2(["B-PER", "I-PER"]) == ["B-PER", "I-PER"]
    assert infer_labels([["B-PER", "O"], ["B-LOC"]]) == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


def test_bad_files_are_one_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("EU X-ORG 0\n")
    with pytest.raises(DataError, match="not IOB"):
        read_sentences(bad)
    bad.write_text("lonely\n")
    with pytest.raises(DataError, match="is not 'token TAG'"):
        read_sentences(bad)
    bad.write_text('{"tokens": ["a", "b"], "ner_tags": ["O"]}\n')
    with pytest.raises(DataError, match="2 tokens but 1 tags"):
        read_sentences(bad)


def test_labels_sit_on_first_sub_tokens_and_long_sentences_become_windows(tiny_tokenizer):
    words = [["unaffordable", "EU", "x"], ["a"] * 30]
    tags = [["O", "B-ORG", "O"], ["B-PER"] + ["I-PER"] * 29]
    label2id = {t: i for i, t in enumerate(infer_labels(tags))}
    enc = encode_words(tiny_tokenizer, words, tags, label2id, max_length=12)
    first = enc["labels"][0]
    wids = enc["word_ids"][0]
    assert first[0] == IGNORE and first[-1] == IGNORE  # [CLS], [SEP]
    labelled = [w for pos, w in enumerate(wids) if first[pos] != IGNORE]
    assert labelled == [0, 1, 2]  # one label per word, on its first sub-token
    assert sum(1 for pos in range(len(wids)) if wids[pos] == 0) >= 1
    windows = [i for i, s in enumerate(enc["sentence"]) if s == 1]
    assert len(windows) == 3  # 30 one-piece words, 10 per 12-token window
    covered = sorted(w for i in windows for pos, w in enumerate(enc["word_ids"][i]) if enc["labels"][i][pos] != IGNORE)
    assert covered == list(range(30))  # every word scored exactly once
    assert all(len(ids) <= 12 for ids in enc["input_ids"])
    logits = [np.eye(len(label2id))[[max(l, 0) for l in labs]] for labs in enc["labels"]]
    preds = word_predictions(logits, enc["word_ids"], enc["sentence"], [len(w) for w in words])
    assert [[list(label2id)[p] for p in s] for s in preds] == tags  # read back word by word
    assert word_windows([3, 3, 3], 5) == [(0, 1), (1, 2), (2, 3)] and word_windows([9], 5) == [(0, 1)]


def test_entity_metrics_by_hand_and_as_seqeval_reports_them():
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-PER"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["I-ORG", "O", "B-PER"]]  # LOC→ORG wrong; I-ORG alone is no entity
    m = entity_metrics(gold, pred, ["LOC", "ORG", "PER"])
    # gold 4 entities, predicted 3 (PER, ORG, PER), correct 2 (both PER): P 2/3, R 2/4, F1 4/7
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(0.5) and m["f1"] == pytest.approx(4 / 7)
    assert m["f1_PER"] == 1.0 and m["f1_LOC"] == 0.0 and m["f1_ORG"] == 0.0
    rep = classification_report(gold, pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    assert rep["micro avg"]["f1-score"] == pytest.approx(m["f1"]) and rep["PER"]["f1-score"] == m["f1_PER"]
    counts = sentence_counts(gold, pred, ["LOC", "ORG", "PER"])
    assert counts.shape == (2, 4, 3) and counts[:, -1].sum(0).tolist() == [2, 3, 4]
    lo, hi = f1_interval(counts, resamples=500)
    assert 0 <= lo <= m["f1"] <= hi <= 1


def test_a_hub_dataset_in_parquet_form_reads_as_the_files_do(tmp_path):
    """`--dataset`: the hub's Parquet layout (here a local folder, as offline users have it) with tokens and
    ner_tags ids of a ClassLabel; the labels come from the ClassLabel's names."""
    import datasets

    from kdistill.data.loading import load_splits

    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG"]
    feats = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                               "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names))})
    rows = {"tokens": [["Peter", "Blackburn"], ["EU", "rejects"]], "ner_tags": [[1, 2], [3, 0]]}
    for split in ("train", "validation"):
        datasets.Dataset.from_dict(rows, features=feats).to_parquet(str(tmp_path / "conll" / f"{split}-0000.parquet"))
    splits, spec = load_splits(None, dataset=str(tmp_path / "conll"))
    assert spec.token_level and list(spec.labels) == names
    assert splits["train"]["tokens"] == rows["tokens"] and splits["validation"]["label"] == [[1, 2], [3, 0]]
    with pytest.raises(DataError, match="reads token-classification datasets"):
        load_splits("sst2", dataset=str(tmp_path / "conll"))
    with pytest.raises(DataError, match="cannot load it"):
        load_splits(None, dataset="nobody/no-such-dataset")
