"""Recipe ``compress``: iterative prune → distil, each recovery a call of the ``kd`` recipe.

Each round (Michel et al. 2019 for the scores; iterative pruning with knowledge distillation as
the recovery step, as in e.g. Sanh et al. 2020 / CoFi):

1. head and FFN-neuron importance of the current model (``I = E|∂L/∂ξ|``, per-layer L2 normalised;
   loss: KL to the teacher, label-free, or CE on gold labels) on a seeded sample of training
   batches — saved with a layer × head heat map;
2. prune ``head_fraction`` of the remaining heads and ``ffn_fraction`` of the remaining neurons
   (least important first, never a whole layer), and ``layers_per_round`` whole layers (least
   summed raw head importance);
3. distil the pruned model from the *unpruned* teacher for ``steps_per_round`` optimizer steps (the
   ``kd`` recipe; teacher logits cached once for all rounds), then measure dev metric, size, latency;
4. stop as soon as every given target holds (speedup, parameters, heads) or after ``max_rounds``.

Layout: ``OUT/round_k/`` holds ``importance/`` (scores + heat map), ``pruned/`` (the model right
after pruning) and ``student/`` (after recovery, a normal run directory with checkpoint and
report); ``OUT/rounds.json`` + ``rounds.csv`` + ``rounds.png`` log every round; the final student
is copied to ``OUT/`` with its report. ``resume=True`` skips finished rounds and resumes an
interrupted recovery from its checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kdistill.config import CompressConfig, PretrainedStudent
from kdistill.errors import KDistillError
from kdistill.recipes.base import run_inputs, run_recipe
from kdistill.rundir import write_atomically
from kdistill.results import to_json


def _recover(ccfg: CompressConfig, model_dir: Path, out_dir: Path, steps: int, cache_file: str, resuming: bool):
    """Distil the model saved in ``model_dir`` from the teacher for ``steps`` steps into ``out_dir`` (the kd recipe)."""
    run = ccfg.run
    cfg = run.model_copy(update={
        "student": PretrainedStudent(path=str(model_dir)), "output_dir": str(out_dir),  # the run is kd (compress_config)
        "resume": resuming, "overwrite": not resuming,
        "train": run.train.model_copy(update={"max_steps": steps, "teacher_cache_file": cache_file})})
    return run_recipe(cfg, latency_runs=ccfg.latency_runs)


def _prune_round(current, teacher_model, batches, ccfg: CompressConfig, rdir: Path, rnd: int, tokenizer) -> None:
    """Score, prune and save one round's pruned model (``rdir/pruned``) with its importance and removal record."""
    from kdistill.compress.importance import compute_importance, layers_by_importance, normalize_per_layer
    from kdistill.compress.modeling import ffn_per_layer, heads_per_layer
    from kdistill.compress.prune import lowest_heads, lowest_neurons, prune_ffn, prune_heads, prune_layers

    if rdir.exists():
        shutil.rmtree(rdir)
    # one gradient pass: raw scores rank whole layers, their per-layer L2 normalisation ranks heads/neurons
    raw = compute_importance(current, batches, loss=ccfg.importance_loss, teacher=teacher_model, exponent=None)
    imp = dataclasses.replace(raw, head_importance=normalize_per_layer(raw.head_importance, 2.0),
                              ffn_importance=normalize_per_layer(raw.ffn_importance, 2.0), exponent=2.0)
    imp.meta.update({"round": rnd})
    imp.save(rdir / "importance")
    imp.plot(rdir / "importance" / "heads.png", title=f"head importance, round {rnd}")
    heads, ffn = heads_per_layer(current), ffn_per_layer(current)
    n_heads = int(round(ccfg.head_fraction * sum(heads)))
    n_neurons = int(round(ccfg.ffn_fraction * sum(ffn)))
    drop_layers: list[int] = []
    if ccfg.layers_per_round and len(heads) > ccfg.min_layers:
        kept = layers_by_importance(raw.head_importance, max(ccfg.min_layers, len(heads) - ccfg.layers_per_round))
        drop_layers = [i for i in range(len(heads)) if i not in kept]
    pruned = current
    head_req = {l: h for l, h in lowest_heads(imp.head_importance, n_heads).items() if l not in drop_layers}
    ffn_req = {l: h for l, h in lowest_neurons(imp.ffn_importance, n_neurons).items() if l not in drop_layers}
    if head_req:
        pruned = prune_heads(pruned, head_req)
    if ffn_req:
        pruned = prune_ffn(pruned, ffn_req)
    if drop_layers:
        pruned = prune_layers(pruned, drop_layers)
    pruned.save_pretrained(rdir / "pruned")
    tokenizer.save_pretrained(rdir / "pruned")
    removal = {"removed_heads": sum(len(v) for v in head_req.values()),
               "removed_neurons": sum(len(v) for v in ffn_req.values()), "removed_layers": drop_layers}
    (rdir / "pruning.json").write_text(to_json(removal, indent=1))


def run_compress(ccfg: CompressConfig) -> dict[str, Any]:
    """Iteratively prune ``ccfg.run.teacher`` and recover each round by distillation from it (module docstring).

    Returns:
        The final report dict, with ``rounds`` (list of :class:`~kdistill.compress.RoundRecord` dicts)
        and ``targets_met``; ``{"interrupted": True, ...}`` when a recovery was stopped.

    Raises:
        KDistillError: nothing to prune, bad output directory, or any data/model error of the kd recipe.
    """
    from kdistill.data.loading import load_data
    from kdistill.models import load_classifier, load_tokenizer
    from kdistill.rundir import RunDir

    run, c = ccfg.run, ccfg
    if c.head_fraction == 0 and c.ffn_fraction == 0 and c.layers_per_round == 0:
        raise KDistillError("nothing to prune: set --head-fraction, --ffn-fraction or --layers-per-round")
    if not run.teacher:
        raise KDistillError("compress needs --teacher (a model fine-tuned on the task)")
    rd, resume = RunDir(run.output_dir), run.resume
    out = rd.path
    if resume and not out.is_dir():
        raise KDistillError(f"--resume: '{out}' does not exist; run without --resume")
    inputs = run_inputs(run)
    if not resume:
        rd.check(overwrite=run.overwrite, resume=False, inputs=inputs)
    targets = dict(target_speedup=c.target_speedup, target_params=c.target_params, target_heads=c.target_heads)
    cache_file = run.train.teacher_cache_file or str(out / "teacher_logits")
    splits, spec = load_data(run.data)
    teacher_model = load_classifier(run.teacher, spec, require_trained_head=True, what="teacher")
    tokenizer = load_tokenizer(run.teacher)
    with rd.lock():
        if not resume:
            rd.create(overwrite=run.overwrite, resume=False, inputs=inputs)
            write_atomically(rd.run_file, ccfg.model_dump_json(indent=1))  # marks the folder as a kdistill run
        return _rounds(ccfg, rd, splits, spec, teacher_model, tokenizer, cache_file, targets)


def _rounds(ccfg: CompressConfig, rd, splits, spec, teacher_model, tokenizer, cache_file: str, targets: dict) -> dict[str, Any]:
    from kdistill.compress.importance import importance_batches
    from kdistill.compress.modeling import ffn_per_layer, heads_per_layer
    from kdistill.compress.prune import parameter_count
    from kdistill.compress.rounds import ROUNDS_FILE, RoundRecord, targets_met, write_rounds
    from kdistill.data.batching import tokenize
    from kdistill.models import load_classifier, load_tokenizer

    run, c, out, resume = ccfg.run, ccfg, rd.path, ccfg.run.resume
    current = teacher_model  # pruning returns new models: the teacher itself is never changed
    train_ds = tokenize(splits["train"], tokenizer, max_length=run.data.max_length, doc_stride=run.data.doc_stride, cache_dir=run.data.cache_dir,
                        desc="tokenize train")
    batches = importance_batches(train_ds, tokenizer, n_batches=c.importance_batches, batch_size=32, seed=run.train.seed)
    records: list[RoundRecord] = []
    if resume and (out / ROUNDS_FILE).exists():
        records = [RoundRecord(**r) for r in json.loads((out / ROUNDS_FILE).read_text())]
    done, student_dir = False, None
    for rnd in range(1, c.max_rounds + 1):
        rdir = out / f"round_{rnd}"
        student_dir = rdir / "student"
        if any(r.round == rnd for r in records):  # finished earlier
            current = load_classifier(str(student_dir), spec, require_trained_head=True, what="student")
            done = targets_met(records[rnd - 1], **targets)
            if done:
                break
            continue
        resuming = resume and (student_dir / "checkpoint").exists() and (rdir / "pruned").exists()
        if not resuming:
            _prune_round(current, teacher_model, batches, c, rdir, rnd, tokenizer)
        removal = json.loads((rdir / "pruning.json").read_text())
        res = _recover(c, rdir / "pruned", student_dir, c.steps_per_round, cache_file, resuming)
        if res.interrupted:
            return {"interrupted": True, "round": rnd, "rounds": [asdict(r) for r in records]}
        rep = res.report
        current = load_classifier(str(student_dir), spec, require_trained_head=True, what="student")
        rec = RoundRecord(
            round=rnd, layers=len(heads_per_layer(current)), heads=sum(heads_per_layer(current)),
            ffn=sum(ffn_per_layer(current)), params=parameter_count(current), metric=rep["student_metric"],
            teacher_metric=rep["teacher_metric"], retention=rep["retention"],
            student_latency_ms=rep["student_latency_ms"], teacher_latency_ms=rep["teacher_latency_ms"],
            speedup=rep["speedup"], train_seconds=res.train_seconds, **removal)
        records.append(rec)
        write_rounds(out, records)
        done = targets_met(rec, **targets)
        if done:
            break
    final_record = None
    if c.final_steps:
        final_dir = out / "final"
        res = _recover(c, student_dir, final_dir, c.final_steps, cache_file, resume and (final_dir / "checkpoint").exists())
        if res.interrupted:
            return {"interrupted": True, "round": "final", "rounds": [asdict(r) for r in records]}
        final_record = {k: res.report[k] for k in ("student_metric", "retention", "speedup", "student_params")}
        final_record["train_seconds"] = res.train_seconds
        student_dir = final_dir
    extra_steps: dict[str, Any] = {}
    if c.lowrank_rank or c.lowrank_energy:
        from kdistill.compress.lowrank import factorize

        low = out / "lowrank"
        resuming = resume and (low / "student" / "checkpoint").exists()
        if not resuming:
            base = load_classifier(str(student_dir), spec, require_trained_head=True, what="student")
            factorize(base, rank=c.lowrank_rank, energy=c.lowrank_energy).save_pretrained(low / "factorized")
            tokenizer.save_pretrained(low / "factorized")
        res = _recover(c, low / "factorized", low / "student", max(c.final_steps, c.steps_per_round), cache_file, resuming)
        if res.interrupted:
            return {"interrupted": True, "round": "lowrank", "rounds": [asdict(r) for r in records]}
        extra_steps["lowrank"] = {k: res.report[k] for k in ("student_metric", "speedup", "student_params")}
        student_dir = low / "student"
    if c.prune_vocab:
        from kdistill.compress.vocab import prune_vocabulary
        from kdistill.reporting.compare import make_report

        train = splits["train"]
        pairs = train["text_b"] if "text_b" in train.column_names else None
        model = load_classifier(str(student_dir), spec, require_trained_head=True, what="student")
        pruned_vocab = prune_vocabulary(model, load_tokenizer(str(student_dir)), train["text_a"], pairs)
        pruned_vocab.save(out / "vocab")
        make_report(teacher=run.teacher, student=str(out / "vocab"), data=run.data, output_dir=out / "vocab",
                    latency_runs=c.latency_runs, extra={"method": "compress + vocabulary pruning"})
        extra_steps["vocab"] = {"kept_tokens": len(pruned_vocab.kept_ids), "vocab_before": model.config.vocab_size}
        student_dir = out / "vocab"
    for f in student_dir.iterdir():  # the final student at the run root, with its report
        if f.is_file():
            shutil.copy2(f, out / f.name)
    final = json.loads((out / "report.json").read_text())
    if final_record is not None:  # targets judged on the model after the final recovery
        last = records[-1]
        done = targets_met(RoundRecord(**{**asdict(last), "metric": final_record["student_metric"],
                                          "speedup": final_record["speedup"]}), **targets)
    final.update({"rounds": [asdict(r) for r in records], "targets_met": done, "method": "compress (prune → distil)",
                  "final_recovery": final_record, **extra_steps})
    (out / "report.json").write_text(to_json(final, indent=1, default=str))  # strict JSON: no NaN
    from kdistill.reporting.render import Report

    return Report(final, files={k: out / f"report.{k}" for k in ("json", "md", "png") if (out / f"report.{k}").exists()})
