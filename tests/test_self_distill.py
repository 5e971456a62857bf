"""Self-distillation (issue 18): early exits trained from the model's own final layer, batched adaptive inference,
the sweep, per-segment ONNX export, born-again generations. Tiny random models; real SST-2 rows where data is needed."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import kdistill.selfdistill  # noqa: F401 - registers the early-exit model types
from conftest import make_tiny_bert
from kdistill.errors import KDistillError, ModelError
from kdistill.selfdistill.modeling import add_exits, is_early_exit, strip_exits
from kdistill.selfdistill.rules import ExitRule, max_probability, normalized_entropy, simulate

LABELS = dict(num_labels=2, id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})


def tiny(kind: str, layers: int = 4, vocab: int = 1000):
    """A tiny random classifier of each supported layout (large init so that exits disagree and decide differently)."""
    from transformers import (BertConfig, BertForSequenceClassification, DebertaV2Config, DebertaV2ForSequenceClassification,
                              DistilBertConfig, DistilBertForSequenceClassification, ModernBertConfig,
                              ModernBertForSequenceClassification, MPNetConfig, MPNetForSequenceClassification,
                              RobertaConfig, RobertaForSequenceClassification)

    torch.manual_seed(0)
    common = dict(vocab_size=vocab, hidden_size=32, num_hidden_layers=layers, num_attention_heads=4, intermediate_size=48,
                  max_position_embeddings=160, initializer_range=0.3, **LABELS)
    if kind == "bert":
        return BertForSequenceClassification(BertConfig(**common)).eval()
    if kind == "roberta":
        return RobertaForSequenceClassification(RobertaConfig(**common, pad_token_id=1)).eval()
    if kind == "distilbert":
        return DistilBertForSequenceClassification(DistilBertConfig(vocab_size=vocab, dim=32, n_layers=layers, n_heads=4,
                                                                    hidden_dim=48, max_position_embeddings=160,
                                                                    initializer_range=0.3, **LABELS)).eval()
    if kind == "electra":  # embeddings narrower than the layers: a projection between them
        from transformers import ElectraConfig, ElectraForSequenceClassification

        return ElectraForSequenceClassification(ElectraConfig(**common, embedding_size=16)).eval()
    if kind == "mpnet":
        return MPNetForSequenceClassification(MPNetConfig(**common)).eval()
    if kind == "pruned-mpnet":  # unequal head counts; each layer reads its own rows of the shared position bias
        import kdistill.compress as kc

        return kc.prune_heads(tiny("mpnet", layers, vocab), {0: [1, 2], 2: [0]}).eval()
    if kind == "deberta-v2":
        return DebertaV2ForSequenceClassification(DebertaV2Config(**common, relative_attention=True, position_buckets=32,
                                                                  pos_att_type=["p2c", "c2p"])).eval()
    return ModernBertForSequenceClassification(ModernBertConfig(**common, pad_token_id=0, cls_token_id=101, sep_token_id=102,
                                                                bos_token_id=None, eos_token_id=None,
                                                                global_attn_every_n_layers=2, local_attention=16)).eval()


KINDS = ["bert", "roberta", "electra", "distilbert", "mpnet", "pruned-mpnet", "deberta-v2", "modernbert"]


def _batch(n: int = 7, width: int = 14, seed: int = 1):
    """Right-padded rows of different lengths (ids 0 at padding)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 1000, (n, width), generator=g)
    lengths = torch.randint(3, width + 1, (n,), generator=g)
    lengths[0] = width
    mask = (torch.arange(width)[None] < lengths[:, None]).long()
    return {"input_ids": ids * mask, "attention_mask": mask}


def _exited(model, inputs, rule: ExitRule):
    model.set_exit_rule(rule.rule, rule.threshold, rule.patience)
    try:
        with torch.no_grad():
            out = model(**inputs)
    finally:
        model.set_exit_rule("none")
    return out.logits, out.exit_layer


def _mixed_threshold(values: torch.Tensor) -> float:
    """A threshold in the widest gap between the middle values of ``values`` (far from every one of them)."""
    v = torch.sort(values.flatten()).values
    lo, hi = len(v) // 4, 3 * len(v) // 4
    gaps = v[lo + 1:hi + 1] - v[lo:hi]
    i = int(torch.argmax(gaps)) + lo
    return float((v[i] + v[i + 1]) / 2)


# --------------------------------------------------------------------------- the loss


def test_each_exit_loss_is_kd_to_the_detached_final_soft_targets():
    """Hand-checked: exit k's term = T²·KL(softmax(z_L/T) ‖ softmax(z_k/T)) (+ β·CE); the final logits are only a
    target (no gradient reaches the final classifier from an exit term), the backbone learns through them (joint)."""
    from kdistill.data.tasks import get_task
    from kdistill.objectives import ModelSignal
    from kdistill.selfdistill.config import ExitConfig
    from kdistill.selfdistill.objective import early_exit_objective

    task = get_task("sst2")
    model = add_exits(make_tiny_bert(vocab_size=1000, layers=4, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                     initializer_range=0.3), every=1, dropout=0.0).train()
    T, beta = 2.0, 0.25
    obj = early_exit_objective(task, model, ExitConfig(schedule="joint", temperature=T, gold_weight=beta, final_weight=0.0,
                                                       weighting="depth"))
    assert list(obj.terms) == ["exit1", "exit2", "exit3"] and not obj.needs_teacher and obj.needs_hidden_states
    assert obj.weights == pytest.approx({"exit1": 1 / 6, "exit2": 2 / 6, "exit3": 3 / 6})
    batch = {**_batch(6, 10), "labels": torch.tensor([0, 1, 1, 0, -1, 1])}  # -1: no gold label (left out of the CE)
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True)
    terms = obj(ModelSignal(logits=out.logits, hidden_states=out.hidden_states), batch, None)
    p_t = torch.softmax(out.logits.detach() / T, -1)
    has = batch["labels"] >= 0
    for j, k in enumerate([1, 2, 3]):
        h = out.hidden_states[k]
        m = batch["attention_mask"].float().unsqueeze(-1)
        pooled = (h * m).sum(1) / m.sum(1)
        head = model.kdistill_exits[j]
        z = head.out(torch.tanh(head.dense(pooled)))
        kl = (p_t * (torch.log(p_t) - torch.log_softmax(z / T, -1))).sum(-1).mean() * T * T
        ce = -torch.log_softmax(z[has], -1)[torch.arange(int(has.sum())), batch["labels"][has]].mean()
        torch.testing.assert_close(terms[f"exit{k}"], (1 - beta) * kl + beta * ce)
    model.zero_grad()
    terms["loss"].backward()
    assert model.classifier.weight.grad is None and model.bert.pooler.dense.weight.grad is None  # only a target
    assert model.bert.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0  # joint: the backbone learns
    assert all(h.out.weight.grad.abs().sum() > 0 for h in model.kdistill_exits)


def test_frozen_schedule_trains_only_the_exits_without_dropout_noise():
    from kdistill.selfdistill.objective import freeze_backbone

    model = add_exits(make_tiny_bert(vocab_size=1000, layers=3))
    freeze_backbone(model, True)
    model.train()
    assert {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad} == {"kdistill_exits"}
    assert not model.bert.training and not model.dropout.training and model.kdistill_exits.training
    b = _batch(3, 8)
    with torch.no_grad():  # the final soft targets are deterministic in training mode
        torch.testing.assert_close(model(**b).logits, model(**b).logits, rtol=0, atol=0)


# --------------------------------------------------------------------------- adaptive inference


@pytest.mark.parametrize("kind", KINDS)
def test_never_firing_is_the_full_model_exactly_and_always_firing_is_the_first_exit(kind):
    base = tiny(kind)
    model = add_exits(base, every=1).eval()
    b = _batch()
    with torch.no_grad():
        full = base(**b).logits
        first = model.all_exit_logits(**b)[0]
        torch.testing.assert_close(model(**b).logits, full, rtol=0, atol=0)  # rule none: the base model's prediction
    for never in (ExitRule("entropy", 0.0), ExitRule("max_prob", 1.01), ExitRule("patience", patience=3)):
        logits, layer = _exited(model, b, never)
        assert torch.equal(logits, full), never
        assert layer.tolist() == [4] * len(full)
    for always in (ExitRule("entropy", 1.01), ExitRule("max_prob", 0.0), ExitRule("patience", patience=0)):
        logits, layer = _exited(model, b, always)
        torch.testing.assert_close(logits, first, rtol=0, atol=1e-6)
        assert layer.tolist() == [1] * len(full)


@pytest.mark.parametrize("kind", KINDS)
def test_batched_adaptive_inference_equals_one_by_one(kind):
    """Rows that exit leave the batch (and trailing padding is dropped) without changing anyone's prediction: the
    batch gives each row the exit and the logits it gets alone, unpadded, and the rule applied to all exits' logits."""
    model = add_exits(tiny(kind), every=1).eval()
    b = _batch(9, 16, seed=3)
    with torch.no_grad():
        z = model.all_exit_logits(**b)
    rules = [ExitRule("entropy", _mixed_threshold(normalized_entropy(z[0]))),  # about half the rows leave at the first
             ExitRule("max_prob", _mixed_threshold(max_probability(z[0]))),
             ExitRule("patience", patience=1)]
    for rule in rules:
        logits, layer = _exited(model, b, rule)
        if rule.rule != "patience":  # random exits tend to agree everywhere: patience is checked, mixed or not
            assert len(set(layer.tolist())) > 1, f"{rule}: every row left at one layer; the test would prove nothing"
        where, sim = simulate(z, rule)
        assert layer.tolist() == [[1, 2, 3, 4][i] for i in where.tolist()]
        torch.testing.assert_close(logits, sim, rtol=0, atol=1e-5)
        for i in range(len(layer)):
            n = int(b["attention_mask"][i].sum())
            one, one_layer = _exited(model, {k: v[i:i + 1, :n] for k, v in b.items()}, rule)
            assert int(one_layer) == int(layer[i]), (rule, i)
            torch.testing.assert_close(one[0], logits[i], rtol=0, atol=1e-5)
            assert int(one.argmax()) == int(logits[i].argmax())


def test_patience_rule_counts_consecutive_agreeing_exits():
    """PABEE: exit once `patience` consecutive exits agree with the one before them; the final layer otherwise."""
    a, b = [2.0, 0.0], [0.0, 2.0]  # class 0 / class 1
    # [E + 1 = 4 classifiers, N = 4 rows, C = 2]; the rows' predictions at exits 1..3: 001, 011, 101, 000
    z = torch.tensor([[a, a, b, a], [a, b, a, a], [b, b, b, a], [a, b, a, b]])
    where, logits = simulate(z, ExitRule("patience", patience=1))
    assert where.tolist() == [1, 2, 3, 1]  # index 3 = never fired: the final layer's prediction
    assert torch.equal(logits[2], z[3, 2]) and torch.equal(logits[1], z[2, 1])
    assert simulate(z, ExitRule("patience", patience=0))[0].tolist() == [0, 0, 0, 0]
    assert simulate(z, ExitRule("patience", patience=2))[0].tolist() == [3, 3, 3, 2]


def test_bad_rules_and_exit_layers_are_one_line_errors():
    model = tiny("bert", layers=3)
    with pytest.raises(ModelError, match=r"strictly increasing layers in 1\.\.2"):
        add_exits(model, layers=[1, 3])
    with pytest.raises(ModelError, match="at least 2 encoder layers"):
        add_exits(tiny("bert", layers=1))
    ee = add_exits(model)
    with pytest.raises(KDistillError, match="unknown exit rule 'fast'"):
        ee.set_exit_rule("fast", 0.1)
    with pytest.raises(KDistillError, match="needs a finite threshold"):
        ee.set_exit_rule("entropy")
    with pytest.raises(KDistillError, match="integer patience"):
        ee.set_exit_rule("patience", patience=-1)
    from kdistill.data.tasks import get_task
    from kdistill.selfdistill.objective import check_task

    with pytest.raises(KDistillError, match="single-label classification.*regression"):
        check_task(get_task("stsb"))


# --------------------------------------------------------------------------- saving, loading, pipeline


def test_save_load_round_trip_keeps_the_exits_and_gives_full_depth_by_default(tmp_path, tiny_tokenizer):
    from transformers import AutoModelForSequenceClassification, pipeline

    import kdistill.compress as kc

    base = tiny("bert", vocab=len(tiny_tokenizer))
    model = add_exits(base, layers=[1, 3], seed=5).eval()
    model.save_pretrained(tmp_path / "ee")
    tiny_tokenizer.save_pretrained(tmp_path / "ee")
    config = json.loads((tmp_path / "ee" / "config.json").read_text())
    assert config["model_type"] == "kdistill-early-exit-bert" and config["kdistill_exit_layers"] == [1, 3]
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "ee").eval()
    assert is_early_exit(loaded) and loaded.exit_layers == [1, 3]
    want = model.state_dict()
    assert set(loaded.state_dict()) == set(want) and any(k.startswith("kdistill_exits.1.") for k in want)
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, want[k]), k
    texts = ["a gorgeous , witty , seductive movie .", "the plot is nothing but boilerplate clichés",
             "it 's a charming and often affecting journey ."]
    enc = dict(tiny_tokenizer(texts, padding=True, return_tensors="pt"))
    with torch.no_grad():
        assert torch.equal(loaded(**enc).logits, base(**enc).logits)  # full depth by default
        first = loaded.all_exit_logits(**enc)[0]
    plain = strip_exits(loaded)  # back to the stock class, same prediction
    assert type(plain).__name__ == "BertForSequenceClassification" and not is_early_exit(plain)
    with torch.no_grad():
        assert torch.equal(plain(**enc).logits, base(**enc).logits)
    fast = AutoModelForSequenceClassification.from_pretrained(tmp_path / "ee", kdistill_exit_rule="max_prob",
                                                              kdistill_exit_threshold=0.0).eval()
    with torch.no_grad():
        out = fast(**enc)
    assert out.exit_layer.tolist() == [1, 1, 1]
    torch.testing.assert_close(out.logits, first, rtol=0, atol=1e-6)
    pipe = pipeline("text-classification", model=str(tmp_path / "ee"), tokenizer=str(tmp_path / "ee"),
                    model_kwargs={"kdistill_exit_rule": "max_prob", "kdistill_exit_threshold": 0.0})
    got = pipe(texts, batch_size=3)
    assert [g["label"] for g in got] == [LABELS["id2label"][int(i)] for i in first.argmax(-1)]
    assert [g["score"] for g in got] == pytest.approx(torch.softmax(first, -1).amax(-1).tolist(), abs=1e-5)
    # a pruned base (kdistill-compressed-*) keeps its shapes under the exits
    pruned = kc.prune_heads(tiny("bert", vocab=len(tiny_tokenizer)), {0: [1], 2: [0, 3]}).eval()
    add_exits(pruned, every=2).save_pretrained(tmp_path / "pruned")
    back = AutoModelForSequenceClassification.from_pretrained(tmp_path / "pruned").eval()
    assert back.config.model_type == "kdistill-early-exit-kdistill-compressed-bert" and back.exit_layers == [2]
    with torch.no_grad():
        assert torch.equal(back(**enc).logits, pruned(**enc).logits)


# --------------------------------------------------------------------------- runs


def _teacher(tmp_path, tokenizer, layers: int = 3):
    path = tmp_path / "teacher"
    make_tiny_bert(vocab_size=len(tokenizer), layers=layers, initializer_range=0.3).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def test_early_exit_run_trains_the_exits_and_sweeps_on_the_selection_slice(tmp_path, tiny_tokenizer, glue_dir):
    from safetensors.torch import load_file

    from kdistill import api

    teacher = _teacher(tmp_path, tiny_tokenizer, layers=4)
    out = tmp_path / "ee"
    res = api.early_exit(teacher, "sst2", output_dir=out, data_dir=str(glue_dir), max_train_samples=80, max_eval_samples=24,
                         selection_size=8, epochs=1, batch_size=16, show_progress=False, logging_steps=1, exit_every=2,
                         latency_examples=4, latency_rounds=1, sweep_batch_size=4, timed_points=1, max_drop=100.0)
    assert not res.interrupted
    results = json.loads((out / "train_results.json").read_text())
    assert results["method"] == "early-exit" and results["exit_layers"] == [2] and results["schedule"] == "frozen"
    keys = {line.split(",")[1] for line in (out / "logs" / "train_log.csv").read_text().splitlines()[1:]}
    assert "train/exit2" in keys and "train/final" not in keys
    before, after = load_file(f"{teacher}/model.safetensors"), load_file(str(out / "model.safetensors"))
    assert all(torch.equal(before[k], after[k]) for k in before)  # frozen: the backbone did not move
    assert any(k.startswith("kdistill_exits.") for k in after)
    rep = res.report
    assert rep == json.loads((out / "sweep.json").read_text()) and (out / "sweep.png").stat().st_size > 0
    assert "held-out selection slice" in rep["chosen_on"] and rep["selection"]["selection_rows"] == 8
    assert {p["rule"] for p in rep["points"]} == {"entropy", "max_prob", "patience"}
    c = rep["chosen"]  # with a 100-point drop allowed the fastest setting is chosen: every row at the first exit
    assert c["selection"]["avg_layer"] == 2.0 and c["speedup_bs1"] > 0 and "latency" in rep["full"]
    assert c["dev_batched_adaptive"]["exit_layer_mismatches"] == 0
    assert c["dev_batched_adaptive"]["metric"] == pytest.approx(c["dev"]["metric"])
    assert "Chosen:" in (out / "sweep.md").read_text()
    again = api.exit_sweep(str(out), output_dir=tmp_path / "sweep2", latency_examples=2, latency_rounds=1, timed_points=0,
                           sweep_batch_size=2, rules=["patience"])  # the run's data and seed: the same held-out slice
    assert again["selection"] == rep["selection"] and again["full"]["selection"] == rep["full"]["selection"]
    assert [p["rule"] for p in again["points"]] == ["patience"] and (tmp_path / "sweep2" / "sweep.json").exists()


def test_choice_uses_the_selection_slice_not_dev():
    from kdistill.selfdistill.sweep import choose

    def pt(name, sel, sel_layer, dev):
        return {"describe": name, "selection": {"metric": sel, "avg_layer": sel_layer}, "dev": {"metric": dev, "avg_layer": 0}}

    points = [pt("a", 0.90, 2.0, 0.95), pt("b", 0.85, 1.0, 0.99), pt("c", 0.895, 1.5, 0.80)]
    assert choose(points, full_selection=0.90, max_drop=1.0)["describe"] == "c"  # dev would say b (or a); not asked
    assert choose(points, full_selection=0.90, max_drop=0.0)["describe"] == "a"
    assert choose(points, full_selection=0.99, max_drop=1.0) is None


def test_born_again_two_generations_runs_and_records_both(tmp_path, tiny_tokenizer, glue_dir):
    from kdistill import api

    teacher = _teacher(tmp_path, tiny_tokenizer)
    base = tmp_path / "base"  # the "pretrained" base: the same architecture (here: an untrained copy)
    make_tiny_bert(vocab_size=len(tiny_tokenizer), layers=3, seed=1).bert.save_pretrained(base)
    tiny_tokenizer.save_pretrained(base)
    out = tmp_path / "ban"
    kw = dict(base=str(base), output_dir=out, generations=2, ensemble_teacher=True, data_dir=str(glue_dir),
              max_train_samples=48, max_eval_samples=16, selection_size=4, epochs=1, batch_size=16, show_progress=False)
    rec = api.born_again(teacher, "sst2", **kw)
    assert [g["generation"] for g in rec["generations"]] == [1, 2] and not rec["interrupted"]
    assert rec["generations"][0]["teachers"] == [teacher]
    assert rec["generations"][1]["teachers"] == [teacher, str(out / "gen1")]  # the ensemble of teacher + generation 1
    for g in (1, 2):
        results = json.loads((out / f"gen{g}" / "train_results.json").read_text())
        assert results["method"] == "born-again" and results["born_again"]["generation"] == g
        assert "dev_metric" in rec["generations"][g - 1] and "minus_teacher" in rec["generations"][g - 1]
    assert rec["ensemble"]["members"] == [str(out / "gen1"), str(out / "gen2")]
    assert json.loads((out / "born_again.json").read_text())["generations"][1]["generation"] == 2
    assert "generation 2" in (out / "born_again.md").read_text()
    again = api.born_again(teacher, "sst2", resume=True, **kw)  # finished generations are reused, not retrained
    assert [g["train_seconds"] for g in again["generations"]] == [g["train_seconds"] for g in rec["generations"]]
    with pytest.raises(ModelError, match="does not have the teacher's architecture"):
        api.born_again(teacher, "sst2", **{**kw, "base": _teacher(tmp_path / "x", tiny_tokenizer, layers=2),
                                           "output_dir": tmp_path / "never"})
    assert not (tmp_path / "never").exists()


def test_config_file_reruns_early_exit_and_born_again_with_command_line_over_it(tmp_path, tiny_tokenizer, glue_dir):
    from typer.testing import CliRunner

    from kdistill.cli import app
    from kdistill import api

    runner = CliRunner()
    teacher = _teacher(tmp_path, tiny_tokenizer, layers=4)
    tiny = dict(data_dir=str(glue_dir), max_train_samples=48, max_eval_samples=16, selection_size=4, batch_size=16,
                max_steps=2, show_progress=False)
    first = tmp_path / "ee"
    api.early_exit(teacher, "sst2", output_dir=first, run_sweep=False, exit_every=2, gold_weight=0.25, **tiny)
    r = runner.invoke(app, ["early-exit", "--config", str(first / "kdistill_run.json"), "-o", str(tmp_path / "ee2"),
                            "--no-sweep", "--exit-layers", "1,3"])
    assert r.exit_code == 0, r.output
    a, b = (json.loads((d / "kdistill_run.json").read_text()) for d in (first, tmp_path / "ee2"))
    assert b["exits"]["layers"] == [1, 3] and b["exits"]["gold_weight"] == 0.25  # given / kept from the file
    a["exits"]["layers"] = [1, 3]
    assert {k: v for k, v in b.items() if k != "output_dir"} == {k: v for k, v in a.items() if k != "output_dir"}
    assert json.loads((tmp_path / "ee2" / "train_results.json").read_text())["exit_layers"] == [1, 3]

    base = tmp_path / "base"
    make_tiny_bert(vocab_size=len(tiny_tokenizer), layers=4, seed=1).bert.save_pretrained(base)
    tiny_tokenizer.save_pretrained(base)
    cfg = api.born_again_config(teacher, "sst2", base=str(base), output_dir=tmp_path / "ban", generations=1,
                                temperature=3.0, **tiny)
    (tmp_path / "ban.json").write_text(cfg.model_dump_json())
    r = runner.invoke(app, ["born-again", "--config", str(tmp_path / "ban.json"), "--alpha", "0.5"])
    assert r.exit_code == 0, r.output
    ran = json.loads((tmp_path / "ban" / "kdistill_run.json").read_text())
    assert ran["distill"]["alpha"] == 0.5 and ran["distill"]["temperature"] == 3.0 and ran["generations"] == 1
    assert json.loads((tmp_path / "ban" / "born_again.json").read_text())["generations"][0]["generation"] == 1

    bad = json.loads((first / "kdistill_run.json").read_text())
    bad["exits"]["pooling_mode"] = "mean"
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    r = runner.invoke(app, ["early-exit", "--config", str(tmp_path / "bad.json"), "-o", str(tmp_path / "never")])
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and "exits.pooling_mode" in lines[0], r.output
    r = runner.invoke(app, ["born-again", "--config", str(first / "kdistill_run.json"), "-o", str(tmp_path / "never")])
    assert r.exit_code == 2 and "early-exit" in r.output and "Traceback" not in r.output, r.output
    assert not (tmp_path / "never").exists()


# --------------------------------------------------------------------------- export


def test_per_segment_onnx_export_keeps_exiting_with_parity(tmp_path, tiny_tokenizer):
    pytest.importorskip("onnxruntime")
    from kdistill.selfdistill.export import OrtEarlyExit, export_early_exit

    model = add_exits(tiny("bert", vocab=len(tiny_tokenizer)), every=1).eval()
    model.save_pretrained(tmp_path / "ee")
    tiny_tokenizer.save_pretrained(tmp_path / "ee")
    texts = ["a gorgeous , witty , seductive movie .", "boilerplate", "it 's a charming and often affecting journey .",
             "the plot is nothing but clichés and the acting is worse", "fine", "one of the year 's best films"]
    enc = dict(tiny_tokenizer(texts, padding=True, return_tensors="pt"))
    with torch.no_grad():
        z = model.all_exit_logits(**enc)
    rule = ExitRule("entropy", _mixed_threshold(normalized_entropy(z[0])))
    man = export_early_exit(tmp_path / "ee", tmp_path / "onnx", rule=rule.rule, threshold=rule.threshold, check_texts=texts)
    assert [s["file"] for s in man["segments"]] == [f"segment_{j}.onnx" for j in range(4)]
    assert all(p["max_abs_diff"] < 1e-4 and p["exit_layer_agreement"] == 1.0 for p in man["parity"].values())
    ort = OrtEarlyExit(tmp_path / "onnx")  # the recorded rule
    got, layer = ort(**enc)
    ref, ref_layer = _exited(model, enc, rule)
    assert layer.tolist() == ref_layer.tolist() and len(set(layer.tolist())) > 1
    np.testing.assert_allclose(got, ref.numpy(), atol=1e-4, rtol=0)
    full, full_layer = OrtEarlyExit(tmp_path / "onnx", rule="none")(**enc)
    np.testing.assert_allclose(full, z[-1].numpy(), atol=1e-4, rtol=0)
    assert set(full_layer.tolist()) == {4} and not math.isnan(float(full.sum()))


# --------------------------------------------------------------------------- command line


def test_commands_fail_in_one_line_before_touching_anything(tmp_path, tiny_tokenizer):
    from typer.testing import CliRunner

    from kdistill.cli import app

    runner = CliRunner()
    teacher = _teacher(tmp_path, tiny_tokenizer)

    def one_line(result, needle):
        assert result.exit_code == 2, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert "Traceback" not in result.output and len(lines) == 1 and lines[0].startswith("error:"), result.output
        assert needle in lines[0], lines[0]

    one_line(runner.invoke(app, ["early-exit", "--model", teacher, "-o", str(tmp_path / "a"), "--exit-schedule", "fast"]),
             "--exit-schedule")
    one_line(runner.invoke(app, ["early-exit", "--model", teacher, "-o", str(tmp_path / "a"), "--exit-layers", "1,x"]),
             "--exit-layers takes comma-separated integers")
    one_line(runner.invoke(app, ["born-again", "--teacher", teacher, "-o", str(tmp_path / "b")]), "needs --base")
    one_line(runner.invoke(app, ["exit-sweep", "--model", teacher, "--data-dir", str(tmp_path / "nowhere")]), "error")
    one_line(runner.invoke(app, ["export-early-exit", "--model", teacher, "-o", str(tmp_path / "c")]), "no early exits")
    assert not any((tmp_path / d).exists() for d in "abc")


def test_plain_export_refuses_an_early_exit_model_pointing_to_the_segment_export(tmp_path, tiny_tokenizer, glue_dir):
    from kdistill.config import DataConfig
    from kdistill.deploy.export import export_model
    from kdistill.errors import ModelError

    add_exits(tiny("bert", vocab=len(tiny_tokenizer)), every=2).save_pretrained(tmp_path / "ee")
    tiny_tokenizer.save_pretrained(tmp_path / "ee")
    with pytest.raises(ModelError, match="export-early-exit"):
        export_model(str(tmp_path / "ee"), tmp_path / "onnx", data=DataConfig(data_dir=str(glue_dir)))
    assert not (tmp_path / "onnx").exists()
