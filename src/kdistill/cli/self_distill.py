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

from kdistill.cli.options import DATA_SOURCE, config_options
from kdistill.config import BornAgainConfig, DataConfig, EarlyExitRunConfig, ExitConfig, SweepConfig
from kdistill.cli.common import (app, ConfigOpt, EXIT_STOPPED, OverwriteOpt, ResumeOpt, ThreadsOpt, user_errors,
                                 _start)

#: The selection split and the data of a self-distillation run.
DATA = (DataConfig, (*DATA_SOURCE, "max_train_samples", "max_eval_samples", "max_length", "select_on",
                     "selection_size", "selection_file"))
#: The sweep's settings (``--sweep-batch-size``: the sweep's batch beside the engine's).
SWEEP = (SweepConfig, ("rules", "entropy_thresholds", "max_prob_thresholds", "patiences", "max_drop", "latency_examples",
                       "latency_rounds", "batch_size", "timed_points"))
#: Engine settings: the defaults of each command's own ``train`` section.
EXIT_TRAIN = EarlyExitRunConfig.model_fields["train"].get_default(call_default_factory=True)
TRAIN_FIELDS = ("epochs", "batch_size", "learning_rate", "eval_steps", "seed")


@app.command("early-exit")
@config_options("options", DATA, (ExitConfig, ("every", "layers", "pooling", "schedule", "temperature", "gold_weight",
                                               "weighting", "final_weight", "dropout")),
                (EXIT_TRAIN, TRAIN_FIELDS), SWEEP,
                helps={"learning_rate": "Default 5e-4 frozen (heads only), 5e-5 joint."})
def early_exit(
    num_threads: Optional[int] = ThreadsOpt,
    config: Optional[Path] = ConfigOpt,
    model: Optional[str] = typer.Option(None, "--model", help="A classifier fine-tuned on the task (the teacher itself or any student, pruned ones too) that gets the exits; required unless --config names it."),
    task: Optional[str] = typer.Option(None, "--task", help=DataConfig.model_fields["task"].description),
    sweep: bool = typer.Option(True, "--sweep/--no-sweep", help="Run the threshold sweep after training (default on)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Run directory (the early-exit model, sweep.{json,md,png}); required unless --config names one."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty output directory made by kdistill."),
    resume: bool = ResumeOpt,
    options: Optional[dict] = None,
) -> None:
    """Early exits trained by self-distillation (each exit learns the final layer's soft targets), then the sweep."""
    _start(num_threads)
    from kdistill.recipes import self_distill_api as api

    with user_errors():
        res = api.early_exit(model, task, output_dir=output, overwrite=overwrite, resume=resume, run_sweep=sweep,
                             config=config, **options)
    if res.interrupted:
        Console().print(f"[yellow]stopped[/]; continue with --resume ({res.output_dir})")
        raise typer.Exit(EXIT_STOPPED)
    Console().print(f"early-exit model in {res.output_dir}: full-depth dev "
                    + ", ".join(f"{k} {'n/a' if v is None else f'{v:.4f}'}" for k, v in res.metrics.items()))
    if res.report:
        from kdistill.reporting.console import print_sweep

        print_sweep(res.report, f"kdistill early-exit sweep: {res.output_dir}")


@app.command("exit-sweep")
@config_options("options", (DataConfig, (*DATA_SOURCE, "max_eval_samples", "select_on")), SWEEP)
def exit_sweep(
    num_threads: Optional[int] = ThreadsOpt,
    model: str = typer.Option(..., "--model", help="A saved early-exit model (a `kdistill early-exit` run folder: its data settings and seed are reused)."),
    task: Optional[str] = typer.Option(None, "--task", help="Default: the run's (else sst2)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="The seed that drew the selection slice (default: the run's)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Where sweep.{json,md,png} go (default: the model's folder)."),
    options: Optional[dict] = None,
) -> None:
    """Speed–accuracy sweep of exit rules: dev metric, average exit layer, measured batch-1 / batch-32 latency; the
    fastest setting within --max-drop chosen on the held-out selection slice."""
    _start(num_threads)
    from kdistill.recipes import self_distill_api as api

    with user_errors():
        rep = api.exit_sweep(model, task, output_dir=output, seed=seed, **options)
    from kdistill.reporting.console import print_sweep

    print_sweep(rep, f"kdistill exit-sweep: {model}")


@app.command("born-again")
@config_options("options", DATA, (BornAgainConfig, ("generations", "ensemble_teacher")),
                (BornAgainConfig.model_fields["distill"].get_default(), ("temperature", "alpha", "kd_loss", "cos_weight")),
                (BornAgainConfig.model_fields["train"].get_default(), TRAIN_FIELDS))
def born_again(
    num_threads: Optional[int] = ThreadsOpt,
    config: Optional[Path] = ConfigOpt,
    teacher: Optional[str] = typer.Option(None, "--teacher", help="Teacher fine-tuned on the task; required unless --config names it."),
    base: Optional[str] = typer.Option(None, "--base", help="The pretrained model the teacher was fine-tuned from (same architecture): every generation starts from it."),
    task: Optional[str] = typer.Option(None, "--task", help=DataConfig.model_fields["task"].description),
    report: bool = typer.Option(False, "--report/--no-report", help="Each generation's full teacher-vs-student report too (slow)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Folder of gen1/, gen2/ ... and born_again.{json,md}; required unless --config names one."),
    overwrite: bool = OverwriteOpt,
    resume: bool = typer.Option(False, "--resume", help="Reuse finished generations, resume an interrupted one (more --generations may be added)."),
    options: Optional[dict] = None,
) -> None:
    """Born-again networks: same-size students from the teacher's pretrained base, generation after generation."""
    _start(num_threads)
    from kdistill.recipes import self_distill_api as api

    options.setdefault("generations", None)  # not given: the file's, else 2
    with user_errors():
        rec = api.born_again(teacher, task, base=base, output_dir=output, overwrite=overwrite, resume=resume,
                             report=report, config=config, **options)
    from kdistill.reporting.console import print_generations

    print_generations(rec)
    if rec["interrupted"]:
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
    _start(num_threads)
    from kdistill.recipes import self_distill_api as api

    with user_errors():
        man = api.export_early_exit(model, output, rule=rule, threshold=threshold, patience=patience, overwrite=overwrite)
    sys.stdout.write(json.dumps({"output": str(output), "segments": [s["file"] for s in man["segments"]],
                                 "rule": man["rule"], "parity": man["parity"]}, indent=1) + "\n")
