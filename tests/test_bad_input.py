"""Every bad input gets a one-line error that says what to do, before training starts, and nothing is overwritten.

Needles are parts of the message itself, never something the temporary path or the echoed input alone could
match; every test also checks that nothing was created or changed (a snapshot of names, sizes, mtimes and
contents of the test's folder, the shared tiny teacher and, where used, the SST-2 data).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from conftest import make_tiny_bert
from kdistill.cli import app

runner = CliRunner()


def _distill(*args: str):
    return runner.invoke(app, ["distill", *args, "--latency-runs", "3", "--epochs", "1", "--batch-size", "16"])


def _assert_one_line_error(result, *needles: str):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [l for l in result.output.replace("\r", "\n").splitlines() if l.strip()]
    errors = [l for l in lines if "error:" in l]
    assert len(errors) == 1 and lines[-1] == errors[0], result.output  # one line, the last thing printed
    text = errors[0].strip()
    assert text.startswith("error:"), text
    for needle in needles:
        assert needle.lower() in text.lower(), (needle, text)


def _snapshot(*roots: Path) -> dict:
    """Every file and folder under ``roots``: (kind, size, mtime_ns, sha1 of the contents)."""
    snap = {}
    for root in roots:
        root = Path(root)
        for p in sorted([root, *root.rglob("*")]):
            st = p.lstat()
            digest = hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else None
            snap[str(p)] = ("dir" if p.is_dir() else "file", st.st_size if p.is_file() else None, st.st_mtime_ns, digest)
    return snap


class Untouched:
    """``with Untouched(paths...):`` fails if anything under the paths was created, removed or changed."""

    def __init__(self, *roots: Path):
        self.roots = roots

    def __enter__(self):
        self.before = _snapshot(*self.roots)
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            after = _snapshot(*self.roots)
            created = sorted(set(after) - set(self.before))
            removed = sorted(set(self.before) - set(after))
            changed = sorted(k for k in set(after) & set(self.before) if after[k] != self.before[k])
            assert not (created or removed or changed), {"created": created, "removed": removed, "changed": changed}
        return False


def _sst2_dir(tmp_path, train: str, dev: str | None = None):
    d = tmp_path / "glue" / "SST-2"
    d.mkdir(parents=True)
    (d / "train.tsv").write_text(train)
    (d / "dev.tsv").write_text(dev if dev is not None else "sentence\tlabel\ngood film\t1\nbad film\t0\n")
    return tmp_path / "glue"


def test_missing_data_dir(tiny_teacher_dir, tmp_path):
    out = tmp_path / "out"
    with Untouched(tmp_path, tiny_teacher_dir):
        r = _distill("--teacher", str(tiny_teacher_dir), "--data-dir", str(tmp_path / "nope"), "--output", str(out))
    _assert_one_line_error(r, f"data directory {tmp_path / 'nope'} does not exist", "pass --data-dir pointing at")
    assert not out.exists()


def test_missing_split_file(tiny_teacher_dir, tmp_path):
    d = tmp_path / "glue" / "SST-2"
    d.mkdir(parents=True)
    (d / "train.tsv").write_text("sentence\tlabel\nok\t1\nno\t0\n")
    with Untouched(tmp_path, tiny_teacher_dir):
        r = _distill("--teacher", str(tiny_teacher_dir), "--data-dir", str(tmp_path / "glue"), "--output", str(tmp_path / "o"))
    _assert_one_line_error(r, f"missing file {d / 'dev.tsv'}", "must follow the GLUE layout")
    assert not (tmp_path / "o").exists()


def test_malformed_row(tiny_teacher_dir, tmp_path):
    glue = _sst2_dir(tmp_path, "sentence\tlabel\ngood\t1\nbad\t0\textra\tfields\n")
    with Untouched(tmp_path, tiny_teacher_dir):
        r = _distill("--teacher", str(tiny_teacher_dir), "--data-dir", str(glue), "--output", str(tmp_path / "o"))
    _assert_one_line_error(r, "train.tsv line 3:", "expected 2 tab-separated fields", "but found 4")
    assert not (tmp_path / "o").exists()


def test_label_outside_label_set(tiny_teacher_dir, tmp_path):
    glue = _sst2_dir(tmp_path, "sentence\tlabel\ngood\t1\nbad\t7\n")
    with Untouched(tmp_path, tiny_teacher_dir):
        r = _distill("--teacher", str(tiny_teacher_dir), "--data-dir", str(glue), "--output", str(tmp_path / "o"))
    _assert_one_line_error(r, "line 3:", "label '7'", "is not one of the sst2 labels ['0', '1']")
    assert not (tmp_path / "o").exists()


def test_empty_split(tiny_teacher_dir, tmp_path):
    glue = _sst2_dir(tmp_path, "sentence\tlabel\ngood\t1\nbad\t0\n", dev="sentence\tlabel\n")
    with Untouched(tmp_path, tiny_teacher_dir):
        r = _distill("--teacher", str(tiny_teacher_dir), "--data-dir", str(glue), "--output", str(tmp_path / "o"))
    _assert_one_line_error(r, "the validation split from", "has no rows")
    assert not (tmp_path / "o").exists()


def test_unknown_task(tiny_teacher_dir, tmp_path, glue_dir):
    with Untouched(tmp_path, tiny_teacher_dir, glue_dir):
        r = _distill("--teacher", str(tiny_teacher_dir), "--task", "sst3", "--data-dir", str(glue_dir), "--output", str(tmp_path / "o"))
    _assert_one_line_error(r, "unknown task 'sst3'", "use one of cola, sst2, mrpc")
    assert not (tmp_path / "o").exists()


def test_missing_columns_in_own_files(tiny_teacher_dir, tmp_path):
    for name in ("train.csv", "dev.csv"):
        (tmp_path / name).write_text("text,label\nnice,1\nawful,0\n")
    with Untouched(tmp_path, tiny_teacher_dir):
        r = runner.invoke(app, ["distill", "--teacher", str(tiny_teacher_dir), "--task", "sst2",
                                "--train-file", str(tmp_path / "train.csv"), "--validation-file", str(tmp_path / "dev.csv"),
                                "--text-columns", "review", "--label-column", "label", "--output", str(tmp_path / "o")])
    _assert_one_line_error(r, "is missing column(s) ['review']", "found ['text', 'label']")
    assert not (tmp_path / "o").exists()


def test_teacher_with_untrained_head(tmp_path, glue_dir, tiny_tokenizer):
    from transformers import BertConfig, BertModel

    base = tmp_path / "base"
    BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(base)
    tiny_tokenizer.save_pretrained(base)
    with Untouched(tmp_path, glue_dir):
        r = _distill("--teacher", str(base), "--data-dir", str(glue_dir), "--output", str(tmp_path / "o"))
    _assert_one_line_error(r, "no trained classification head", "kdistill finetune")
    assert not (tmp_path / "o").exists()


def test_student_vocabulary_differs_and_tokens_cannot_pair(tiny_teacher_dir, tmp_path, glue_dir):
    """A student with its own tokenizer is distilled on logits (and L_cos by words); token-by-token pairing is refused."""
    from transformers import BertTokenizer

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "film"]))
    student = tmp_path / "student"
    make_tiny_bert(vocab_size=8, layers=1).save_pretrained(student)
    BertTokenizer(vocab=str(vocab)).save_pretrained(student)
    with Untouched(tmp_path, tiny_teacher_dir, glue_dir):
        r = _distill("--teacher", str(tiny_teacher_dir), "--student", str(student), "--data-dir", str(glue_dir),
                     "--max-train-samples", "32", "--cos-weight", "1", "--hidden-align", "tokens", "--output",
                     str(tmp_path / "o"))
    _assert_one_line_error(r, "tokenizer (8 tokens) differs from the teacher's (30522)", "--hidden-align words")
    assert not (tmp_path / "o").exists()


def test_output_is_a_file(tiny_teacher_dir, tmp_path, glue_dir):
    f = tmp_path / "file.txt"
    f.write_text("keep me")
    with Untouched(tmp_path, tiny_teacher_dir, glue_dir):
        r = _distill("--teacher", str(tiny_teacher_dir), "--data-dir", str(glue_dir), "--output", str(f))
    _assert_one_line_error(r, f"output path '{f}' is a file", "pass a directory")
    assert f.read_text() == "keep me"


def test_existing_output_not_overwritten(tiny_teacher_dir, tmp_path, glue_dir):
    out = tmp_path / "o"
    out.mkdir()
    (out / "precious.txt").write_text("x")
    with Untouched(tmp_path, tiny_teacher_dir, glue_dir):
        r = _distill("--teacher", str(tiny_teacher_dir), "--data-dir", str(glue_dir), "--output", str(out))
        _assert_one_line_error(r, "is not empty; pass --overwrite to replace it")
        r = _distill("--teacher", str(tiny_teacher_dir), "--data-dir", str(glue_dir), "--output", str(out), "--resume")
        _assert_one_line_error(r, "holds no checkpoint/ to continue from")
    assert (out / "precious.txt").read_text() == "x"


def test_bad_layers_and_bad_option(tiny_teacher_dir, tmp_path, glue_dir):
    with Untouched(tmp_path, tiny_teacher_dir, glue_dir):
        r = _distill("--teacher", str(tiny_teacher_dir), "--data-dir", str(glue_dir), "--layers", "0,9", "--output", str(tmp_path / "o"))
        _assert_one_line_error(r, "--layers must be strictly increasing teacher layer indices in 0..3")
        r = _distill("--teacher", str(tiny_teacher_dir), "--data-dir", str(glue_dir), "--layers", "a,b", "--output", str(tmp_path / "o"))
        _assert_one_line_error(r, "--layers takes comma-separated integers")
    assert not (tmp_path / "o").exists()


def test_out_of_range_options(tiny_teacher_dir, tmp_path, glue_dir):
    with Untouched(tmp_path, tiny_teacher_dir, glue_dir):
        r = _distill("--teacher", str(tiny_teacher_dir), "--data-dir", str(glue_dir), "--alpha", "1.5", "--output", str(tmp_path / "o"))
        _assert_one_line_error(r, "--alpha:", "less than or equal to 1", "(got 1.5)")
        r = _distill("--teacher", str(tiny_teacher_dir), "--data-dir", str(glue_dir), "--kd-loss", "l1", "--output", str(tmp_path / "o"))
        _assert_one_line_error(r, "--kd-loss:", "'kl' or 'mse'", "(got 'l1')")
    assert not (tmp_path / "o").exists()


def test_missing_teacher_path(tmp_path, glue_dir):
    with Untouched(tmp_path, glue_dir):
        r = _distill("--teacher", str(tmp_path / "no_teacher"), "--data-dir", str(glue_dir), "--output", str(tmp_path / "o"))
    _assert_one_line_error(r, f"teacher '{tmp_path / 'no_teacher'}' does not exist", "pass a saved model directory")
    assert not (tmp_path / "o").exists()


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny_teacher_dir, glue_dir, tmp_path, tiny_tokenizer):
    """A NaN loss raises TrainingDiverged with advice; the checkpoint on disk is the last good one."""
    from kdistill.config import TrainConfig
    from kdistill.data import load_splits
    from kdistill.data.batching import tokenize
    from kdistill.engine import train
    from kdistill.errors import TrainingDiverged
    from kdistill.objectives import Objective, make_term

    class NanAtStep5(Objective):
        calls = 0

        def __call__(self, student_out, batch, teacher=None):
            terms = super().__call__(student_out, batch, teacher)
            NanAtStep5.calls += 1
            if NanAtStep5.calls == 5:
                terms["loss"] = terms["loss"] * float("nan")
            return terms

    splits, task = load_splits("sst2", data_dir=glue_dir, max_train_samples=128, max_eval_samples=32)
    tr = tokenize(splits["train"], tiny_tokenizer, cache_dir=tmp_path / "cache")
    ev = tokenize(splits["validation"], tiny_tokenizer, cache_dir=tmp_path / "cache")
    out = tmp_path / "nan"
    out.mkdir()
    with pytest.raises(TrainingDiverged, match="checkpoint"):
        train(student=make_tiny_bert(), objective=NanAtStep5("finetune", task, [("hard", 1.0, make_term("gold", task=task))]), train_ds=tr, eval_ds=ev, tokenizer=tiny_tokenizer,
              task=task, output_dir=out, cfg=TrainConfig(epochs=1, batch_size=16, eval_steps=2, show_progress=False))
    state = json.loads((out / "checkpoint" / "trainer_state.json").read_text())
    assert state["global_step"] == 4  # saved at the evaluation of step 4, before the NaN at step 5
    weights = __import__("safetensors.torch", fromlist=["load_file"]).load_file(str(out / "checkpoint" / "model.safetensors"))
    assert all(torch.isfinite(v).all() for v in weights.values())


def test_keep_heads_errors_are_one_line(tmp_path, tiny_teacher_dir, glue_dir):
    base = ["--teacher", str(tiny_teacher_dir), "--task", "sst2", "--data-dir", str(glue_dir), "--max-train-samples", "32"]
    with Untouched(tmp_path, tiny_teacher_dir, glue_dir):
        _assert_one_line_error(_distill(*base, "--keep-heads", "5", "--output", str(tmp_path / "a")),
                               "the teacher has only 2 heads per layer")
        _assert_one_line_error(_distill(*base, "--student", "spec", "--num-layers", "2", "--hidden-size", "16",
                                        "--num-heads", "2", "--keep-heads", "1", "--output", str(tmp_path / "b")),
                               "apply to the layers-from-teacher student only", "not to spec")
        _assert_one_line_error(_distill(*base, "--keep-heads", "1", "--method", "tinybert", "--output", str(tmp_path / "c")),
                               "use it with --method kd")
    assert not any((tmp_path / n).exists() for n in "abc")
