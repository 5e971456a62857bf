"""Issue 24, items 5 and 13 (threshold): a saved student says what it is (problem_type, the run's labels), and a
multi-label run picks its decision threshold on the selection slice, records it (config.json ``kdistill_threshold``)
and every reader (evaluate, report, export, the predictor) decides at it.

Everything here is tiny and offline: a WordPiece tokenizer over a 40-word vocabulary, random 1-2 layer BERTs.
"""

from __future__ import annotations

import json
import logging
import random

import numpy as np
import pytest
import torch

import kdistill
from conftest import save_classifier

WORDS = ("a man woman dog plays runs eats the guitar flute ball park happy sad good bad film music sport song game "
         "match goal team band movie actor").split()
TAGS = ("film", "music", "sport")
CELLS = ["sport", "music|film", "", "film", "music", "sport|film"]


@pytest.fixture()
def tok(tmp_path):
    """A BERT WordPiece tokenizer over a tiny vocabulary (every word of the test's texts is in it)."""
    from transformers import BertTokenizer

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ",", "."] + WORDS) + "\n")
    return BertTokenizer(vocab=str(vocab))


def _bert(tok, *, layers=2, hidden=32, num_labels=3, seed=0, **config):
    """A random tiny BERT classifier with ``num_labels`` outputs named ``LABEL_i``."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    names = {i: f"LABEL_{i}" for i in range(num_labels)}
    cfg = BertConfig(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                     intermediate_size=2 * hidden, max_position_embeddings=64, id2label=names,
                     label2id={v: k for k, v in names.items()}, **config)
    return BertForSequenceClassification(cfg)


def _texts(n: int) -> list[str]:
    """``n`` distinct texts of 4-6 words."""
    rng = random.Random(0)
    out: list[str] = []
    while len(out) < n:
        text = " ".join(rng.choice(WORDS) for _ in range(4 + len(out) % 3))
        if text not in out:
            out.append(text)
    return out


def _tag_file(tmp_path, n=36):
    """Own multi-label data as a CSV with ``a|b`` cells (and empty cells: examples with no label)."""
    path = tmp_path / "tags.csv"
    path.write_text("text,tags\n" + "".join(f"{t},{CELLS[i % 6]}\n" for i, t in enumerate(_texts(n))))
    return path


def _teacher(tmp_path, tok, *, num_labels=3, problem_type="single_label_classification", layers=2, seed=0, name="t"):
    """A random teacher whose config says something else than the run will: single-label, generic names."""
    m = _bert(tok, layers=layers, num_labels=num_labels, seed=seed)
    m.config.problem_type = problem_type
    path = tmp_path / name
    m.save_pretrained(path)
    tok.save_pretrained(path)
    return path


QUICK = dict(epochs=1, batch_size=16, show_progress=False, latency_runs=2)


# --------------------------------------------------------------------------- item 5: what a saved student says it is
def test_multilabel_student_says_multilabel_and_pipeline_gives_sigmoids(tmp_path, tok):
    from transformers import AutoConfig, AutoModelForSequenceClassification, pipeline

    data = _tag_file(tmp_path)
    teacher = _teacher(tmp_path, tok)
    run = tmp_path / "run"
    kdistill.distill(str(teacher), None, output_dir=run, train_file=str(data), validation_file=str(data),
                     text_columns=["text"], label_column="tags", problem_type="multi_label", report=False, **QUICK)
    cfg = AutoConfig.from_pretrained(str(run))
    assert cfg.problem_type == "multi_label_classification"
    assert [cfg.id2label[i] for i in range(cfg.num_labels)] == list(TAGS)
    assert cfg.label2id == {name: i for i, name in enumerate(TAGS)}
    texts = ["good film music", "the team plays a match"]
    out = pipeline("text-classification", model=str(run), top_k=None)(texts)
    model = AutoModelForSequenceClassification.from_pretrained(str(run)).eval()
    with torch.no_grad():
        probs = torch.sigmoid(model(**tok(texts, return_tensors="pt", padding=True)).logits).numpy()
    for row, expect in zip(out, probs):
        scores = {d["label"]: d["score"] for d in row}
        assert set(scores) == set(TAGS)  # the run's names, one independent score per label
        assert [scores[t] for t in TAGS] == pytest.approx(expect.tolist(), abs=1e-5)  # sigmoid, not softmax
        assert abs(sum(scores.values()) - 1.0) > 1e-3


@pytest.mark.parametrize("kind", ["layers-from-teacher", "spec", "pretrained", "bilstm"])
def test_every_student_kind_carries_the_run_problem_type_and_labels(tmp_path, tok, kind):
    from kdistill.config import student_config
    from kdistill.data import load_splits
    from kdistill.models import load_classifier
    from kdistill.students.build import build_student

    data = _tag_file(tmp_path)
    _, task = load_splits(None, train_file=data, validation_file=data, text_columns=["text"], label_column="tags",
                          problem_type="multi_label")
    teacher_dir = _teacher(tmp_path, tok)
    teacher = load_classifier(str(teacher_dir), task, require_trained_head=True)
    opts = {"spec": dict(num_layers=1, hidden_size=16, num_heads=2), "bilstm": dict(bilstm_hidden=8, bilstm_fc=8)}
    sc = student_config(str(_teacher(tmp_path, tok, name="p", seed=1)) if kind == "pretrained" else kind,
                        **opts.get(kind, {}))
    student = build_student(sc, teacher, task, tokenizer=tok)
    student.save_pretrained(tmp_path / "s")
    saved = json.loads((tmp_path / "s" / "config.json").read_text())
    assert saved["problem_type"] == "multi_label_classification"
    assert saved["id2label"] == {str(i): t for i, t in enumerate(TAGS)}
    assert saved["label2id"] == {t: i for i, t in enumerate(TAGS)}


def test_single_label_own_data_names_and_the_finetuned_teacher(tmp_path, tok):
    """Own single-label data (no/yes): a teacher fine-tuned from a model whose config says multi-label says
    single-label with the data's names, and a student distilled from a generic-named teacher carries them too."""
    from transformers import AutoConfig

    data = tmp_path / "yn.csv"
    data.write_text("text,answer\n" + "".join(f"{t},{('no', 'yes')[i % 2]}\n" for i, t in enumerate(_texts(36))))
    opts = dict(train_file=str(data), validation_file=str(data), text_columns=["text"], label_column="answer", **QUICK)
    opts.pop("latency_runs")
    base = _teacher(tmp_path, tok, num_labels=2, problem_type="multi_label_classification", name="base")
    kdistill.finetune(str(base), None, output_dir=tmp_path / "ft", **opts)
    cfg = AutoConfig.from_pretrained(str(tmp_path / "ft"))
    assert cfg.problem_type == "single_label_classification" and cfg.id2label == {0: "no", 1: "yes"}
    teacher = _teacher(tmp_path, tok, num_labels=2, name="generic")
    kdistill.distill(str(teacher), None, output_dir=tmp_path / "run", report=False, **opts, latency_runs=2)
    cfg = AutoConfig.from_pretrained(str(tmp_path / "run"))
    assert cfg.problem_type == "single_label_classification"
    assert cfg.id2label == {0: "no", 1: "yes"} and cfg.label2id == {"no": 0, "yes": 1}


# --------------------------------------------------------------------------- item 13: the decision threshold
def test_metrics_take_a_threshold_and_choose_one():
    from kdistill.data.tasks import TaskSpec
    from kdistill.metrics import choose_threshold, compute_metrics, decision_logits, decision_threshold

    task = TaskSpec(name="custom", glue_dir="", text_columns=("text",), label_column="tags", labels=TAGS,
                    metrics=("micro_f1", "macro_f1", "exact_match"), main_metric="micro_f1", multi_label=True)
    refs = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 0], [1, 0, 1]], dtype=np.float32)
    logits = np.where(refs > 0, -1.0, -3.0).astype(np.float32)  # σ 0.27 / 0.05: all below 0.5, ranked right
    assert compute_metrics(task, logits, refs)["micro_f1"] == 0.0
    assert compute_metrics(task, logits, refs, threshold=0.2)["micro_f1"] == 1.0
    t, m = choose_threshold(task, logits, refs)
    assert 0.05 <= t < 0.27 and m["micro_f1"] == 1.0 and m["exact_match"] == 1.0
    assert compute_metrics(task, decision_logits(task, logits, t), refs)["micro_f1"] == 1.0
    assert choose_threshold(task, np.zeros_like(logits), refs)[0] == 0.5  # no signal: the default stays
    assert decision_threshold({"kdistill_threshold": 0.3}) == 0.3 and decision_threshold({}) == 0.5
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        compute_metrics(task, logits, refs, threshold=1.5)
    with pytest.raises(ValueError, match="kdistill_threshold"):
        decision_threshold({"kdistill_threshold": float("nan")})


def _ranked_low_model(tmp_path, tok, texts, cells):
    """A tiny BERT whose head is fitted so that every sigmoid is below 0.5 (gold labels at σ 0.3, others at σ 0.02)
    yet ranks each label's positives above its negatives: micro-F1 0 at the 0.5 threshold."""
    m = _bert(tok, layers=1, hidden=64, seed=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
              initializer_range=0.2).eval()  # varied pooled features: a small, well-conditioned head fits them
    enc = tok(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        x = m.bert(**enc).pooler_output.double()
    gold = torch.tensor([[float(t in c.split("|")) for t in TAGS] for c in cells], dtype=torch.float64)
    target = torch.where(gold > 0, float(np.log(0.3 / 0.7)), float(np.log(0.02 / 0.98))).double()
    a = torch.cat([x, torch.ones(len(texts), 1, dtype=torch.float64)], 1)
    w = torch.linalg.solve(a.T @ a + 1e-6 * torch.eye(a.shape[1], dtype=torch.float64), a.T @ target)  # ridge
    with torch.no_grad():
        m.classifier.weight.copy_(w[:-1].T.float())
        m.classifier.bias.copy_(w[-1].float())
        assert (torch.sigmoid(m(**enc).logits) < 0.5).all()
    m.config.problem_type = "multi_label_classification"
    return save_classifier(m, tmp_path / "low", tok, TAGS)


def test_threshold_chosen_on_the_selection_slice_is_used_by_evaluate_report_export_and_predictor(tmp_path, tok,
                                                                                                 caplog):
    pytest.importorskip("onnxruntime")
    from kdistill.config import DataConfig
    from kdistill.reporting.compare import make_report

    texts, cells = _texts(24), [CELLS[i % 6] for i in range(24)]
    data = tmp_path / "tags.csv"
    data.write_text("text,tags\n" + "".join(f"{t},{c}\n" for t, c in zip(texts, cells)))
    low = _ranked_low_model(tmp_path, tok, texts, cells)
    opts = dict(task=None, train_file=str(data), validation_file=str(data), text_columns=["text"], label_column="tags",
                problem_type="multi_label")
    assert kdistill.evaluate(str(low), **opts)["micro_f1"] == 0.0  # nothing recorded: 0.5, nothing predicted
    # a run that leaves the weights as they are (lr 1e-12) picks the threshold on its selection slice
    run = tmp_path / "run"
    res = kdistill.finetune(str(low), output_dir=run, selection_file=str(data), learning_rate=1e-12, epochs=1,
                            batch_size=8, show_progress=False, **{k: v for k, v in opts.items() if k != "task"},
                            task=None)
    recorded = json.loads((run / "config.json").read_text())["kdistill_threshold"]
    assert 0.02 < recorded < 0.3
    results = json.loads((run / "train_results.json").read_text())
    assert results["decision_threshold"]["value"] == recorded
    assert results["decision_threshold"]["chosen_on"] == "selection slice"
    assert res.metrics["micro_f1"] == 1.0
    caplog.set_level(logging.INFO, logger="kdistill")
    assert kdistill.evaluate(str(run), **opts)["micro_f1"] == 1.0  # evaluate of the run folder: the recorded one
    assert f"threshold {recorded:.2f}" in caplog.text
    rep = make_report(teacher=str(low), student=str(run), data=DataConfig(**opts), output_dir=tmp_path / "rep",
                      latency_runs=2, runtimes=False, n_resamples=50)
    assert rep["student_metrics"]["micro_f1"] == 1.0 and rep["teacher_metrics"]["micro_f1"] == 0.0
    assert rep["decision_thresholds"] == {"teacher": 0.5, "student": recorded}
    meta = kdistill.export(str(run), tmp_path / "onnx", **opts)
    assert meta["threshold"] == recorded and meta["fp32_metric"] == 1.0
    assert json.loads((tmp_path / "onnx" / "kdistill_export.json").read_text())["threshold"] == recorded
    from kdistill.serve import Predictor

    labels, probs = Predictor(tmp_path / "onnx").predict(texts)
    assert (probs < 0.5).all()
    assert labels == [[t for t in TAGS if t in c.split("|")] for c in cells]


def test_without_a_selection_slice_the_threshold_is_0_5_and_said(tmp_path, tok, caplog):
    data = _tag_file(tmp_path)
    caplog.set_level(logging.INFO, logger="kdistill")
    kdistill.finetune(str(_teacher(tmp_path, tok, layers=1)), None, output_dir=tmp_path / "run", select_on="dev",
                      train_file=str(data), validation_file=str(data), text_columns=["text"], label_column="tags",
                      problem_type="multi_label", epochs=1, batch_size=16, show_progress=False)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["kdistill_threshold"] == 0.5
    assert json.loads((tmp_path / "run" / "train_results.json").read_text())["decision_threshold"]["value"] == 0.5
    assert "threshold: 0.50 (no held-out selection slice with --select-on dev" in caplog.text
