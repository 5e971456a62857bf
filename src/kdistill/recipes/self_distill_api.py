"""Python API of self-distillation (flat keyword options → typed config → recipe), to be re-exported by
:mod:`kdistill.api` (it calls the recipes, so it lives with them: the import tiers put recipes above the library).

>>> from kdistill.recipes import self_distill_api as api
>>> res = api.early_exit("../shared/teachers/minilm-l6-sst2", "sst2", output_dir="runs/minilm-exits",
...                      data_dir="../shared/data/glue")                                  # doctest: +SKIP
>>> res.report["chosen"]["describe"], res.report["chosen"]["speedup_bs1"]               # doctest: +SKIP
>>> rec = api.born_again("../shared/teachers/minilm-l6-sst2", "sst2", base=BASE, generations=2,
...                      output_dir="runs/ban", data_dir="../shared/data/glue")         # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

from kdistill.config import merge
from kdistill.errors import KDistillError

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


__all__ = ["born_again", "born_again_config", "early_exit", "early_exit_config", "exit_pipeline", "exit_sweep",
           "export_early_exit"]
