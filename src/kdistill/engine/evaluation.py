"""Prediction, task metrics, and the evaluator that keeps the best student during training."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from kdistill.data.batching import eval_loader, model_inputs, model_logits
from kdistill.data.tasks import TaskSpec
from kdistill.engine.state import TrainState, diverged_message
from kdistill.errors import TrainingDiverged
from kdistill.metrics import choose_threshold, compute_metrics, decision_threshold


@torch.no_grad()
def predict(model, loader, accelerator: Accelerator | None = None, desc: str = "predict",
            show_progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` over ``loader`` in eval mode.

    Returns:
        ``(logits [N, C] float32, labels [N])`` ordered by the dataset's ``idx`` column, gathered
        across processes when ``accelerator`` runs several; token classification: ``(logits [N, T, C], labels
        [N, T])``, padded to the longest batch (labels -100 there); question answering: ``(logits [W, T, 2]`` (start,
        end per window), a :class:`kdistill.qa.features.QAReferences` ``)`` — what
        :func:`kdistill.metrics.compute_metrics` turns into answers and scores.
    """
    was_training = model.training
    model.eval()
    all_logits, all_idx, all_labels = [], [], []
    device = accelerator.device if accelerator else next(model.parameters()).device
    main = accelerator is None or accelerator.is_main_process
    for batch in tqdm(loader, desc=desc, disable=not (show_progress and main), leave=False):
        batch = {k: v.to(device) for k, v in batch.items()}
        logits = model_logits(model(**model_inputs(batch))).float()
        idx, labels = batch["idx"], batch["labels"]
        if accelerator is not None and accelerator.num_processes > 1:
            logits, idx, labels = accelerator.gather_for_metrics((logits, idx, labels))
        all_logits.append(logits.cpu()), all_idx.append(idx.cpu()), all_labels.append(labels.cpu())
    model.train(was_training)
    if all_logits and all_logits[0].dim() == 3:  # token classification: [B, T, C] per batch, T varies: pad
        width = max(x.shape[1] for x in all_logits)
        all_labels = [torch.nn.functional.pad(y, (0, width - y.shape[1]), value=-100) if y.shape[1] == x.shape[1]
                      else y for x, y in zip(all_logits, all_labels)]  # token labels [B, T]; QA's [B, 2] stay
        all_logits = [torch.nn.functional.pad(x, (0, 0, 0, width - x.shape[1])) for x in all_logits]
    logits, idx, labels = torch.cat(all_logits), torch.cat(all_idx), torch.cat(all_labels)
    order = torch.argsort(idx)
    dataset = getattr(loader, "dataset", None)
    if dataset is not None and "offsets" in getattr(dataset, "column_names", ()):  # question answering: the answers
        from kdistill.qa.features import QAReferences

        return logits[order].numpy(), QAReferences(dataset)
    return logits[order].numpy(), labels[order].numpy()


def evaluate_model(model, ds, tokenizer, task: TaskSpec, *, batch_size: int = 64, accelerator: Accelerator | None = None,
                   show_progress: bool = True, threshold: float | None = None) -> dict[str, float]:
    """Task metrics of ``model`` on a tokenised split (see :func:`kdistill.metrics.compute_metrics`).

    ``threshold``: the multi-label decision threshold; default: the one the model's config records
    (``kdistill_threshold``, :func:`kdistill.metrics.decision_threshold`), else 0.5. Ignored for other tasks.

    Raises:
        ValueError: a recorded threshold that is not a number in (0, 1).
    """
    loader = eval_loader(ds, tokenizer, batch_size=batch_size)
    if accelerator is not None:
        loader = accelerator.prepare_data_loader(loader)
    logits, labels = predict(model, loader, accelerator, desc="evaluate", show_progress=show_progress)
    if task.multi_label and threshold is None:
        threshold = decision_threshold(getattr(model, "config", None))
    return compute_metrics(task, logits, labels, threshold=threshold)


class Evaluator:
    """Evaluates the student on dev, updates the best-so-far in a :class:`TrainState`, saves the best.

    Args:
        student: the (unwrapped) student module.
        eval_ds: tokenised dev split, or ``None`` (then nothing is evaluated).
        select_best: keep the best student by ``task.main_metric`` (``save_best`` is called on an
            improvement), or only log the metric (the last student is the result).
        save_best: called on the main process when the metric improved.
        log: ``log(step, values)`` for the metrics.
        tune_threshold: multi-label tasks: score each evaluation at the decision threshold that is best on
            ``eval_ds`` (:func:`kdistill.metrics.choose_threshold`; logged as ``eval/threshold``), not at 0.5 — only
            when ``eval_ds`` is a held-out selection slice, never the reported split.
    """

    def __init__(self, student, eval_ds, tokenizer, task: TaskSpec | None, *, batch_size: int, accelerator: Accelerator,
                 select_best: bool, save_best: Callable[[], None], log: Callable[[int, dict], None], run=None,
                 tune_threshold: bool = False):
        self.student, self.eval_ds, self.tokenizer, self.task, self.run = student, eval_ds, tokenizer, task, run
        self.batch_size, self.accelerator, self.select_best = batch_size, accelerator, select_best
        self.save_best, self.log = save_best, log
        self.tune_threshold = bool(tune_threshold and task is not None and task.multi_label)

    def check_weights(self, state: TrainState) -> None:
        """Raise :class:`TrainingDiverged` when a student weight is NaN/inf (e.g. after ``--weight-decay`` blew up)."""
        if not all(bool(torch.isfinite(p).all()) for p in self.student.parameters()):
            raise TrainingDiverged(diverged_message("student weights became non-finite", state, self.run))

    def __call__(self, state: TrainState) -> dict[str, float]:
        if self.eval_ds is None:
            return {}
        self.check_weights(state)
        acc = self.accelerator
        loader = acc.prepare_data_loader(eval_loader(self.eval_ds, self.tokenizer, batch_size=self.batch_size))
        logits, labels = predict(self.student, loader, acc, desc="evaluate", show_progress=False)
        if not np.isfinite(logits).all():
            raise TrainingDiverged(diverged_message("dev logits became non-finite", state, self.run))
        logged = {}
        if self.tune_threshold:
            threshold, metrics = choose_threshold(self.task, logits, labels)
            logged["eval/threshold"] = threshold
        else:
            metrics = compute_metrics(self.task, logits, labels)
        value = metrics[self.task.main_metric]
        if not self.select_best:  # keep the last student; the metric is only logged
            state.best_metric, state.best_step = value, state.global_step
        elif state.best_metric is None or value > state.best_metric:
            state.best_metric, state.best_step, state.evals_without_improvement = value, state.global_step, 0
            if acc.is_main_process:
                self.save_best()
        else:
            state.evals_without_improvement += 1
        self.log(state.global_step, {**{f"eval/{k}": v for k, v in metrics.items()}, **logged})
        state.history.append({"step": state.global_step, **metrics})
        acc.wait_for_everyone()
        return metrics
