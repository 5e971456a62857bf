"""The one training engine: every method (fine-tuning, KD, later TinyBERT, ...) runs through :func:`train`.

One loop you can hold in your head (after nanoGPT), on :mod:`accelerate` for device
placement, mixed precision, gradient accumulation and multi-process DDP. The frozen
teacher is moved to the device but never wrapped by DDP. Teacher logits are computed once
per training example and reused across epochs whenever the objective needs nothing else
from the teacher. Checkpoints hold model, optimizer, scheduler, RNG states and the data
position, so ``resume=True`` continues exactly where a run stopped.

Layout of ``output_dir`` during and after training::

    checkpoint/          latest resumable state (accelerate state + trainer_state.json)
    best/                best student so far on the task's main metric (removed by the API once saved at the root)
    teacher_logits.safetensors   cached teacher outputs for the train split
    logs/train_log.csv   one row per logged step / evaluation; logs/tb/ TensorBoard events
    training_curves.png  loss terms and eval metric vs step
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import shutil
import signal
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from kdistill.config import TrainConfig
from kdistill.data.batching import eval_loader, model_inputs, train_loader
from kdistill.data.tasks import TaskSpec
from kdistill.errors import KDistillError, TrainingDiverged
from kdistill.methods.objectives import ModelSignal, Objective, TeacherSignal
from kdistill.metrics import compute_metrics

STATE_FILE = "trainer_state.json"


@dataclass
class TrainState:
    """Where training stands; saved with every checkpoint."""

    epoch: int = 0
    batches_in_epoch: int = 0  # micro-batches of the current epoch already consumed
    global_step: int = 0  # optimizer steps
    total_steps: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    evals_without_improvement: int = 0
    finished: bool = False
    stop_requested: bool = False
    train_seconds: float = 0.0  # wall time spent in training, summed over resumed sessions
    history: list[dict] = field(default_factory=list)


@dataclass
class TrainResult:
    """What :func:`train` returns: the best eval metrics and where things were written."""

    best_metric: float | None
    best_step: int | None
    eval_metrics: dict[str, float]
    global_step: int
    train_seconds: float
    output_dir: Path
    interrupted: bool = False
    teacher_cache_seconds: float = 0.0  # one-off teacher pass over the train split (0 when reused or not cached)


def _unwrap(accelerator: Accelerator, model):
    return accelerator.unwrap_model(model)


class _Trainee(nn.Module):
    """Student + objective as one module: what the optimizer trains, DDP synchronises and checkpoints hold.

    Objectives may own trainable parameters (TinyBERT's projections); keeping them in one
    module with the student means one ``accelerator.prepare`` and one gradient all-reduce.
    ``forward`` runs the student on the batch (recording attention when the objective asks)
    and returns the objective's loss terms.
    """

    def __init__(self, student: nn.Module, objective: Objective):
        super().__init__()
        self.student, self.objective = student, objective
        self.recorder = None  # set by train() while the student is inside capture_attention

    def forward(self, batch: dict[str, torch.Tensor], teacher: ModelSignal | None) -> dict[str, torch.Tensor]:
        obj = self.objective
        want_hidden = obj.needs_hidden_states or obj.needs_attentions
        out = self.student(**model_inputs(batch), output_hidden_states=want_hidden)
        signal = ModelSignal(logits=getattr(out, "logits", None), hidden_states=getattr(out, "hidden_states", None))
        if self.recorder is not None:
            signal.attention_scores, signal.attention_probs = list(self.recorder.scores), list(self.recorder.probs)
            self.recorder.clear()
        return obj(signal, batch, teacher)


@torch.no_grad()
def predict(model, loader, accelerator: Accelerator | None = None, desc: str = "predict", show_progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` over ``loader`` in eval mode.

    Returns:
        ``(logits [N, C] float32, labels [N])`` ordered by the dataset's ``idx`` column, gathered
        across processes when ``accelerator`` runs several.
    """
    was_training = model.training
    model.eval()
    all_logits, all_idx, all_labels = [], [], []
    device = accelerator.device if accelerator else next(model.parameters()).device
    main = accelerator is None or accelerator.is_main_process
    for batch in tqdm(loader, desc=desc, disable=not (show_progress and main), leave=False):
        batch = {k: v.to(device) for k, v in batch.items()}
        logits = model(**model_inputs(batch)).logits.float()
        idx, labels = batch["idx"], batch["labels"]
        if accelerator is not None and accelerator.num_processes > 1:
            logits, idx, labels = accelerator.gather_for_metrics((logits, idx, labels))
        all_logits.append(logits.cpu()), all_idx.append(idx.cpu()), all_labels.append(labels.cpu())
    model.train(was_training)
    logits, idx, labels = torch.cat(all_logits), torch.cat(all_idx), torch.cat(all_labels)
    order = torch.argsort(idx)
    return logits[order].numpy(), labels[order].numpy()


def evaluate_model(model, ds, tokenizer, task: TaskSpec, *, batch_size: int = 64, accelerator: Accelerator | None = None,
                   show_progress: bool = True) -> dict[str, float]:
    """Task metrics of ``model`` on a tokenised split (see :func:`kdistill.metrics.compute_metrics`)."""
    loader = eval_loader(ds, tokenizer, batch_size=batch_size)
    if accelerator is not None:
        loader = accelerator.prepare_data_loader(loader)
    logits, labels = predict(model, loader, accelerator, desc="evaluate", show_progress=show_progress)
    return compute_metrics(task, logits, labels)


def teacher_logits_cache(teacher, train_ds, tokenizer, *, path: Path, fingerprint: str, batch_size: int,
                         accelerator: Accelerator, show_progress: bool = True) -> torch.Tensor:
    """Teacher logits for every training example, ``[N, C]`` float32 indexed by ``idx``.

    Computed once (on the main process, in length-sorted batches) and stored at ``path``
    with ``fingerprint`` (teacher + data); reused when the fingerprint matches.
    """
    if accelerator.is_main_process:
        cached = None
        if path.exists():
            from safetensors import safe_open

            with safe_open(str(path), "pt") as f:
                if (f.metadata() or {}).get("fingerprint") == fingerprint:
                    cached = True
        if not cached:
            order = np.argsort(np.asarray(train_ds.with_format(None)["length"]), kind="stable")
            loader = eval_loader(train_ds.select(order), tokenizer, batch_size=batch_size)
            logits, _ = predict(teacher, loader, None, desc="teacher logits (cached once)", show_progress=show_progress)
            save_file({"logits": torch.from_numpy(logits).contiguous()}, str(path), metadata={"fingerprint": fingerprint})
    accelerator.wait_for_everyone()
    return load_file(str(path))["logits"]


class _Logger:
    """CSV + TensorBoard logging on the main process."""

    def __init__(self, out: Path, enabled: bool):
        self.enabled = enabled
        self.rows: list[dict] = []
        if not enabled:
            return
        (out / "logs").mkdir(parents=True, exist_ok=True)
        self.csv_path = out / "logs" / "train_log.csv"
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "logs" / "tb"))
        except Exception:  # noqa: BLE001 - TensorBoard is optional
            self.tb = None

    def log(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        row = {"step": step, **values}
        self.rows.append(row)
        new = not self.csv_path.exists()
        with self.csv_path.open("a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(["step", "key", "value"])
            for k, v in values.items():
                w.writerow([step, k, v])
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(k, v, step)
            self.tb.flush()

    def close(self) -> None:
        if self.enabled and self.tb is not None:
            self.tb.close()


def plot_training_curves(csv_path: Path, out_png: Path) -> Path | None:
    """Plot loss terms (left) and eval metrics (right) against optimizer step from ``train_log.csv``."""
    if not csv_path.exists():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[tuple[int, float]]] = {}
    with csv_path.open() as f:
        for row in csv.DictReader(f):
            series.setdefault(row["key"], []).append((int(row["step"]), float(row["value"])))
    fig, (ax_l, ax_m) = plt.subplots(1, 2, figsize=(11, 4))
    for key, pts in series.items():
        ax = ax_m if key.startswith("eval/") else ax_l if key.startswith("train/") and key != "train/lr" else None
        if ax is not None and pts:
            few = ax is ax_m or len(pts) < 30
            ax.plot(*zip(*pts), label=key.split("/", 1)[1], marker="o" if few else None, ms=3)
    ax_l.set(title="training loss terms", xlabel="optimizer step", ylabel="loss")
    ax_m.set(title="evaluation", xlabel="optimizer step", ylabel="metric")
    for ax in (ax_l, ax_m):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def check_train_config(cfg: TrainConfig) -> None:
    """Raise :class:`KDistillError` for settings this machine cannot run (checked before any work)."""
    if cfg.mixed_precision == "fp16" and not torch.cuda.is_available():
        raise KDistillError("--mixed-precision fp16 needs a CUDA GPU; on CPU use --mixed-precision bf16 or no")


def _new_accelerator(cfg: TrainConfig, find_unused_parameters: bool = False) -> Accelerator:
    """A fresh :class:`Accelerator` for this run (accelerate keeps process-wide singletons: reset the
    per-run ones so that several runs in one Python process may use different precision/accumulation)."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    check_train_config(cfg)
    from accelerate.utils import DistributedDataParallelKwargs

    handlers = [DistributedDataParallelKwargs(find_unused_parameters=True)] if find_unused_parameters else []
    return Accelerator(mixed_precision=cfg.mixed_precision, gradient_accumulation_steps=cfg.gradient_accumulation_steps,
                       kwargs_handlers=handlers)


def _optimizer(model, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.learning_rate,
    )


def train(
    *,
    student,
    objective: Objective,
    train_ds,
    eval_ds,
    tokenizer,
    loader=None,
    task: TaskSpec,
    cfg: TrainConfig,
    output_dir: str | Path,
    teacher=None,
    teacher_fingerprint: str = "",
    resume: bool = False,
    callbacks: Sequence[Callable[[TrainState], None]] = (),
) -> TrainResult:
    """Train ``student`` on ``objective``; keep the best model by ``task.main_metric``.

    Args:
        student: a ``PreTrainedModel`` (or any module whose forward takes input ids and returns ``.logits``).
        objective: see :mod:`kdistill.methods`; if ``objective.needs_teacher``, ``teacher`` is required.
        train_ds, eval_ds: tokenised splits from :func:`kdistill.data.batching.tokenize`; ``eval_ds``
            may be ``None`` (no evaluation: the last student is kept).
        loader: instead of ``train_ds``, a ready ``DataLoader`` of collated batches (e.g. a
            stream of unlabeled text for general distillation, :mod:`kdistill.data.streaming`);
            when it has no length, ``cfg.max_steps`` sets the run length. Resuming skips the
            consumed batches of the current pass by reading and discarding them.
        tokenizer: saved next to the student.
        cfg: engine settings.
        output_dir: where checkpoints, logs and the best model go (must exist).
        teacher: frozen teacher model, run under ``no_grad`` (never wrapped in DDP).
        teacher_fingerprint: identifies teacher + data for the teacher-logit cache.
        resume: continue from ``output_dir/checkpoint`` (model, optimizer, scheduler, RNG, data position).
        callbacks: called after every optimizer step with the :class:`TrainState`; setting
            ``state.stop_requested = True`` saves a checkpoint and stops (as Ctrl-C does).

    Returns:
        :class:`TrainResult`; the best student is in ``output_dir/best`` and loaded into ``student``.

    Raises:
        TrainingDiverged: on a NaN/inf loss; the last checkpoint on disk is the last good one.
        KDistillError: a teacher is needed but missing, or ``resume`` without a checkpoint.
    """
    import time

    out = Path(output_dir)
    ckpt_dir, best_dir = out / "checkpoint", out / "best"
    if objective.needs_teacher and teacher is None:
        raise KDistillError(f"method '{objective.name}' needs a teacher; pass --teacher")
    # layer-wise objectives leave the task head (and pooler) without gradients: DDP must be told
    accelerator = _new_accelerator(cfg, find_unused_parameters=not objective.uses_all_parameters)
    set_seed(cfg.seed)
    main = accelerator.is_main_process
    show = cfg.show_progress and main

    if loader is None:
        loader = train_loader(train_ds, tokenizer, batch_size=cfg.batch_size, seed=cfg.seed, group_by_length=cfg.group_by_length)
    sampler = getattr(loader, "sampler", None)
    cache, cache_seconds = None, time.perf_counter()
    needs_teacher_internals = objective.needs_hidden_states or objective.needs_attentions
    if teacher is not None:
        teacher.eval().requires_grad_(False).to(accelerator.device)
        if objective.needs_teacher and cfg.cache_teacher and not needs_teacher_internals and train_ds is not None:
            cache_path = Path(cfg.teacher_cache_file) if cfg.teacher_cache_file else out / "teacher_logits.safetensors"
            cache = teacher_logits_cache(teacher, train_ds, tokenizer, path=cache_path,
                                         fingerprint=teacher_fingerprint or "unnamed", batch_size=cfg.eval_batch_size,
                                         accelerator=accelerator, show_progress=cfg.show_progress)
    cache_seconds = time.perf_counter() - cache_seconds if cache is not None else 0.0

    trainee = _Trainee(student, objective)
    captures = contextlib.ExitStack()  # attention recording for both models, for the whole run
    teacher_rec = None
    if objective.needs_attentions:
        from kdistill.students.capture import capture_attention

        trainee.recorder = captures.enter_context(capture_attention(student, objective.student_attention_layers))
        if teacher is not None:
            teacher_rec = captures.enter_context(capture_attention(teacher, objective.teacher_attention_layers))
    optimizer = _optimizer(trainee, cfg)
    trainee, optimizer, loader = accelerator.prepare(trainee, optimizer, loader)
    try:
        n_batches = len(loader)
    except TypeError:  # a stream: no length
        n_batches = None
    if cfg.max_steps:
        total_steps = cfg.max_steps
    elif n_batches is None:
        captures.close()
        raise KDistillError("streamed training data has no length: pass --max-steps")
    else:
        total_steps = max(1, math.ceil(cfg.epochs * math.ceil(n_batches / cfg.gradient_accumulation_steps)))
    steps_per_epoch = math.ceil(n_batches / cfg.gradient_accumulation_steps) if n_batches else total_steps
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)
    accelerator.register_for_checkpointing(scheduler)
    eval_every = cfg.eval_steps or steps_per_epoch

    state = TrainState(total_steps=total_steps)
    if resume:
        if not (ckpt_dir / STATE_FILE).exists():
            raise KDistillError(f"--resume: no checkpoint in {ckpt_dir}; start without --resume")
        try:
            accelerator.load_state(str(ckpt_dir))
        except Exception as err:  # noqa: BLE001 - e.g. a checkpoint of another method or student
            captures.close()
            raise KDistillError(f"--resume: the checkpoint in {ckpt_dir} does not fit this run ({type(err).__name__}); "
                                "resume with the same method, student and settings") from err
        state = TrainState(**json.loads((ckpt_dir / STATE_FILE).read_text()))
        if state.total_steps != total_steps:
            captures.close()
            raise KDistillError(
                f"--resume: the checkpoint was made for {state.total_steps} steps, these settings give {total_steps}; "
                "resume with the same data, batch size and epochs"
            )
        state.stop_requested = False
    logger = _Logger(out, main)

    def teacher_signal(batch) -> TeacherSignal | None:
        if not objective.needs_teacher:
            return None
        if cache is not None:
            return TeacherSignal(logits=cache[batch["idx"].cpu()].to(accelerator.device))
        with torch.no_grad(), accelerator.autocast():
            t_out = teacher(**model_inputs(batch), output_hidden_states=needs_teacher_internals)
        logits = getattr(t_out, "logits", None)  # a bare encoder (general distillation) has none
        signal = TeacherSignal(logits=None if logits is None else logits.float(), hidden_states=getattr(t_out, "hidden_states", None))
        if teacher_rec is not None:
            signal.attention_scores, signal.attention_probs = list(teacher_rec.scores), list(teacher_rec.probs)
            teacher_rec.clear()
        return signal

    def save_student(path: Path) -> None:
        _unwrap(accelerator, trainee).student.save_pretrained(path)
        tokenizer.save_pretrained(path)

    def save_checkpoint() -> None:
        state.train_seconds = seconds_before + (time.perf_counter() - start)
        tmp = out / "checkpoint.tmp"
        accelerator.wait_for_everyone()
        if main and tmp.exists():
            shutil.rmtree(tmp)
        accelerator.save_state(str(tmp))
        if main:
            (tmp / STATE_FILE).write_text(json.dumps(asdict(state), indent=1))
            if ckpt_dir.exists():
                shutil.rmtree(ckpt_dir)
            tmp.rename(ckpt_dir)
        accelerator.wait_for_everyone()

    def run_eval() -> dict[str, float]:
        if eval_ds is None:
            return {}
        metrics = evaluate_model(student, eval_ds, tokenizer, task, batch_size=cfg.eval_batch_size,
                                 accelerator=accelerator, show_progress=False)
        value = metrics[task.main_metric]
        improved = state.best_metric is None or value > state.best_metric
        if not objective.select_best:  # keep the last student; the metric is only logged
            state.best_metric, state.best_step = value, state.global_step
        elif improved:
            state.best_metric, state.best_step, state.evals_without_improvement = value, state.global_step, 0
            if main:
                save_student(best_dir)
        else:
            state.evals_without_improvement += 1
        logger.log(state.global_step, {f"eval/{k}": v for k, v in metrics.items()})
        state.history.append({"step": state.global_step, **metrics})
        accelerator.wait_for_everyone()
        return metrics

    interrupted = False
    previous_handler = None

    def _on_sigint(signum, frame):  # noqa: ARG001
        nonlocal interrupted
        if interrupted:  # second Ctrl-C: give up at once
            raise KeyboardInterrupt
        interrupted = True
        state.stop_requested = True

    if main:
        try:
            previous_handler = signal.signal(signal.SIGINT, _on_sigint)
        except ValueError:  # not in the main thread
            previous_handler = None

    start, seconds_before = time.perf_counter(), state.train_seconds
    bar = tqdm(total=total_steps, initial=state.global_step, desc=f"{objective.name}", disable=not show, dynamic_ncols=True)
    running: dict[str, float] = {}
    n_running = 0
    trainee.train()
    try:
        while state.global_step < total_steps and not state.stop_requested:
            for obj in (sampler, loader, getattr(loader, "dataset", None)):
                if hasattr(obj, "set_epoch"):
                    obj.set_epoch(state.epoch)
            batches = accelerator.skip_first_batches(loader, state.batches_in_epoch) if state.batches_in_epoch else loader
            epoch_done = True
            for batch in batches:
                with accelerator.accumulate(trainee):
                    t_signal = teacher_signal(batch)
                    with accelerator.autocast():
                        terms = trainee(batch, t_signal)
                    loss = terms["loss"]
                    if not torch.isfinite(loss.detach()):
                        raise TrainingDiverged(
                            f"loss became {loss.item()} at step {state.global_step} (epoch {state.epoch}); the last good "
                            f"checkpoint is kept in {ckpt_dir}: lower --learning-rate or use --mixed-precision no, then --resume"
                        )
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and cfg.max_grad_norm:
                        accelerator.clip_grad_norm_(trainee.parameters(), cfg.max_grad_norm)
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                state.batches_in_epoch += 1
                for k, v in terms.items():
                    running[k] = running.get(k, 0.0) + float(v.detach())
                n_running += 1
                if not accelerator.sync_gradients:
                    continue
                scheduler.step()
                state.global_step += 1
                bar.update(1)
                if state.global_step % cfg.logging_steps == 0:
                    values = {f"train/{k}": v / n_running for k, v in running.items()}
                    values["train/lr"] = scheduler.get_last_lr()[0]
                    logger.log(state.global_step, values)
                    bar.set_postfix(loss=f"{values['train/loss']:.4f}")
                    running, n_running = {}, 0
                at_end = state.global_step >= total_steps
                if state.global_step % eval_every == 0 or at_end:
                    metrics = run_eval()
                    if metrics:
                        bar.set_postfix(**{task.main_metric: f"{metrics[task.main_metric]:.4f}",
                                           "best": f"{state.best_metric:.4f}"})
                    if cfg.early_stopping_patience and state.evals_without_improvement >= cfg.early_stopping_patience:
                        state.stop_requested = True
                    save_checkpoint()
                for cb in callbacks:
                    cb(state)
                if at_end or state.stop_requested:
                    epoch_done = n_batches is not None and state.batches_in_epoch >= n_batches
                    break
            if epoch_done:
                state.epoch += 1
                state.batches_in_epoch = 0
        if state.stop_requested and state.global_step < total_steps:
            save_checkpoint()  # resumable from exactly here
        else:
            state.finished = True
            if main and (eval_ds is None or not objective.select_best):
                save_student(best_dir)  # the last student is the result
            save_checkpoint()
    finally:
        captures.close()
        bar.close()
        logger.close()
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)
    seconds = seconds_before + (time.perf_counter() - start)
    if main:
        plot_training_curves(out / "logs" / "train_log.csv", out / "training_curves.png")
    accelerator.wait_for_everyone()
    best_metrics = next((h for h in state.history if h["step"] == state.best_step), {})
    if state.finished and (best_dir / "config.json").exists() and (best_dir / "model.safetensors").exists():
        from safetensors.torch import load_model

        load_model(student, str(best_dir / "model.safetensors"), strict=False)
    return TrainResult(
        best_metric=state.best_metric, best_step=state.best_step,
        eval_metrics={k: v for k, v in best_metrics.items() if k != "step"}, global_step=state.global_step,
        train_seconds=seconds, output_dir=out, interrupted=not state.finished, teacher_cache_seconds=cache_seconds,
    )
