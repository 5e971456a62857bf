"""Round records of iterative prune → distil (the schedule itself is :mod:`kdistill.recipes.compress`).

Structured pruning recovered by distillation from the unpruned teacher.

Each round (Michel et al. 2019 for the scores; the schedule follows their iterative pruning,
with knowledge distillation as the recovery step, as in e.g. Sanh et al. 2020 / CoFi):

1. head and FFN-neuron importance of the current model (``I = E|∂L/∂ξ|``, per-layer L2
   normalised; loss: KL to the teacher, label-free, or CE on gold labels) on a seeded sample of
   training batches — saved with a layer × head heat map;
2. prune ``head_fraction`` of the remaining heads and ``ffn_fraction`` of the remaining neurons
   (least important first, never a whole layer), and ``layers_per_round`` whole layers (least
   summed raw head importance);
3. distil the pruned model from the *unpruned* teacher for ``steps_per_round`` optimizer steps
   (the same engine and objective as ``kdistill distill``; teacher logits cached once for all
   rounds), then measure dev metric, size and CPU latency;
4. stop as soon as every given target holds (speedup, parameters, heads) or after ``max_rounds``.

Layout: ``OUT/round_k/`` holds ``importance/`` (scores + heat map), ``pruned/`` (the model right
after pruning) and ``student/`` (after recovery, a normal run directory with checkpoint and
report); ``OUT/rounds.json`` + ``rounds.csv`` + ``rounds.png`` log every round; the final
student is copied to ``OUT/`` with its report. ``resume=True`` skips finished rounds and resumes
an interrupted recovery from its checkpoint.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path

ROUNDS_FILE = "rounds.json"


@dataclass
class RoundRecord:
    """One round of the schedule (after recovery)."""

    round: int
    layers: int
    heads: int
    ffn: int
    params: int
    metric: float
    teacher_metric: float
    retention: float
    student_latency_ms: float
    teacher_latency_ms: float
    speedup: float
    train_seconds: float
    removed_heads: int
    removed_neurons: int
    removed_layers: list[int]


def targets_met(rec: RoundRecord, *, target_speedup: float | None, target_params: int | None,
                target_heads: int | None) -> bool:
    """True when every given target holds for ``rec`` (at least one target must be given)."""
    checks = []
    if target_speedup is not None:
        checks.append(rec.speedup >= target_speedup)
    if target_params is not None:
        checks.append(rec.params <= target_params)
    if target_heads is not None:
        checks.append(rec.heads <= target_heads)
    return bool(checks) and all(checks)


def plot_rounds(records: list[RoundRecord], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [r.speedup for r in records]
    ax.plot(xs, [r.metric for r in records], marker="o")
    for r in records:
        ax.annotate(f"r{r.round}", (r.speedup, r.metric), fontsize=8, xytext=(3, 3), textcoords="offset points")
    if records:
        ax.axhline(records[0].teacher_metric, color="gray", ls="--", label="teacher")
    ax.set(xlabel="CPU batch-1 speedup vs teacher (×)", ylabel="dev metric", title="prune → distil rounds")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_rounds(out: Path, records: list[RoundRecord]) -> None:
    from kdistill.results import to_json  # strict JSON: no NaN

    (out / ROUNDS_FILE).write_text(to_json([asdict(r) for r in records], indent=1))
    with (out / "rounds.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(asdict(records[0])))
        w.writeheader()
        for r in records:
            w.writerow(asdict(r))
    plot_rounds(records, out / "rounds.png")


