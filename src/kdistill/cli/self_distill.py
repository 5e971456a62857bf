"""Self-distillation commands (born-again, early exits; registered on :data:`kdistill.cli.app`).

* ``kdistill early-exit`` — exits on a fine-tuned model, trained by self-distillation, then the threshold sweep;
* ``kdistill exit-sweep`` — the speed–accuracy sweep of a saved early-exit model (chosen on the selection slice);
* ``kdistill born-again`` — born-again students for N generations (Furlanello et al. 2018);
* ``kdistill export-early-exit`` — per-segment ONNX graphs + ONNX Runtime driver, parity-checked.

The logic is in :mod:`kdistill.recipes.self_distill_api`; these functions only parse options and print.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from kdistill.cli.options import DATA_SOURCE, config_options
from kdistill.config import DataConfig
from kdistill.cli.common import (app, ConfigOpt, DataDirOpt, EXIT_STOPPED, MaxEvalOpt, SelectionFileOpt,
                                 SelectionSizeOpt, SelectOnOpt, TaskOpt, ThreadsOpt, TrainFileOpt, user_errors,
                                 ValFileOpt, _floats, _given, _int_list, _setup_logging, _strs, _threads)


RulesOpt = typer.Option(None, "--rules", help="Exit rules to sweep, comma-separated: entropy (FastBERT/DeeBERT) | max_prob | patience (PABEE); default all three.")
EntropyOpt = typer.Option(None, "--entropy-thresholds", help="Normalised-entropy thresholds to sweep (exit below), e.g. 0.05,0.1,0.2.")
MaxProbOpt = typer.Option(None, "--max-prob-thresholds", help="Max-probability thresholds to sweep (exit at or above), e.g. 0.99,0.95,0.9.")
PatiencesOpt = typer.Option(None, "--patiences", help="PABEE patiences to sweep, e.g. 0,1,2 (default 0 .. exits-1).")
MaxDropOpt = typer.Option(None, "--max-drop", help="Choose the fastest setting whose selection-slice metric is at most this many points below full depth (default 1.0).")
LatencyExamplesOpt = typer.Option(None, "--latency-examples", help="Dev rows timed per setting (default 128).")
LatencyRoundsOpt = typer.Option(None, "--latency-rounds", help="Interleaved timing rounds (default 3).")
SweepBatchOpt = typer.Option(None, "--sweep-batch-size", help="The batched latency's batch size (default 32).")
TimedPointsOpt = typer.Option(None, "--timed-points", help="Settings per rule whose latency is measured, besides the chosen one (default 6).")


def _print_sweep(rep: dict, title: str) -> None:
    m, f, c = rep["metric_name"], rep["full"], rep.get("chosen")
    table = Table(title=title)
    for col in ("setting", f"sel {m}", f"dev {m}", "avg layer", "bs1 ms", "speedup bs1", f"bs{rep['latency_batch_size']} ms",
                "speedup batch"):
        table.add_column(col, justify="right" if col != "setting" else "left")
    table.add_row("full depth", f"{f['selection']['metric']:.4f}", f"{f['dev']['metric']:.4f}", f"{f['dev']['avg_layer']:.2f}",
                  f"{f['latency']['bs1_ms']:.2f}", "1.00×", f"{f['latency']['batch_ms']:.2f}", "1.00×")
    for p in rep["points"]:
        if "latency" not in p:
            continue
        name = p["describe"] + (" [bold](chosen)[/]" if c is not None and p["describe"] == c["describe"] else "")
        table.add_row(name, f"{p['selection']['metric']:.4f}", f"{p['dev']['metric']:.4f}", f"{p['dev']['avg_layer']:.2f}",
                      f"{p['latency']['bs1_ms']:.2f}", f"{p['speedup_bs1']:.2f}×", f"{p['latency']['batch_ms']:.2f}",
                      f"{p['speedup_batch']:.2f}×")
    Console().print(table)
    if c is None:
        Console().print(f"no setting keeps the selection {m} within {rep['max_drop_points']} points: keep full depth")
    else:
        Console().print(f"chosen on the selection slice: [bold]{c['describe']}[/] — dev {m} {c['dev']['metric']:.4f} "
                        f"({100 * c['dev_retention']:.1f} % of full depth), {c['speedup_bs1']:.2f}× at batch 1, "
                        f"{c['speedup_batch']:.2f}× at batch {rep['latency_batch_size']}")


@app.command("early-exit")
@config_options("data", (DataConfig, (*DATA_SOURCE, "max_train_samples", "max_eval_samples", "max_length")))
def early_exit(
    num_threads: Optional[int] = ThreadsOpt,
    config: Optional[Path] = ConfigOpt,
    model: Optional[str] = typer.Option(None, "--model", help="A classifier fine-tuned on the task (the teacher itself or any student, pruned ones too) that gets the exits; required unless --config names it."),
    task: Optional[str] = TaskOpt,
    exit_every: Optional[int] = typer.Option(None, "--exit-every", help="An exit after every k-th encoder layer below the last (default 1: after each)."),
    exit_layers: Optional[str] = typer.Option(None, "--exit-layers", help="Or the 1-based layers that get an exit, e.g. 2,4."),
    pooling: Optional[str] = typer.Option(None, "--pooling", help="Exit input: mean (masked mean of the layer's tokens; default) | cls (first token)."),
    schedule: Optional[str] = typer.Option(None, "--schedule", help="frozen (FastBERT's two-step: only the exits train; default) | joint (exits and backbone, weighted sum over exits + final gold CE)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", "-T", help="Soft-target temperature of the exits' T²·KL to the final layer (default 2)."),
    gold_weight: Optional[float] = typer.Option(None, "--gold-weight", help="Share β of gold CE in each exit's loss: (1-β)·KD + β·CE (default 0)."),
    weighting: Optional[str] = typer.Option(None, "--weighting", help="Exit weights of the sum: uniform (default) | depth (w_k ∝ k, PABEE)."),
    final_weight: Optional[float] = typer.Option(None, "--final-weight", help="joint: weight of the final layer's gold CE (default 1)."),
    exit_dropout: Optional[float] = typer.Option(None, "--exit-dropout", help="Dropout in the exit heads (default the model's hidden dropout)."),
    epochs: Optional[float] = typer.Option(None, "--epochs", help="Default 2."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    learning_rate: Optional[float] = typer.Option(None, "--learning-rate", "--lr", help="Default 5e-4 frozen (heads only), 5e-5 joint."),
    eval_steps: Optional[int] = typer.Option(None, "--eval-steps"),
    seed: Optional[int] = typer.Option(None, "--seed"),
    select_on: Optional[str] = SelectOnOpt,
    selection_size: Optional[int] = SelectionSizeOpt,
    selection_file: Optional[str] = SelectionFileOpt,
    sweep: bool = typer.Option(True, "--sweep/--no-sweep", help="Run the threshold sweep after training (default on)."),
    rules: Optional[str] = RulesOpt,
    entropy_thresholds: Optional[str] = EntropyOpt,
    max_prob_thresholds: Optional[str] = MaxProbOpt,
    patiences: Optional[str] = PatiencesOpt,
    max_drop: Optional[float] = MaxDropOpt,
    latency_examples: Optional[int] = LatencyExamplesOpt,
    latency_rounds: Optional[int] = LatencyRoundsOpt,
    sweep_batch_size: Optional[int] = SweepBatchOpt,
    timed_points: Optional[int] = TimedPointsOpt,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Run directory (the early-exit model, sweep.{json,md,png}); required unless --config names one."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty output directory made by kdistill."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUTPUT/checkpoint."),
    data: Optional[dict] = None,
) -> None:
    """Early exits trained by self-distillation (each exit learns the final layer's soft targets), then the sweep."""
    _setup_logging()
    _threads(num_threads)
    from kdistill.recipes import self_distill_api as api

    with user_errors():
        res = api.early_exit(
            model, task, output_dir=output, overwrite=overwrite, resume=resume, run_sweep=sweep, config=config,
            **_given(exit_every=exit_every, exit_layers=_int_list(exit_layers, "--exit-layers"), pooling=pooling,
                     schedule=schedule, temperature=temperature, gold_weight=gold_weight, weighting=weighting,
                     final_weight=final_weight, exit_dropout=exit_dropout, epochs=epochs, batch_size=batch_size,
                     learning_rate=learning_rate, eval_steps=eval_steps, seed=seed, select_on=select_on,
                     selection_size=selection_size, selection_file=selection_file, rules=_strs(rules),
                     entropy_thresholds=_floats(entropy_thresholds, "--entropy-thresholds"),
                     max_prob_thresholds=_floats(max_prob_thresholds, "--max-prob-thresholds"),
                     patiences=_int_list(patiences, "--patiences"), max_drop=max_drop, latency_examples=latency_examples,
                     latency_rounds=latency_rounds, sweep_batch_size=sweep_batch_size, timed_points=timed_points),
            **data,
        )
    if res.interrupted:
        Console().print(f"[yellow]stopped[/]; continue with --resume ({res.output_dir})")
        raise typer.Exit(EXIT_STOPPED)
    Console().print(f"early-exit model in {res.output_dir}: full-depth dev "
                    + ", ".join(f"{k} {'n/a' if v is None else f'{v:.4f}'}" for k, v in res.metrics.items()))
    if res.report:
        _print_sweep(res.report, f"kdistill early-exit sweep: {res.output_dir}")


@app.command("exit-sweep")
def exit_sweep(
    num_threads: Optional[int] = ThreadsOpt,
    model: str = typer.Option(..., "--model", help="A saved early-exit model (a `kdistill early-exit` run folder: its data settings and seed are reused)."),
    task: Optional[str] = typer.Option(None, "--task", help="Default: the run's (else sst2)."),
    data_dir: Optional[str] = DataDirOpt,
    train_file: Optional[str] = TrainFileOpt,
    validation_file: Optional[str] = ValFileOpt,
    max_eval_samples: Optional[int] = MaxEvalOpt,
    select_on: Optional[str] = SelectOnOpt,
    seed: Optional[int] = typer.Option(None, "--seed", help="The seed that drew the selection slice (default: the run's)."),
    rules: Optional[str] = RulesOpt,
    entropy_thresholds: Optional[str] = EntropyOpt,
    max_prob_thresholds: Optional[str] = MaxProbOpt,
    patiences: Optional[str] = PatiencesOpt,
    max_drop: Optional[float] = MaxDropOpt,
    latency_examples: Optional[int] = LatencyExamplesOpt,
    latency_rounds: Optional[int] = LatencyRoundsOpt,
    sweep_batch_size: Optional[int] = SweepBatchOpt,
    timed_points: Optional[int] = TimedPointsOpt,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Where sweep.{json,md,png} go (default: the model's folder)."),
) -> None:
    """Speed–accuracy sweep of exit rules: dev metric, average exit layer, measured batch-1 / batch-32 latency; the
    fastest setting within --max-drop chosen on the held-out selection slice."""
    _setup_logging()
    _threads(num_threads)
    from kdistill.recipes import self_distill_api as api

    with user_errors():
        rep = api.exit_sweep(
            model, task, output_dir=output, seed=seed,
            **_given(data_dir=data_dir, train_file=train_file, validation_file=validation_file,
                     max_eval_samples=max_eval_samples, select_on=select_on, rules=_strs(rules),
                     entropy_thresholds=_floats(entropy_thresholds, "--entropy-thresholds"),
                     max_prob_thresholds=_floats(max_prob_thresholds, "--max-prob-thresholds"),
                     patiences=_int_list(patiences, "--patiences"), max_drop=max_drop, latency_examples=latency_examples,
                     latency_rounds=latency_rounds, sweep_batch_size=sweep_batch_size, timed_points=timed_points))
    _print_sweep(rep, f"kdistill exit-sweep: {model}")


@app.command("born-again")
@config_options("data", (DataConfig, (*DATA_SOURCE, "max_train_samples", "max_eval_samples", "max_length")))
def born_again(
    num_threads: Optional[int] = ThreadsOpt,
    config: Optional[Path] = ConfigOpt,
    teacher: Optional[str] = typer.Option(None, "--teacher", help="Teacher fine-tuned on the task; required unless --config names it."),
    base: Optional[str] = typer.Option(None, "--base", help="The pretrained model the teacher was fine-tuned from (same architecture): every generation starts from it."),
    generations: Optional[int] = typer.Option(None, "--generations", min=1, help="Generations; each learns from the one before (default 2, or the config file's)."),
    ensemble_teacher: bool = typer.Option(False, "--ensemble-teacher", help="Generation k >= 2 learns from the mean logits of the teacher and all earlier generations."),
    task: Optional[str] = TaskOpt,
    temperature: Optional[float] = typer.Option(None, "--temperature", "-T", help="Soft-target temperature (default 1, the paper's)."),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="Weight of the gold-label loss (default 0: the teacher's distribution only, the paper's)."),
    kd_loss: Optional[str] = typer.Option(None, "--kd-loss", help="kl | mse."),
    cos_weight: Optional[float] = typer.Option(None, "--cos-weight", help="DistilBERT's hidden-state cosine (same width here)."),
    epochs: Optional[float] = typer.Option(None, "--epochs"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    learning_rate: Optional[float] = typer.Option(None, "--learning-rate", "--lr"),
    eval_steps: Optional[int] = typer.Option(None, "--eval-steps"),
    seed: Optional[int] = typer.Option(None, "--seed"),
    select_on: Optional[str] = SelectOnOpt,
    selection_size: Optional[int] = SelectionSizeOpt,
    selection_file: Optional[str] = SelectionFileOpt,
    report: bool = typer.Option(False, "--report/--no-report", help="Each generation's full teacher-vs-student report too (slow)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Folder of gen1/, gen2/ ... and born_again.{json,md}; required unless --config names one."),
    overwrite: bool = typer.Option(False, "--overwrite"),
    resume: bool = typer.Option(False, "--resume", help="Reuse finished generations, resume an interrupted one (more --generations may be added)."),
    data: Optional[dict] = None,
) -> None:
    """Born-again networks: same-size students from the teacher's pretrained base, generation after generation."""
    _setup_logging()
    _threads(num_threads)
    from kdistill.recipes import self_distill_api as api

    with user_errors():
        rec = api.born_again(
            teacher, task, base=base, output_dir=output, generations=generations, ensemble_teacher=ensemble_teacher,
            overwrite=overwrite, resume=resume, report=report, config=config,
            **_given(temperature=temperature, alpha=alpha, kd_loss=kd_loss, cos_weight=cos_weight, epochs=epochs,
                     batch_size=batch_size, learning_rate=learning_rate, eval_steps=eval_steps, seed=seed,
                     select_on=select_on, selection_size=selection_size, selection_file=selection_file),
            **data,
        )
    m = rec["metric_name"]
    table = Table(title=f"kdistill born-again: {rec['output_dir']}")
    for col in ("model", f"dev {m}", "− teacher (points, 95% CI)", "p"):
        table.add_column(col, justify="right" if col != "model" else "left")
    table.add_row("teacher", f"{rec['teacher_metric']:.4f}", "", "")
    rows = [(f"generation {g['generation']}", g) for g in rec["generations"]]
    if rec.get("ensemble"):
        rows.append(("ensemble of generations", rec["ensemble"]))
    for name, g in rows:
        d = g["minus_teacher"]
        table.add_row(name, f"{g['dev_metric']:.4f}", f"{100 * d['difference']:+.2f} [{100 * d['ci'][0]:+.2f}, "
                      f"{100 * d['ci'][1]:+.2f}]", f"{d['p_value']:.3f}")
    Console().print(table)
    if rec["interrupted"]:
        Console().print("[yellow]stopped[/]; continue with --resume")
        raise typer.Exit(EXIT_STOPPED)


@app.command("export-early-exit")
def export_early_exit(
    num_threads: Optional[int] = ThreadsOpt,
    model: str = typer.Option(..., "--model", help="A saved early-exit model (default rule: its sweep's chosen setting, else its config's)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for segment_*.onnx, early_exit.json, tokenizer and config."),
    rule: Optional[str] = typer.Option(None, "--rule", help="none | entropy | max_prob | patience (the driver's default)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="entropy / max_prob threshold."),
    patience: Optional[int] = typer.Option(None, "--patience", help="patience rule's patience."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier early-exit export."),
) -> None:
    """Export an early-exit model to ONNX Runtime as per-segment graphs (embeddings + layers up to each exit, the exit
    head), run by a driver that keeps exiting; parity-checked against PyTorch."""
    _setup_logging()
    _threads(num_threads)
    from kdistill.recipes import self_distill_api as api

    with user_errors():
        man = api.export_early_exit(model, output, rule=rule, threshold=threshold, patience=patience, overwrite=overwrite)
    sys.stdout.write(json.dumps({"output": str(output), "segments": [s["file"] for s in man["segments"]],
                                 "rule": man["rule"], "parity": man["parity"]}, indent=1) + "\n")
