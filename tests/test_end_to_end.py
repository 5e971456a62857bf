"""End to end on a tiny random teacher and slices of the real SST-2 data: distil -> save -> reload -> pipeline,
resume equivalence, and the 2-process DDP smoke run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

import kdistill

FAST = dict(epochs=1, batch_size=16, eval_batch_size=64, learning_rate=5e-4, show_progress=False, latency_runs=5)


def _opts(glue_dir, **over):
    opts = dict(data_dir=str(glue_dir), max_train_samples=200, max_eval_samples=64, **FAST)
    opts.update(over)
    latency = opts.pop("latency_runs")
    return opts, latency


def test_distill_save_reload_pipeline(tiny_teacher_dir, glue_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    opts, latency = _opts(glue_dir)
    out = tmp_path / "run"
    res = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out, latency_runs=latency, **opts)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "report.json", "report.md", "report.png",
                 "training_curves.png", "checkpoint/trainer_state.json", "logs/train_log.csv"):
        assert (out / name).exists(), name
    rep = json.loads((out / "report.json").read_text())
    assert rep["student_params"] < rep["teacher_params"]
    assert rep["retention"] == pytest.approx(rep["student_metric"] / rep["teacher_metric"])
    assert 0.0 <= res.metrics["accuracy"] <= 1.0
    student = AutoModelForSequenceClassification.from_pretrained(out)
    assert student.config.num_hidden_layers == 2  # every other of 4, first and last kept: [0, 3]
    clf = pipeline("text-classification", model=student, tokenizer=AutoTokenizer.from_pretrained(out))
    pred = clf("a gorgeous , witty , seductive movie .")[0]
    assert pred["label"] in {"negative", "positive"}
    # the saved student is the best checkpoint and reproduces the reported dev metric
    metrics = kdistill.evaluate(str(out), "sst2", data_dir=str(glue_dir), max_eval_samples=64)
    assert metrics["accuracy"] == pytest.approx(res.metrics["accuracy"])
    # the run's log holds each loss term separately
    log = (out / "logs" / "train_log.csv").read_text()
    assert "eval/accuracy" in log


def _last_weights(out):
    return load_file(str(out / "checkpoint" / "model.safetensors"))


def test_interrupted_then_resumed_equals_uninterrupted(tiny_teacher_dir, glue_dir, tmp_path):
    opts, _ = _opts(glue_dir, max_train_samples=96, epochs=2, eval_steps=4, report=False)
    opts.pop("report")
    full = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "full", report=False, **opts)
    assert not full.interrupted

    def stop_at_7(state):  # mid-way through the second epoch (6 steps per epoch)
        if state.global_step == 7:
            state.stop_requested = True

    part = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "part", report=False,
                            callbacks=[stop_at_7], **opts)
    assert part.interrupted
    state = json.loads((tmp_path / "part" / "checkpoint" / "trainer_state.json").read_text())
    assert state["global_step"] == 7 and state["epoch"] == 1 and state["batches_in_epoch"] == 1
    resumed = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "part", report=False, resume=True, **opts)
    assert not resumed.interrupted
    a, b = _last_weights(tmp_path / "full"), _last_weights(tmp_path / "part")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert resumed.metrics == full.metrics


def test_finetune_then_run_chain(glue_dir, tmp_path, tiny_tokenizer):
    """`run` fine-tunes a teacher with no trained head, then distils and reports."""
    from transformers import BertConfig, BertModel

    base = tmp_path / "base"
    BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128)).save_pretrained(base)
    tiny_tokenizer.save_pretrained(base)
    opts, latency = _opts(glue_dir, max_train_samples=64, max_eval_samples=32)
    res = kdistill.run(str(base), "sst2", output_dir=tmp_path / "chain", teacher_epochs=1, latency_runs=latency, **opts)
    assert (tmp_path / "chain" / "teacher" / "model.safetensors").exists()
    assert (tmp_path / "chain" / "student" / "report.json").exists()
    assert res.report["teacher"].endswith("teacher")


def test_bf16_with_gradient_accumulation_and_clear_fp16_error(tiny_teacher_dir, glue_dir, tmp_path):
    opts, latency = _opts(glue_dir, max_train_samples=64, max_eval_samples=32)
    res = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "bf16", mixed_precision="bf16",
                           gradient_accumulation_steps=2, report=False, **opts)
    state = json.loads((tmp_path / "bf16" / "checkpoint" / "trainer_state.json").read_text())
    assert state["global_step"] == 2 and state["finished"]  # 4 batches of 16, 2 per optimizer step
    assert 0 <= res.metrics["accuracy"] <= 1
    if not torch.cuda.is_available():
        with pytest.raises(kdistill.KDistillError, match="bf16"):
            kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "fp16", mixed_precision="fp16", **opts)
        assert not (tmp_path / "fp16").exists()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


TINYBERT_ARGS = ["--method", "tinybert", "--student", "spec", "--num-layers", "2", "--hidden-size", "16", "--num-heads", "2",
                 "--intermediate-size", "32", "--intermediate-epochs", "1", "--prediction-epochs", "1"]


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], TINYBERT_ARGS], ids=["kd", "tinybert"])
def test_ddp_two_process_cpu_smoke(tiny_teacher_dir, glue_dir, tmp_path, extra):
    """`accelerate launch` with 2 CPU processes: the teacher is never DDP-wrapped, the run completes and saves.

    The TinyBERT case also covers trainable projections under DDP and the intermediate step, whose
    loss leaves the task head without gradients.
    """
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", ACCELERATE_USE_CPU="1")
    accelerate = shutil.which("accelerate", path=os.path.dirname(sys.executable)) or "accelerate"
    # accelerate's torchrun launcher ("--multi_gpu") with ACCELERATE_USE_CPU=1 starts N gloo CPU processes
    cmd = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
           "--main_process_port", str(_free_port()),
           "--dynamo_backend", "no", "-m", "kdistill.cli", "distill", "--teacher", str(tiny_teacher_dir),
           "--task", "sst2", "--data-dir", str(glue_dir), "--max-train-samples", "128", "--max-eval-samples", "64",
           "--epochs", "1", "--batch-size", "16", "--output", str(out), "--latency-runs", "5", *extra]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    rank1 = "\n".join(line for line in proc.stderr.splitlines() if "[rank1]" in line)
    assert proc.returncode == 0, rank1[-4000:] + "\n---\n" + proc.stderr[-2000:]
    state = json.loads((out / "checkpoint" / "trainer_state.json").read_text())
    assert state["finished"] and state["global_step"] == 4  # 128 rows / (16 per process x 2 processes)
    assert (out / "model.safetensors").exists() and (out / "report.json").exists()
