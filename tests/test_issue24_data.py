"""Issue 24, items 1-4 and 6: own data read right (comma-separated label ids with a names file, unlabeled rows,
score-like labels, duplicate headers) and one rule for the teacher's and the data's label names, checked."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import make_tiny_bert, save_classifier
from kdistill.cli import app
from kdistill.data.loading import load_splits
from kdistill.errors import DataError

runner = CliRunner()
WORDS = "a man woman dog plays runs eats the guitar flute ball park happy sad film good bad".split()
EMOTIONS = ["admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity", "desire",
            "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear", "gratitude", "grief", "joy",
            "love", "nervousness", "optimism", "pride", "realization", "relief", "remorse", "sadness", "surprise",
            "neutral"]


def _sentence(rng, n=6):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _goemotions(tmp_path, n=40, seed=0):
    """The GoEmotions layout: headerless ``text<TAB>ids<TAB>comment id`` with comma-separated ids 0..27, and a
    ``labels.txt`` of the 28 names (id = line number)."""
    rng = random.Random(seed)
    names = tmp_path / "labels.txt"
    names.write_text("\n".join(EMOTIONS) + "\n")
    paths = []
    for split in ("train", "dev"):
        rows = []
        for i in range(n):
            ids = sorted(rng.sample(range(28), rng.choice([1, 1, 2, 3])))
            rows.append(f"{_sentence(rng)}\t{','.join(map(str, ids))}\ted{i}x{split}")
        path = tmp_path / f"{split}.tsv"
        path.write_text("\n".join(rows) + "\n")
        paths.append(path)
    return paths[0], paths[1], names


def _one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


# 1. comma-separated multi-label cells ------------------------------------------------------------------------------

def test_goemotions_layout_reads_comma_ids_with_a_names_file(tmp_path, caplog):
    train, dev, names = _goemotions(tmp_path)
    with caplog.at_level("INFO", logger="kdistill"):
        splits, spec = load_splits(None, train_file=train, validation_file=dev, text_columns=["0"], label_column="1",
                                   problem_type="multi_label", label_names=names)
    assert spec.multi_label and spec.labels == tuple(EMOTIONS) and spec.label_separator == ","
    assert "separated by ','" in caplog.text  # says which separator was used
    first = open(train).readline().split("\t")[1].split(",")
    hot = splits["train"][0]["label"]
    assert len(hot) == 28 and {i for i, v in enumerate(hot) if v} == {int(x) for x in first}
    # an explicit separator, and names in the cells, work too
    other = tmp_path / "named.csv"
    other.write_text("text,tags\nhappy film,joy/love\nsad dog,sadness\nthe ball,\n")
    _, spec2 = load_splits(None, train_file=other, validation_file=other, text_columns=["text"], label_column="tags",
                           problem_type="multi_label", label_separator="/")
    assert spec2.labels == ("joy", "love", "sadness") and spec2.label_separator == "/"


def test_comma_list_cells_without_problem_type_get_a_one_line_hint(tmp_path):
    train, dev, _ = _goemotions(tmp_path, n=200)
    with pytest.raises(DataError) as err:
        load_splits(None, train_file=train, validation_file=dev, text_columns=["0"], label_column="1")
    msg = _one_line(err)
    assert "--problem-type multi_label" in msg and "--label-separator" in msg and "--label-names" in msg
    assert len(msg) < 600
    # single_label, asked for, keeps each cell one class (no silent switch either way)
    _, spec = load_splits(None, train_file=train, validation_file=train, text_columns=["0"], label_column="1",
                          problem_type="single_label")
    assert not spec.multi_label and any("," in label for label in spec.labels)


def test_long_label_lists_in_messages_are_cut(tmp_path):
    train, dev, _ = _goemotions(tmp_path, n=300)
    bad = tmp_path / "bad.tsv"
    bad.write_text("a film\tunknown-label\tx\n")
    with pytest.raises(DataError) as err:
        load_splits(None, train_file=train, validation_file=bad, text_columns=["0"], label_column="1",
                    problem_type="single_label")
    msg = _one_line(err)
    assert "more" in msg and "…" in msg and len(msg) < 700, msg


def test_label_ids_out_of_range_and_bad_names_files_are_one_line(tmp_path):
    train, dev, names = _goemotions(tmp_path)
    bad = tmp_path / "bad.tsv"
    bad.write_text("a film\t3,28\tx\n")
    with pytest.raises(DataError) as err:
        load_splits(None, train_file=train, validation_file=bad, text_columns=["0"], label_column="1",
                    problem_type="multi_label", label_names=names)
    assert "label id 28" in _one_line(err) and "0..27" in str(err.value)
    dup = tmp_path / "dup.txt"
    dup.write_text("joy\nanger\njoy\n")
    with pytest.raises(DataError, match="more than once"):
        load_splits(None, train_file=train, validation_file=dev, text_columns=["0"], label_column="1",
                    problem_type="multi_label", label_names=dup)
    with pytest.raises(DataError, match="not both"):
        load_splits(None, train_file=train, validation_file=dev, text_columns=["0"], label_column="1",
                    problem_type="multi_label", label_names=names, labels=["a", "b"])


@pytest.fixture()
def emotion_teacher(tmp_path, tiny_tokenizer):
    m = make_tiny_bert(num_labels=28, problem_type="multi_label_classification")
    return save_classifier(m, tmp_path / "emotion_teacher", tiny_tokenizer, EMOTIONS)


def test_names_file_and_separator_are_recorded_and_evaluate_uses_the_stored_names(tmp_path, emotion_teacher):
    train, dev, names = _goemotions(tmp_path)
    run = tmp_path / "run"
    r = runner.invoke(app, ["distill", "--teacher", str(emotion_teacher), "--train-file", str(train),
                            "--validation-file", str(dev), "--text-columns", "0", "--label-column", "1",
                            "--problem-type", "multi_label", "--label-names", str(names), "--label-separator", ",",
                            "--epochs", "1", "--batch-size", "16", "--select-on", "last", "--output", str(run),
                            "--no-report"])
    assert r.exit_code == 0, r.output
    data = json.loads((run / "kdistill_run.json").read_text())["data"]
    assert data["label_separator"] == "," and data["label_names"] == str(names)
    assert json.loads((run / "config.json").read_text())["id2label"]["27"] == "neutral"
    names.unlink()  # evaluate reads the ids with the stored names even when the names file is gone
    r = runner.invoke(app, ["evaluate", "--model", str(run), "--validation-file", str(dev), "--text-columns", "0",
                            "--label-column", "1"])
    assert r.exit_code == 0, r.output
    metrics = json.loads(r.stdout[r.stdout.index("{"):])
    assert 0 <= metrics["micro_f1"] <= 1


# 2. empty and NaN label cells ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("problem_type", [None, "regression"])
def test_empty_and_nan_labels_are_refused_naming_rows_or_dropped(tmp_path, caplog, problem_type):
    good = ["pos", "neg"] if problem_type is None else ["0.5", "1.5"]
    rows = ["text,label"] + [f"{_sentence(random.Random(i))},{good[i % 2]}" for i in range(8)]
    rows[3] = "a sad film,"
    rows[6] = "a good film,NaN"
    path = tmp_path / "d.csv"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError) as err:
        load_splits(None, train_file=path, validation_file=path, text_columns=["text"], label_column="label",
                    problem_type=problem_type)
    msg = _one_line(err)
    assert "2 row(s) have no label" in msg and "[4, 7]" in msg and "--drop-unlabeled" in msg
    with caplog.at_level("INFO", logger="kdistill"):
        splits, spec = load_splits(None, train_file=path, validation_file=path, text_columns=["text"],
                                   label_column="label", problem_type=problem_type, drop_unlabeled=True)
    assert len(splits["train"]) == 6 and "dropped 2 unlabeled row(s)" in caplog.text
    if problem_type is None:
        assert spec.labels == ("neg", "pos")  # '' and NaN are not classes


def test_an_empty_multi_label_cell_is_an_example_with_no_labels(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("text,tags\nhappy film,joy|love\nsad dog,\nthe ball,NaN\nfine,sadness\n")
    splits, spec = load_splits(None, train_file=path, validation_file=path, text_columns=["text"], label_column="tags")
    assert spec.multi_label and spec.labels == ("joy", "love", "sadness")
    assert splits["train"][1]["label"] == [0.0, 0.0, 0.0] and splits["train"][2]["label"] == [0.0, 0.0, 0.0]


# 3. score-like labels ----------------------------------------------------------------------------------------------

def test_scores_mixed_with_text_name_the_offending_row(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("text,y\na,0.5\nb,1.5\nc,high\nd,2.0\n")
    with pytest.raises(DataError) as err:
        load_splits(None, train_file=path, validation_file=path, text_columns=["text"], label_column="y")
    msg = _one_line(err)
    assert "line 4" in msg and "'high'" in msg and "--problem-type" in msg
    path.write_text("text,y\na,0.5\nb,1.5\nd,2.0\n")
    with pytest.raises(DataError, match="--problem-type regression"):
        load_splits(None, train_file=path, validation_file=path, text_columns=["text"], label_column="y")


# 4. duplicate header ------------------------------------------------------------------------------------------------

def test_a_duplicate_header_is_refused(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("sentence,label,label\na film,1,0\nbad,0,1\n")
    with pytest.raises(DataError) as err:
        load_splits(None, train_file=path, validation_file=path, text_columns=["sentence"], label_column="label")
    assert "['label'] more than once" in _one_line(err)
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"sentence": "a film", "label": 1, "label": 0}\n')
    with pytest.raises(DataError, match="more than once"):
        load_splits(None, train_file=jsonl, validation_file=jsonl, text_columns=["sentence"], label_column="label")


# 6. the teacher's names vs the data's ------------------------------------------------------------------------------

@pytest.fixture()
def sentiment_teacher(tmp_path, tiny_tokenizer):
    """A tiny teacher named like the SST-2 teacher (negative/positive), its bias set so it predicts both classes,
    and texts labelled 0/1 by its own predictions (so a positional mapping agrees fully, a swapped one not at all)."""
    rng = random.Random(0)
    texts = [_sentence(rng, 8) for _ in range(120)]
    m = make_tiny_bert(num_labels=2, seed=3)
    m.config.id2label, m.config.label2id = {0: "negative", 1: "positive"}, {"negative": 0, "positive": 1}
    m.eval()
    with torch.no_grad():
        enc = tiny_tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
        logits = m(**enc).logits
        diff = (logits[:, 1] - logits[:, 0]).numpy()
        m.classifier.bias[1] -= float(np.median(diff))
    pred = (diff > np.median(diff)).astype(int)
    return save_classifier(m, tmp_path / "sentiment_teacher", tiny_tokenizer), texts, pred


def _csv(path, texts, labels):
    path.write_text("sentence,label\n" + "".join(f"{t},{y}\n" for t, y in zip(texts, labels)))
    return path


def test_own_labels_spelled_differently_map_by_position_checked_and_the_student_evaluates_on_them(tmp_path,
                                                                                                  sentiment_teacher):
    teacher, texts, pred = sentiment_teacher
    data = _csv(tmp_path / "own.csv", texts, pred)
    run = tmp_path / "run"
    r = runner.invoke(app, ["distill", "--teacher", str(teacher), "--train-file", str(data), "--validation-file",
                            str(data), "--text-columns", "sentence", "--label-column", "label", "--epochs", "1",
                            "--batch-size", "32", "--select-on", "last", "--output", str(run), "--no-report"])
    assert r.exit_code == 0, r.output
    assert "matched by position" in r.output and "0 → negative" in r.output
    assert "agrees with the train labels on 100.0%" in r.output
    mapping = json.loads((run / "train_results.json").read_text())["label_mapping"]
    assert mapping["rule"] == "by position" and mapping["data_to_teacher"] == {"0": "negative", "1": "positive"}
    assert json.loads((run / "config.json").read_text())["id2label"] == {"0": "0", "1": "1"}
    r = runner.invoke(app, ["evaluate", "--model", str(run), "--validation-file", str(data), "--text-columns",
                            "sentence", "--label-column", "label"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["report", "--teacher", str(teacher), "--student", str(run), "--validation-file", str(data),
                            "--text-columns", "sentence", "--label-column", "label", "--latency-runs", "2",
                            "--output", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output


def test_a_swapped_positional_mapping_is_refused_naming_the_order_that_works(tmp_path, sentiment_teacher):
    teacher, texts, pred = sentiment_teacher
    names = ["bad", "good"]  # good = the teacher's negative: swapped
    data = _csv(tmp_path / "own.csv", texts, [names[1 - p] for p in pred])
    r = runner.invoke(app, ["distill", "--teacher", str(teacher), "--train-file", str(data), "--validation-file",
                            str(data), "--text-columns", "sentence", "--label-column", "label", "--epochs", "1",
                            "--output", str(tmp_path / "run"), "--no-report"])
    assert r.exit_code == 2, r.output
    assert "classes look swapped" in r.output and "--labels good,bad" in r.output
    assert not (tmp_path / "run").exists()
    r = runner.invoke(app, ["distill", "--teacher", str(teacher), "--train-file", str(data), "--validation-file",
                            str(data), "--text-columns", "sentence", "--label-column", "label", "--labels", "good,bad",
                            "--epochs", "1", "--select-on", "last", "--output", str(tmp_path / "run2"), "--no-report"])
    assert r.exit_code == 0, r.output


def test_same_names_in_another_order_are_matched_by_name(tmp_path, sentiment_teacher):
    teacher, texts, pred = sentiment_teacher
    # the teacher's names, given in the other order: class ids follow the teacher's order
    data = _csv(tmp_path / "own.csv", texts, [("negative", "positive")[p] for p in pred])
    run = tmp_path / "run"
    r = runner.invoke(app, ["distill", "--teacher", str(teacher), "--train-file", str(data), "--validation-file",
                            str(data), "--text-columns", "sentence", "--label-column", "label",
                            "--labels", "positive,negative", "--epochs", "1", "--select-on", "last", "--output",
                            str(run), "--no-report"])
    assert r.exit_code == 0, r.output
    assert "by name" in r.output
    results = json.loads((run / "train_results.json").read_text())
    assert results["labels"] == ["negative", "positive"] and results["label_mapping"]["rule"] == "renumbered by name"
