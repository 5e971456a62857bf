"""``kdistill search``: hyper-parameter search of a distillation run with Optuna (Akiba et al. 2019).

How a search runs:

* **Sampler**: TPE (Bergstra et al. 2011; multi-objective TPE with a latency objective) seeded per trial with
  ``sampler_seed + number of finished trials``, so a resumed search draws what an uninterrupted one would have drawn.
  The first ``startup_trials`` trials are random (TPE's start-up).
* **Trials** are normal kdistill run folders (``trials/trial_NNN``) run by the one engine; each is scored on the
  held-out selection slice of the train split and never evaluates the dev split (:mod:`kdistill.search.trial`).
  Every trial trains with the base run's seed (``trial_seed="same"``: the trials differ by their settings only) or
  with ``seed + trial number`` (``"per-trial"``); either way the seed is recorded in the trial's config.
* **Pruning** (single objective): the trial's evaluations on the selection slice are reported to Optuna as they happen
  (an engine callback); a trial the pruner (median rule, or successive halving) stops checkpoints and ends as
  ``pruned``. Pruning needs several evaluations per trial: set ``eval_steps``.
* **Storage**: ``study.db`` (SQLite) in the search folder. ``resume=True`` continues: finished trials are never run
  again; a trial that was interrupted (Ctrl-C, SIGTERM, a kill) is run again with the same settings, continuing its
  run folder from its last checkpoint.
* **Outputs** after each trial: ``trials.{json,csv,md}``, ``search.png``; at the end ``best_trial.json`` (the best
  trial's exact config), ``best_config.json`` (the best settings on the base run's full length: what
  ``kdistill distill --config best_config.json`` re-runs exactly) and, with ``final=True``, that run in ``final/``
  with the usual report — the only time the dev split is evaluated — and ``search_results.json``.

Objectives: ``metric`` (the task's main metric, maximised) or ``metric-latency`` (metric maximised, the trained
student's latency in ms on this machine minimised, :mod:`kdistill.provision.latency`; the Pareto front is reported
and the chosen trial is the front's best metric within ``latency_budget_ms``, or overall without a budget).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from kdistill.config import RunConfig
from kdistill.errors import KDistillError, TrainingDiverged
from kdistill.search.outputs import plot_search, trial_rows, write_tables
from kdistill.search.space import SearchSpace, apply_params, build_space, suggest
from kdistill.search.trial import SCORED_ON, check_scorable, prepare_run_dir, run_scored, with_updates

STUDY_NAME = "kdistill-search"
SEARCH_FILE = "search.json"
LOG = logging.getLogger("kdistill")


class SearchConfig(BaseModel):
    """Everything that defines a search (written to ``search.json``; a resume must match it).

    ``base``: the run every trial starts from (its ``output_dir`` is where the final run goes). ``n_trials``: trials
    to finish (complete, pruned, diverged). ``trial_epochs`` / ``trial_max_steps``: shorter trials than the base run
    (the final run has the base length). ``runtime`` / ``latency_batch_size`` / ``latency_runs``: how a latency
    objective measures (ms). ``latency_budget_ms``: which Pareto trial is chosen.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    base: RunConfig = Field(description=(
        "The run every trial starts from (the options of kdistill distill, or --config FILE with the options over "
        "it); its output_dir is where the final run goes (OUTPUT/final), its length the final run's."))
    space: SearchSpace = Field(description=(
        "The settings a trial draws and their ranges (--param, --params, --space); every other setting is the base "
        "run's."))
    n_trials: int = Field(default=20, ge=1, description="Trials to finish (complete, pruned or diverged).")
    objective: Literal["metric", "metric-latency"] = Field(default="metric", description=(
        "metric (the task's main metric on the selection slice) | metric-latency (and the measured latency of the "
        "trained student: Pareto front)."))
    sampler_seed: int = Field(default=0, ge=0, description="Seed of the TPE sampler.")
    startup_trials: int | None = Field(default=None, ge=0, description=(
        "Random trials before TPE takes over (default min(10, max(1, trials/3)))."))
    pruner: Literal["median", "halving", "none"] = Field(default="median", description=(
        "median (stop a trial below the median of earlier ones at the same step) | halving (successive halving) | "
        "none."))
    prune_startup_trials: int = Field(default=2, ge=0, description=(
        "median pruner: trials that finish before any is pruned."))
    trial_epochs: float | None = Field(default=None, gt=0, description=(
        "Shorter trials: epochs per trial (the final run keeps --epochs)."))
    trial_max_steps: int | None = Field(default=None, ge=1, description="Shorter trials: optimizer steps per trial.")
    trial_seed: Literal["same", "per-trial"] = Field(default="same", description=(
        "same (every trial trains with --seed: trials differ only by their settings) | per-trial (--seed + trial "
        "number)."))
    runtime: Literal["eager", "ort", "ort-int8"] = Field(default="eager", description=(
        "metric-latency: eager | ort | ort-int8, on this machine."))
    latency_batch_size: int = Field(default=1, ge=1, description=(
        "metric-latency: inputs per timed call of the trained student (not the training batch)."))
    latency_runs: int = Field(default=30, ge=1, description="metric-latency: timed forward passes per trial.")
    latency_budget_ms: float | None = Field(default=None, gt=0, description=(
        "metric-latency: choose the Pareto trial with the best metric within this many ms."))
    final: bool = Field(default=True, description=(
        "Train the best settings at the base length into OUTPUT/final and report dev (once)."))
    output_dir: str = Field(description=(
        "Search folder (study.db, trials/, trials.csv, search.png, best_config.json, final/)."))

    #: Fields a resumed search may change.
    MUTABLE: ClassVar[frozenset] = frozenset({"n_trials", "final", "latency_budget_ms", "latency_runs", "output_dir"})


@dataclass
class SearchResult:
    """What :func:`search` returns. ``best_value``: the chosen trial's selection metric (not dev); ``final``: the
    final run (its ``metrics`` are the dev metrics, reported once); ``rows``: the trials table."""

    output_dir: Path
    best_trial: int | None
    best_params: dict[str, Any]
    best_value: float | None
    rows: list[dict[str, Any]]
    pareto: list[int] = field(default_factory=list)
    best_latency_ms: float | None = None
    final: Any = None
    files: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False


class _Interrupted(Exception):
    """A trial's run was stopped (Ctrl-C, SIGTERM, a callback): the search stops, resumable."""


class _Invalid(Exception):
    """The drawn settings make no valid student (e.g. a hidden size that the heads do not divide)."""


# --------------------------------------------------------------------------- building the configs
def base_run_config(teacher: str | None = None, task: str | None = None, student: str | None = None, *,
                    output_dir: str | Path, config: str | Path | None = None, method: str | None = None,
                    **options: Any) -> RunConfig:
    """The base run of a search (or of provisioning) from flat options (as :func:`kdistill.distill` takes them) or a
    config file (``config``: YAML/JSON such as a run's ``kdistill_run.json``; the given options replace its values).

    ``None`` task / student / method / options are "not given" (:func:`kdistill.config.merge`: a file's value, else the
    default; your own files without a task mean no task).

    Raises:
        KDistillError: no teacher given nor in the file; see :func:`kdistill.config.merge`.
    """
    from kdistill.config import merge

    if config is None and not teacher:
        raise KDistillError("needs --teacher (a model fine-tuned on the task), or a --config file that names it")
    return merge(RunConfig, config, teacher=teacher or None, task=task, student=student, method=method,
                 output_dir=str(output_dir), **options)


def trial_config(scfg: SearchConfig, values: dict[str, Any], *, seed: int, output_dir: str | Path,
                 teacher_layers: int | None = None, full_length: bool = False) -> RunConfig:
    """The run config of one trial: the base run, the drawn ``values``, the trial length (unless ``full_length``),
    ``seed``, progress bars off, the teacher-logit cache shared in the search folder (unless the base names one)."""
    cfg = apply_params(scfg.base, values, teacher_layers=teacher_layers)
    train: dict[str, Any] = {"seed": int(seed)}
    if not full_length:
        train["show_progress"] = False
        if scfg.trial_max_steps is not None:
            train["max_steps"] = scfg.trial_max_steps
        elif scfg.trial_epochs is not None:
            train.update(epochs=scfg.trial_epochs, max_steps=None)
    if cfg.train.teacher_cache_file is None:
        train["teacher_cache_file"] = str(Path(scfg.output_dir).resolve() / "teacher_logits")
    return with_updates(cfg, train=train, output_dir=str(output_dir), overwrite=False, resume=False)


def _teacher_layers(cfg: RunConfig, space: SearchSpace) -> int | None:
    if "num_layers" not in space.params or cfg.student.kind != "layers-from-teacher":
        return None
    from transformers import AutoConfig

    from kdistill.errors import ModelError
    from kdistill.students.transformer import num_layers

    try:
        return num_layers(AutoConfig.from_pretrained(cfg.teacher))
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot read the teacher's config from '{cfg.teacher}' ({str(err).splitlines()[0][:160]})") from None


def _check_shape(cfg: RunConfig) -> None:
    sc = cfg.student
    if sc.kind == "spec" and sc.hidden_size % sc.num_heads:
        raise _Invalid(f"hidden size {sc.hidden_size} is not divisible by {sc.num_heads} heads")


# --------------------------------------------------------------------------- the folder
def _prepare_folder(out: Path, scfg: SearchConfig, *, resume: bool, overwrite: bool, dry: bool = False) -> None:
    """Check the search folder (``dry``: only check, touch nothing), then clear it (``overwrite``) and write
    ``search.json``. Raises a one-line :class:`KDistillError` for a folder that cannot be used."""
    from kdistill.recipes.base import run_inputs
    from kdistill.locks import LOCK_FILE, refuse_if_in_use

    marker = out / SEARCH_FILE
    if out.exists() and not out.is_dir():
        raise KDistillError(f"search folder '{out}' is a file; pass a directory")
    if resume:
        if not marker.exists():
            raise KDistillError(f"--resume: '{out}' holds no search ({SEARCH_FILE}); run without --resume")
        old = SearchConfig.model_validate_json(marker.read_text())
        diffs = _differences(old, scfg)
        if diffs:
            raise KDistillError(f"--resume: the search settings differ from the search's ({SEARCH_FILE}): "
                                f"{'; '.join(diffs[:6])}; resume with the original settings, or start again with --overwrite")
        if not dry:
            marker.write_text(scfg.model_dump_json(indent=1) + "\n")
        return
    if out.exists() and any(p.name != LOCK_FILE for p in out.iterdir()):
        refuse_if_in_use(out)
        if not overwrite:
            raise KDistillError(f"search folder '{out}' is not empty; pass --overwrite to replace it or --resume to continue")
        if not marker.exists():
            raise KDistillError(f"--overwrite: '{out}' was not made by kdistill search (no {SEARCH_FILE}); "
                                "kdistill deletes only its own folders: choose another --output")
        root = out.resolve()
        for item in run_inputs(scfg.base):
            p = Path(item).expanduser()
            if p.exists() and (p.resolve() == root or root in p.resolve().parents):
                raise KDistillError(f"--overwrite: '{out}' holds '{item}', an input of the search; choose another --output")
        if dry:
            return
        for p in out.iterdir():
            if p.name != LOCK_FILE:
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    if dry:
        return
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(scfg.model_dump_json(indent=1) + "\n")


def _differences(old: SearchConfig, new: SearchConfig) -> list[str]:
    def flat(d, prefix=""):
        out = {}
        for k, v in d.items():
            if isinstance(v, dict) and k not in ("params",):
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[f"{prefix}{k}"] = v
        return out

    skip = {"base.output_dir", "base.overwrite", "base.resume", "base.train.show_progress"}
    a, b = flat(old.model_dump()), flat(new.model_dump())
    return [f"{k}: {a.get(k)!r} → {b.get(k)!r}" for k in sorted(set(a) | set(b))
            if k.split(".")[0] not in SearchConfig.MUTABLE and k not in skip and a.get(k) != b.get(k)]


# --------------------------------------------------------------------------- Optuna pieces
class _Reporter:
    """Engine callback: each new evaluation on the selection slice goes to ``trial.report``; a trial the pruner
    stops is stopped like Ctrl-C (checkpointed). Steps of later stages (TinyBERT) continue after earlier ones."""

    def __init__(self, trial, metric: str, *, prune: bool):
        self.trial, self.metric, self.prune = trial, metric, prune
        self.state, self.seen, self.offset, self.last_total = None, 0, 0, 0
        self.pruned_at: int | None = None
        self.steps = 0

    def __call__(self, state) -> None:
        if state is not self.state:
            self.offset += self.last_total if self.state is not None else 0
            self.state, self.seen = state, 0
        self.last_total = state.total_steps
        self.steps = self.offset + state.global_step
        new = state.history[self.seen:]
        self.seen = len(state.history)
        if not new or not self.prune:
            return
        for h in new:
            if self.metric in h:
                self.trial.report(float(h[self.metric]), self.offset + int(h["step"]))
        if self.trial.should_prune():
            self.pruned_at = self.steps
            state.stop_requested = True


def _pruner(scfg: SearchConfig):
    import optuna

    if scfg.pruner == "none" or scfg.objective != "metric":  # Optuna prunes single-objective studies only
        return optuna.pruners.NopPruner()
    if scfg.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=scfg.prune_startup_trials, n_warmup_steps=0)


def _sampler(scfg: SearchConfig, n_done: int):
    import optuna

    startup = scfg.startup_trials if scfg.startup_trials is not None else min(10, max(1, scfg.n_trials // 3))
    return optuna.samplers.TPESampler(seed=scfg.sampler_seed + n_done, n_startup_trials=startup)


def _finished(study) -> int:
    """Trials that count towards ``n_trials``: complete, pruned, or failed for a reason a rerun would repeat."""
    from optuna.trial import TrialState

    n = 0
    for t in study.get_trials(deepcopy=False):
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
            n += 1
        elif t.state == TrialState.FAIL and t.user_attrs.get("status") in ("diverged", "invalid"):
            n += 1
    return n


def _retry_unfinished(study) -> list[int]:
    """Trials that a stop or a kill left unfinished (running, or failed while running / interrupted) are queued
    again with the same settings and run folder; returns their numbers."""
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(t.number, state=TrialState.FAIL)  # its process is gone (the folder lock guarantees it)
    trials = study.get_trials(deepcopy=False)
    queued = {t.user_attrs.get("retry_of") for t in trials}
    again = []
    for t in trials:
        if (t.state == TrialState.FAIL and t.user_attrs.get("status") in ("running", "interrupted", None)
                and t.number not in queued and t.user_attrs.get("run_dir")):
            attrs = {"retry_of": t.number, "run_dir": t.user_attrs["run_dir"]}
            if t.user_attrs.get("seed") is not None:
                attrs["seed"] = t.user_attrs["seed"]
            study.enqueue_trial(dict(t.params), user_attrs=attrs)
            again.append(t.number)
    return again


def _chosen(study, scfg: SearchConfig):
    """The best trial (single objective) or the chosen Pareto trial (best metric within the latency budget)."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return None
    if scfg.objective == "metric":
        return max(complete, key=lambda t: (t.value, -t.number))
    front = list(study.best_trials)
    within = [t for t in front if scfg.latency_budget_ms is None or t.values[1] <= scfg.latency_budget_ms]
    if not within:
        fastest = min(front, key=lambda t: t.values[1])
        raise KDistillError(f"no trial on the Pareto front is within --latency-budget {scfg.latency_budget_ms:g} ms: "
                            f"the fastest, trial {fastest.number}, measures {fastest.values[1]:.3f} ms")
    return max(within, key=lambda t: (t.values[0], -t.values[1], -t.number))


# --------------------------------------------------------------------------- the search
def run_search(scfg: SearchConfig, *, resume: bool = False, overwrite: bool = False,
               on_trial: Callable[[list[dict]], None] | None = None, callbacks: Sequence[Callable] = (),
               report_latency_runs: int = 100) -> SearchResult:
    """Run (or, with ``resume``, continue) the search ``scfg``; see the module docstring.

    Args:
        on_trial: called with the whole trials table after each trial ends (and once at the start of a resume).
        callbacks: engine callbacks added to every trial (and the final run), e.g. to stop it.
        report_latency_runs: timed batch-1 runs per model in the final run's report.

    Returns:
        :class:`SearchResult` (``interrupted`` when a trial or the final run was stopped: continue with ``resume``).

    Raises:
        KDistillError: bad settings (one line), a folder that cannot be used, no trial that completed.
    """
    import optuna

    from kdistill.data.loading import load_data
    from kdistill.rundir import RunDir

    check_scorable(scfg.base)
    if scfg.base.data.select_on != "holdout":
        raise KDistillError("search trials are scored on the held-out slice (--select-on holdout)")
    out = Path(scfg.output_dir)
    _prepare_folder(out, scfg, resume=resume, overwrite=overwrite, dry=True)  # bad input: nothing is touched
    with RunDir(out).lock():
        _prepare_folder(out, scfg, resume=resume, overwrite=overwrite)
        splits, task = load_data(scfg.base.data)  # the main metric; texts for latency (train rows, lengths only)
        metric = task.main_metric
        multi = scfg.objective == "metric-latency"
        teacher_layers = _teacher_layers(scfg.base, scfg.space)
        latency_kw: dict[str, Any] = {}
        if multi:
            from kdistill.provision.latency import LatencyCache, check_runtime, default_cache_file, length_texts

            check_runtime(scfg.runtime)
            latency_kw = dict(texts=length_texts(splits), runtime=scfg.runtime, batch_size=scfg.latency_batch_size,
                              n_runs=scfg.latency_runs, cache=LatencyCache(default_cache_file()))
        storage = f"sqlite:///{(out / 'study.db').resolve()}"
        directions = ["maximize"] if not multi else ["maximize", "minimize"]
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        try:
            study = optuna.create_study(study_name=STUDY_NAME, storage=storage, directions=directions,
                                        load_if_exists=True)
            if resume:
                _retry_unfinished(study)
            objective = _objective(scfg, out, metric=metric, multi=multi, teacher_layers=teacher_layers,
                                   callbacks=callbacks, task=task, latency_kw=latency_kw)
            interrupted = False
            params = list(scfg.space.params)
            meta = {"output_dir": str(out), "objective": scfg.objective, "metric": metric, "scored_on": SCORED_ON,
                    "sampler": "TPE (optuna)", "pruner": _pruner(scfg).__class__.__name__, "n_trials": scfg.n_trials,
                    "space": {k: v.describe() for k, v in scfg.space.params.items()}}
            files = _write_outputs(study, out, metric=metric, params=params, multi=multi, meta=meta, scfg=scfg)
            if on_trial is not None and study.trials:
                on_trial(trial_rows(study, metric=metric, params=params, multi=multi, root=out))
            while _finished(study) < scfg.n_trials:
                study = optuna.load_study(study_name=STUDY_NAME, storage=storage,
                                          sampler=_sampler(scfg, _finished(study)), pruner=_pruner(scfg))
                try:
                    study.optimize(objective, n_trials=1, catch=(TrainingDiverged, _Invalid))
                except _Interrupted:
                    interrupted = True
                finally:
                    files = _write_outputs(study, out, metric=metric, params=params, multi=multi, meta=meta, scfg=scfg)
                    if on_trial is not None:
                        on_trial(trial_rows(study, metric=metric, params=params, multi=multi, root=out))
                if interrupted:
                    break
        finally:
            optuna.logging.set_verbosity(verbosity)
        rows = trial_rows(study, metric=metric, params=params, multi=multi, root=out)
        pareto = [r["trial"] for r in rows if r["pareto"]]
        if interrupted:
            return SearchResult(out, None, {}, None, rows, pareto, files=files, interrupted=True)
        best = _chosen(study, scfg)
        if best is None:
            raise KDistillError(f"no trial of the search in '{out}' completed (see {out / 'trials.md'}); widen the "
                                "ranges or lower the learning rate")
        files = _write_outputs(study, out, metric=metric, params=params, multi=multi, meta=meta, scfg=scfg,
                               chosen=best.number)
        seed = int(best.user_attrs.get("seed", scfg.base.train.seed))
        exact = trial_config(scfg, best.params, seed=seed, output_dir=out / "best_trial", teacher_layers=teacher_layers)
        final_cfg = trial_config(scfg, best.params, seed=seed, output_dir=Path(scfg.base.output_dir),
                                 teacher_layers=teacher_layers, full_length=True)
        (out / "best_trial.json").write_text(exact.model_dump_json(indent=1) + "\n")
        (out / "best_config.json").write_text(final_cfg.model_dump_json(indent=1) + "\n")
        files.update(best_trial=str(out / "best_trial.json"), best_config=str(out / "best_config.json"))
        result = SearchResult(out, best.number, dict(best.params), float(best.values[0]), rows, pareto,
                              best_latency_ms=float(best.values[1]) if multi else None, files=files)
        if scfg.final:
            from kdistill.recipes.base import run_recipe

            final_dir = Path(final_cfg.output_dir)
            final = run_recipe(_final_run_config(final_cfg, final_dir), callbacks=callbacks, report=True,
                               latency_runs=report_latency_runs)
            result.final, result.interrupted = final, final.interrupted
            files.update({f"final_{k}": v for k, v in final.files.items()})
        summary = {"output_dir": str(out), "objective": scfg.objective, "metric": metric, "scored_on": SCORED_ON,
                   "n_trials": scfg.n_trials, "states": _count(rows), "best_trial": best.number,
                   "best_params": dict(best.params), "best_selection_metric": result.best_value,
                   "best_latency_ms": result.best_latency_ms, "pareto": pareto,
                   "final": None if result.final is None else {
                       "output_dir": str(result.final.output_dir), "dev_metrics": result.final.metrics,
                       "interrupted": result.final.interrupted,
                       "retention": (result.final.report or {}).get("retention")},
                   "files": files}
        from kdistill.results import to_json  # strict JSON: no NaN

        (out / "search_results.json").write_text(to_json(summary, indent=1, default=str) + "\n")
        files["search_results"] = str(out / "search_results.json")
        return result


def _final_run_config(cfg: RunConfig, path: Path) -> RunConfig:
    """The final run: continued from its folder when that holds this very config, else (a resumed search with more
    trials found a new best) started again in it (it is this search's own run folder)."""
    run_file = path / "kdistill_run.json"
    if run_file.exists():
        from kdistill.config.run import migrate_run

        old = migrate_run(json.loads(run_file.read_text()))  # a run file of the older layout compares too
        new = cfg.model_dump()
        keys = ("method", "teacher", "data", "augment", "export")
        same = all(old.get(k) == new.get(k) for k in keys) and all(
            old.get("train", {}).get(k) == v for k, v in new["train"].items() if k != "show_progress")
        was, now = dict(old.get("student") or {}), dict(new["student"])
        if now.get("kind") == "layers-from-teacher" and (now.get("layer_selection") == "importance" or now.get("keep_heads")):
            for k in ("layers", "heads"):  # chosen by importance when the run started
                was.pop(k, None)
                now.pop(k, None)
        same = same and was == now
        if not same:
            return with_updates(cfg, overwrite=True, resume=False)
    return prepare_run_dir(cfg, path)


def _count(rows) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r["state"]] = out.get(r["state"], 0) + 1
    return out


def _write_outputs(study, out: Path, *, metric, params, multi, meta, scfg, chosen=None) -> dict[str, str]:
    rows = trial_rows(study, metric=metric, params=params, multi=multi, chosen=chosen, root=out)
    files = {k: str(v) for k, v in write_tables(rows, out, meta=meta).items()}
    png = plot_search(study, rows, out / "search.png", metric=metric, multi=multi, budget_ms=scfg.latency_budget_ms,
                      chosen=chosen)
    if png is not None:
        files["plot"] = str(png)
    return files


def _objective(scfg: SearchConfig, out: Path, *, metric: str, multi: bool, teacher_layers, callbacks, task,
               latency_kw):
    import optuna

    def objective(trial):
        run_dir = Path(trial.user_attrs.get("run_dir") or out / "trials" / f"trial_{trial.number:03d}")
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("status", "running")
        values = suggest(trial, scfg.space)
        seed = trial.user_attrs.get("seed")
        if seed is None:
            seed = scfg.base.train.seed + (trial.number if scfg.trial_seed == "per-trial" else 0)
            trial.set_user_attr("seed", int(seed))
        try:
            cfg = trial_config(scfg, values, seed=seed, output_dir=run_dir, teacher_layers=teacher_layers)
            _check_shape(cfg)
        except (_Invalid, KDistillError) as err:
            trial.set_user_attr("status", "invalid")
            trial.set_user_attr("error", str(err))
            raise _Invalid(str(err)) from None
        reporter = _Reporter(trial, metric, prune=not multi and scfg.pruner != "none")
        t0 = time.perf_counter()
        try:
            res, metrics = run_scored(prepare_run_dir(cfg, run_dir), callbacks=[reporter, *callbacks])
        except TrainingDiverged as err:
            trial.set_user_attr("status", "diverged")
            trial.set_user_attr("error", str(err))
            raise
        finally:
            trial.set_user_attr("seconds", time.perf_counter() - t0)
            trial.set_user_attr("steps", reporter.steps)
        if res.interrupted:
            if reporter.pruned_at is not None:
                trial.set_user_attr("status", "pruned")
                raise optuna.TrialPruned(f"pruned at step {reporter.pruned_at}")
            trial.set_user_attr("status", "interrupted")
            raise _Interrupted(f"trial {trial.number} was stopped")
        if metric not in metrics:
            raise KDistillError(f"trial {trial.number} recorded no {metric} on the selection slice ({run_dir})")
        trial.set_user_attr("status", "complete")
        trial.set_user_attr("selection_metrics", metrics)
        if not multi:
            return float(metrics[metric])
        from kdistill.provision.latency import measure_dir

        m = measure_dir(run_dir, task, **latency_kw)
        trial.set_user_attr("latency", {"ms": m.latency_ms, "p90_ms": m.p90_ms, "size_mb": m.size_mb,
                                        "runtime": m.runtime, "cached": m.cached})
        return float(metrics[metric]), float(m.latency_ms)

    return objective


# --------------------------------------------------------------------------- the API
def search(teacher: str | None = None, task: str | None = None, student: str | None = None, *,
           output_dir: str | Path, config: str | Path | None = None, method: str | None = None, n_trials: int = 20,
           params: Sequence[str] | None = None, ranges: dict[str, Any] | None = None, space: SearchSpace | None = None,
           objective: str = "metric", sampler_seed: int = 0, startup_trials: int | None = None, pruner: str = "median",
           prune_startup_trials: int = 2, trial_epochs: float | None = None, trial_max_steps: int | None = None,
           trial_seed: str = "same", runtime: str = "eager", latency_batch_size: int = 1, latency_runs: int = 30,
           latency_budget_ms: float | None = None, final: bool = True, overwrite: bool = False, resume: bool = False,
           on_trial: Callable[[list[dict]], None] | None = None, callbacks: Sequence[Callable] = (),
           report_latency_runs: int = 100, **options: Any) -> SearchResult:
    """Search the distillation settings of a run with Optuna (``kdistill search``; see the module docstring).

    Args:
        teacher, task, student, method, options: the base run, as :func:`kdistill.distill` takes it (options are
            fields of the run config sections: ``data_dir``, ``epochs``, ``eval_steps``, ``layers`` ...); or
            ``config``: a YAML/JSON run config (the options replace its values).
        output_dir: the search folder; the final run goes to ``output_dir/final``.
        n_trials: trials to finish. params: which settings to search (default
            :func:`kdistill.search.space.default_params`). ranges: ``{name: "LOW:HIGH[:log]" | "A|B" | ParamRange |
            None}`` replacing default ranges (None: not searched). space: a whole :class:`SearchSpace`.
        objective: ``metric`` or ``metric-latency`` (with ``runtime``, ``latency_batch_size``, ``latency_runs``,
            ``latency_budget_ms``).
        trial_epochs / trial_max_steps: shorter trials than the base run; final: train the best settings at the base
            length and report dev once.

    Raises:
        KDistillError: bad options, ranges or folder (one line); no completed trial.
    """
    from pydantic import ValidationError

    from kdistill.search.space import ParamRange, parse_param

    out = Path(output_dir)
    base = base_run_config(teacher, task, student, output_dir=out / "final", config=config, method=method, **options)
    overrides: dict[str, ParamRange | None] = {}
    for name, rng in (ranges or {}).items():
        if rng is None or isinstance(rng, ParamRange):
            overrides[name] = rng
        elif isinstance(rng, dict):
            overrides[name] = ParamRange(**rng)
        else:
            overrides.update([parse_param(f"{name}={rng}")])
    sp = build_space(base, params=list(params) if params else None, overrides=overrides, space=space)
    try:
        scfg = SearchConfig(base=base, space=sp, n_trials=n_trials, objective=objective, sampler_seed=sampler_seed,
                            startup_trials=startup_trials, pruner=pruner, prune_startup_trials=prune_startup_trials,
                            trial_epochs=trial_epochs, trial_max_steps=trial_max_steps, trial_seed=trial_seed,
                            runtime=runtime, latency_batch_size=latency_batch_size, latency_runs=latency_runs,
                            latency_budget_ms=latency_budget_ms, final=final, output_dir=str(out))
    except ValidationError as err:
        first = err.errors()[0]
        raise KDistillError(f"search: {'.'.join(map(str, first['loc']))}: {first['msg']} (got {first.get('input')!r})") from None
    return run_search(scfg, resume=resume, overwrite=overwrite, on_trial=on_trial, callbacks=callbacks,
                      report_latency_runs=report_latency_runs)
