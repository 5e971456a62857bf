"""Extractive question answering end to end (issue 28): a tiny teacher fine-tuned on a SQuAD v1.1 slice, distilled
with T²·KL on its start and end distributions, scored with SQuAD's exact match and F1 per question."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import kdistill
from kdistill.errors import KDistillError

SQUAD = Path(__file__).resolve().parents[2] / "shared" / "data" / "squad"
DATA = dict(train_file=str(SQUAD / "train-v1.1.first44.json"), validation_file=str(SQUAD / "dev-v1.1.json"),
            max_train_samples=160, max_eval_samples=30, max_length=128, doc_stride=32, selection_size=20, epochs=1,
            batch_size=16, show_progress=False)


@pytest.fixture(scope="module")
def qa_teacher(tiny_teacher_dir, tmp_path_factory):
    if not SQUAD.is_dir():
        pytest.skip("../shared/data/squad is not beside the repository")
    out = tmp_path_factory.mktemp("qa") / "teacher"
    res = kdistill.finetune(str(tiny_teacher_dir), "squad", output_dir=out, learning_rate=5e-3, **DATA)
    return out, res


def test_a_question_answering_teacher_and_its_student(qa_teacher, tmp_path):
    """finetune makes a stock AutoModelForQuestionAnswering; distill keeps the architecture, picks its student on a
    slice of whole articles, and reports SQuAD F1 and exact match per question with bootstrap intervals."""
    from transformers import AutoConfig

    teacher, res = qa_teacher
    assert set(res.metrics) == {"f1", "exact_match"} and 0 <= res.metrics["exact_match"] <= res.metrics["f1"] <= 1
    assert AutoConfig.from_pretrained(teacher).architectures == ["BertForQuestionAnswering"]
    student = kdistill.distill(str(teacher), "squad", output_dir=tmp_path / "s", layers=[0, 3], latency_runs=3, **DATA)
    results = json.loads((tmp_path / "s" / "train_results.json").read_text())
    assert results["problem_type"] == "question_answering"
    sel = results["selection"]
    assert sel["selection_unit"] == "paragraph" and sel["selection_paragraphs"] >= 1 and sel["selection_rows"] >= 20
    rep = json.loads((tmp_path / "s" / "report.json").read_text())
    assert rep["dev_examples"] == 30 and rep["baseline"]["kind"] == "null answer"
    assert rep["student_metrics"]["f1"] == pytest.approx(student.metrics["f1"])
    lo, hi = rep["student_ci"]
    assert lo <= rep["student_metrics"]["f1"] <= hi and rep["seq_len"] == 128  # one window, capped at --max-length
    again = kdistill.evaluate(str(tmp_path / "s"), "squad", **{k: DATA[k] for k in (
        "train_file", "validation_file", "max_eval_samples", "max_length", "doc_stride")})
    assert again == pytest.approx(student.metrics)


def test_the_cached_teacher_is_the_live_teacher(qa_teacher, tmp_path):
    """The per-run cache holds each window's start/end logits zero-padded to the longest window; padding is masked
    out of both distributions, so training on the cache is training on the live teacher."""
    teacher, _ = qa_teacher
    opts = dict(DATA, max_train_samples=48, report=False, select_on="last")
    kdistill.distill(str(teacher), "squad", output_dir=tmp_path / "cached", layers=[0, 3], **opts)
    kdistill.distill(str(teacher), "squad", output_dir=tmp_path / "live", layers=[0, 3], cache_teacher=False, **opts)
    from safetensors.torch import load_file

    a, b = load_file(tmp_path / "cached" / "model.safetensors"), load_file(tmp_path / "live" / "model.safetensors")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-4


def test_span_losses_by_hand():
    from kdistill.losses import hard_label_ce, soft_target_kl
    from kdistill.losses.qa import span_ce, span_soft_kl

    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(3, 7, 2, generator=g), torch.randn(3, 7, 2, generator=g)
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, 5:] = 0
    pos = torch.tensor([[1, 2], [0, 0], [4, 6]])
    # by hand: each window's start (and end) distribution over its real tokens only
    kl, ce = [], []
    for b in range(3):
        n = int(mask[b].sum())
        for k in (0, 1):
            kl.append(soft_target_kl(s[b, :n, k][None], t[b, :n, k][None], 2.0))
            ce.append(hard_label_ce(s[b, :n, k][None], pos[b, k][None]))
    assert float(span_soft_kl(s, t, 2.0, mask)) == pytest.approx(float(torch.stack(kl).mean()), rel=1e-5)
    assert float(span_ce(s, pos, mask)) == pytest.approx(float(torch.stack(ce).mean()), rel=1e-5)
    from kdistill.losses.tinybert import prediction_loss

    pred = [prediction_loss(s[b, : int(mask[b].sum()), k][None], t[b, : int(mask[b].sum()), k][None], 1.0)
            for b in range(3) for k in (0, 1)]  # TinyBERT's prediction layer: its soft CE on the same rows
    assert float(span_soft_kl(s, t, 1.0, mask, loss=prediction_loss)) == pytest.approx(float(torch.stack(pred).mean()),
                                                                                      rel=1e-5)
    padded = t.clone()
    padded[1, 5:] = 100.0  # whatever sits on padding changes nothing
    assert float(span_soft_kl(s, padded, 2.0, mask)) == pytest.approx(float(span_soft_kl(s, t, 2.0, mask)))
    with pytest.raises(KDistillError, match="outside the window"):
        span_ce(s, torch.tensor([[1, 9], [0, 0], [0, 0]]), mask)


def test_logits_on_the_gold_span_answer_it(tiny_tokenizer):
    """QAReferences turns window logits back into answers: a peak on each window's gold start and end gives the gold
    answer, also when a question's context spans several windows."""
    from kdistill.metrics import compute_metrics
    from kdistill.qa.data import load_qa_splits
    from kdistill.qa.features import QAReferences, tokenize_qa

    splits, spec = load_qa_splits(None, train_file=DATA["validation_file"], validation_file=DATA["validation_file"],
                                  max_eval_samples=12)
    ds = tokenize_qa(splits["validation"], tiny_tokenizer, max_length=96, doc_stride=24)
    labels = np.asarray(ds.with_format(None)["labels"])
    assert len(ds) > 12  # some contexts need several windows
    logits = np.zeros((len(ds), 96, 2), dtype=np.float32)
    for w, (a, b) in enumerate(labels):
        if (a, b) != (0, 0):
            logits[w, a, 0] = logits[w, b, 1] = 10.0
    refs = QAReferences(ds)
    answers = [a["text"] for a in refs.answers_of(logits, spec)]
    # one of the 12 answers, "gold", sits inside the word piece "golden": no token span gives it (as in run_qa)
    assert [q for q, (a, r) in enumerate(zip(answers, refs.answers)) if a not in r] == [4] and answers[4] == "golden"
    assert compute_metrics(spec, logits, refs)["exact_match"] == pytest.approx(11 / 12)
    logits[:] = 0.0
    assert compute_metrics(spec, logits, QAReferences(ds))["exact_match"] < 1.0


def test_selection_slice_is_whole_articles():
    from kdistill.qa.data import article_holdout, load_qa_splits

    splits, _ = load_qa_splits(None, train_file=DATA["train_file"], validation_file=DATA["validation_file"],
                               max_train_samples=2000, max_eval_samples=1)
    rest, sel, info = article_holdout(splits["train"], size=300, seed=3)
    assert len(rest) + len(sel) == 2000 and len(sel) >= 300
    assert not set(rest["article"]) & set(sel["article"])
    assert list(sel["idx"]) == list(range(len(sel)))
    again = article_holdout(splits["train"], size=300, seed=3)[1]
    assert list(again["id"]) == list(sel["id"]) and info["selection_unit"] == "article"
    one = splits["train"].select(range(150))  # one article: whole paragraphs instead
    rest, sel, info = article_holdout(one, size=20, seed=0)
    assert info["selection_unit"] == "paragraph" and not set(rest["context"]) & set(sel["context"])


def test_question_answering_across_tokenizers_is_one_line(qa_teacher, tmp_path):
    from kdistill.errors import ModelError

    teacher, _ = qa_teacher
    other = tmp_path / "other"
    from transformers import BertConfig, BertForQuestionAnswering, BertTokenizerFast

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz"]))
    tok = BertTokenizerFast(vocab_file=str(vocab))
    BertForQuestionAnswering(BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                        intermediate_size=32)).save_pretrained(other)
    tok.save_pretrained(other)
    with pytest.raises(ModelError, match="one tokenizer"):
        kdistill.distill(str(teacher), "squad", str(other), output_dir=tmp_path / "x", **DATA)


def test_export_and_the_torch_free_predictor(qa_teacher, tmp_path):
    """kdistill export: a graph with start_logits and end_logits (parity with PyTorch, int8 behind the F1 gate); the
    torch-free predictor cuts contexts into the same windows and gives, question by question, the answers the
    PyTorch model gives through QAReferences. transformers 5 has no question-answering pipeline any more: kdistill
    registers extractive-question-answering, which gives the same answers."""
    import onnx
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from kdistill.config import DataConfig
    from kdistill.data.tasks import get_task
    from kdistill.deploy.export import export_model
    from kdistill.engine import predict
    from kdistill.data.batching import eval_loader, tokenize
    from kdistill.qa.data import load_qa_splits
    from kdistill.serve import Predictor

    teacher, _ = qa_teacher
    data = DataConfig(task="squad", **{k: DATA[k] for k in ("train_file", "validation_file", "max_train_samples",
                                                            "max_eval_samples", "max_length", "doc_stride")})
    meta = export_model(str(teacher), tmp_path / "onnx", data=data, quantize="dynamic", max_drop=100.0)
    assert meta["problem_type"] == "question_answering" and meta["parity"]["max_abs_diff"] < 1e-4
    assert meta["dev_examples"] == 30 and meta["doc_stride"] == 32 and meta["null_threshold"] is None
    graph = onnx.load(str(tmp_path / "onnx" / "model.onnx"))
    assert [o.name for o in graph.graph.output] == ["start_logits", "end_logits"]
    splits, _ = load_qa_splits(get_task("squad"), train_file=DATA["train_file"],
                               validation_file=DATA["validation_file"], max_train_samples=1, max_eval_samples=30)
    dev = splits["validation"]
    net, tok = AutoModelForQuestionAnswering.from_pretrained(teacher), AutoTokenizer.from_pretrained(teacher)
    logits, refs = predict(net, eval_loader(tokenize(dev, tok, max_length=128, doc_stride=32), tok, batch_size=8),
                           show_progress=False)
    expected = [a["text"] for a in refs.answers_of(logits, get_task("squad"))]
    got = Predictor(tmp_path / "onnx", quantized=False).answers(dev["question"], dev["context"])
    assert [g["answer"] for g in got] == expected
    assert all(set(g) == {"answer", "score", "start", "end"} and 0 <= g["score"] <= 1 for g in got)
    assert all(c[g["start"]:g["end"]] == g["answer"] for g, c in zip(got, dev["context"]))
    with pytest.raises(TypeError, match="pairs"):
        Predictor(tmp_path / "onnx").predict(["a question without its context"])
    import kdistill.qa.pipeline  # noqa: F401 - registers extractive-question-answering
    from transformers import pipeline

    qa = pipeline("extractive-question-answering", model=str(teacher))
    piped = [qa(question=q, context=c, max_length=128, doc_stride=32) for q, c in zip(dev["question"], dev["context"])]
    assert [p["answer"] for p in piped] == expected  # the PyTorch model through transformers' pipeline machinery
    assert [p["start"] for p in piped] == [g["start"] for g in got]
    with pytest.raises(KeyError, match="removed"):
        pipeline("question-answering", model=str(teacher))  # transformers 5: the task is gone


def test_tinybert_and_pruning_of_a_question_answering_model(qa_teacher, tmp_path):
    """TinyBERT's two steps into a spec student with the teacher's start/end head, and `kdistill compress` on a QA
    model (head importance from the span CE; compressed QA classes load through the Auto API)."""
    from test_compress_schedule import SCHEDULE
    from transformers import AutoConfig, AutoModelForQuestionAnswering

    from kdistill.api import compress

    teacher, _ = qa_teacher
    opts = {k: v for k, v in DATA.items() if k != "epochs"}
    res = kdistill.distill(str(teacher), "squad", "spec", output_dir=tmp_path / "tb", method="tinybert", num_layers=2,
                           hidden_size=16, num_heads=2, intermediate_size=32, intermediate_epochs=1,
                           prediction_epochs=1, report=False, **opts)
    assert set(res.metrics) == {"f1", "exact_match"}
    assert AutoConfig.from_pretrained(tmp_path / "tb").architectures == ["BertForQuestionAnswering"]
    rep = compress(str(teacher), "squad", output_dir=tmp_path / "c", **{**SCHEDULE, "max_rounds": 1, **opts})
    assert rep["metric_name"] == "f1" and rep["rounds"][0]["removed_heads"] >= 1
    assert "whole paragraphs" in rep["selected_on"] and rep["loss_terms"]["hard"]["loss"].startswith("CE of the gold start")
    pruned = AutoModelForQuestionAnswering.from_pretrained(tmp_path / "c")
    assert type(pruned).__name__ == "KDistillCompressedBertForQuestionAnswering"


def test_a_question_answering_transfer_set_holds_per_window_logits(qa_teacher, tmp_path):
    """`kdistill label --task squad`: per question the teacher's start/end logits of every window (its tokens, window
    after window) with the windows' token counts; a student distilled from the set trains as one distilled from its
    own teacher pass (same seed); a set cut with another --doc-stride is refused in one line."""
    from safetensors.torch import load_file

    from kdistill.transfer import read_complete_set

    teacher, _ = qa_teacher
    data = {k: DATA[k] for k in ("train_file", "validation_file", "max_train_samples", "max_eval_samples", "max_length",
                                 "doc_stride")}
    manifest = kdistill.label(str(teacher), "squad", output_dir=tmp_path / "set", shard_rows=64, batch_size=8,
                              show_progress=False, **data)
    assert manifest["problem_type"] == "question_answering" and manifest["rows"] == 160 and manifest["doc_stride"] == 32
    assert 0 <= manifest["teacher_dev_metrics"]["f1"] <= 1
    rows = read_complete_set(tmp_path / "set")[1].to_pylist()
    assert all(len(r["logits"]) == sum(r["window_tokens"]) and len(r["logits"][0]) == 2 for r in rows)
    assert any(len(r["window_tokens"]) > 1 for r in rows) and rows[0]["answers"]  # long contexts: several windows
    info = kdistill.transfer.inspect_transfer_set(tmp_path / "set")
    assert info["windows"] == sum(len(r["window_tokens"]) for r in rows) == sum(info["max_probability_histogram"].values())
    base = dict(layers=[0, 3], report=False, seed=4, **{k: v for k, v in DATA.items()})
    kdistill.distill(str(teacher), "squad", output_dir=tmp_path / "own", **base)
    kdistill.distill(str(teacher), "squad", output_dir=tmp_path / "via", transfer_set=[str(tmp_path / "set")], **base)
    a, b = load_file(str(tmp_path / "own" / "model.safetensors")), load_file(str(tmp_path / "via" / "model.safetensors"))
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-3
    assert json.loads((tmp_path / "via" / "train_results.json").read_text())["transfer_sets"]["level"] == "window"
    with pytest.raises(KDistillError, match="other windows"):
        kdistill.distill(str(teacher), "squad", output_dir=tmp_path / "x", transfer_set=[str(tmp_path / "set")],
                         **{**base, "doc_stride": 48})


def test_a_hub_dataset_in_parquet_form(tmp_path):
    """--dataset with a local folder of the hub's SQuAD Parquet files (id, title, context, question, answers{text,
    answer_start}): the same questions as the JSON file, articles numbered by title."""
    import datasets

    from kdistill.data.tasks import get_task
    from kdistill.qa.data import load_qa_splits, read_questions

    q = read_questions(DATA["validation_file"])
    rows = {"id": q.id[:40], "title": [f"t{a}" for a in q.article[:40]], "context": q.context[:40],
            "question": q.question[:40],
            "answers": [{"text": t, "answer_start": s} for t, s in zip(q.answers[:40], q.answer_starts[:40])]}
    for split in ("train", "validation"):
        datasets.Dataset.from_dict(rows).to_parquet(str(tmp_path / f"{split}-00000.parquet"))
    splits, spec = load_qa_splits(get_task("squad"), dataset=str(tmp_path))
    assert spec.qa and len(splits["train"]) == 40 and splits["validation"]["answers"] == q.answers[:40]
    assert splits["train"]["article"] == q.article[:40]


def test_own_jsonl_questions_through_the_cli(tiny_teacher_dir, tmp_path):
    """Your own questions as JSONL (the hub's squad rows), recognised by their content without --task, fine-tuned
    and evaluated from the command line with --doc-stride."""
    from typer.testing import CliRunner

    from kdistill.cli import app
    from kdistill.qa.data import read_questions

    q = read_questions(DATA["validation_file"])
    path = tmp_path / "qa.jsonl"
    path.write_text("\n".join(json.dumps({"id": q.id[i], "question": q.question[i], "context": q.context[i],
                                          "answers": {"text": q.answers[i], "answer_start": q.answer_starts[i]}})
                              for i in range(24)) + "\n")
    common = ["--train-file", str(path), "--validation-file", str(path), "--max-length", "96", "--doc-stride", "24"]
    r = CliRunner().invoke(app, ["finetune", "--model", str(tiny_teacher_dir), *common, "--output", str(tmp_path / "m"),
                                 "--epochs", "1", "--select-on", "last", "--batch-size", "8"])
    assert r.exit_code == 0, r.output
    results = json.loads((tmp_path / "m" / "train_results.json").read_text())
    assert results["problem_type"] == "question_answering" and set(results["eval"]) == {"f1", "exact_match"}
    r = CliRunner().invoke(app, ["evaluate", "--model", str(tmp_path / "m"), *common])
    assert r.exit_code == 0 and "exact_match" in r.output, r.output


def test_run_chains_a_question_answering_teacher_and_student(tiny_teacher_dir, tmp_path):
    """kdistill run from a base model without a QA head: the teacher stage fine-tunes it (checked against the
    null-answer baseline on the held-out slice), then the student is distilled and reported in F1."""
    opts = {**DATA, "max_train_samples": 64, "max_eval_samples": 12}
    res = kdistill.run(str(tiny_teacher_dir), "squad", output_dir=tmp_path / "chain", layers=[0, 3], latency_runs=2,
                       teacher_learning_rate=5e-3, **opts)
    assert set(res.metrics) == {"f1", "exact_match"}
    rep = json.loads(next((tmp_path / "chain").rglob("report.json")).read_text())
    assert rep["metric_name"] == "f1" and rep["problem_type"] == "question_answering"
