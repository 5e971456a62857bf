"""The one training engine: every method (fine-tuning, KD, TinyBERT, general distillation ...) runs through :func:`train`.

* :mod:`~kdistill.engine.loop` — the loop, the trainee (student + objective) and the Ctrl-C handler;
* :mod:`~kdistill.engine.teacher` — teacher sources: none, cached logits, live teacher (+ attention capture);
* :mod:`~kdistill.engine.checkpoint` — resumable checkpoints (accelerate state + :class:`TrainState`);
* :mod:`~kdistill.engine.evaluation` — prediction, task metrics, best-model selection;
* :mod:`~kdistill.engine.logger` — CSV/TensorBoard logging and the training-curves plot;
* :mod:`~kdistill.engine.setup` — accelerator, optimizer, scheduler, step plan.

Checkpoints hold model, optimizer, scheduler, RNG states and the data position, so ``resume=True``
continues exactly where a run stopped. The run folder's layout is :mod:`kdistill.rundir`'s.
"""

from kdistill.engine.evaluation import Evaluator, evaluate_model, predict
from kdistill.engine.logger import plot_training_curves
from kdistill.engine.loop import Trainee, train
from kdistill.engine.setup import check_train_config
from kdistill.engine.state import TrainResult, TrainState
from kdistill.engine.teacher import (CachedLogits, LiveTeacher, NoTeacher, TeacherView, teacher_logits_cache,
                                     teacher_source_for)

__all__ = ["train", "Trainee", "TrainState", "TrainResult", "Evaluator", "evaluate_model", "predict",
           "plot_training_curves", "check_train_config", "teacher_logits_cache", "teacher_source_for",
           "NoTeacher", "CachedLogits", "LiveTeacher", "TeacherView"]
