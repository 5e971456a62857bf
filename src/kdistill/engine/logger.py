"""CSV + TensorBoard logging of every term, and the training-curves plot."""

from __future__ import annotations

import csv
from pathlib import Path

from kdistill.rundir import RunDir


class Logger:
    """Logs ``{key: value}`` per step to ``logs/train_log.csv`` and TensorBoard, on the main process only.

    ``resume_step``: a resumed run first drops the rows logged after its checkpoint's step (they are
    logged again), so the log has each step once. A context manager: leaving it closes TensorBoard.
    """

    def __init__(self, run: RunDir, enabled: bool, resume_step: int | None = None):
        self.enabled, self.run, self.tb = enabled, run, None
        self.rows: list[dict] = []
        if not enabled:
            return
        run.logs.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and run.train_log.exists():
            with run.train_log.open() as f:
                rows = list(csv.reader(f))
            kept = [rows[0]] + [r for r in rows[1:] if int(r[0]) <= resume_step] if rows else []
            with run.train_log.open("w", newline="") as f:
                csv.writer(f).writerows(kept)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run.tensorboard), purge_step=None if resume_step is None else resume_step + 1)
        except Exception:  # noqa: BLE001 - TensorBoard is optional
            self.tb = None

    def __enter__(self) -> "Logger":
        return self

    def __exit__(self, *exc) -> None:
        if self.tb is not None:
            self.tb.close()

    def log(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        self.rows.append({"step": step, **values})
        path = self.run.train_log
        new = not path.exists()
        with path.open("a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(["step", "key", "value"])
            for k, v in values.items():
                w.writerow([step, k, v])
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(k, v, step)
            self.tb.flush()


class RunningMean:
    """Mean of each loss term over the micro-batches since the last :meth:`pop`; kept in the :class:`TrainState`
    at each checkpoint so a resumed run logs the same averages."""

    def __init__(self, state=None):
        self.sums: dict[str, float] = dict(state.running) if state is not None else {}
        self.n = state.running_n if state is not None else 0

    def add(self, terms: dict) -> None:
        for k, v in terms.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v.detach())
        self.n += 1

    def pop(self) -> dict[str, float]:
        out = {f"train/{k}": v / self.n for k, v in self.sums.items()}
        self.sums, self.n = {}, 0
        return out

    def store(self, state) -> None:
        state.running, state.running_n = dict(self.sums), self.n


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
