"""Recipe chain ``kdistill run``: fine-tune the teacher when it has no trained head for the task, then distil.

The fine-tuned teacher goes to ``RUN/teacher`` (the ``finetune`` recipe), the student to
``RUN/student`` (the configured distillation recipe); each part resumes on its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from kdistill.config import ChainConfig, PretrainedStudent, RunConfig
from kdistill.errors import KDistillError
from kdistill.recipes.base import RunResult, run_recipe


def run_chain(cfg: ChainConfig, *, callbacks: Sequence[Callable] = (), latency_runs: int = 100,
              on_stage: Callable[[str, RunResult], None] | None = None) -> RunResult:
    """Run :class:`~kdistill.config.ChainConfig` (see the module docstring).

    ``on_stage(name, result)`` is called as each part ends (``"teacher"`` when it was fine-tuned, then ``"student"``).

    Raises:
        KDistillError: the output path is a file; any error of the two recipes.
    """
    from kdistill.data.loading import load_data
    from kdistill.models import default_pretrained_model, has_trained_head

    run = cfg.run
    out = Path(run.output_dir)
    if out.exists() and not out.is_dir():
        raise KDistillError(f"output path '{out}' is a file; pass a directory")
    teacher = run.teacher or default_pretrained_model()
    _, spec = load_data(run.data)
    if not has_trained_head(teacher, spec):
        tdir = out / "teacher"
        tcfg = RunConfig(method="finetune", data=run.data, student=PretrainedStudent(path=teacher),
                         train=run.train.model_copy(update={"epochs": cfg.teacher_epochs}), output_dir=str(tdir),
                         overwrite=run.overwrite, resume=run.resume and (tdir / "checkpoint").exists())
        res = run_recipe(tcfg, callbacks=callbacks, report=False)
        if on_stage is not None:
            on_stage("teacher", res)
        if res.interrupted:
            return res
        teacher = str(tdir)
    sdir = out / "student"
    scfg = run.model_copy(update={"teacher": teacher, "output_dir": str(sdir),
                                  "resume": run.resume and (sdir / "checkpoint").exists()})
    res = run_recipe(scfg, callbacks=callbacks, latency_runs=latency_runs)
    if on_stage is not None:
        on_stage("student", res)
    return res
