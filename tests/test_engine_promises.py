"""What the README promises of the engine, each shown on a tiny random model and slices of the real SST-2 data:
best-model selection and early stopping, Ctrl-C, exact resume with the live teacher (--cos-weight) and with
gradient accumulation, the teacher-logit cache, the per-epoch reseeded length-grouped sampler, TinyBERT's
--attention-loss kl, and general distillation from a streamed ``datasets`` dataset with --max-steps."""

from __future__ import annotations

import csv
import json
import math
import signal

import pytest
import torch
from safetensors.torch import load_file

import kdistill
from kdistill.transfer.runcache import read_cache

from conftest import make_tiny_bert

FAST = dict(batch_size=16, eval_batch_size=64, learning_rate=5e-4, show_progress=False, select_on="dev")  # dev evaluations, all train rows


def _opts(glue_dir, **over):
    return {**dict(data_dir=str(glue_dir), max_train_samples=96, max_eval_samples=64, epochs=1, **FAST), **over}


def _state(out):
    return json.loads((out / "checkpoint" / "trainer_state.json").read_text())


def _log(out):
    with (out / "logs" / "train_log.csv").open() as f:
        return [(int(r["step"]), r["key"], float(r["value"])) for r in csv.DictReader(f)]


def _assert_equal(a, b, what=""):
    assert a.keys() == b.keys(), what
    for k in a:
        assert torch.equal(a[k], b[k]), f"{what} {k}"


# --------------------------------------------------------------------------- best model, early stopping
def test_best_model_is_kept_and_early_stopping_stops_after_patience_evaluations(tiny_teacher_dir, glue_dir, tmp_path):
    """--early-stopping-patience 2 with an evaluation every 2 steps: the run stops at the first evaluation that is
    the 2nd in a row without improvement, finishes (not 'interrupted'), and keeps the best evaluation's student."""
    out = tmp_path / "es"
    opts = _opts(glue_dir, max_train_samples=200, eval_steps=2, early_stopping_patience=2)  # 13 steps
    res = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out, report=False, **opts)
    state = _state(out)
    history = [h["accuracy"] for h in state["history"]]
    # the rule, replayed on the metrics: stop when `patience` evaluations in a row did not beat the best
    best, since, stop_at = -math.inf, 0, None
    for i, value in enumerate(history):
        best, since = (value, 0) if value > best else (best, since + 1)
        if since >= 2:
            stop_at = i
            break
    assert stop_at is not None, f"precondition: this setting no longer plateaus, no early stop due in {history}"
    assert stop_at == len(history) - 1, f"did not stop at the evaluation {stop_at} that reached the patience: {history}"
    assert state["global_step"] == 2 * (stop_at + 1) < 13  # stopped early, right at that evaluation
    best_i = history.index(max(history))
    assert best_i < stop_at
    # an early stop is the end of the run: the best student is saved at the root and the run counts as finished
    assert not res.interrupted, "an early-stopped run is reported as interrupted"
    assert state["finished"]
    results = json.loads((out / "train_results.json").read_text())
    assert results["best_step"] == state["history"][best_i]["step"] and res.metrics["accuracy"] == history[best_i]
    metrics = kdistill.evaluate(str(out), "sst2", data_dir=str(glue_dir), max_eval_samples=64)
    assert metrics["accuracy"] == history[best_i] != history[-1]
    # and --resume does not train it further
    again = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out, report=False, resume=True, **opts)
    assert _state(out)["global_step"] == state["global_step"] and again.metrics == res.metrics


# --------------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_saves_a_checkpoint_and_a_second_ctrl_c_quits_at_once(tiny_teacher_dir, glue_dir, tmp_path, engine_spy):
    """First Ctrl-C (SIGINT): the run stops at that step with a checkpoint there, and resumes to the uninterrupted
    result; a second Ctrl-C while it is stopping raises KeyboardInterrupt at once (no checkpoint written first).
    The caller's SIGINT handler is back afterwards."""
    outer = signal.getsignal(signal.SIGINT)
    opts = _opts(glue_dir)  # 6 steps; evaluation (and so a checkpoint) only at the end

    def ctrl_c_at_3(state):
        if state.global_step == 3:
            signal.raise_signal(signal.SIGINT)

    out = tmp_path / "once"
    try:
        res = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out, report=False, callbacks=[ctrl_c_at_3], **opts)
    except KeyboardInterrupt:
        pytest.fail("the first Ctrl-C quit the run instead of stopping it with a checkpoint")
    assert res.interrupted
    state = _state(out)
    assert state["global_step"] == 3 and not state["finished"] and state["batches_in_epoch"] == 3
    assert signal.getsignal(signal.SIGINT) is outer
    resumed = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out, report=False, resume=True, **opts)
    full = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "full", report=False, **opts)
    assert not resumed.interrupted and _state(out)["global_step"] == 6
    _assert_equal(engine_spy.calls[1]["last"], engine_spy.calls[2]["last"], "resumed vs uninterrupted:")
    assert resumed.metrics == full.metrics

    def ctrl_c_twice_at_2(state):
        if state.global_step == 2:
            signal.raise_signal(signal.SIGINT)  # stop, please ...
            signal.raise_signal(signal.SIGINT)  # ... now

    out2 = tmp_path / "twice"
    with pytest.raises(KeyboardInterrupt):
        kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=out2, report=False, callbacks=[ctrl_c_twice_at_2], **opts)
    assert not (out2 / "checkpoint").exists() and not list(out2.glob("checkpoint*"))
    assert signal.getsignal(signal.SIGINT) is outer


# --------------------------------------------------------------------------- exact resume
def _count_forwards(engine_spy, counter):
    def hook_teacher(kw):
        kw["teacher"].register_forward_hook(lambda m, i, o: counter.append(o.logits.shape[0]))

    engine_spy.before.append(hook_teacher)


def test_cos_weight_runs_the_teacher_every_batch_and_resumes_exactly(tiny_teacher_dir, glue_dir, tmp_path, engine_spy):
    """--cos-weight: no logit cache, the teacher runs on every training batch; stopped and resumed = uninterrupted."""
    rows = []
    _count_forwards(engine_spy, rows)
    opts = _opts(glue_dir, cos_weight=1.0, logging_steps=1)  # layers-from-teacher: the teacher's width, 6 steps
    full = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "full", report=False, **opts)
    assert rows == [16] * 6  # one teacher pass per training batch (the dev set is not shown to the teacher)
    assert not (tmp_path / "full" / "teacher_logits").exists()
    assert {k for _, k, _ in _log(tmp_path / "full")} >= {"train/cos", "train/soft", "train/hard"}

    def stop_at_4(state):
        if state.global_step == 4:
            state.stop_requested = True

    part = tmp_path / "part"
    assert kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=part, report=False, callbacks=[stop_at_4], **opts).interrupted
    resumed = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=part, report=False, resume=True, **opts)
    assert rows == [16] * 6 + [16] * 4 + [16] * 2  # the resumed run ran the teacher on the 2 remaining batches only
    c_full, c_part, c_resumed = engine_spy.calls
    assert c_part["last_step"] == 4 and c_resumed["last_step"] == 6
    _assert_equal(c_full["last"], c_resumed["last"])
    assert resumed.metrics == full.metrics
    assert [r for r in _log(part) if r[1] == "train/cos"] == [r for r in _log(tmp_path / "full") if r[1] == "train/cos"]


def test_resume_with_gradient_accumulation_is_exact(tiny_teacher_dir, glue_dir, tmp_path, engine_spy):
    """gradient_accumulation_steps=2 over 7 micro-batches per epoch (the 4th step of an epoch has one micro-batch):
    stopped after step 3 (6 micro-batches in, one left in the epoch) and after step 5 (the first step of epoch 2),
    resumed each time = uninterrupted, bit for bit. (Stops happen at optimizer steps: a stop requested between
    micro-batches waits for the step to complete.)"""
    opts = _opts(glue_dir, max_train_samples=112, epochs=2, gradient_accumulation_steps=2)  # 7 batches, 4 steps/epoch
    full = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "full", report=False, **opts)
    assert _state(tmp_path / "full")["global_step"] == 8

    stops = [3, 5]

    def stop(state):
        if stops and state.global_step == stops[0]:
            stops.pop(0)
            state.stop_requested = True

    part = tmp_path / "part"
    assert kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=part, report=False, callbacks=[stop], **opts).interrupted
    assert (_state(part)["global_step"], _state(part)["epoch"], _state(part)["batches_in_epoch"]) == (3, 0, 6)
    assert kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=part, report=False, resume=True, callbacks=[stop],
                            **opts).interrupted
    assert (_state(part)["global_step"], _state(part)["epoch"], _state(part)["batches_in_epoch"]) == (5, 1, 2)
    resumed = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=part, report=False, resume=True, **opts)
    assert [c["last_step"] for c in engine_spy.calls] == [8, 3, 5, 8]
    _assert_equal(engine_spy.calls[0]["last"], engine_spy.calls[-1]["last"])
    assert resumed.metrics == full.metrics


# --------------------------------------------------------------------------- teacher-logit cache
def test_teacher_logit_cache_holds_the_teachers_logits_and_is_computed_once(tiny_tokenizer, glue_dir, tmp_path,
                                                                            engine_spy):
    """KD over 2 epochs: the teacher runs once over the 96 training rows (before training, in eval batches), never
    during training; row i of the cache (teacher_logits/, a transfer set) is the teacher's logits for training row i."""
    from transformers import AutoModelForSequenceClassification

    teacher_dir = tmp_path / "teacher"  # wide init: logits that differ from row to row, so the row order shows
    make_tiny_bert(initializer_range=0.2).save_pretrained(teacher_dir)
    tiny_tokenizer.save_pretrained(teacher_dir)
    rows = []
    _count_forwards(engine_spy, rows)
    out = tmp_path / "kd"
    kdistill.distill(str(teacher_dir), "sst2", output_dir=out, report=False, **_opts(glue_dir, epochs=2))
    assert _state(out)["global_step"] == 12
    assert sorted(rows) == [32, 64]  # 96 rows in 2 eval batches of at most 64; nothing in the 12 training steps
    cached = read_cache(out / "teacher_logits")
    assert cached.shape == (96, 2) and cached.dtype == torch.float32
    teacher = AutoModelForSequenceClassification.from_pretrained(teacher_dir).eval()
    lines = (glue_dir / "SST-2" / "train.tsv").read_text().splitlines()[1:97]
    with torch.no_grad():
        live = torch.cat([teacher(**tiny_tokenizer(line.split("\t")[0], return_tensors="pt")).logits for line in lines])
    # padded, length-sorted batches against one unpadded row at a time: equal up to float rounding (measured 1.5e-6)
    assert torch.allclose(cached, live, rtol=0, atol=1e-5), (cached - live).abs().max()
    assert (cached - live.roll(1, dims=0)).abs().max() > 0.1  # rows are in training-row order (not a shifted one)
    # the cache is a transfer set made on the fly: read like any set, with datasets too
    import datasets

    from kdistill.transfer import read_complete_set

    manifest, table = read_complete_set(out / "teacher_logits")
    assert manifest["inputs"]["kind"] == "run-cache" and table.num_rows == 96
    rows = datasets.load_dataset("parquet", data_files=str(out / "teacher_logits" / "shards" / "*.parquet"))["train"]
    assert torch.equal(torch.tensor(rows["logits"])[torch.argsort(torch.tensor(rows["idx"]))], cached)


# --------------------------------------------------------------------------- sampler
def test_length_grouped_sampler_reseeds_per_epoch(tiny_tokenizer, glue_dir):
    """train_loader's order depends on (seed, epoch) only: new per epoch, the same in a second loader (a resumed
    run, another DDP process), independent of what was iterated before and of the global RNG; length-grouped."""
    from kdistill.config import DataConfig
    from kdistill.data.batching import tokenize, train_loader
    from kdistill.data.loading import load_data

    splits, _ = load_data(DataConfig(task="sst2", data_dir=str(glue_dir), max_train_samples=400, max_eval_samples=8))
    ds = tokenize(splits["train"], tiny_tokenizer)
    lengths = ds.with_format(None)["length"]

    def order(loader, epoch):
        loader.sampler.set_epoch(epoch)
        return list(loader.sampler)

    a, b = (train_loader(ds, tiny_tokenizer, batch_size=8, seed=7) for _ in range(2))
    epochs_a = [order(a, e) for e in range(3)]
    torch.manual_seed(12345)
    rng = torch.get_rng_state()
    assert order(b, 2) == epochs_a[2]  # straight to epoch 2, as a resumed run does
    assert torch.equal(torch.get_rng_state(), rng)  # the order drew nothing from the global RNG
    assert [order(b, e) for e in range(3)] == epochs_a
    assert epochs_a[0] != epochs_a[1] != epochs_a[2] != epochs_a[0]
    assert all(sorted(o) == list(range(len(ds))) for o in epochs_a)
    assert order(train_loader(ds, tiny_tokenizer, batch_size=8, seed=8), 0) != epochs_a[0]
    # length-grouped: within each mega-batch (50 batches; here 400 // 32 = 12 batches) the lengths do not increase,
    # apart from the longest row, which is moved to the front
    mega = 8 * min(len(ds) // (8 * 4), 50)
    for o in epochs_a:
        assert lengths[o[0]] == max(lengths)
        for start in range(0, len(o), mega):
            chunk = [lengths[i] for i in o[start:start + mega]][1:]
            assert chunk == sorted(chunk, reverse=True)
    # and the loader's batches follow that order
    a.sampler.set_epoch(1)
    assert [int(i) for batch in a for i in batch["idx"]] == [int(ds[i]["idx"]) for i in epochs_a[1]]


# --------------------------------------------------------------------------- TinyBERT --attention-loss kl
def test_attention_loss_kl_is_minilms_kl_of_attention_probabilities(tiny_tokenizer, glue_dir, tmp_path, engine_spy):
    """--attention-loss kl: the intermediate step's logged train/attn at step 1 is the KL of the teacher's from
    the student's attention probabilities on that batch (recomputed here), not the MSE of the scores."""
    from kdistill.losses.tinybert import attention_kl_loss, attention_score_loss
    from kdistill.students.capture import capture_attention

    teacher_dir = tmp_path / "teacher"  # no dropout, so the step-1 forward can be recomputed exactly
    make_tiny_bert(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).save_pretrained(teacher_dir)
    tiny_tokenizer.save_pretrained(teacher_dir)
    first = {}

    def hook_student(kw):
        def record(module, args, kwargs):
            if module.training and not first:
                first.update({k: v.clone() for k, v in kwargs.items() if k in ("input_ids", "attention_mask", "token_type_ids")})

        kw["student"].register_forward_pre_hook(record, with_kwargs=True)

    engine_spy.before.append(hook_student)
    out = tmp_path / "tb"
    res = kdistill.distill(str(teacher_dir), "sst2", "spec", output_dir=out, method="tinybert", num_layers=2, hidden_size=16,
                           num_heads=2, intermediate_size=32, attention_loss="kl", intermediate_epochs=1,
                           prediction_epochs=1, logging_steps=1, report=False, **_opts(glue_dir, max_train_samples=32))
    assert not res.interrupted
    assert json.loads((out / "kdistill_run.json").read_text())["method"]["attention_loss"] == "kl"
    logged = {s: v for s, k, v in _log(out / "intermediate") if k == "train/attn"}
    assert sorted(logged) == [1, 2] and all(math.isfinite(v) and v > 0 for v in logged.values())

    call = engine_spy.calls[0]
    layer_map = call["kw"]["objective"].layer_map
    student = type(call["kw"]["student"])(call["kw"]["student"].config)
    student.load_state_dict(call["start"])
    teacher = call["kw"]["teacher"].eval()
    with torch.no_grad(), capture_attention(student.eval()) as rs, capture_attention(teacher) as rt:
        student(**first)
        teacher(**first)
    mask = first["attention_mask"]
    kl = sum(attention_kl_loss(rs.probs[m - 1], rt.probs[g - 1], mask) for m, g in enumerate(layer_map, start=1))
    mse = sum(attention_score_loss(rs.scores[m - 1], rt.scores[g - 1], mask) for m, g in enumerate(layer_map, start=1))
    assert logged[1] == pytest.approx(float(kl), rel=1e-4)
    assert float(mse) != pytest.approx(float(kl), rel=1e-2)  # the two losses are told apart on this batch


# --------------------------------------------------------------------------- general distillation, --text-dataset
def test_general_distillation_streams_a_datasets_dataset_with_max_steps(tiny_teacher_dir, tiny_tokenizer, glue_dir,
                                                                        tmp_path, engine_spy):
    """--text-dataset DIR (a local `datasets` dataset: a folder of JSON lines) --text-column --max-steps: the run
    trains exactly max_steps steps on batches of that dataset's passages; without --max-steps it is refused."""
    rows = (glue_dir / "SST-2" / "train.tsv").read_text().splitlines()[1:61]
    passages = list(dict.fromkeys(r.split("\t")[0] for r in rows))  # distinct
    data = tmp_path / "corpus"
    data.mkdir()
    (data / "train.jsonl").write_text("".join(json.dumps({"id": i, "passage": p}) + "\n" for i, p in enumerate(passages)))
    batches = []

    def hook_student(kw):
        def record(module, args, kwargs):
            if module.training:
                batches.append((kwargs["input_ids"].clone(), kwargs["attention_mask"].clone()))

        kw["student"].register_forward_pre_hook(record, with_kwargs=True)

    engine_spy.before.append(hook_student)
    with pytest.raises(kdistill.KDistillError, match="max-steps"):
        kdistill.general_distill(str(tiny_teacher_dir), output_dir=tmp_path / "nosteps", text_dataset=str(data),
                                 text_column="passage", show_progress=False)
    gen = tmp_path / "general"
    res = kdistill.general_distill(str(tiny_teacher_dir), output_dir=gen, text_dataset=str(data), text_column="passage",
                                   num_layers=2, hidden_size=16, num_heads=2, intermediate_size=32, batch_size=8,
                                   max_steps=3, show_progress=False, logging_steps=1)
    assert not res.interrupted and (gen / "model.safetensors").exists()
    assert json.loads((gen / "train_results.json").read_text())["global_step"] == 3
    assert len(batches) == 3 and all(ids.shape[0] == 8 for ids, _ in batches)
    known = {tuple(tiny_tokenizer(p, truncation=True, max_length=128)["input_ids"]) for p in passages}
    seen = [tuple(ids[mask.bool()].tolist()) for ids_b, mask_b in batches for ids, mask in zip(ids_b, mask_b)]
    assert all(s in known for s in seen) and len(set(seen)) == 24  # 24 distinct passages of the dataset
    assert {k for _, k, _ in _log(gen)} >= {"train/attn", "train/hidden", "train/emb"}


# --------------------------------------------------------------------------- isolation
def test_each_test_gets_its_own_kdistill_cache(kdistill_cache, tiny_tokenizer, glue_dir):
    """conftest's autouse fixture: $KDISTILL_CACHE is a fresh folder of this test, and tokenisation caches land there."""
    import os
    from pathlib import Path

    from kdistill.config import DataConfig
    from kdistill.data.batching import default_cache_dir, tokenize
    from kdistill.data.loading import load_data

    assert os.environ["KDISTILL_CACHE"] == str(kdistill_cache)
    assert default_cache_dir() == kdistill_cache
    assert not (Path.home() / ".cache" / "kdistill") in [kdistill_cache, *kdistill_cache.parents]
    assert not list(kdistill_cache.iterdir())  # fresh
    splits, _ = load_data(DataConfig(task="sst2", data_dir=str(glue_dir), max_train_samples=8, max_eval_samples=8))
    tokenize(splits["train"], tiny_tokenizer)
    assert list(kdistill_cache.glob("tok-*"))
