"""Tests for kdistill.reporting: sizes, latency measurement and the rendered report."""

from __future__ import annotations

import json
import os

import pytest
import torch
import transformers
from transformers import AutoModelForSequenceClassification, BertConfig, BertForSequenceClassification

from kdistill.errors import KDistillError
from kdistill.reporting import (
    LatencyStats,
    ModelEntry,
    SizeStats,
    build_report,
    count_parameters,
    disk_size_mb,
    measure_latency,
    median_token_length,
    render_markdown,
    write_report,
)

V, H, L, HEADS, I, P, T, LABELS = 100, 32, 2, 2, 64, 64, 2, 2
WORDS = ["the", "movie", "was", "good", "bad", "very", "a", "film", "not", "fun", "and", "it"]
TEXTS = [
    "the movie was good",  # 6 tokens with [CLS]/[SEP]
    "bad",  # 3
    "a very very bad film and not fun",  # 10
    "it was fun",  # 5
    "the film was not good",  # 7
]


def tiny_config() -> BertConfig:
    return BertConfig(
        vocab_size=V,
        hidden_size=H,
        num_hidden_layers=L,
        num_attention_heads=HEADS,
        intermediate_size=I,
        max_position_embeddings=P,
        type_vocab_size=T,
        num_labels=LABELS,
    )


@pytest.fixture(scope="module")
def model() -> BertForSequenceClassification:
    torch.manual_seed(0)
    return BertForSequenceClassification(tiny_config()).eval()


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    d = tmp_path_factory.mktemp("tok")
    vocab = d / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS) + "\n")
    return transformers.BertTokenizer(vocab=str(vocab))


class CaptureShapes:
    """Forward pre-hook recording the shape of every input_ids the model sees."""

    def __init__(self, module: torch.nn.Module):
        self.shapes: list[tuple[int, ...]] = []
        self.handle = module.register_forward_pre_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        self.shapes.append(tuple(ids.shape))

    def remove(self):
        self.handle.remove()


# --------------------------------------------------------------------------- size


def test_count_parameters_matches_hand_count(model):
    embeddings = V * H + P * H + T * H
    emb_layernorm = 2 * H
    per_layer = 4 * (H * H + H) + 2 * H + (H * I + I) + (I * H + H) + 2 * H
    pooler = H * H + H
    classifier = H * LABELS + LABELS
    expected_total = embeddings + emb_layernorm + L * per_layer + pooler + classifier
    total, non_emb = count_parameters(model)
    assert total == expected_total
    assert non_emb == expected_total - embeddings
    assert total == sum(p.numel() for p in model.parameters())


def test_count_parameters_tied_weights_counted_once():
    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(10, 4)
            self.out = torch.nn.Linear(4, 10, bias=False)
            self.out.weight = self.emb.weight
            self.proj = torch.nn.Linear(4, 4)

    assert count_parameters(Tied()) == (40 + 20, 20)
    with pytest.raises(KDistillError):
        count_parameters("not a model")


def test_disk_size_mb(model, tmp_path):
    model.save_pretrained(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    assert weights.exists()
    expected = os.path.getsize(weights) / 1e6
    assert disk_size_mb(tmp_path / "m") == pytest.approx(expected)
    assert disk_size_mb(str(weights)) == pytest.approx(expected)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text("{}")
    with pytest.raises(KDistillError):
        disk_size_mb(tmp_path / "empty")
    with pytest.raises(KDistillError):
        disk_size_mb(tmp_path / "missing")


# --------------------------------------------------------------------------- latency


def test_median_token_length(tokenizer):
    # lengths 6, 3, 10, 5, 7 -> median 6
    assert median_token_length(tokenizer, TEXTS) == 6
    # even count: lower middle value (an actual text length)
    assert median_token_length(tokenizer, TEXTS[:4]) == 5
    # pairs: [CLS] a [SEP] b [SEP]
    pairs = [("the movie", "was good"), ("bad", "film"), ("a", "very very bad film")]
    assert median_token_length(tokenizer, pairs) == 7  # lengths 7, 5, 8
    with pytest.raises(KDistillError):
        median_token_length(tokenizer, [])


@pytest.mark.parametrize("seq_len", [None, 4, 12])
def test_measure_latency_respects_seq_len(model, tokenizer, seq_len):
    hook = CaptureShapes(model)
    try:
        stats = measure_latency(
            model, tokenizer, TEXTS, seq_len=seq_len, n_runs=5, warmup=2, batch_size=2, num_threads=1
        )
    finally:
        hook.remove()
    want = 6 if seq_len is None else seq_len
    assert isinstance(stats, LatencyStats)
    assert stats.seq_len == want
    assert stats.n_runs == 5
    assert stats.batch1_median_ms > 0
    assert stats.batch1_p90_ms >= stats.batch1_median_ms
    assert stats.throughput_bs32 > 0
    assert stats.threads == 1
    # 2 warm-up + 5 timed batch-1 runs, all exactly (1, seq_len)
    assert hook.shapes[:7] == [(1, want)] * 7
    # throughput: warm-up batch + 3 batches of <= 2 examples covering all 5 texts
    batch_shapes = hook.shapes[7:]
    assert len(batch_shapes) == 4
    assert sum(s[0] for s in batch_shapes[1:]) == len(TEXTS)


def test_measure_latency_pairs_plain_module_and_restores_state(tokenizer):
    class IdsOnly(torch.nn.Module):
        """Forward takes only input_ids and returns a tensor."""

        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(V, 8)
            self.head = torch.nn.Linear(8, 2)

        def forward(self, input_ids):
            return self.head(self.emb(input_ids).mean(1))

    m = IdsOnly().train()
    hook = CaptureShapes(m)
    old_threads = torch.get_num_threads()
    pairs = [("the movie", "was good"), ("bad", "film"), ("a", "very very bad film")]
    try:
        stats = measure_latency(m, tokenizer, pairs, seq_len=6, n_runs=3, warmup=1, num_threads=1)
    finally:
        hook.remove()
    assert stats.seq_len == 6 and stats.batch1_p90_ms >= stats.batch1_median_ms > 0
    assert hook.shapes[0] == (1, 6)
    assert m.training  # train mode restored
    assert torch.get_num_threads() == old_threads


def test_measure_latency_rejects_bad_input(model, tokenizer):
    with pytest.raises(KDistillError):
        measure_latency(model, tokenizer, [], n_runs=1)
    with pytest.raises(KDistillError):
        measure_latency(model, tokenizer, TEXTS, n_runs=0)
    with pytest.raises(KDistillError):
        measure_latency(model, tokenizer, TEXTS, seq_len=P + 1, n_runs=1)


# --------------------------------------------------------------------------- report


def entry(name, metric, latency_ms, params, tput, disk=1.5):
    return ModelEntry(
        name=name,
        path=f"/runs/{name}",
        metric=metric,
        size=SizeStats(params_total=params, params_non_embedding=params // 2, disk_mb=disk),
        latency=LatencyStats(
            seq_len=25,
            batch1_median_ms=latency_ms,
            batch1_p90_ms=latency_ms * 1.2,
            n_runs=100,
            throughput_bs32=tput,
            threads=2,
        ),
    )


@pytest.fixture()
def report():
    teacher = entry("teacher", 0.90, 20.0, 22_700_000, 100.0, disk=90.9)
    student = entry("student", 0.882, 5.0, 5_000_000, 450.0, disk=20.0)
    return build_report(
        task="sst2", metric_name="accuracy", teacher=teacher, student=student, extra={"method": "kd"}
    )


def test_build_report_arithmetic(report):
    assert report["retention"] == pytest.approx(0.98)
    assert report["speedup"] == pytest.approx(4.0)
    assert report["throughput_speedup"] == pytest.approx(4.5)
    assert report["param_ratio"] == pytest.approx(5_000_000 / 22_700_000)
    assert report["teacher_latency_p90_ms"] == pytest.approx(24.0)
    assert report["student_latency_p90_ms"] == pytest.approx(6.0)
    assert report["teacher"] == "/runs/teacher" and report["student"] == "/runs/student"
    assert report["teacher_params_non_embedding"] == 11_350_000
    assert report["teacher_disk_mb"] == 90.9 and report["student_disk_mb"] == 20.0
    assert report["seq_len"] == 25 and report["latency_runs"] == 100 and report["threads"] == 2
    assert report["method"] == "kd"
    assert report["machine"]["cpu_count"] == os.cpu_count()
    assert report["machine"]["torch"] == torch.__version__
    assert "T" in report["date"]
    json.dumps(report)  # JSON-able


def test_build_report_zero_teacher_metric():
    r = build_report(
        task="t",
        metric_name="mcc",
        teacher=entry("teacher", 0.0, 10.0, 100, 1.0),
        student=entry("student", 0.1, 5.0, 50, 2.0),
    )
    assert r["retention"] is None
    assert "n/a" in render_markdown(r)
    with pytest.raises(KDistillError):
        build_report(task="t", metric_name="m", teacher="x", student=entry("s", 0.1, 1.0, 1, 1.0))


def test_write_report(report, tmp_path):
    other = entry("tinybert-L2", 0.85, 2.0, 1_000_000, 900.0)
    paths = write_report(report, tmp_path / "out", others=[other])
    assert set(paths) == {"json", "md", "png"}
    for p in paths.values():
        assert p.exists() and p.stat().st_size > 0
    data = json.loads(paths["json"].read_text())
    for key, value in report.items():
        assert data[key] == value
    assert data["others"][0]["name"] == "tinybert-L2"
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = paths["md"].read_text()
    assert md == render_markdown(report)
    assert "| | teacher | student |" in md
    assert "|---|---:|---:|" in md
    for row in ("| accuracy |", "| retention |", "| params |", "| non-embedding params |", "| disk (MB) |",
                "latency median", "latency p90", "throughput", "speedup"):
        assert row in md
    assert "98.0 %" in md and "4.00x" in md and "20.00" in md and "5.00" in md
    assert "Latency: CPU, batch 1" in md and "25 tokens" in md and "100 timed" in md


def test_top_level_report_stays_the_function_after_the_reporting_package_is_imported():
    import kdistill
    import kdistill.reporting  # noqa: F401 - imported by every run; must not shadow kdistill.report()
    from kdistill import api

    assert kdistill.report is api.report and callable(kdistill.report)


# --------------------------------------------------------------------------- interleaved timing


class FakeClock:
    """Stands in for the ``time`` module of :mod:`kdistill.reporting.measure`: time moves only when a model runs."""

    def __init__(self):
        self.now, self.calls, self.log = 0.0, 0, []

    def perf_counter(self) -> float:
        return self.now


class Timed(torch.nn.Module):
    """A model whose forward "takes" ``cost_ms`` per example (times the clock's drift), logging each call."""

    def __init__(self, name: str, cost_ms: float, clock: FakeClock, drift: float = 0.0):
        super().__init__()
        self.name, self.cost_ms, self.clock, self.drift = name, cost_ms, clock, drift
        self.lin = torch.nn.Linear(1, 1)

    def forward(self, input_ids, attention_mask=None):
        c = self.clock
        c.log.append((self.name, tuple(input_ids.shape), self.training, torch.is_inference_mode_enabled()))
        c.now += input_ids.shape[0] * self.cost_ms / 1000.0 * (1.0 + self.drift * c.calls)
        c.calls += 1
        return torch.zeros(input_ids.shape[0], 2)


def test_teacher_and_student_are_timed_interleaved(tokenizer, monkeypatch):
    import kdistill.reporting.measure as measure_mod
    from kdistill.reporting import measure_latency_interleaved

    clock = FakeClock()
    monkeypatch.setattr(measure_mod, "time", clock)
    teacher, student = Timed("t", 2.0, clock).train(), Timed("s", 0.5, clock).train()
    stats = measure_latency_interleaved([teacher, student], [tokenizer, tokenizer], TEXTS, n_runs=7, warmup=3,
                                        batch_size=2)
    # one pass of each in turn: 3 warm-up + 7 timed rounds at batch 1, then the throughput pass (3 batches of
    # <= 2 of the 5 texts: one untimed warm-up batch each, then every batch through both in turn)
    names = [n for n, *_ in clock.log]
    assert names == ["t", "s"] * 10 + ["t", "s"] + ["t", "s"] * 3
    assert all(shape == (1, 6) for _, shape, *_ in clock.log[:20])  # the dev median length, for both models
    assert [shape[0] for _, shape, *_ in clock.log[22::2]] == [2, 2, 1]
    assert all(not training and inference for *_, training, inference in clock.log)  # eval(), inference_mode()
    assert teacher.training and student.training  # modes restored
    t, s = stats
    assert (t.seq_len, t.n_runs, s.seq_len, s.n_runs) == (6, 7, 6, 7)
    assert t.batch1_median_ms == pytest.approx(2.0) and t.batch1_p90_ms == pytest.approx(2.0)
    assert s.batch1_median_ms == pytest.approx(0.5)
    assert t.throughput_bs32 == pytest.approx(500.0) and s.throughput_bs32 == pytest.approx(2000.0)  # examples/s

    # a machine that slows down as it goes (5 % per forward pass) hits both alike: the speedup stays ~4x
    # (timed back to back, teacher first, the same drift would give ~2.5x)
    clock = FakeClock()
    monkeypatch.setattr(measure_mod, "time", clock)
    pair = [Timed("t", 2.0, clock, drift=0.05), Timed("s", 0.5, clock, drift=0.05)]
    t, s = measure_latency_interleaved(pair, [tokenizer, tokenizer], TEXTS, n_runs=21, warmup=2, batch_size=2)
    assert t.batch1_median_ms / s.batch1_median_ms == pytest.approx(4.0, rel=0.03)


def test_a_real_run_writes_every_report_field(tiny_teacher_dir, glue_dir, tmp_path, monkeypatch):
    """The report.json of a `distill` run: every field, each equal to what it claims to measure."""
    from datetime import datetime

    import kdistill
    import kdistill.reporting.measure as measure_mod
    from kdistill.data import load_splits
    from kdistill.reporting import count_parameters, median_token_length

    timed = []
    real = measure_mod.measure_latency_interleaved

    def spy(models, tokenizers, texts, **kw):
        timed.append((len(models), kw))
        return real(models, tokenizers, texts, **kw)

    monkeypatch.setattr(measure_mod, "measure_latency_interleaved", spy)
    data = dict(data_dir=str(glue_dir), max_train_samples=32, max_eval_samples=40)
    out = tmp_path / "run"
    res = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out, epochs=1, batch_size=16, show_progress=False,
                           latency_runs=5, **data)
    rep = json.loads((out / "report.json").read_text())
    # teacher and student, each in eager PyTorch, ONNX Runtime fp32 and int8: all six timed together, interleaved
    assert timed == [(6, {"n_runs": 5})]
    assert list(rep["runtimes"]["student"]) == ["eager_fp32", "ort_fp32", "ort_int8"]
    assert rep == res.report
    teacher_acc = kdistill.evaluate(str(tiny_teacher_dir), "sst2", **data)["accuracy"]
    assert rep["task"] == "sst2" and rep["metric_name"] == "accuracy" and rep["method"] == "kd"
    assert rep["teacher"] == str(tiny_teacher_dir) and rep["student"] == str(out)
    assert rep["teacher_metric"] == pytest.approx(teacher_acc)
    assert rep["student_metric"] == pytest.approx(res.metrics["accuracy"])
    assert rep["student_metric"] == pytest.approx(kdistill.evaluate(str(out), "sst2", **data)["accuracy"])
    assert rep["retention"] == pytest.approx(rep["student_metric"] / rep["teacher_metric"])
    for who in ("teacher", "student"):
        assert 0 < rep[f"{who}_latency_ms"] <= rep[f"{who}_latency_p90_ms"] and rep[f"{who}_throughput"] > 0
    assert rep["speedup"] == pytest.approx(rep["teacher_latency_ms"] / rep["student_latency_ms"])
    assert rep["throughput_speedup"] == pytest.approx(rep["student_throughput"] / rep["teacher_throughput"])
    t_total, t_non_emb = count_parameters(AutoModelForSequenceClassification.from_pretrained(tiny_teacher_dir))
    s_total, s_non_emb = count_parameters(AutoModelForSequenceClassification.from_pretrained(out))
    assert (rep["teacher_params"], rep["teacher_params_non_embedding"]) == (t_total, t_non_emb)
    assert (rep["student_params"], rep["student_params_non_embedding"]) == (s_total, s_non_emb)
    assert s_total < t_total and rep["param_ratio"] == pytest.approx(s_total / t_total)
    assert rep["teacher_disk_mb"] == pytest.approx(os.path.getsize(tiny_teacher_dir / "model.safetensors") / 1e6)
    assert rep["student_disk_mb"] == pytest.approx(os.path.getsize(out / "model.safetensors") / 1e6)
    dev = list(load_splits("sst2", **data)[0]["validation"]["text_a"])
    tok = transformers.AutoTokenizer.from_pretrained(tiny_teacher_dir)
    assert rep["seq_len"] == median_token_length(tok, dev)  # a real dev sentence at the median token length
    assert rep["latency_runs"] == 5 and rep["throughput_batch_size"] == 32 and rep["threads"] == torch.get_num_threads()
    assert not any(k.startswith("student_") and k[8:] in ("seq_len", "latency_runs", "threads") for k in rep)
    assert rep["machine"]["cpu_count"] == os.cpu_count() and rep["machine"]["torch"] == torch.__version__
    assert datetime.fromisoformat(rep["date"]).tzinfo is not None
    assert (out / "report.md").read_text() == render_markdown(rep)
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_is_typed_dict_with_files_and_strict_json():
    """The report is a typed object (issue 25): a dict as scripts read it (``report["retention"]``), its written files
    as an attribute (no private key crossing modules), strict JSON, and it pickles with its files."""
    import math
    import pickle

    from kdistill.reporting.render import Report

    rep = Report({"retention": 0.9812, "speedup": math.nan}, files={"json": "r/report.json"})
    assert rep["retention"] == 0.9812 and rep.files == {"json": "r/report.json"} and "_files" not in rep
    data = json.loads(rep.to_json())
    assert data["speedup"] is None and "speedup" in data["undefined"]
    back = pickle.loads(pickle.dumps(rep))
    assert isinstance(back, Report) and back.files == rep.files and back["retention"] == 0.9812
    assert math.isnan(back["speedup"])
