"""Iterative prune → distil (``kdistill compress``): structured pruning recovered by distillation from the unpruned teacher.

Each round (Michel et al. 2019 for the scores; the schedule follows their iterative pruning,
with knowledge distillation as the recovery step, as in e.g. Sanh et al. 2020 / CoFi):

1. head and FFN-neuron importance of the current model (``I = E|∂L/∂ξ|``, per-layer L2
   normalised; loss: KL to the teacher, label-free, or CE on gold labels) on a seeded sample of
   training batches — saved with a layer × head heat map;
2. prune ``head_fraction`` of the remaining heads and ``ffn_fraction`` of the remaining neurons
   (least important first, never a whole layer), and ``layers_per_round`` whole layers (least
   summed raw head importance);
3. distil the pruned model from the *unpruned* teacher for ``steps_per_round`` optimizer steps
   (the same engine and objective as ``kdistill distill``; teacher logits cached once for all
   rounds), then measure dev metric, size and CPU latency;
4. stop as soon as every given target holds (speedup, parameters, heads) or after ``max_rounds``.

Layout: ``OUT/round_k/`` holds ``importance/`` (scores + heat map), ``pruned/`` (the model right
after pruning) and ``student/`` (after recovery, a normal run directory with checkpoint and
report); ``OUT/rounds.json`` + ``rounds.csv`` + ``rounds.png`` log every round; the final
student is copied to ``OUT/`` with its report. ``resume=True`` skips finished rounds and resumes
an interrupted recovery from its checkpoint.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from kdistill.errors import KDistillError

ROUNDS_FILE = "rounds.json"


@dataclass
class RoundRecord:
    """One round of the schedule (after recovery)."""

    round: int
    layers: int
    heads: int
    ffn: int
    params: int
    metric: float
    teacher_metric: float
    retention: float
    student_latency_ms: float
    teacher_latency_ms: float
    speedup: float
    train_seconds: float
    removed_heads: int
    removed_neurons: int
    removed_layers: list[int]


def targets_met(rec: RoundRecord, *, target_speedup: float | None, target_params: int | None,
                target_heads: int | None) -> bool:
    """True when every given target holds for ``rec`` (at least one target must be given)."""
    checks = []
    if target_speedup is not None:
        checks.append(rec.speedup >= target_speedup)
    if target_params is not None:
        checks.append(rec.params <= target_params)
    if target_heads is not None:
        checks.append(rec.heads <= target_heads)
    return bool(checks) and all(checks)


def layers_by_importance(head_importance_raw: torch.Tensor, keep: int) -> list[int]:
    """The ``keep`` most important layers (0-based, ascending), by summed raw head importance.

    Used both to drop layers in a pruning round and to choose the layers a
    ``layers-from-teacher`` student copies (``--layers importance``).

    Args:
        head_importance_raw: ``[n_layers, max_heads]`` *un-normalised* scores (NaN = pruned head).
        keep: number of layers to keep, ``1 <= keep <= n_layers``.

    Raises:
        KDistillError: ``keep`` out of range.
    """
    n = head_importance_raw.shape[0]
    if not 1 <= keep <= n:
        raise KDistillError(f"cannot keep {keep} of {n} layers")
    per_layer = torch.nan_to_num(head_importance_raw.float(), nan=0.0).sum(dim=1)
    order = torch.argsort(per_layer, descending=True, stable=True)[:keep]
    return sorted(int(i) for i in order)


def _plot_rounds(records: list[RoundRecord], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [r.speedup for r in records]
    ax.plot(xs, [r.metric for r in records], marker="o")
    for r in records:
        ax.annotate(f"r{r.round}", (r.speedup, r.metric), fontsize=8, xytext=(3, 3), textcoords="offset points")
    if records:
        ax.axhline(records[0].teacher_metric, color="gray", ls="--", label="teacher")
    ax.set(xlabel="CPU batch-1 speedup vs teacher (×)", ylabel="dev metric", title="prune → distil rounds")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _write_rounds(out: Path, records: list[RoundRecord]) -> None:
    (out / ROUNDS_FILE).write_text(json.dumps([asdict(r) for r in records], indent=1))
    with (out / "rounds.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(asdict(records[0])))
        w.writeheader()
        for r in records:
            w.writerow(asdict(r))
    _plot_rounds(records, out / "rounds.png")


def _importance_batches(train_ds, tokenizer, *, n_batches: int, batch_size: int, seed: int) -> list[dict]:
    from kdistill.data.batching import eval_loader

    n = min(len(train_ds), n_batches * batch_size)
    sample = train_ds.shuffle(seed=seed).select(range(n))
    return list(eval_loader(sample, tokenizer, batch_size=batch_size))


def compress(
    teacher: str,
    task: str | None = "sst2",
    *,
    output_dir: str | Path,
    head_fraction: float = 0.25,
    ffn_fraction: float = 0.25,
    layers_per_round: int = 0,
    min_layers: int = 1,
    steps_per_round: int = 500,
    importance_batches: int = 16,
    importance_loss: str = "kl",
    target_speedup: float | None = None,
    target_params: int | None = None,
    target_heads: int | None = None,
    max_rounds: int = 8,
    final_steps: int = 0,
    lowrank_rank: int | None = None,
    lowrank_energy: float | None = None,
    prune_vocab: bool = False,
    latency_runs: int = 100,
    overwrite: bool = False,
    resume: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Iteratively prune ``teacher`` and recover each round by distillation from it (see the module docstring).

    Args:
        teacher: fine-tuned teacher (directory or hub id); also the starting model.
        task: GLUE task, or ``None`` with ``train_file``/``validation_file`` options.
        output_dir: run directory.
        head_fraction, ffn_fraction: share of the *remaining* heads / neurons removed per round (0 = none).
        layers_per_round: whole layers removed per round (least summed head importance), down to ``min_layers``.
        steps_per_round: distillation steps after each pruning step.
        importance_batches: training batches the scores average over; ``importance_loss``: ``kl`` or ``ce``.
        target_speedup, target_params, target_heads: stop once all given targets hold.
        max_rounds: upper bound on rounds.
        final_steps: after the last round, a longer recovery: distil the final pruned model from the
            teacher for this many more steps (into ``OUT/final``); 0 = none.
        lowrank_rank, lowrank_energy: then factorise the encoder's dense layers by truncated SVD (a rank,
            or the share of squared singular values kept) and recover by distillation for
            ``max(final_steps, steps_per_round)`` steps (into ``OUT/lowrank``).
        prune_vocab: last, keep only the token embeddings seen in the training texts (plus special
            tokens) and remap the tokenizer (into ``OUT/vocab``; no training; dev words unseen in
            training become ``[UNK]``).
        options: distillation options as for :func:`kdistill.distill` (``temperature``, ``alpha``,
            ``batch_size``, ``learning_rate``, ``data_dir``, ``max_train_samples`` ...).

    Returns:
        The final report dict, with ``rounds`` (list of :class:`RoundRecord` dicts) and ``targets_met``.

    Raises:
        KDistillError: no target and no round budget, bad fractions, bad output directory, or any
            data/model error of :func:`kdistill.distill`.
    """
    from kdistill import api
    from kdistill.compress.importance import compute_importance, normalize_per_layer
    from kdistill.compress.modeling import ffn_per_layer, heads_per_layer
    from kdistill.compress.prune import lowest_heads, lowest_neurons, parameter_count, prune_ffn, prune_heads, prune_layers
    from kdistill.config import DataConfig
    from kdistill.data.batching import tokenize
    from kdistill.models import load_classifier, load_tokenizer

    if not (0 <= head_fraction < 1 and 0 <= ffn_fraction < 1):
        raise KDistillError("--head-fraction and --ffn-fraction must be in [0, 1)")
    if head_fraction == 0 and ffn_fraction == 0 and layers_per_round == 0:
        raise KDistillError("nothing to prune: set --head-fraction, --ffn-fraction or --layers-per-round")
    if max_rounds < 1 or steps_per_round < 1:
        raise KDistillError("--max-rounds and --steps-per-round must be >= 1")
    out = api._prepare_output(output_dir, overwrite=overwrite, resume=False, apply=False) if not resume else Path(output_dir)
    if resume and not out.is_dir():
        raise KDistillError(f"--resume: '{out}' does not exist; run without --resume")
    cache_file = options.pop("teacher_cache_file", None) or str(out / "teacher_logits.safetensors")
    data_opts = {k: v for k, v in options.items() if k in DataConfig.model_fields}
    dcfg = DataConfig(task=task, **data_opts)
    splits, spec = api._load_data(dcfg)
    teacher_model = load_classifier(teacher, spec, require_trained_head=True, what="teacher")
    current = teacher_model  # pruning returns new models: the teacher itself is never changed
    tokenizer = load_tokenizer(teacher)
    if not resume:
        api._prepare_output(out, overwrite=overwrite, resume=False)
    train_ds = tokenize(splits["train"], tokenizer, max_length=dcfg.max_length, cache_dir=api._cache_dir(dcfg),
                        desc="tokenize train")
    seed = int(options.get("seed", 42))
    batches = _importance_batches(train_ds, tokenizer, n_batches=importance_batches, batch_size=32, seed=seed)
    records: list[RoundRecord] = []
    if resume and (out / ROUNDS_FILE).exists():
        records = [RoundRecord(**r) for r in json.loads((out / ROUNDS_FILE).read_text())]
    done = False
    student_dir = None
    for rnd in range(1, max_rounds + 1):
        rdir = out / f"round_{rnd}"
        student_dir = rdir / "student"
        if any(r.round == rnd for r in records):  # finished earlier
            current = load_classifier(str(student_dir), spec, require_trained_head=True, what="student")
            done = targets_met(records[rnd - 1], target_speedup=target_speedup, target_params=target_params,
                               target_heads=target_heads)
            if done:
                break
            continue
        resuming = resume and (student_dir / "checkpoint").exists() and (rdir / "pruned").exists()
        if not resuming:
            if rdir.exists():
                shutil.rmtree(rdir)
            # one gradient pass: raw scores rank whole layers, their per-layer L2 normalisation ranks heads/neurons
            raw = compute_importance(current, batches, loss=importance_loss, teacher=teacher_model, exponent=None)
            imp = dataclasses.replace(raw, head_importance=normalize_per_layer(raw.head_importance, 2.0),
                                      ffn_importance=normalize_per_layer(raw.ffn_importance, 2.0), exponent=2.0)
            imp.meta.update({"round": rnd})
            imp.save(rdir / "importance")
            imp.plot(rdir / "importance" / "heads.png", title=f"head importance, round {rnd}")
            heads, ffn = heads_per_layer(current), ffn_per_layer(current)
            n_heads = int(round(head_fraction * sum(heads)))
            n_neurons = int(round(ffn_fraction * sum(ffn)))
            drop_layers: list[int] = []
            if layers_per_round and len(heads) > min_layers:
                keep = max(min_layers, len(heads) - layers_per_round)
                kept = layers_by_importance(raw.head_importance, keep)
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
            (rdir / "pruning.json").write_text(json.dumps(removal, indent=1))
        removal = json.loads((rdir / "pruning.json").read_text())
        res = api.distill(teacher, task, str(rdir / "pruned"), output_dir=student_dir, max_steps=steps_per_round,
                          teacher_cache_file=cache_file, latency_runs=latency_runs,
                          resume=resuming, overwrite=not resuming, **options)
        if res.interrupted:
            return {"interrupted": True, "round": rnd, "rounds": [asdict(r) for r in records]}
        rep = res.report
        current = load_classifier(str(student_dir), spec, require_trained_head=True, what="student")
        rec = RoundRecord(
            round=rnd, layers=len(heads_per_layer(current)), heads=sum(heads_per_layer(current)),
            ffn=sum(ffn_per_layer(current)), params=parameter_count(current), metric=rep["student_metric"],
            teacher_metric=rep["teacher_metric"], retention=rep["retention"],
            student_latency_ms=rep["student_latency_ms"], teacher_latency_ms=rep["teacher_latency_ms"],
            speedup=rep["speedup"], train_seconds=res.train_seconds, **removal,
        )
        records.append(rec)
        _write_rounds(out, records)
        done = targets_met(rec, target_speedup=target_speedup, target_params=target_params, target_heads=target_heads)
        if done:
            break
    final_record = None
    if final_steps:
        final_dir = out / "final"
        resuming = resume and (final_dir / "checkpoint").exists()
        res = api.distill(teacher, task, str(student_dir), output_dir=final_dir, max_steps=final_steps,
                          teacher_cache_file=cache_file, latency_runs=latency_runs, resume=resuming,
                          overwrite=not resuming, **options)
        if res.interrupted:
            return {"interrupted": True, "round": "final", "rounds": [asdict(r) for r in records]}
        final_record = {k: res.report[k] for k in ("student_metric", "retention", "speedup", "student_params")}
        final_record["train_seconds"] = res.train_seconds
        student_dir = final_dir
    extra_steps: dict[str, Any] = {}
    if lowrank_rank or lowrank_energy:
        from kdistill.compress.lowrank import factorize

        low = out / "lowrank"
        resuming = resume and (low / "student" / "checkpoint").exists()
        if not resuming:
            base = load_classifier(str(student_dir), spec, require_trained_head=True, what="student")
            factorize(base, rank=lowrank_rank, energy=lowrank_energy).save_pretrained(low / "factorized")
            tokenizer.save_pretrained(low / "factorized")
        res = api.distill(teacher, task, str(low / "factorized"), output_dir=low / "student",
                          max_steps=max(final_steps, steps_per_round), teacher_cache_file=cache_file,
                          latency_runs=latency_runs, resume=resuming, overwrite=not resuming, **options)
        if res.interrupted:
            return {"interrupted": True, "round": "lowrank", "rounds": [asdict(r) for r in records]}
        extra_steps["lowrank"] = {k: res.report[k] for k in ("student_metric", "speedup", "student_params")}
        student_dir = low / "student"
    if prune_vocab:
        from kdistill.compress.vocab import prune_vocabulary

        train = splits["train"]
        pairs = train["text_b"] if "text_b" in train.column_names else None
        model = load_classifier(str(student_dir), spec, require_trained_head=True, what="student")
        pruned_vocab = prune_vocabulary(model, load_tokenizer(str(student_dir)), train["text_a"], pairs)
        pruned_vocab.save(out / "vocab")
        api.make_report(teacher=teacher, student=str(out / "vocab"), data=dcfg, output_dir=out / "vocab",
                        latency_runs=latency_runs, extra={"method": "compress + vocabulary pruning"})
        extra_steps["vocab"] = {"kept_tokens": len(pruned_vocab.kept_ids), "vocab_before": model.config.vocab_size}
        student_dir = out / "vocab"
    # the final student at the run root, with its report
    for f in student_dir.iterdir():
        if f.is_file():
            shutil.copy2(f, out / f.name)
    final = json.loads((out / "report.json").read_text())
    if final_record is not None:  # targets judged on the model after the final recovery
        last = records[-1]
        done = targets_met(RoundRecord(**{**asdict(last), "metric": final_record["student_metric"],
                                          "speedup": final_record["speedup"]}),
                           target_speedup=target_speedup, target_params=target_params, target_heads=target_heads)
    final.update({"rounds": [asdict(r) for r in records], "targets_met": done, "method": "compress (prune → distil)",
                  "final_recovery": final_record, **extra_steps})
    (out / "report.json").write_text(json.dumps(final, indent=1, default=str))
    return final
