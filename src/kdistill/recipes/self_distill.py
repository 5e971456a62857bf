"""Self-distillation recipes (issue 18): ``early-exit`` (exits taught by the model's own final layer) and ``born-again``
(a same-size student from the teacher's pretrained base, for ``N`` generations). Both run through the one lifecycle
(:func:`kdistill.recipes.base.run_recipe`) and the one engine; each is a recipe, not a branch in the loop.

* ``early-exit`` — :class:`~kdistill.selfdistill.config.EarlyExitRunConfig`: load the task model
  (``student.path``: the teacher or any student, pruned ones too), add exits
  (:func:`kdistill.selfdistill.modeling.add_exits`), freeze the backbone (FastBERT's two-step schedule) or not
  (joint), train on :func:`kdistill.selfdistill.objective.early_exit_objective`. No teacher runs: the final layer's
  detached soft targets teach the exits.
* ``born-again`` — :class:`~kdistill.selfdistill.config.BornAgainConfig` (Furlanello et al. 2018): generation ``g``
  is the ``kd`` recipe's objective with the student initialised from the pretrained base (same architecture as the
  teacher, checked) and teacher = generation ``g − 1`` (``g = 1``: the teacher), or the mean logits of the teacher and
  every earlier generation (``ensemble_teacher``). Layout: ``OUT/gen<g>/`` are normal run folders (resumable; a finished
  one is reused), ``OUT/born_again.{json,md}`` records every generation against the teacher (paired bootstrap) and the
  ensemble of all generations (the paper's BANE).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

from kdistill.errors import KDistillError, ModelError
from kdistill.recipes.base import Prepared, Recipe, RunResult, Stage, fingerprint, register, run_inputs, run_recipe
from kdistill.recipes.kd import check_kd, hidden_align, kd_report_extra, load_task, prepare_task_data, selection_split, task_summary

BORN_AGAIN_FILE = "born_again.json"


# --------------------------------------------------------------------------- early-exit


def _load_early_exit(cfg) -> Prepared:
    """The data, the task model at ``cfg.student.path`` with fresh exits, its tokenizer; no teacher."""
    from kdistill.data.loading import load_data
    from kdistill.models import load_classifier, load_tokenizer
    from kdistill.selfdistill.modeling import add_exits
    from kdistill.selfdistill.objective import check_task, freeze_backbone

    splits, task = load_data(cfg.data)
    check_task(task)
    base = load_classifier(cfg.student.path, task, require_trained_head=True, what="model")
    tokenizer = load_tokenizer(cfg.student.path)
    e = cfg.exits
    student = add_exits(base, every=e.every, layers=e.layers, pooling=e.pooling, dropout=e.dropout, seed=cfg.train.seed)
    freeze_backbone(student, e.schedule == "frozen")
    return Prepared(cfg=cfg, task=task, tokenizer=tokenizer, student=student, splits=splits,
                    info={"exit_layers": student.exit_layers})


def _early_exit_data(p: Prepared, procs) -> None:
    """Tokenised train (minus the held-out selection slice), selection slice and dev splits."""
    from kdistill.data.batching import tokenize

    cfg, tok = p.cfg, p.tokenizer
    d = cfg.data
    train, selection = p.splits["train"], None
    if d.select_on == "holdout":
        train, selection, p.info["selection"] = selection_split(cfg, train, p.task)
    p.train_ds = tokenize(train, tok, max_length=d.max_length, doc_stride=d.doc_stride, cache_dir=d.cache_dir, desc="tokenize train")
    p.report_ds = tokenize(p.splits["validation"], tok, max_length=d.max_length, doc_stride=d.doc_stride, cache_dir=d.cache_dir, desc="tokenize dev")
    p.eval_ds = p.report_ds if selection is None else tokenize(selection, tok, max_length=d.max_length, doc_stride=d.doc_stride,
                                                               cache_dir=d.cache_dir, desc="tokenize selection slice")


def _early_exit_objective(p: Prepared):
    from kdistill.selfdistill.objective import early_exit_objective

    return early_exit_objective(p.task, p.student, p.cfg.exits)


def _early_exit_summary(p: Prepared, result) -> dict:
    e = p.cfg.exits
    kept = ("last step (frozen backbone: the full-depth metric cannot change)" if e.schedule == "frozen"
            else "best full-depth metric on the selection split")
    return {**task_summary(p, result), "exit_layers": p.student.exit_layers, "schedule": e.schedule,
            "kept_student": kept, "exits": e.model_dump()}


EARLY_EXIT = register(Recipe(
    name="early-exit", students=("pretrained",), load=_load_early_exit, data=_early_exit_data,
    stages=lambda p: [Stage("", _early_exit_objective)], summary=_early_exit_summary,
    student_kind_hint=" (the path of the model that gets the exits)",
))


def run_early_exit(cfg, *, callbacks: Sequence[Callable] = ()) -> RunResult:
    """Train exits on ``cfg.student.path`` (see the module docstring), then, with ``cfg.run_sweep``, sweep the
    thresholds (:func:`kdistill.selfdistill.sweep.exit_sweep`; ``sweep.{json,md,png}`` in the run folder; the result is
    ``RunResult.report``). A resumed finished run reuses its sweep.

    Raises:
        KDistillError / ModelError / DataError: every check of the recipe, before anything is written.
    """
    res = run_recipe(cfg, recipe=EARLY_EXIT, callbacks=callbacks, report=False)
    if res.interrupted or not cfg.run_sweep:
        return res
    from kdistill.selfdistill.sweep import SWEEP_FILE, exit_sweep

    out = Path(cfg.output_dir)
    if cfg.resume and (out / SWEEP_FILE).exists():
        rep = json.loads((out / SWEEP_FILE).read_text())
    else:
        rep = exit_sweep(str(out), data=cfg.data, seed=cfg.train.seed, sweep=cfg.sweep, output_dir=out)
    res.report = rep
    res.files.update({k: str(out / f"sweep.{k}") for k in ("json", "md", "png") if (out / f"sweep.{k}").exists()})
    return res


# --------------------------------------------------------------------------- born-again


def architecture_key(config) -> tuple:
    """What "the same architecture" means for born-again: family, layers, width, heads, FFN width, vocabulary."""
    from kdistill.selfdistill.modeling import family

    def get(*names):
        return next((getattr(config, n) for n in names if getattr(config, n, None) is not None), None)

    return (family(config), get("num_hidden_layers", "n_layers"), get("hidden_size", "dim"),
            get("num_attention_heads", "n_heads"), get("intermediate_size", "hidden_dim"), get("vocab_size"),
            tuple(getattr(config, "kdistill_heads_per_layer", None) or ()))


def check_same_architecture(teacher_config, student_config, base: str) -> None:
    """Raise a one-line :class:`ModelError` unless the born-again student has the teacher's architecture."""
    t, s = architecture_key(teacher_config), architecture_key(student_config)
    if t != s:
        names = ("type", "layers", "width", "heads", "FFN", "vocabulary", "kept heads")
        diff = ", ".join(f"{n} {a} vs {b}" for n, a, b in zip(names, t, s) if a != b)
        raise ModelError(f"born-again: --base '{base}' does not have the teacher's architecture ({diff}); pass the "
                         "pretrained model the teacher was fine-tuned from")


def _born_again_recipe(members: list[str], generation: int) -> Recipe:
    def load(cfg) -> Prepared:
        import torch

        from kdistill.selfdistill.modeling import EnsembleTeacher

        torch.manual_seed(cfg.train.seed + generation - 1)  # the fresh head of this generation's student
        p = load_task(cfg)
        check_same_architecture(p.teacher.config, p.student.config, cfg.student.path)
        if len(members) > 1:
            from kdistill.models import load_classifier

            p.teacher = EnsembleTeacher([load_classifier(m, p.task, require_trained_head=True, what="teacher")
                                         for m in members[:-1]] + [p.teacher])
        p.info["born_again"] = {"generation": generation, "teachers": list(members)}
        return p

    def data(p: Prepared, procs) -> None:
        prepare_task_data(p, procs)
        if len(members) > 1:
            from kdistill.engine.teacher import teacher_key

            p.fingerprint = fingerprint(p.fingerprint, [teacher_key(m) for m in members])

    def objective(p: Prepared):
        from kdistill.objectives import kd_objective

        return kd_objective(p.task, p.cfg.method, hidden_align=hidden_align(p))

    def summary(p: Prepared, result) -> dict:
        return {**task_summary(p, result), "born_again": p.info["born_again"]}

    return Recipe(name="born-again", students=("pretrained",), check=check_kd, load=load, data=data,
                  stages=lambda p: [Stage("", objective)], summary=summary, report_extra=kd_report_extra,
                  student_kind_hint=" (the pretrained base the teacher was fine-tuned from)")


BORN_AGAIN = register(_born_again_recipe(["<teacher>"], 1))  # listed in RECIPES; runs use per-generation copies


def _generation_config(cfg, teacher: str, gdir: Path, resume: bool):
    from kdistill.config import RunConfig

    return RunConfig(method={"name": "kd", **cfg.distill.model_dump()}, teacher=teacher, student=cfg.student, data=cfg.data,
                     augment=cfg.augment, train=cfg.train, output_dir=str(gdir), overwrite=not resume, resume=resume)


def _check_born_again(cfg) -> None:
    """Cheap checks before anything is loaded or written: the two models exist, their architectures agree."""
    from transformers import AutoConfig

    from kdistill.selfdistill.modeling import register_early_exit_classes

    register_early_exit_classes()
    if not cfg.teacher:
        raise KDistillError("born-again needs --teacher (a model fine-tuned on the task)")
    for what, name in (("teacher", cfg.teacher), ("base", cfg.student.path)):
        path = Path(name).expanduser()
        if path.is_file() or (path.is_dir() and not (path / "config.json").exists()):
            raise ModelError(f"--{what} '{name}' is not a saved model (no config.json); pass the folder that holds one")
        if not path.exists() and (name.startswith((".", "/", "~")) or name.count("/") > 1):
            raise ModelError(f"--{what} '{name}' does not exist; pass a saved model directory or a hub model id")
    try:
        t, s = AutoConfig.from_pretrained(cfg.teacher), AutoConfig.from_pretrained(cfg.student.path)
    except Exception as err:  # noqa: BLE001 - one line
        raise ModelError(f"born-again: cannot read the configs of teacher / base ({type(err).__name__}: "
                         f"{str(err).splitlines()[0][:160]})") from err
    check_same_architecture(t, s, cfg.student.path)


def run_born_again(cfg, *, report: bool = False, latency_runs: int = 20, callbacks: Sequence[Callable] = ()) -> dict[str, Any]:
    """Born-again distillation for ``cfg.generations`` generations (see the module docstring).

    Args:
        cfg: a :class:`~kdistill.selfdistill.config.BornAgainConfig`.
        report: also write each generation's teacher-vs-student report (latency etc.; slow, the sizes are equal).
        latency_runs: timed runs of those reports.
        callbacks: engine callbacks (every generation).

    Returns:
        The record written to ``OUT/born_again.json``: ``generations`` (one entry per finished generation: dev
        metrics, selection metric, its teacher(s), paired difference from the original teacher), ``ensemble`` (the
        mean logits of all generations), ``interrupted``.

    Raises:
        KDistillError / ModelError / DataError: a missing teacher or base, different architectures, an output folder
            that cannot be used, changed settings on ``resume`` (one line each, before anything is written).
    """
    from kdistill.rundir import RunDir, resume_changes, write_atomically

    rd, resume = RunDir(cfg.output_dir), cfg.resume
    out = rd.path
    if resume and not (out.is_dir() and rd.run_file.exists()):
        raise KDistillError(f"--resume: '{out}' holds no born-again run; run without --resume")
    inputs = run_inputs(cfg)
    if not resume:
        rd.check(overwrite=cfg.overwrite, resume=False, inputs=inputs)
    else:
        refused, _ = resume_changes(json.loads(rd.run_file.read_text()), cfg)
        refused = [r for r in refused if not r.startswith("generations ")]  # more generations may be added
        if refused:
            raise KDistillError(f"--resume: settings differ from the run's ({rd.run_file.name}): {'; '.join(refused)}; "
                                "resume with the original settings, or start again with --overwrite")
    _check_born_again(cfg)
    with rd.lock():
        if not resume:
            rd.create(overwrite=cfg.overwrite, resume=False, inputs=inputs)
        write_atomically(rd.run_file, cfg.model_dump_json(indent=1))
        teachers, records, interrupted = [cfg.teacher], [], False
        for g in range(1, cfg.generations + 1):
            gdir = out / f"gen{g}"
            members = list(teachers) if (cfg.ensemble_teacher and g >= 2) else [teachers[-1]]
            gen_run = RunDir(gdir)
            resuming = resume and gdir.exists() and gen_run.is_run() and (gen_run.has_checkpoint() or gen_run.is_complete())
            if gdir.exists() and not resuming:
                shutil.rmtree(gdir)  # ours (inside the born-again folder), never finished a checkpoint
            res = run_recipe(_generation_config(cfg, members[-1], gdir, resuming), recipe=_born_again_recipe(members, g),
                             callbacks=callbacks, report=report, latency_runs=latency_runs)
            results = json.loads((gdir / "train_results.json").read_text()) if (gdir / "train_results.json").exists() else {}
            records.append({"generation": g, "dir": str(gdir), "teachers": members, "dev": res.metrics,
                            "selection": results.get("selection_eval"), "train_seconds": round(res.train_seconds, 1),
                            "best_step": results.get("best_step"), "interrupted": res.interrupted})
            if res.interrupted:
                interrupted = True
                break
            teachers.append(str(gdir))
        record = _compare_generations(cfg, records, interrupted)
        from kdistill.results import to_json  # strict JSON: no NaN

        write_atomically(out / BORN_AGAIN_FILE, to_json(record, indent=1, default=str))
        (out / "born_again.md").write_text(render_born_again(record))
    return record


def _compare_generations(cfg, records: list[dict], interrupted: bool) -> dict[str, Any]:
    """Dev predictions of the teacher and every finished generation: metrics, paired bootstrap vs the teacher and vs
    the previous generation, and the ensemble of all generations (mean logits)."""
    from kdistill.data.batching import eval_loader, tokenize
    from kdistill.data.loading import load_data
    from kdistill.engine.evaluation import predict
    from kdistill.metrics import compute_metrics
    from kdistill.models import load_classifier, load_tokenizer
    from kdistill.reporting.stats import paired_bootstrap_diff

    splits, task = load_data(cfg.data)
    dev = splits["validation"]

    def logits_of(path: str):
        net, tok = load_classifier(path, task, require_trained_head=True), load_tokenizer(path)
        ds = tokenize(dev, tok, max_length=cfg.data.max_length, doc_stride=cfg.data.doc_stride, cache_dir=cfg.data.cache_dir, desc="tokenize dev")
        return predict(net, eval_loader(ds, tok, batch_size=64), show_progress=False)

    t_logits, gold = logits_of(cfg.teacher)
    main = task.main_metric
    teacher_metric = float(compute_metrics(task, t_logits, gold)[main])
    done = [r for r in records if not r["interrupted"]]
    previous, gens = t_logits, []
    all_logits = []
    for r in done:
        z, _ = logits_of(r["dir"])
        all_logits.append(z)
        d = paired_bootstrap_diff(task, z, t_logits, gold)
        p = paired_bootstrap_diff(task, z, previous, gold)
        gens.append({**r, "dev_metric": float(compute_metrics(task, z, gold)[main]),
                     "minus_teacher": {k: d[k] for k in ("difference", "ci", "p_value")},
                     "minus_previous": {k: p[k] for k in ("difference", "ci", "p_value")}})
        previous = z
    ensemble = None
    if len(all_logits) >= 2:
        import numpy as np

        z = np.mean(np.stack(all_logits), axis=0)
        d = paired_bootstrap_diff(task, z, t_logits, gold)
        ensemble = {"members": [r["dir"] for r in done], "dev_metric": float(compute_metrics(task, z, gold)[main]),
                    "minus_teacher": {k: d[k] for k in ("difference", "ci", "p_value")}}
    best = max(gens, key=lambda g: g["dev_metric"], default=None)
    return {"method": "born-again", "paper": "Furlanello et al. 2018, Born-Again Neural Networks", "task": task.name,
            "metric_name": main, "output_dir": cfg.output_dir, "teacher": cfg.teacher, "base": cfg.student.path,
            "teacher_metric": teacher_metric,
            "dev_examples": len(dev), "ensemble_teacher": cfg.ensemble_teacher, "distill": cfg.distill.model_dump(),
            "generations": gens, "ensemble": ensemble, "interrupted": interrupted,
            "beats_teacher": None if best is None else bool(best["dev_metric"] > teacher_metric),
            "note": "each generation's kept student was chosen on its selection split; dev is reported, not chosen on"}


def render_born_again(rec: dict) -> str:
    """``born_again.md``: one row per generation against the teacher."""
    m = rec["metric_name"]
    lines = [f"# Born-again distillation ({rec['task']})", "", f"Teacher `{rec['teacher']}`, base `{rec['base']}`; "
             f"loss {rec['distill']}; ensemble teacher: {rec['ensemble_teacher']}.", "",
             f"| model | dev {m} | − teacher (points, 95% CI) | p |", "|---|---:|---:|---:|",
             f"| teacher | {rec['teacher_metric']:.4f} | | |"]
    for g in rec["generations"]:
        d = g["minus_teacher"]
        lines.append(f"| generation {g['generation']} | {g['dev_metric']:.4f} | {100 * d['difference']:+.2f} "
                     f"[{100 * d['ci'][0]:+.2f}, {100 * d['ci'][1]:+.2f}] | {d['p_value']:.3f} |")
    if rec.get("ensemble"):
        e, d = rec["ensemble"], rec["ensemble"]["minus_teacher"]
        lines.append(f"| ensemble of generations | {e['dev_metric']:.4f} | {100 * d['difference']:+.2f} "
                     f"[{100 * d['ci'][0]:+.2f}, {100 * d['ci'][1]:+.2f}] | {d['p_value']:.3f} |")
    lines += ["", rec["note"] + ".", ""]
    if rec["interrupted"]:
        lines.append("**Interrupted**: continue with --resume.")
    return "\n".join(lines) + "\n"


__all__ = ["BORN_AGAIN", "EARLY_EXIT", "architecture_key", "check_same_architecture", "render_born_again",
           "run_born_again", "run_early_exit"]
