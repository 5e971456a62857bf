"""How a teacher's classes meet the data's labels — one rule, stated, stored and checked.

A teacher predicts class ids ``0..C-1`` with names in its ``config.id2label``; the data's labels are strings
(``TaskSpec.labels``, class id = position). When a student learns from both, class ``i`` must mean the same thing
on both sides. The rule:

1. **Same names** (the same set, any order): matched *by name*. When the orders differ, the data's class ids are
   renumbered to the teacher's order (the datasets' labels too), and a line says so.
2. **Different names, same count** (``0/1`` in a CSV vs an SST-2 teacher's ``negative/positive``, or a teacher with
   generic ``LABEL_0`` names): matched *by position*: the data's ``labels[i]`` is the teacher's class ``i``. The
   student keeps the data's names (so it is evaluated on its own files), the mapping is stored in the run's
   results, and it is **checked** on your own data: the teacher's agreement with the train labels under the mapping
   is measured on a sample and printed, and a mapping under which the teacher agrees *less than chance* — the
   agreement expected if its predictions were independent of the labels, ``Σ_c p_gold(c)·p_teacher(c)``, as in
   Cohen's kappa — is refused, naming the label order under which the teacher agrees best (Hungarian matching on
   the confusion matrix), since a positional mapping can silently swap classes.
3. **Different counts**: refused where the teacher is loaded (:func:`kdistill.models.load_classifier`).

GLUE tasks keep their official label order (the ``nyu-mll/glue`` ``ClassLabel``), which a teacher fine-tuned on
the task follows, so only rule 1 applies to them. Multi-label data follows rules 1 and 2 without the agreement
check (a per-label check would need the decision threshold the run has not chosen yet).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from typing import Any, Sequence

import numpy as np

from kdistill.data.tasks import TaskSpec
from kdistill.errors import DataError

__all__ = ["LabelMapping", "match_labels", "agreement", "check_agreement", "renumber_splits"]

log = logging.getLogger("kdistill")
_GENERIC = re.compile(r"^LABEL_\d+$")


@dataclasses.dataclass
class LabelMapping:
    """The outcome of :func:`match_labels`.

    Attributes:
        rule: ``"by name"``, ``"renumbered by name"`` (same names, the teacher's order), ``"by position"`` or
            ``"none"`` (regression, or no names to match).
        data_to_teacher: ``{data label: teacher label}`` in class-id order (``None`` for ``"none"``).
        order: for ``"renumbered by name"``, ``order[old data id] = new id``; else ``None``.
        agreement: the teacher's agreement with the train labels under the mapping (filled by
            :func:`check_agreement`), with ``chance``, ``rows`` and the ``best_order`` of labels.
    """

    rule: str
    data_to_teacher: dict[str, str] | None = None
    order: list[int] | None = None
    agreement: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The mapping as recorded in a run's results (``label_mapping``)."""
        out: dict[str, Any] = {"rule": self.rule, "data_to_teacher": self.data_to_teacher}
        if self.agreement is not None:
            out["agreement"] = self.agreement
        return out


def teacher_label_names(config) -> list[str] | None:
    """The names of a model config's classes in id order (``id2label``), or ``None`` when it has none."""
    id2label = getattr(config, "id2label", None) or {}
    if not id2label:
        return None
    try:
        return [str(id2label[k]) for k in sorted(id2label, key=int)]
    except (TypeError, ValueError):
        return None


def match_labels(task: TaskSpec, teacher_config) -> tuple[TaskSpec, LabelMapping]:
    """Apply the module's rule to ``task`` and a teacher's config.

    Returns:
        ``(task, mapping)``: ``task`` with its labels in the teacher's order when rule 1 renumbered them
        (the caller renumbers its datasets with :func:`renumber_splits`), else unchanged.

    Raises:
        DataError: same names in another order while cells hold class ids (``--label-names``): renumbering would
            change what the ids mean.
    """
    if task.is_regression:
        return task, LabelMapping("none")
    names = teacher_label_names(teacher_config)
    labels = [str(v) for v in task.labels]
    if names is None or len(names) != len(labels):
        return task, LabelMapping("none")  # a count mismatch is load_classifier's one-line error
    if names == labels:
        return task, LabelMapping("by name", dict(zip(labels, names)))
    if sorted(names) == sorted(labels):
        if task.label_ids:
            raise DataError(f"the --label-names file lists the teacher's labels in another order ({labels[:5]}... vs "
                            f"the teacher's {names[:5]}...); the ids in your cells follow the file, the teacher's class "
                            "ids follow its config: use a teacher trained with this names file")
        order = [names.index(v) for v in labels]
        log.info("labels matched to the teacher's by name; class ids follow the teacher's order: %s",
                 ", ".join(names[:20]) + (f" … and {len(names) - 20} more" if len(names) > 20 else ""))
        return (dataclasses.replace(task, labels=tuple(names)),
                LabelMapping("renumbered by name", dict(zip(names, names)), order=order))
    mapping = dict(zip(labels, names))
    generic = all(_GENERIC.match(n) for n in names)
    shown = ", ".join(f"{a} → {b}" for a, b in list(mapping.items())[:10]) + (
        f" … and {len(mapping) - 10} more" if len(mapping) > 10 else "")
    log.info("the data's labels and the teacher's are %s: matched by position (class id = position; the student "
             "keeps the data's names): %s", "named LABEL_i by the teacher" if generic else "spelled differently", shown)
    return task, LabelMapping("by position", mapping)


def renumber_splits(splits, order: Sequence[int], multi_label: bool):
    """A ``DatasetDict`` whose ``label`` column follows ``order`` (``order[old id] = new id``; multi-hot vectors
    ``[C]`` permuted the same way)."""
    order = list(order)
    inverse = [0] * len(order)
    for old, new in enumerate(order):
        inverse[new] = old
    if multi_label:
        return splits.map(lambda b: {"label": [[row[inverse[j]] for j in range(len(order))] for row in b["label"]]},
                          batched=True, desc="renumber labels")
    return splits.map(lambda b: {"label": [order[v] for v in b["label"]]}, batched=True, desc="renumber labels")


def agreement(pred: np.ndarray, gold: np.ndarray, num_labels: int) -> dict[str, Any]:
    """Agreement of teacher predictions with gold labels, beside chance and the best relabelling.

    Args:
        pred, gold: class ids ``[N]`` (int).
        num_labels: ``C``.

    Returns:
        ``{"agreement", "chance", "rows", "z", "best_order", "best_agreement"}``: ``agreement`` = share of rows where
        ``pred == gold``; ``chance`` = ``Σ_c p_gold(c)·p_pred(c)`` (independent predictions, as in Cohen's kappa);
        ``z`` = (agreement − chance) / its binomial standard error; ``best_order[i]`` = the teacher class that best
        matches data class ``i`` (Hungarian matching of the confusion matrix, scipy's ``linear_sum_assignment``).
    """
    from scipy.optimize import linear_sum_assignment

    pred, gold = np.asarray(pred, dtype=np.int64), np.asarray(gold, dtype=np.int64)
    n = len(gold)
    confusion = np.zeros((num_labels, num_labels), dtype=np.int64)  # [gold, pred]
    np.add.at(confusion, (gold, pred), 1)
    agree = float(np.trace(confusion)) / n
    chance = float((confusion.sum(1) / n) @ (confusion.sum(0) / n))
    se = math.sqrt(max(chance * (1 - chance), 1e-12) / n)
    rows, cols = linear_sum_assignment(-confusion)
    best = [int(c) for _, c in sorted(zip(rows, cols))]
    return {"agreement": agree, "chance": chance, "rows": n, "z": (agree - chance) / se, "best_order": best,
            "best_agreement": float(confusion[rows, cols].sum()) / n}


def check_agreement(mapping: LabelMapping, pred: np.ndarray, gold: np.ndarray, task: TaskSpec,
                    teacher_names: Sequence[str]) -> None:
    """Measure the teacher's agreement under ``mapping`` (recorded in it), print it, and refuse a swapped mapping.

    Refused: agreement below chance with ``z < -3`` (one-sided p ≈ 0.001, so a random teacher is not refused by bad
    luck) while another label order agrees better.

    Raises:
        DataError: one line with the agreement, chance, and the ``--labels`` order under which the teacher agrees best.
    """
    stats = agreement(pred, gold, len(task.labels))
    labels = list(task.labels)
    best_labels = [labels[stats["best_order"].index(t)] for t in range(len(labels))]  # data label of teacher class t
    stats["best_order"] = best_labels
    mapping.agreement = stats
    log.info("the teacher agrees with the train labels on %.1f%% of %d rows under this mapping (chance %.1f%%)",
             100 * stats["agreement"], stats["rows"], 100 * stats["chance"])
    if stats["z"] < -3 and stats["best_agreement"] > stats["agreement"]:
        pairs = ", ".join(f"{d} → {t}" for d, t in list(zip(best_labels, teacher_names))[:10])
        raise DataError(
            f"the teacher agrees with the train labels on only {100 * stats['agreement']:.1f}% of {stats['rows']} rows "
            f"under the positional mapping (chance {100 * stats['chance']:.1f}%): the classes look swapped; it agrees on "
            f"{100 * stats['best_agreement']:.1f}% with --labels {','.join(best_labels)} ({pairs})")
