"""The training loop: one loop for every method (after nanoGPT), on :mod:`accelerate`.

Everything the loop uses is entered in one ``with``: the teacher source (cached logits or live
teacher, :mod:`kdistill.engine.teacher`), the student's attention capture, the logger, the Ctrl-C
handler and the progress bar; the checkpointer and evaluator are plain objects. The frozen teacher
is moved to the device but never wrapped by DDP.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import time
from pathlib import Path
from typing import Callable, Sequence

import torch
from accelerate.utils import set_seed
from safetensors.torch import load_model
from torch import nn
from tqdm.auto import tqdm

from kdistill.config import TrainConfig
from kdistill.data.batching import model_inputs, model_logits, train_loader
from kdistill.data.tasks import TaskSpec
from kdistill.engine.checkpoint import Checkpointer
from kdistill.engine.evaluation import Evaluator
from kdistill.engine.logger import Logger, RunningMean, plot_training_curves
from kdistill.engine.setup import Plan, make_optimizer, make_scheduler, new_accelerator
from kdistill.engine.state import TrainResult, TrainState, diverged_message
from kdistill.engine.teacher import teacher_source_for
from kdistill.errors import KDistillError, TrainingDiverged
from kdistill.objectives import ModelSignal, Objective
from kdistill.objectives.schedules import ObjectiveSchedules
from kdistill.rundir import RunDir


class Trainee(nn.Module):
    """Student + objective as one module: what the optimizer trains, DDP synchronises and checkpoints hold.

    ``forward`` runs the student on the batch (recording attention while :meth:`capture` is entered
    and the objective asks for it) and returns the objective's loss terms.
    """

    def __init__(self, student: nn.Module, objective: Objective):
        super().__init__()
        self.student, self.objective = student, objective
        self.recorder = self.qkv = None

    @contextlib.contextmanager
    def capture(self):
        with contextlib.ExitStack() as stack:
            if self.objective.student_qkv_layer is not None:
                from kdistill.students.relations import capture_qkv

                self.qkv = stack.enter_context(capture_qkv(self.student, self.objective.student_qkv_layer))
            if not self.objective.needs_attentions:
                try:
                    yield None
                finally:
                    self.qkv = None
                return
            from kdistill.students.capture import capture_attention

            with capture_attention(self.student, self.objective.student_attention_layers) as rec:
                self.recorder = rec
                try:
                    yield rec
                finally:
                    self.recorder = self.qkv = None

    def forward(self, batch: dict[str, torch.Tensor], teacher: ModelSignal | None) -> dict[str, torch.Tensor]:
        obj = self.objective
        out = self.student(**model_inputs(batch), output_hidden_states=obj.needs_hidden_states or obj.needs_attentions)
        sig = ModelSignal(logits=model_logits(out), hidden_states=getattr(out, "hidden_states", None))
        if self.qkv is not None:
            sig.qkv = dict(self.qkv)
        if self.recorder is not None:
            sig.attention_scores, sig.attention_probs = list(self.recorder.scores), list(self.recorder.probs)
            self.recorder.clear()
        return obj(sig, batch, teacher)


def rng_neutral(batches):
    """Iterate ``batches`` leaving torch's global RNG as it was before each fetch.

    accelerate's loader over a stream (``IterableDataset``) draws a seed from the global RNG when an iterator starts;
    a resumed run starts one after restoring the RNG states, an uninterrupted run did so before its first step, so the
    dropout masks after a resume would differ. Fetching batches never moves the RNG here, in both cases.
    """
    it = iter(batches)
    while True:
        saved = torch.get_rng_state()
        try:
            batch = next(it)
        except StopIteration:
            return
        finally:
            torch.set_rng_state(saved)
        yield batch


def batch_generator(seed: int, epoch: int, batch: int) -> torch.Generator:
    """A CPU generator seeded by where a batch is in the run (seed, epoch, batch of the epoch): what
    ``Objective.prepare_batch`` draws from, so a resumed run redraws exactly what an uninterrupted one drew."""
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + int(epoch) * 998_244_353 + int(batch)) % (2 ** 62))


class StopOnSignals:
    """First Ctrl-C (SIGINT) or SIGTERM: ``state.stop_requested`` (the loop checkpoints and stops); a second: quit at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, state: TrainState, enabled: bool):
        self.state, self.enabled, self.fired, self.previous = state, enabled, False, {}

    def _handler(self, signum, frame):  # noqa: ARG002
        if self.fired:
            raise KeyboardInterrupt
        self.fired = self.state.stop_requested = True

    def __enter__(self):
        if self.enabled:
            for sig in self.SIGNALS:
                try:
                    self.previous[sig] = signal.signal(sig, self._handler)
                except ValueError:  # not in the main thread
                    pass
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def _set_epoch(objs, epoch: int) -> None:
    for obj in objs:
        if hasattr(obj, "set_epoch"):
            obj.set_epoch(epoch)


def _save_student(acc, trainee, tokenizer, path: Path) -> None:
    acc.unwrap_model(trainee).student.save_pretrained(path)
    tokenizer.save_pretrained(path)


def _step(trainee, batch, source, acc, optimizer, cfg: TrainConfig, state: TrainState, run: RunDir) -> dict:
    """One micro-batch: forward (teacher signal, student, objective), backward, optimizer step when synced."""
    with acc.accumulate(trainee):
        t_signal = source(batch)
        with acc.autocast():
            terms = trainee(batch, t_signal)
        loss = terms["loss"]
        if not torch.isfinite(loss.detach()):
            raise TrainingDiverged(diverged_message(f"loss became {loss.item()}", state, run))
        acc.backward(loss)
        if acc.sync_gradients and cfg.max_grad_norm:
            acc.clip_grad_norm_(trainee.parameters(), cfg.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return terms


def _before_step(batch, knobs, optimizer, scheduler, cfg: TrainConfig, state: TrainState) -> dict[str, torch.Tensor]:
    """Scheduled knobs (temperature, alpha, term weights) for this step, and the learning rate scaled with the batch's
    rows (``lr_scaling``: ``lr · (rows / batch_size)`` linear, or its square root); what it set, for the log."""
    out = {}
    if knobs:
        progress = state.global_step / max(1, state.total_steps - 1)
        out = {f"sched_{k}": torch.tensor(v) for k, v in knobs.apply(progress).items()}
    if cfg.lr_scaling != "none":
        rows = int(batch["input_ids"].shape[0])
        factor = (rows / cfg.batch_size) ** (1.0 if cfg.lr_scaling == "linear" else 0.5)
        for group, lr in zip(optimizer.param_groups, scheduler.get_last_lr()):
            group["lr"] = lr * factor  # the scheduler recomputes from its base rates at every step: nothing accumulates
        out["lr_scale"] = torch.tensor(factor)
    if cfg.max_tokens:
        out["batch_rows"] = torch.tensor(float(batch["input_ids"].shape[0]))
    return out


def _log_and_evaluate(state: TrainState, plan: Plan, at_end: bool, running, scheduler, logger, bar, evaluator,
                      ckpt, cfg: TrainConfig, task, *, seconds: Callable[[], float]) -> bool:
    """After an optimizer step: log the running means every ``plan.log_every`` steps; every ``plan.eval_every``
    steps (and at the end) evaluate, keep the best, checkpoint. Returns True when early stopping asks to stop
    (``state.stop_requested`` is then set: a finished run, not an interruption)."""
    if state.global_step % plan.log_every == 0:
        values = {**running.pop(), "train/lr": scheduler.get_last_lr()[0]}
        logger.log(state.global_step, values)
        bar.set_postfix(loss=f"{values['train/loss']:.4f}")
    if not (state.global_step % plan.eval_every == 0 or at_end):
        return False
    metrics = evaluator(state)
    if metrics:
        bar.set_postfix(**{task.main_metric: f"{metrics[task.main_metric]:.4f}", "best": f"{state.best_metric:.4f}"})
    stop = bool(cfg.early_stopping_patience and state.evals_without_improvement >= cfg.early_stopping_patience)
    if stop:
        state.stop_requested = True
    state.train_seconds = seconds()
    running.store(state)
    ckpt.save(state)
    return stop


def train(*, student, objective: Objective, train_ds, eval_ds, tokenizer, task: TaskSpec | None, cfg: TrainConfig,
          output_dir: str | Path | RunDir, teacher=None, teacher_fingerprint: str = "", resume: bool = False,
          callbacks: Sequence[Callable[[TrainState], None]] = (), loader=None, teacher_source=None,
          teacher_view=None) -> TrainResult:
    """Train ``student`` on ``objective``; keep the best model by ``task.main_metric``.

    Args:
        student: a ``PreTrainedModel`` (or any module whose forward takes input ids and returns ``.logits``).
        objective: see :mod:`kdistill.objectives`; if it needs a teacher, ``teacher`` (or ``teacher_source``) is required.
        train_ds, eval_ds: tokenised splits (:func:`kdistill.data.batching.tokenize`); ``eval_ds`` may be
            ``None`` (no evaluation: the last student is kept).
        loader: instead of ``train_ds``, a ready ``DataLoader`` of collated batches (e.g. a stream of
            unlabeled text, :mod:`kdistill.data.streaming`); without a length ``cfg.max_steps`` sets the
            run length. Resuming skips the consumed batches of the current pass by reading them.
        output_dir: the run (or stage) folder; must exist.
        teacher: frozen teacher model; the source (cached logits or live) is chosen by
            :func:`kdistill.engine.teacher.teacher_source_for` unless ``teacher_source`` is given.
        teacher_fingerprint: identifies teacher + data for the teacher-logit cache.
        resume: continue from ``output_dir/checkpoint`` (model, optimizer, scheduler, RNG, data position).
        callbacks: called after every optimizer step with the :class:`TrainState`; setting
            ``state.stop_requested = True`` saves a checkpoint and stops (as Ctrl-C does).

    Returns:
        :class:`TrainResult`; the best student is in ``output_dir/best`` and loaded into ``student``.

    Raises:
        TrainingDiverged: on a NaN/inf loss; the last checkpoint on disk is the last good one.
        KDistillError: a teacher is needed but missing, or ``resume`` without a fitting checkpoint.
    """
    run = output_dir if isinstance(output_dir, RunDir) else RunDir(output_dir)
    if objective.needs_teacher and teacher is None and teacher_source is None:
        raise KDistillError(f"method '{objective.name}' needs a teacher; pass --teacher")
    acc = new_accelerator(cfg, find_unused_parameters=not objective.uses_all_parameters)
    set_seed(cfg.seed)
    main = acc.is_main_process
    if loader is None:
        loader = train_loader(train_ds, tokenizer, batch_size=cfg.batch_size, seed=cfg.seed,
                              group_by_length=cfg.group_by_length, max_tokens=cfg.max_tokens)
    epoch_objs = (getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None))
    source = teacher_source or teacher_source_for(
        objective, teacher, train_ds=train_ds, tokenizer=tokenizer, cfg=cfg, fingerprint=teacher_fingerprint,
        cache_path=Path(cfg.teacher_cache_file) if cfg.teacher_cache_file else run.teacher_logits, accelerator=acc,
        view=teacher_view)
    trainee = Trainee(student, objective)
    knobs = ObjectiveSchedules(objective, cfg.schedules) if cfg.schedules else None
    with contextlib.ExitStack() as stack:
        stack.enter_context(trainee.capture())
        stack.enter_context(source)
        optimizer = make_optimizer(trainee, cfg)
        trainee, optimizer, loader = acc.prepare(trainee, optimizer, loader)
        epoch_objs = (*epoch_objs, loader, getattr(loader, "dataset", None))
        plan = Plan.for_loader(loader, cfg)
        scheduler = make_scheduler(optimizer, cfg, plan.total_steps)
        ckpt = Checkpointer(acc, run, scheduler)  # scheduler state as JSON: nothing is unpickled on resume
        state = ckpt.restore(plan.total_steps, cfg.learning_rate) if resume else TrainState(total_steps=plan.total_steps)
        logger = stack.enter_context(Logger(run, main, resume_step=state.global_step if resume else None))

        save_best = functools.partial(_save_student, acc, trainee, tokenizer, run.best)
        evaluator = Evaluator(student, eval_ds, tokenizer, task, batch_size=cfg.eval_batch_size, accelerator=acc, run=run,
                              select_best=objective.select_best, save_best=save_best, log=logger.log,
                              tune_threshold=getattr(objective, "tune_threshold", False))
        stack.enter_context(StopOnSignals(state, main))
        bar = stack.enter_context(tqdm(total=plan.total_steps, initial=state.global_step, desc=objective.name,
                                       disable=not (cfg.show_progress and main), dynamic_ncols=True))
        running, start, before = RunningMean(state), time.perf_counter(), state.train_seconds
        early_stopped = False
        trainee.train()
        while state.global_step < plan.total_steps and not state.stop_requested:
            _set_epoch(epoch_objs, state.epoch)
            batches = acc.skip_first_batches(loader, state.batches_in_epoch) if state.batches_in_epoch else loader
            epoch_done = True
            for batch in rng_neutral(batches):
                if objective.prepare_batch is not None:  # e.g. masking: reproducible from where the batch is
                    batch = objective.prepare_batch(batch, batch_generator(cfg.seed, state.epoch, state.batches_in_epoch))
                extra = _before_step(batch, knobs, optimizer, scheduler, cfg, state)
                running.add({**_step(trainee, batch, source, acc, optimizer, cfg, state, run), **extra})
                state.batches_in_epoch += 1
                if not acc.sync_gradients:
                    continue
                scheduler.step()
                state.global_step += 1
                bar.update(1)
                at_end = state.global_step >= plan.total_steps
                early_stopped |= _log_and_evaluate(state, plan, at_end, running, scheduler, logger, bar, evaluator,
                                                   ckpt, cfg, task, seconds=lambda: before + time.perf_counter() - start)
                for cb in callbacks:
                    cb(state)
                if at_end or state.stop_requested:
                    epoch_done = plan.n_batches is not None and state.batches_in_epoch >= plan.n_batches
                    break
            if epoch_done:
                state.epoch, state.batches_in_epoch = state.epoch + 1, 0
        if early_stopped or not (state.stop_requested and state.global_step < plan.total_steps):
            state.finished = True
            evaluator.check_weights(state)  # a non-finite student is never saved as a result
            if main and (eval_ds is None or not objective.select_best):
                save_best()  # the last student is the result
        state.train_seconds = before + time.perf_counter() - start
        running.store(state)
        ckpt.save(state)  # resumable from exactly here, or the finished state
    if main:
        plot_training_curves(run.train_log, run.curves)
    acc.wait_for_everyone()
    best = next((h for h in state.history if h["step"] == state.best_step), {})
    if state.finished and (run.best / "config.json").exists() and (run.best / "model.safetensors").exists():
        load_model(student, str(run.best / "model.safetensors"), strict=False)
    return TrainResult(best_metric=state.best_metric, best_step=state.best_step,
                       eval_metrics={k: v for k, v in best.items() if k != "step"}, global_step=state.global_step,
                       train_seconds=state.train_seconds, output_dir=run.path, interrupted=not state.finished,
                       teacher_cache_seconds=getattr(source, "seconds", 0.0))
