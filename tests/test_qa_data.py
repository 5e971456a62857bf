"""Question answering, part 1 (issue 28): SQuAD v1.1 / v2.0 JSON and JSONL read alike, spans checked against their
contexts, and SQuAD's exact match / F1 with the official normalisation, checked by hand."""

import json

import numpy as np
import pytest

from kdistill.errors import DataError
from kdistill.qa.data import read_questions
from kdistill.qa.metrics import exact_match, normalize_answer, question_scores, squad_metrics, token_f1

CTX = "The Broncos defeated the Panthers 24-10 in Santa Clara."


def _squad(tmp_path, version="1.1", impossible=False):
    qas = [{"id": "q1", "question": "Who won?", "answers": [{"text": "The Broncos", "answer_start": 0},
                                                            {"text": "Broncos", "answer_start": 4}]}]
    if impossible:
        qas.append({"id": "q2", "question": "Who sang?", "answers": [], "is_impossible": True})
    path = tmp_path / "squad.json"
    path.write_text(json.dumps({"version": version, "data": [{"title": "SB", "paragraphs": [{"context": CTX,
                                                                                              "qas": qas}]}]}))
    return path


def test_squad_json_and_jsonl_read_alike(tmp_path):
    a = read_questions(_squad(tmp_path))
    jsonl = tmp_path / "q.jsonl"
    jsonl.write_text(json.dumps({"id": "q1", "title": "SB", "question": "Who won?", "context": CTX,
                                 "answers": {"text": ["The Broncos", "Broncos"], "answer_start": [0, 4]}}) + "\n")
    b = read_questions(jsonl)
    assert a.question == b.question and a.answers == b.answers and a.answer_starts == b.answer_starts
    assert a.version == "squad v1.1" and b.version == "jsonl" and a.article == b.article == [0]
    v2 = read_questions(_squad(tmp_path, "v2.0", impossible=True))
    assert v2.unanswerable == 1 and v2.answers[1] == []


def test_a_misplaced_answer_is_one_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"question": "q", "context": CTX, "answers": {"text": ["Panthers"],
                                                                            "answer_start": [3]}}) + "\n")
    with pytest.raises(DataError, match="not at character 3"):
        read_questions(path)


def test_the_official_normalisation_and_scores_by_hand():
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert normalize_answer("an apple, a pear") == "apple pear"
    assert exact_match("the Broncos", "Broncos") == 1.0 and exact_match("Broncos win", "Broncos") == 0.0
    # "denver broncos team" vs "broncos": 1 common token, P 1/3, R 1, F1 0.5
    assert token_f1("Denver Broncos team", "Broncos") == pytest.approx(0.5)
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0
    scores = question_scores(["Denver Broncos", "Carolina", ""], [["Broncos", "Denver Broncos"], ["Panthers"], []])
    assert scores.tolist() == [[1.0, 1.0], [0.0, 0.0], [1.0, 1.0]]  # best over references; v2's null answer
    m = squad_metrics(["Denver Broncos", "Carolina"], [["Broncos", "Denver Broncos"], ["Panthers"]])
    assert m == {"exact_match": 50.0, "f1": 50.0}


def test_the_shared_dev_set_reads_whole():
    from pathlib import Path

    dev = Path(__file__).resolve().parents[2] / "shared" / "data" / "squad" / "dev-v1.1.json"
    if not dev.exists():
        pytest.skip("../shared/data/squad is not beside the repository")
    q = read_questions(dev)
    assert len(q) == 10570 and sum(len(a) for a in q.answers) == 34726 and max(q.article) == 47
    assert np.all([len(a) >= 1 for a in q.answers])


def test_windows_overlap_and_the_answer_span_comes_back(tiny_tokenizer):
    """A long context cut into overlapping windows: the answer's token span is marked in the windows that hold it
    whole ([CLS] elsewhere), and logits peaked on those tokens give the answer's characters back."""
    from kdistill.qa.features import best_answers, encode_windows

    context = " ".join(f"word{i}" for i in range(60)) + " The Broncos won the game in Santa Clara ."
    start = context.index("Santa Clara")
    enc = encode_windows(tiny_tokenizer, ["Where?"], [context], max_length=48, doc_stride=16, answer_starts=[[start]],
                         answers=[["Santa Clara"]])
    assert len(enc["input_ids"]) > 1 and set(enc["example"]) == {0} and all(len(x) <= 48 for x in enc["input_ids"])
    marked = [w for w, p in enumerate(enc["start_positions"]) if p > 0]
    assert marked and enc["start_positions"][0] == 0  # the first window does not hold the answer: [CLS]
    w = marked[-1]
    offs = enc["offsets"][w]
    assert context[offs[enc["start_positions"][w]][0]:offs[enc["end_positions"][w]][1]] == "Santa Clara"
    starts = [np.full(len(ids), -5.0) for ids in enc["input_ids"]]
    ends = [np.full(len(ids), -5.0) for ids in enc["input_ids"]]
    starts[w][enc["start_positions"][w]] = 5.0
    ends[w][enc["end_positions"][w]] = 5.0
    got = best_answers([context], enc["example"], enc["offsets"], starts, ends)
    assert got[0]["text"] == "Santa Clara" and got[0]["start"] == start
    # SQuAD v2.0: a strong [CLS] in every window makes the null answer win past the threshold
    for s_, e_ in zip(starts, ends):
        s_[0], e_[0] = 9.0, 9.0
    assert best_answers([context], enc["example"], enc["offsets"], starts, ends, null_threshold=0.0)[0]["text"] == ""
    with pytest.raises(DataError, match="doc-stride"):
        encode_windows(tiny_tokenizer, ["q"], [context], max_length=32, doc_stride=32)


def test_squad_v2_null_answer_by_its_margin(tmp_path, tiny_tokenizer):
    """SQuAD v2.0 end to end on one paragraph: read without --task as squad_v2 (an is_impossible question), the null
    answer ([CLS]'s start + end) wins exactly when it beats the best span by more than the threshold, and an empty
    answer scores 1 on the unanswerable question, 0 on the answerable one."""
    from kdistill.data.tasks import get_task
    from kdistill.metrics import compute_metrics
    from kdistill.qa.data import load_qa_splits
    from kdistill.qa.features import QAReferences, tokenize_qa

    path = _squad(tmp_path, "v2.0", impossible=True)
    splits, spec = load_qa_splits(None, train_file=path, validation_file=path)
    assert spec.qa and spec.null_threshold == 0.0 and splits["validation"]["answers"][1] == []
    ds = tokenize_qa(splits["validation"], tiny_tokenizer, max_length=64, doc_stride=16)
    labels = np.asarray(ds.with_format(None)["labels"])
    assert labels[1].tolist() == [0, 0]  # the unanswerable question's target is [CLS]
    logits = np.zeros((2, 64, 2), dtype=np.float32)
    a, b = labels[0]
    logits[0, a, 0] = logits[0, b, 1] = 3.0  # question 1: the span scores 6, the null answer 0
    refs = QAReferences(ds)
    offsets = refs.offsets[1]  # question 2's window: "The Broncos" again, scored 2 against the null answer's 4
    lo = next(i for i, o in enumerate(offsets) if o is not None and o[0] == 0)
    hi = next(i for i, o in enumerate(offsets) if o is not None and o[1] == len("The Broncos"))
    logits[1, lo, 0] = logits[1, hi, 1] = 1.0
    logits[1, 0, :] = 2.0
    assert [x["text"] for x in refs.answers_of(logits, spec)] == ["The Broncos", ""]
    assert compute_metrics(spec, logits, refs) == {"f1": 1.0, "exact_match": 1.0}
    strict = __import__("dataclasses").replace(spec, null_threshold=5.0)  # the null answer must win by more than 5
    assert [x["text"] for x in refs.answers_of(logits, strict)] == ["The Broncos", "The Broncos"]
    assert compute_metrics(strict, logits, refs)["exact_match"] == 0.5
    v1 = get_task("squad")  # v1.1: never the null answer
    assert refs.answers_of(logits, v1)[1]["text"] == "The Broncos"
