"""One scored run of a search (or of provisioning's short distillations): a normal kdistill run folder whose kept
student is chosen *and scored* on the held-out selection slice of the train split, and in which the dev split is never
evaluated.

Why: a search that scores its trials on the dev split it then reports fits the noise of that split (each trial is one
more look at it). :func:`scoring_recipe` wraps the run's own recipe (``kd`` / ``tinybert`` / ``finetune``): the dev
split is dropped after tokenisation, so :func:`kdistill.recipes.base.run_recipe` evaluates only the selection slice,
and ``train_results.json`` records ``"eval": {}``, ``"dev_evaluated": false`` and the slice's metrics under
``"selection_eval"``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable, Sequence

from kdistill.errors import KDistillError

SCORED_ON = "held-out selection slice of the train split (the dev split is not evaluated)"


def check_scorable(cfg) -> None:
    """Raise :class:`KDistillError` unless ``cfg`` chooses its student on the held-out slice (``select_on='holdout'``)."""
    how = cfg.data.select_on
    if how != "holdout":
        raise KDistillError(f"trials are scored on the held-out selection slice of the train split, not with --select-on "
                            f"{how}: a search over the dev split fits its noise; use --select-on holdout (the default)")
    if cfg.method.name not in ("kd", "tinybert", "finetune"):
        raise KDistillError(f"method '{cfg.method.name}' cannot be searched; use kd, tinybert or finetune")


def scoring_recipe(method: str):
    """The registered recipe ``method`` with the dev split left out (see the module docstring)."""
    from kdistill.recipes.base import get_recipe

    base = get_recipe(method)

    def data(prepared, procs):
        base.data(prepared, procs)
        if prepared.eval_ds is prepared.report_ds:  # no held-out slice: refuse rather than score on dev
            raise KDistillError("a scored trial needs the held-out selection slice (--select-on holdout)")
        prepared.report_ds = None  # never evaluated

    def summary(prepared, result):
        return {**base.summary(prepared, result), "eval": {}, "selection_eval": dict(result.eval_metrics),
                "dev_evaluated": False, "scored_on": SCORED_ON}

    return dataclasses.replace(base, data=data, summary=summary, report_extra=None)


def selection_metrics(run_dir: str | Path) -> dict[str, float]:
    """The selection-slice metrics a finished scored run recorded (``train_results.json`` → ``selection_eval``)."""
    path = Path(run_dir) / "train_results.json"
    if not path.exists():
        return {}
    return dict(json.loads(path.read_text()).get("selection_eval") or {})


def run_scored(cfg, *, callbacks: Sequence[Callable] = ()) -> tuple[Any, dict[str, float]]:
    """Run ``cfg`` with :func:`scoring_recipe`; returns ``(RunResult, selection metrics)`` (metrics empty when the
    run was stopped before it finished). A run folder that already finished is not trained again."""
    from kdistill.recipes.base import run_recipe

    check_scorable(cfg)
    res = run_recipe(cfg, recipe=scoring_recipe(cfg.method.name), callbacks=callbacks, report=False)
    return res, ({} if res.interrupted else selection_metrics(res.output_dir))


def prepare_run_dir(cfg, path: Path):
    """``cfg`` pointed at ``path``, resuming the run there when it has a checkpoint, replacing it (it is a
    kdistill run folder of this search) when it has none, else fresh."""
    from kdistill.rundir import RunDir

    run = RunDir(path)
    resume = run.has_checkpoint() or any(RunDir(d).has_checkpoint() for d in path.glob("*/") if d.is_dir())
    overwrite = not resume and path.exists() and any(path.iterdir())
    return with_updates(cfg, output_dir=str(path), resume=bool(resume), overwrite=bool(overwrite))


def with_updates(cfg, **updates: Any):
    """A validated copy of a pydantic config with top-level ``updates`` and nested ``section={field: value}`` merges."""
    data = cfg.model_dump()
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict) and key != "student":
            data[key] = {**data[key], **value}
        else:
            data[key] = value.model_dump() if hasattr(value, "model_dump") else value
    return type(cfg).model_validate(data)
