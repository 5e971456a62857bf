"""A method as data (:class:`Recipe`), and :func:`run_recipe`, the one run lifecycle every method shares.

Lifecycle of a run, in order (bad input fails before anything is loaded or touched):

1. cheap checks: the output folder, the engine settings, the student kind, the recipe's own ``check``;
2. ``load``: data splits, teacher, student, tokenizer (a :class:`Prepared`); the folder is untouched;
3. the folder is prepared (every process checks, the main one creates it and writes ``kdistill_run.json``);
4. ``data``: tokenisation / augmentation (main process first, the others read its caches);
5. each :class:`Stage` in turn, through :func:`kdistill.engine.train` — a finished stage of a resumed
   run is not redone (its kept student is loaded), learned projections are saved beside each stage;
6. the final student, tokenizer and ``train_results.json`` at the run root; the report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from kdistill.config import TrainConfig
from kdistill.errors import KDistillError

if TYPE_CHECKING:  # the data package imports `datasets`: kept out of argument parsing
    from kdistill.data.tasks import TaskSpec

RECIPES: dict[str, "Recipe"] = {}


@dataclass
class RunResult:
    """Outcome of a training run (``finetune`` / ``distill`` / ``general_distill``)."""

    output_dir: Path
    metrics: dict[str, float | None]  # None: undefined on the reported split (train_results.json says why)
    train_seconds: float
    interrupted: bool = False
    report: dict[str, Any] | None = None
    files: dict[str, str] = field(default_factory=dict)
    teacher_cache_seconds: float = 0.0
    deployment: dict[str, Any] | None = None  # the ONNX export's record (``--deploy``)
    warnings: list[str] = field(default_factory=list)  # one-line warnings of the run (also logged), e.g. ``kdistill run``'s


@dataclass
class Prepared:
    """What a recipe's ``load`` (and ``data``) step gives its stages.

    ``cfg`` is the run config as recorded in ``kdistill_run.json`` (e.g. with the layers and heads an
    importance pass chose; a copy — the caller's config is never changed).
    """

    cfg: Any
    task: "TaskSpec | None"
    tokenizer: Any
    student: Any
    teacher: Any = None
    splits: Any = None
    train_ds: Any = None
    eval_ds: Any = None  # the split that chooses the kept student (dev, or a held-out train slice)
    report_ds: Any = None  # the reported split (dev), when it differs from eval_ds
    loader: Any = None
    fingerprint: str = ""
    teacher_view: Any = None  # the teacher's own tokenisation of the train split, when its tokenizer differs
    teacher_source: Any = None  # the teacher signal when it does not come from the teacher (a transfer set)
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Stage:
    """One call of the engine: its folder (``""`` = the run root), its objective and its engine settings."""

    name: str
    objective: Callable[[Prepared], Any]
    train: Callable[[Prepared], TrainConfig] = lambda p: p.cfg.train


@dataclass
class Recipe:
    """A method, described as data.

    Attributes:
        name: the ``method`` key (``RunConfig.method``).
        students: student kinds the method accepts (others fail in the cheap checks).
        check: cheap checks on the config, run before anything is loaded (raise :class:`KDistillError`).
        load: data splits and models → :class:`Prepared` (no file of the run is touched yet).
        stages: the engine calls, in order.
        data: tokenisation etc. after the folder is prepared (main process first).
        summary: extra fields of ``train_results.json``.
        report_extra: fields the report records (``None``: no teacher-vs-student report).
    """

    name: str
    students: tuple[str, ...]
    load: Callable[[Any], Prepared]
    stages: Callable[[Prepared], list[Stage]]
    check: Callable[[Any], None] = lambda cfg: None
    data: Callable[[Prepared, Any], None] = lambda prepared, procs: None
    summary: Callable[[Prepared, Any], dict] = lambda prepared, result: {}
    report_extra: Callable[[Prepared, Any], dict] | None = None
    student_kind_hint: str = ""


def register(recipe: Recipe) -> Recipe:
    """Add ``recipe`` to :data:`RECIPES` under its name (raises on a duplicate)."""
    if recipe.name in RECIPES:
        raise KDistillError(f"recipe '{recipe.name}' is registered twice")
    RECIPES[recipe.name] = recipe
    return recipe


def get_recipe(name: str) -> Recipe:
    """The registered recipe ``name`` (importing this module imports :mod:`kdistill.recipes`, which registers the
    built-in ones). Raises :class:`KDistillError` for an unknown method (the message lists the known ones)."""
    if name not in RECIPES:
        raise KDistillError(f"unknown method '{name}'; choose one of: {', '.join(sorted(RECIPES))}")
    return RECIPES[name]


def fingerprint(*parts: Any) -> str:
    """A short stable hash of JSON-able ``parts`` (keys of caches such as the teacher logits)."""
    import hashlib

    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _train_stage(stage: Stage, prepared: Prepared, sdir, *, resume: bool, callbacks: Sequence[Callable]):
    from kdistill.engine import train

    objective = stage.objective(prepared)
    data = getattr(prepared.cfg, "data", None)
    if data is not None and data.select_on == "last":
        objective.select_best = False  # the last student is the result; dev is only logged
    # multi-label: each evaluation on a held-out selection slice is scored at its best decision threshold
    objective.tune_threshold = data is not None and data.select_on == "holdout" and prepared.eval_ds is not None \
        and prepared.eval_ds is not prepared.report_ds
    result = train(student=prepared.student, objective=objective, train_ds=prepared.train_ds, eval_ds=prepared.eval_ds,
                   tokenizer=prepared.tokenizer, task=prepared.task, cfg=stage.train(prepared), output_dir=sdir,
                   teacher=prepared.teacher, loader=prepared.loader, resume=resume, callbacks=callbacks,
                   teacher_fingerprint=prepared.fingerprint, teacher_view=prepared.teacher_view,
                   teacher_source=stored_source(prepared.teacher_source, objective))
    return objective, result


def stored_source(source, objective):
    """``source`` (a transfer set's stored outputs) when it gives everything ``objective`` needs of the teacher
    (``source.provides``: logits, hidden states); else None: the engine runs the teacher (e.g. TinyBERT's intermediate
    stage needs attention, its prediction stage the logits alone)."""
    if source is None:
        return None
    needs = {"logits"} | ({"hidden_states"} if objective.needs_hidden_states else set()) | (
        {"attentions"} if objective.needs_attentions or objective.teacher_qkv_layer is not None else set())
    return source if needs <= source.provides else None


def run_recipe(cfg, *, recipe: Recipe | None = None, callbacks: Sequence[Callable] = (), report: bool = True,
               latency_runs: int = 100) -> RunResult:
    """Run ``cfg`` (a :class:`~kdistill.config.RunConfig` or another run config with ``method``) end to end.

    Everything that can be checked before training is checked first (data, models, vocabularies,
    output directory), so bad input fails in seconds with a one-line :class:`KDistillError` and no
    existing file is touched. See the module docstring for the lifecycle.
    """
    from kdistill.engine import check_train_config
    from kdistill.rundir import RunDir, process_state

    recipe = recipe or get_recipe(getattr(cfg.method, "name", cfg.method))
    run = RunDir(cfg.output_dir)
    inputs = run_inputs(cfg)
    run.check(overwrite=cfg.overwrite, resume=cfg.resume, inputs=inputs)  # cheapest checks first
    if cfg.resume and run.is_complete():
        res = finished_result(run)
        with run.lock():  # a run stopped in its output stage (--deploy) finishes that stage now
            res.deployment = finished_deployment(cfg, run)
        return res
    accepted = check_resume(run, cfg) if cfg.resume else []
    check_train_config(cfg.train)
    if cfg.student.kind not in recipe.students:
        raise KDistillError(f"method '{recipe.name}' takes a {' / '.join(recipe.students)} student, not "
                            f"{cfg.student.kind}{recipe.student_kind_hint}")
    recipe.check(cfg)
    # Seed before anything is built: a pretrained encoder without the task's head gets a fresh head here, and torch's
    # default generator starts from a random seed in each process (the run's seed would otherwise not fix the head).
    from accelerate.utils import set_seed

    set_seed(cfg.train.seed)
    prepared = recipe.load(cfg)
    procs = process_state()  # one process, or one of several under `accelerate launch`
    with run.lock(procs.is_main_process):
        return _run_locked(recipe, cfg, prepared, run, procs, inputs=inputs, accepted=accepted, callbacks=callbacks,
                           report=report, latency_runs=latency_runs)


def run_inputs(cfg) -> list[str]:
    """Every file or folder a run reads (teacher, data, student, vectors, text, caches): ``--overwrite`` never deletes them."""
    found = []

    def walk(obj):
        if isinstance(obj, dict):
            for k, v in obj.items():
                if k in INPUT_FIELDS and isinstance(v, str):
                    found.append(v)
                elif k in INPUT_FIELDS and isinstance(v, list):
                    found.extend(x for x in v if isinstance(x, str))
                else:
                    walk(v)

    walk(cfg.model_dump())
    return found


INPUT_FIELDS = frozenset({"teacher", "data_dir", "train_file", "validation_file", "path", "word_vectors", "text_files",
                          "cache_dir", "teacher_cache_file"})


def check_resume(run, cfg) -> list[str]:
    """Refuse a resume whose training settings differ from the run's (one line with the diff); return accepted changes."""
    from kdistill.rundir import resume_changes

    if not run.run_file.exists():
        return []
    refused, accepted = resume_changes(json.loads(run.run_file.read_text()), cfg)
    if refused:
        raise KDistillError(f"--resume: settings differ from the run's ({run.run_file.name}): {'; '.join(refused)}; "
                            "resume with the original settings, or start again with --overwrite")
    return accepted


def finished_result(run) -> RunResult:
    """A resumed run that had already finished: nothing is changed; its recorded results are returned."""
    import logging

    logging.getLogger("kdistill").warning("%s: the run had already finished; nothing was changed", run.path)
    results = json.loads(run.results_file.read_text())
    rep_file = run.path / "report.json"
    rep = json.loads(rep_file.read_text()) if rep_file.exists() else None
    return RunResult(run.path, results.get("eval", {}), float(results.get("train_seconds", 0.0)), report=rep,
                     files=run.files(), teacher_cache_seconds=float(results.get("teacher_cache_seconds", 0.0)))


def finished_deployment(cfg, run) -> dict | None:
    """The export record of a finished run's output stage (``--deploy``): the one on disk, or — when the run stopped
    before that stage completed (a kill, a crash) — a new export (:func:`deploy_stage`). None when not asked for."""
    ex = getattr(cfg, "export", None)
    if ex is None or ex.deploy == "none":
        return None
    record = run.path / "onnx" / "kdistill_export.json"
    if record.exists():
        return json.loads(record.read_text())
    import logging

    logging.getLogger("kdistill").warning("%s: the run finished training but not its --deploy stage; exporting now",
                                          run.path)
    return deploy_stage(cfg, run.path)


def _run_locked(recipe: Recipe, cfg, prepared: Prepared, run, procs, *, inputs, accepted, callbacks, report,
                latency_runs) -> RunResult:
    from safetensors.torch import load_model, save_file

    from kdistill.rundir import record_resume

    overwrite, resume = cfg.overwrite, cfg.resume
    if resume and run.never_checkpointed():  # decided under the lock: nothing in the folder can be resumed
        if procs.is_main_process:
            import logging

            logging.getLogger("kdistill").warning("%s: the run stopped before its first checkpoint; --resume starts it "
                                                  "again from the beginning", run.path)
        overwrite, resume = True, False
    run.prepare(prepared.cfg, overwrite=overwrite, resume=resume, procs=procs, inputs=inputs)
    if accepted and resume and procs.is_main_process:
        record_resume(run, accepted)
    if not resume and procs.is_main_process:  # the student's initialisation, recorded before the first step
        from kdistill.models import weights_sha256
        from kdistill.rundir import write_atomically

        write_atomically(run.init_file, json.dumps({"sha256": weights_sha256(prepared.student)}))
    with procs.main_process_first():  # the main process writes the caches, the others read them
        recipe.data(prepared, procs)
    stages = recipe.stages(prepared)
    result, seconds = None, 0.0
    for stage in stages:
        sdir = run.stage(stage.name)
        if stage is not stages[-1] and sdir.is_finished():  # a finished earlier stage: reuse its student
            load_model(prepared.student, str(sdir.best / "model.safetensors"), strict=False)
            seconds += float(sdir.checkpoint_state().get("train_seconds", 0.0))
            continue
        sdir.path.mkdir(parents=True, exist_ok=True)
        stage_resume = resume and (len(stages) == 1 or sdir.has_checkpoint())
        objective, result = _train_stage(stage, prepared, sdir, resume=stage_resume, callbacks=callbacks)
        seconds += result.train_seconds
        if result.interrupted:
            return RunResult(run.path, result.eval_metrics, seconds, interrupted=True)
        state = objective.projection_state()
        if state and procs.is_main_process:
            save_file(state, str(sdir.projections))
    if not procs.is_main_process:  # the main process writes the results
        return RunResult(run.path, result.eval_metrics, seconds)
    metrics = result.eval_metrics
    extra_results = {}
    if prepared.task is not None and hasattr(getattr(prepared.student, "config", None), "num_labels"):
        from kdistill.models import set_task_labels

        set_task_labels(prepared.student.config, prepared.task)  # the saved model says the run's task and labels
        threshold = choose_decision_threshold(prepared)
        if threshold is not None:
            extra_results["decision_threshold"] = threshold
    if prepared.report_ds is not None and prepared.report_ds is not prepared.eval_ds:  # chosen off the reported split
        from kdistill.engine import evaluate_model

        metrics = evaluate_model(prepared.student, prepared.report_ds, prepared.tokenizer, prepared.task,
                                 show_progress=False)
        extra_results["selection_eval"] = result.eval_metrics
    metrics, undefined = undefined_eval(prepared, metrics)
    init = json.loads(run.init_file.read_text())["sha256"] if run.init_file.exists() else None  # None: older run
    summary = {"method": recipe.name, "best_step": result.best_step, "global_step": result.global_step,
               "student_init_sha256": init, "train_seconds": seconds, "teacher_cache_seconds": result.teacher_cache_seconds,
               "eval": metrics, **extra_results, **recipe.summary(prepared, result)}
    if undefined:
        summary["undefined"] = undefined
    stored = summary.get("teacher_from_transfer_set")
    if stored is not None:  # no teacher weights: the retention against the teacher's metric in the set's manifest
        name = prepared.task.main_metric
        teacher_metric = (stored.get("teacher_dev_metrics") or {}).get(name)
        stored["retention"] = None if not teacher_metric or metrics.get(name) is None else metrics[name] / teacher_metric
    from kdistill.results import finite

    # strict JSON: a non-finite value becomes null, its path listed under "undefined"
    found: dict[str, str] = {}
    summary = finite(summary, found=found)
    if found:
        summary["undefined"] = {**found, **summary.get("undefined", {})}
    run.finish(prepared.student, prepared.tokenizer, summary)  # the engine loaded the best weights into the student
    if not cfg.train.keep_checkpoint:
        run.slim_checkpoints()  # a finished run needs no optimizer state (--keep-checkpoint keeps it)
    rep, files = None, {}
    if report and recipe.report_extra is not None and prepared.teacher is not None:
        from kdistill.reporting.compare import make_report

        extra = {"method": recipe.name, "train_seconds": round(seconds, 1), **recipe.report_extra(prepared, objective),
                 "loss_terms": objective.describe()}
        rep = make_report(teacher=cfg.teacher, student=str(run.path), data=cfg.data, output_dir=run.path,
                          student_metric=metrics.get(prepared.task.main_metric), latency_runs=latency_runs,
                          extra=extra)
        files = dict(rep.files)
    deployed = deploy_stage(cfg, run.path)
    if deployed is not None:
        files["onnx"] = deployed["output"]
    files.update(run.files())
    return RunResult(run.path, metrics, seconds, report=rep, files=files,
                     teacher_cache_seconds=result.teacher_cache_seconds, deployment=deployed)


def undefined_eval(prepared: Prepared, metrics: dict) -> tuple[dict, dict[str, str]]:
    """``metrics`` (of the reported split) with the ones undefined there set to None, and ``{"eval.<name>": reason}``.

    Only a correlation can be undefined (constant predictions or gold scores, :func:`kdistill.metrics.undefined_metrics`);
    so only a task with one (regression) costs a prediction pass of the kept student.
    """
    from kdistill.metrics import MAY_BE_UNDEFINED, undefined_metrics
    from kdistill.results import mark_undefined

    task = prepared.task
    ds = prepared.report_ds if prepared.report_ds is not None else prepared.eval_ds
    if task is None or ds is None or not metrics or not any(m in MAY_BE_UNDEFINED for m in task.metrics):
        return metrics, {}
    from kdistill.data.batching import eval_loader
    from kdistill.engine import predict

    logits, labels = predict(prepared.student, eval_loader(ds, prepared.tokenizer, batch_size=64), desc="check metrics",
                             show_progress=False)
    undefined: dict[str, str] = {}
    return mark_undefined(metrics, undefined_metrics(task, logits, labels), prefix="eval", undefined=undefined), undefined


def choose_decision_threshold(prepared: Prepared) -> dict | None:
    """A multi-label run's decision threshold, set on the kept student's config (``kdistill_threshold``, saved in its
    ``config.json``; :func:`kdistill.metrics.decision_threshold` reads it back for evaluate, report, export and the
    predictor).

    Chosen on the held-out selection slice (``--select-on holdout``, the default): the threshold of
    :data:`kdistill.metrics.THRESHOLD_GRID` with the best main metric there (:func:`kdistill.metrics.choose_threshold`).
    Without a selection slice (``--select-on dev`` / ``last``) it stays 0.5, said in a log line: one chosen on the
    reported split would flatter the report.

    Returns:
        ``{"value", "chosen_on", ...}`` for ``train_results.json``; None for a task that is not multi-label.
    """
    import logging

    from kdistill.metrics import DEFAULT_THRESHOLD, THRESHOLD_GRID, THRESHOLD_KEY, choose_threshold

    task, student = prepared.task, prepared.student
    if task is None or not task.multi_label:
        return None
    log = logging.getLogger("kdistill")
    if prepared.eval_ds is None or prepared.eval_ds is prepared.report_ds:
        setattr(student.config, THRESHOLD_KEY, DEFAULT_THRESHOLD)
        how = getattr(getattr(prepared.cfg, "data", None), "select_on", None)
        log.info("multi-label decision threshold: %.2f (no held-out selection slice with --select-on %s; a threshold "
                 "chosen on the reported split would flatter it)", DEFAULT_THRESHOLD, how)
        return {"value": DEFAULT_THRESHOLD, "chosen_on": f"none (--select-on {how}): the default"}
    from kdistill.data.batching import eval_loader
    from kdistill.engine import predict

    batch = getattr(getattr(prepared.cfg, "train", None), "eval_batch_size", 64)
    logits, labels = predict(student, eval_loader(prepared.eval_ds, prepared.tokenizer, batch_size=batch),
                             desc="choose threshold", show_progress=False)
    value, metrics = choose_threshold(task, logits, labels)
    setattr(student.config, THRESHOLD_KEY, value)
    log.info("multi-label decision threshold: %.2f, chosen on the selection slice (%s %.4f there; grid %.2f..%.2f)",
             value, task.main_metric, metrics[task.main_metric], THRESHOLD_GRID[0], THRESHOLD_GRID[-1])
    return {"value": value, "chosen_on": "selection slice", "grid": f"{THRESHOLD_GRID[0]:.2f}..{THRESHOLD_GRID[-1]:.2f} step 0.05",
            "selection_metrics": metrics, "stored_in": f"config.json {THRESHOLD_KEY}"}


def deploy_stage(cfg, student_dir: Path) -> dict | None:
    """The output stage (``--deploy fp32|int8``): the kept student exported to ONNX Runtime into ``<run>/onnx`` with
    :func:`kdistill.deploy.export.export_model` (parity-checked; int8 behind the ``max_drop`` gate, the mode chosen on
    the selection slice with ``quantize="auto"``). Returns the export's record, or None when not asked for.

    Raises:
        ModelError: the export was refused (the trained student is kept; export it later with ``kdistill export``).
    """
    ex = getattr(cfg, "export", None)
    if ex is None or ex.deploy == "none":
        return None
    from kdistill.deploy.export import export_model
    from kdistill.errors import ModelError

    out = Path(student_dir) / "onnx"
    try:
        return export_model(str(student_dir), out, data=cfg.data, quantize=ex.quantize if ex.deploy == "int8" else "none",
                            optimize=ex.optimize, max_drop=ex.max_drop, calibration_size=ex.calibration_size,
                            seed=cfg.train.seed, overwrite=True)
    except ModelError as err:
        raise ModelError(f"{err} (the trained student in {student_dir} is kept; export it with `kdistill export`)") from err
