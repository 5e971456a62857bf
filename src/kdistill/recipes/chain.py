"""Recipe chain ``kdistill run``: fine-tune the teacher when it has no trained head for the task, then distil.

The fine-tuned teacher goes to ``RUN/teacher`` (the ``finetune`` recipe), the student to ``RUN/student`` (the
configured distillation recipe); each part resumes on its own. ``RUN/kdistill_run.json`` records the whole chain
(:class:`~kdistill.config.ChainConfig`: the distillation run and the teacher stage's settings).

The teacher stage trains with its own settings (:class:`~kdistill.config.TeacherStageConfig`: learning rate, batch,
an epoch cap, early stopping on the held-out metric), never the student's. After it:

* a teacher whose held-out metric is at or below the constant baseline on the same rows (majority class,
  all-negative / per-label majority, mean score: :func:`kdistill.reporting.stats.baseline_metric`) stops the chain
  with a one-line :class:`~kdistill.errors.TeacherAtBaseline` (the teacher folder is kept): a student distilled from
  it would learn nothing;
* a teacher whose held-out metric was still rising at its last evaluations gets a one-line warning (undertrained);
* after the student stage, a student significantly better than its teacher on dev (the report's paired test) gets a
  one-line warning too.

Warnings go to the ``kdistill`` logger and to :attr:`RunResult.warnings`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable, Sequence

from kdistill.config import ChainConfig, PretrainedStudent, RunConfig, TrainConfig
from kdistill.errors import KDistillError, TeacherAtBaseline
from kdistill.recipes.base import RunResult, run_recipe

log = logging.getLogger("kdistill")

#: The student's training settings that the teacher stage keeps (machine and bookkeeping, not optimisation).
CARRIED = ("seed", "mixed_precision", "eval_batch_size", "show_progress", "keep_checkpoint", "group_by_length",
           "max_grad_norm")


def teacher_train_config(cfg: ChainConfig) -> TrainConfig:
    """The teacher stage's engine settings: :class:`~kdistill.config.TeacherStageConfig`'s optimisation settings and the
    student's machine / bookkeeping ones (:data:`CARRIED`); nothing else of the student's (its learning rate, batch,
    epochs, schedules, ``max_steps`` ... belong to the student)."""
    t, s = cfg.teacher_stage, cfg.run.train
    return TrainConfig(epochs=t.epochs, batch_size=t.batch_size, learning_rate=t.learning_rate,
                       weight_decay=t.weight_decay, warmup_ratio=t.warmup_ratio, eval_steps=t.eval_steps,
                       early_stopping_patience=t.early_stopping_patience, **{k: getattr(s, k) for k in CARRIED})


def teacher_run_config(cfg: ChainConfig, teacher: str, tdir: Path) -> RunConfig:
    """The ``finetune`` run of the teacher stage (``RUN/teacher``)."""
    run = cfg.run
    return RunConfig(method="finetune", data=run.data, student=PretrainedStudent(path=teacher),
                     train=teacher_train_config(cfg), output_dir=str(tdir), overwrite=run.overwrite,
                     resume=run.resume and (tdir / "checkpoint").exists())


def write_record(cfg: ChainConfig, out: Path) -> None:
    """``RUN/kdistill_run.json``: the chain's config (kept as recorded on ``--resume``)."""
    from kdistill.rundir import RUN_FILE, write_atomically

    path = out / RUN_FILE
    if cfg.run.resume and path.exists():
        return
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(path, cfg.model_dump_json(indent=1))


def _held_out(data, splits, spec, seed: int) -> tuple[Any, str]:
    """The labels of the split the teacher stage was selected on, and its name in words."""
    if data.select_on == "holdout":
        from kdistill.data.selection import selection_split

        _, selection, _ = selection_split(data, splits["train"], spec, seed=seed)
        return list(selection["answers" if spec.qa else "label"]), "held-out selection slice"
    return list(splits["validation"]["answers" if spec.qa else "label"]), "dev split"


def check_teacher(cfg: ChainConfig, tdir: Path, splits, spec) -> dict[str, Any]:
    """How the teacher stage ended: ``{"metric", "baseline", "baseline_kind", "split", "values", "rising"}``.

    ``metric``: the kept teacher's held-out main metric (``train_results.json``: ``selection_eval``, else ``eval``;
    ``None`` when undefined). ``baseline``: the constant predictor's on the same rows (trained on the train split's
    labels). ``values``: the main metric at each evaluation; ``rising``: the last evaluations each improved on the one
    before and the last is the best (up to two steps looked at), i.e. training ended while the metric still rose.
    """
    import numpy as np

    from kdistill.reporting.stats import baseline_metric
    from kdistill.rundir import RunDir

    main = spec.main_metric
    results = json.loads((tdir / "train_results.json").read_text())
    held = results.get("selection_eval") or results.get("eval") or {}
    labels, split = _held_out(cfg.run.data, splits, spec, cfg.run.train.seed)
    base = baseline_metric(spec, labels, None) if spec.token_level or spec.qa else \
        baseline_metric(spec, np.asarray(labels), np.asarray(list(splits["train"]["label"])))
    state = RunDir(tdir).checkpoint_state() or {}
    values = [h[main] for h in state.get("history", []) if isinstance(h.get(main), (int, float))]
    steps = min(2, len(values) - 1)
    rising = steps >= 1 and all(values[-i] > values[-i - 1] for i in range(1, steps + 1)) and values[-1] >= max(values)
    step, total = state.get("global_step"), state.get("total_steps")
    early = bool(state.get("finished")) and isinstance(step, int) and isinstance(total, int) and step < total
    return {"metric": held.get(main), "metric_name": main, "baseline": float(base["metric"]), "baseline_kind": base["kind"],
            "split": split, "rows": len(labels), "values": values, "rising": rising,
            "stopped_early": f"step {step} of {total}" if early else None}


def _label_hint(spec, splits) -> str:
    import numpy as np

    if spec.token_level:
        return "check the tags (IOB2, --labels) and give the teacher more epochs: it finds no entity right"
    if spec.qa:
        return "check the answers (answer_start in characters) and give the teacher more epochs: it finds no answer"
    labels = np.asarray(list(splits["train"]["label"]))
    if spec.multi_label and labels.ndim == 2 and labels.size:
        share = labels.astype(np.float64).mean(axis=0)
        return (f"check the labels: the most frequent of the {labels.shape[1]} labels is on {100 * share.max():.1f} % of "
                "the train rows, and with labels this rare a teacher that predicts none scores like the baseline")
    if spec.is_regression:
        return "check the labels: --label-column must hold the scores (--problem-type regression)"
    return f"check the labels (--label-column, --labels: {spec.num_labels} classes)"


def at_baseline_message(check: dict[str, Any], cfg: ChainConfig, tdir: Path, spec, splits) -> str:
    """The one-line error of a teacher stage that ended at or below the baseline (advice that works: a new teacher
    stage with more epochs or a higher learning rate replaces the kept one under ``--overwrite``)."""
    t = cfg.teacher_stage
    name = check["metric_name"]
    value = "undefined" if check["metric"] is None else f"{check['metric']:.4f}"
    kind = check["baseline_kind"].replace(" ", "-")
    early = (f"; early stopping ended it at {check['stopped_early']}: --teacher-patience, this run: "
             f"{t.early_stopping_patience}" if check.get("stopped_early") else "")
    return (f"the fine-tuned teacher's {check['split']} {name} is {value}, not above the {kind} baseline's "
            f"{check['baseline']:.4f} on the same {check['rows']} rows: a student distilled from it would learn nothing, "
            f"so the run stops after the teacher stage (the teacher is kept in {tdir}). Run again with --overwrite and a "
            f"higher --teacher-lr (this run: {t.learning_rate:g}) or longer training (--teacher-epochs, this run: "
            f"{t.epochs:g}{early}), and {_label_hint(spec, splits)}")


def rising_message(check: dict[str, Any], cfg: ChainConfig) -> str:
    t = cfg.teacher_stage
    tail = " → ".join(f"{v:.4f}" for v in check["values"][-3:])
    return (f"the teacher's {check['split']} {check['metric_name']} was still rising when its {t.epochs:g}-epoch cap "
            f"ended ({tail} at the last evaluations): it is likely undertrained; a run with --overwrite and a larger "
            "--teacher-epochs trains it further (early stopping ends it once the metric stops rising)")


def student_beats_teacher(report: dict[str, Any] | None, *, fine_tuned: bool) -> str | None:
    """The one-line warning when the student is significantly better than its teacher on dev (the report's paired test
    at its interval level), else None."""
    if not report:
        return None
    d = report.get("difference")
    test = report.get("paired_test") or {}
    p = test.get("p_value")
    level = report.get("ci_level") or 0.95
    if not isinstance(d, (int, float)) or not isinstance(p, (int, float)) or d >= 0 or p >= 1 - level:
        return None
    from kdistill.results import fmt_num

    metric = report.get("metric_name", "metric")
    p_text = "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
    advice = ("a better teacher (a run with --overwrite and more --teacher-epochs or a higher --teacher-lr) should give "
              "a better student" if fine_tuned else "a better-trained teacher should give a better student")
    return (f"the student beats its teacher on dev ({metric} {fmt_num(report.get('student_metric'))} vs "
            f"{fmt_num(report.get('teacher_metric'))}, difference {-d:+.4f}, {p_text}, {test.get('name', 'paired test')}): "
            f"the teacher is likely undertrained; {advice}")


def _warn(message: str, warnings: list[str]) -> None:
    log.warning("%s", message)
    warnings.append(message)


def run_chain(cfg: ChainConfig, *, callbacks: Sequence[Callable] = (), latency_runs: int = 100,
              on_stage: Callable[[str, RunResult], None] | None = None) -> RunResult:
    """Run :class:`~kdistill.config.ChainConfig` (see the module docstring).

    ``on_stage(name, result)`` is called as each part ends (``"teacher"`` when it was fine-tuned, then ``"student"``).

    Raises:
        KDistillError: the output path is a file; any error of the two recipes.
        TeacherAtBaseline: the fine-tuned teacher's held-out metric is at or below the constant baseline's (one line
            with advice; the teacher folder is kept, no student is trained).
    """
    from kdistill.data.loading import load_data
    from kdistill.models import default_pretrained_model, has_trained_head

    run = cfg.run
    out = Path(run.output_dir)
    if out.exists() and not out.is_dir():
        raise KDistillError(f"output path '{out}' is a file; pass a directory")
    teacher = run.teacher or default_pretrained_model()
    splits, spec = load_data(run.data)
    warnings: list[str] = []
    fine_tuned = not has_trained_head(teacher, spec)
    if fine_tuned:
        tdir = out / "teacher"
        res = run_recipe(teacher_run_config(cfg, teacher, tdir), callbacks=callbacks, report=False)
        write_record(cfg, out)
        if on_stage is not None:
            on_stage("teacher", res)
        if res.interrupted:
            return res
        check = check_teacher(cfg, tdir, splits, spec)
        if check["metric"] is None or check["metric"] <= check["baseline"] + 1e-12:
            raise TeacherAtBaseline(at_baseline_message(check, cfg, tdir, spec, splits))
        if check["rising"]:
            _warn(rising_message(check, cfg), warnings)
        teacher = str(tdir)
    sdir = out / "student"
    scfg = run.model_copy(update={"teacher": teacher, "output_dir": str(sdir),
                                  "resume": run.resume and (sdir / "checkpoint").exists()})
    res = run_recipe(scfg, callbacks=callbacks, latency_runs=latency_runs)
    if not fine_tuned:
        write_record(cfg, out)
    if on_stage is not None:
        on_stage("student", res)
    beaten = student_beats_teacher(res.report, fine_tuned=fine_tuned)
    if beaten:
        _warn(beaten, warnings)
    res.warnings = [*getattr(res, "warnings", []), *warnings]
    return res
