"""Issue 13 (part): your own files without --task, --labels, evaluate with only a validation file, the loss that ran
in the report, --num-threads, a light CLI, ~100 logged points, slim finished checkpoints, `run` prints each part."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import kdistill
from conftest import make_tiny_bert, save_classifier
from kdistill.cli import app

runner = CliRunner()
WORDS = "a man woman dog plays runs eats the guitar flute ball park happy sad film good bad".split()
NLI = ("entailment", "neutral", "contradiction")


def _write_nli(tmp_path, n=30):
    rng = random.Random(0)
    for name in ("train.csv", "dev.csv"):
        rows = ["premise,hypothesis,verdict"] + [
            f"{' '.join(rng.choice(WORDS) for _ in range(5))},{' '.join(rng.choice(WORDS) for _ in range(4))},{NLI[i % 3]}"
            for i in range(n)]
        (tmp_path / name).write_text("\n".join(rows) + "\n")
    return tmp_path / "train.csv", tmp_path / "dev.csv"


@pytest.fixture()
def nli_teacher(tmp_path, tiny_tokenizer):
    """A 3-class teacher whose labels are the file's (sorted, as inferred)."""
    return save_classifier(make_tiny_bert(num_labels=3), tmp_path / "nli_teacher", tiny_tokenizer, sorted(NLI))


def test_own_files_without_task_infer_and_print_the_labels(tmp_path, nli_teacher):
    train, dev = _write_nli(tmp_path)
    r = runner.invoke(app, ["distill", "--teacher", str(nli_teacher), "--train-file", str(train), "--validation-file",
                            str(dev), "--text-columns", "premise,hypothesis", "--label-column", "verdict", "--epochs", "1",
                            "--batch-size", "16", "--output", str(tmp_path / "run"), "--no-report"])
    assert r.exit_code == 0, r.output
    assert "3 labels inferred from the train split: contradiction, entailment, neutral" in r.output
    cfg = json.loads((tmp_path / "run" / "kdistill_run.json").read_text())
    assert cfg["data"]["task"] is None
    # --labels fixes the order (class id = position), and a label outside it is refused in one line
    r = runner.invoke(app, ["distill", "--teacher", str(nli_teacher), "--train-file", str(train), "--validation-file",
                            str(dev), "--text-columns", "premise,hypothesis", "--label-column", "verdict",
                            "--labels", "entailment,neutral", "--output", str(tmp_path / "run2")])
    assert r.exit_code == 2 and "'contradiction'" in r.output and not (tmp_path / "run2").exists(), r.output


def test_evaluate_needs_only_the_validation_file(tmp_path, nli_teacher):
    _, dev = _write_nli(tmp_path)
    r = runner.invoke(app, ["evaluate", "--model", str(nli_teacher), "--validation-file", str(dev), "--text-columns",
                            "premise,hypothesis", "--label-column", "verdict"])
    assert r.exit_code == 0, r.output
    metrics = json.loads(r.stdout[r.stdout.index("{"):])
    assert 0 <= metrics["accuracy"] <= 1 and "f1" in metrics


def test_report_records_the_loss_that_ran_for_regression(tmp_path, tiny_tokenizer):
    rng = random.Random(0)
    d = tmp_path / "glue" / "STS-B"
    d.mkdir(parents=True)
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"
    for name, n in (("train.tsv", 32), ("dev.tsv", 16)):
        rows = [f"{i}\tg\tf\t2012\t{i}\tn\tn\t{' '.join(rng.choice(WORDS) for _ in range(5))}\t"
                f"{' '.join(rng.choice(WORDS) for _ in range(5))}\t{rng.uniform(0, 5):.3f}" for i in range(n)]
        (d / name).write_text("\n".join([header, *rows]) + "\n")
    m = make_tiny_bert(num_labels=1)
    m.config.problem_type = "regression"
    m.save_pretrained(tmp_path / "t")
    tiny_tokenizer.save_pretrained(tmp_path / "t")
    res = kdistill.distill(str(tmp_path / "t"), "stsb", output_dir=tmp_path / "run", data_dir=str(tmp_path / "glue"),
                           epochs=1, batch_size=16, latency_runs=3, show_progress=False)
    rep = res.report
    assert rep["kd_loss"].startswith("mse to the teacher's prediction") and rep["temperature"] is None
    assert rep["loss_terms"]["soft"]["loss"] == "MSE to the teacher's prediction (regression task)"
    assert "temperature" not in rep["loss_terms"]["soft"] and rep["loss_terms"]["hard"]["weight"] == 0.5


def test_cli_argument_errors_import_no_torch(tmp_path):
    code = ("import sys; from typer.testing import CliRunner; from kdistill.cli import app; "
            "r = CliRunner().invoke(app, ['distill', '--teacher', 'x', '--output', 'o', '--epochs', 'inf']); "
            "print(r.exit_code, sorted(m for m in ('torch', 'transformers', 'datasets', 'accelerate') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "2 []", out.stdout + out.stderr


def test_num_threads_sets_torch_and_is_recorded(tiny_teacher_dir, glue_dir, tmp_path):
    import torch

    before = torch.get_num_threads()
    try:
        r = runner.invoke(app, ["distill", "--num-threads", "1", "--teacher", str(tiny_teacher_dir), "--data-dir",
                                str(glue_dir), "--max-train-samples", "32", "--max-eval-samples", "16", "--epochs", "1",
                                "--batch-size", "16", "--latency-runs", "3", "--output", str(tmp_path / "run")])
        assert r.exit_code == 0, r.output
        assert json.loads((tmp_path / "run" / "report.json").read_text())["threads"] == 1
    finally:
        torch.set_num_threads(before)


def test_about_100_logged_points_and_a_slim_finished_checkpoint(tiny_teacher_dir, glue_dir, tmp_path):
    opts = dict(data_dir=str(glue_dir), max_train_samples=64, max_eval_samples=16, epochs=2, batch_size=16,
                show_progress=False, report=False)
    kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "a", **opts)
    rows = (tmp_path / "a" / "logs" / "train_log.csv").read_text().splitlines()[1:]
    assert sorted({int(r.split(",")[0]) for r in rows if ",train/loss," in r}) == list(range(1, 9))  # 8 steps: every one
    ckpt = tmp_path / "a" / "checkpoint"
    assert sorted(p.name for p in ckpt.iterdir()) == ["scheduler.json", "trainer_state.json"]
    kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "b", keep_checkpoint=True, **opts)
    assert (tmp_path / "b" / "checkpoint" / "model.safetensors").exists()
    again = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "a", resume=True, **opts)
    assert not again.interrupted  # a slim finished run still says it is finished


def test_run_reports_each_part_as_it_ends(tmp_path, glue_dir, tiny_tokenizer, monkeypatch):
    import kdistill.recipes.chain as chain

    base = tmp_path / "base"
    make_tiny_bert().bert.save_pretrained(base)  # no task head: the chain fine-tunes it first
    tiny_tokenizer.save_pretrained(base)
    # a random teacher trained 1 epoch on 32 rows is at chance, which stops the chain (issue 24,
    # tests/test_issue24_chain.py); this test is about the printed parts, so that check passes here
    monkeypatch.setattr(chain, "check_teacher", lambda *a: {"metric": 1.0, "baseline": 0.0, "rising": False})
    seen = []
    kdistill.run(str(base), "sst2", output_dir=tmp_path / "run", data_dir=str(glue_dir), max_train_samples=32,
                 max_eval_samples=16, epochs=1, teacher_epochs=1, batch_size=16, latency_runs=3, show_progress=False,
                 on_stage=lambda name, r: seen.append((name, r.output_dir.name)))
    assert seen == [("teacher", "teacher"), ("student", "student")]


def test_holdout_selection_slice_is_disjoint_full_length_and_stratified(glue_dir):
    from collections import Counter

    from kdistill.data import load_splits
    from kdistill.data.selection import holdout_slice

    splits, _ = load_splits("sst2", data_dir=glue_dir, max_train_samples=2000)
    rest, sel, info = holdout_slice(splits["train"], size=150, seed=1)
    assert len(sel) == info["selection_rows"] >= 148 and len(rest) + len(sel) == 2000
    assert set(rest["idx"]) == set(range(len(rest))) and set(sel["idx"]) == set(range(len(sel)))  # renumbered
    assert not set(sel["text_a"]) & set(rest["text_a"])  # disjoint (exact rows)
    assert not set(sel["text_a"]) & set(splits["validation"]["text_a"])  # never the reported split
    assert min(len(t.split()) for t in sel["text_a"]) >= 10  # full-length rows
    share = Counter(sel["label"])[1] / len(sel)
    pool = [lab for t, lab in zip(splits["train"]["text_a"], splits["train"]["label"]) if len(t.split()) >= 10]
    assert abs(share - sum(pool) / len(pool)) < 0.02  # stratified like the full-length rows
    again = holdout_slice(splits["train"], size=150, seed=1)[1]
    assert again["text_a"] == sel["text_a"]  # seeded


def test_select_on_holdout_reports_dev_metrics_of_a_student_chosen_off_dev(tiny_teacher_dir, glue_dir, tmp_path):
    res = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "run", data_dir=str(glue_dir),
                           max_train_samples=200, max_eval_samples=32, epochs=1, batch_size=16, eval_steps=3,
                           select_on="holdout", selection_size=20, latency_runs=3, show_progress=False)
    results = json.loads((tmp_path / "run" / "train_results.json").read_text())
    assert results["selection"]["selection_rows"] == 20 and results["selection"]["train_rows"] == 180
    dev = kdistill.evaluate(str(tmp_path / "run"), "sst2", data_dir=str(glue_dir), max_eval_samples=32)
    assert results["eval"]["accuracy"] == pytest.approx(dev["accuracy"]) == pytest.approx(res.metrics["accuracy"])
    assert "selection_eval" in results and res.report["student_metric"] == pytest.approx(dev["accuracy"])
    assert res.report["selected_on"].startswith("held-out train slice of 20")


def test_headerless_files_take_column_indices_and_say_so(tmp_path, nli_teacher):
    rows = [f"{i}\tmain-captions\t{' '.join(WORDS[j % 17] for j in range(i, i + 6))}\t{NLI[i % 3]}" for i in range(30)]
    train = tmp_path / "train.tsv"
    train.write_text("\n".join(rows) + "\n")  # no header row, GLUE-style
    r = runner.invoke(app, ["evaluate", "--model", str(nli_teacher), "--validation-file", str(train),
                            "--text-columns", "sentence", "--label-column", "label"])
    assert r.exit_code == 2 and "no header row" in r.output and "--text-columns" in r.output, r.output
    from kdistill.data import load_splits

    splits, spec = load_splits(None, train_file=train, validation_file=train, text_columns=["2"], label_column="3")
    assert len(splits["train"]) == 30 and splits["train"]["text_a"][0] == " ".join(WORDS[0:6])  # line 1 is data
    assert sorted(spec.labels) == sorted(NLI)


def test_problem_type_is_inferred_or_asked_for(tmp_path):
    from kdistill.data import load_splits
    from kdistill.errors import DataError

    scores = tmp_path / "scores.csv"
    scores.write_text("text,y\n" + "".join(f"{WORDS[i]} film,{i / 4:.2f}\n" for i in range(12)))
    with pytest.raises(DataError, match="look like scores .*--problem-type regression"):
        load_splits(None, train_file=scores, validation_file=scores, text_columns=["text"], label_column="y")
    splits, spec = load_splits(None, train_file=scores, validation_file=scores, text_columns=["text"], label_column="y",
                               problem_type="regression")
    assert spec.is_regression and splits["train"]["label"][5] == pytest.approx(1.25) and spec.main_metric == "pearson"
    tags = tmp_path / "tags.jsonl"
    tags.write_text("".join(json.dumps({"text": f"{WORDS[i]} film", "tags": t}) + "\n"
                            for i, t in enumerate([["sport"], ["music", "film"], [], ["film"]] * 3)))
    splits, spec = load_splits(None, train_file=tags, validation_file=tags, text_columns=["text"], label_column="tags")
    assert spec.multi_label and spec.labels == ("film", "music", "sport") and spec.problem_type == "multi_label_classification"
    assert splits["train"]["label"][1] == [1.0, 1.0, 0.0] and splits["train"]["label"][2] == [0.0, 0.0, 0.0]
    piped = tmp_path / "piped.csv"
    piped.write_text("text,tags\ngood film,film|music\nbad song,music\nfine game,sport\nok,film\n")
    assert load_splits(None, train_file=piped, validation_file=piped, text_columns=["text"],
                       label_column="tags")[1].multi_label


def test_multilabel_soft_targets_match_a_hand_computation():
    import math

    import torch

    from kdistill.losses import multilabel_soft_kl

    zs, zt, T = torch.tensor([[0.5, -1.0, 2.0]]), torch.tensor([[1.5, 0.0, -2.0]]), 2.0

    def kl(p, q):
        return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))

    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expect = T * T * sum(kl(sig(t / T), sig(s / T)) for s, t in zip(zs[0].tolist(), zt[0].tolist()))
    assert multilabel_soft_kl(zs, zt, T).item() == pytest.approx(expect, rel=1e-6)
    assert multilabel_soft_kl(zt, zt, T).item() == pytest.approx(0.0, abs=1e-7)


def test_multilabel_distillation_end_to_end(tmp_path, tiny_tokenizer):
    tags = [["sport"], ["music", "film"], [], ["film"], ["music"], ["sport", "film"]]
    data = tmp_path / "tags.jsonl"
    data.write_text("".join(json.dumps({"text": " ".join(WORDS[(i + j) % 17] for j in range(5)), "tags": tags[i % 6]}) + "\n"
                            for i in range(48)))
    m = make_tiny_bert(num_labels=3)
    m.config.problem_type = "multi_label_classification"
    m.config.id2label = dict(enumerate(["film", "music", "sport"]))
    m.config.label2id = {v: k for k, v in m.config.id2label.items()}
    m.save_pretrained(tmp_path / "t")
    tiny_tokenizer.save_pretrained(tmp_path / "t")
    res = kdistill.distill(str(tmp_path / "t"), None, output_dir=tmp_path / "run", train_file=str(data),
                           validation_file=str(data), text_columns=["text"], label_column="tags", epochs=1, batch_size=16,
                           latency_runs=3, show_progress=False, logging_steps=1)
    assert set(res.metrics) == {"micro_f1", "macro_f1", "exact_match"}
    keys = {r.split(",")[1] for r in (tmp_path / "run" / "logs" / "train_log.csv").read_text().splitlines()[1:]}
    assert {"train/hard", "train/soft"} <= keys
    assert res.report["metric_name"] == "micro_f1"
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(str(tmp_path / "run")).problem_type == "multi_label_classification"


def test_inferred_problem_type_is_recorded(tmp_path, tiny_teacher_dir):
    data = tmp_path / "d.csv"
    data.write_text("text,y\n" + "".join(f"{WORDS[i % 17]} {WORDS[(i + 3) % 17]} film,{i % 2}\n" for i in range(40)))
    res = kdistill.distill(str(tiny_teacher_dir), None, output_dir=tmp_path / "run", train_file=str(data),
                           validation_file=str(data), text_columns=["text"], label_column="y", epochs=1, batch_size=16,
                           latency_runs=3, show_progress=False)
    results = json.loads((tmp_path / "run" / "train_results.json").read_text())
    assert results["problem_type"] == res.report["problem_type"] == "single_label_classification"
    assert results["labels"] == ["0", "1"]
