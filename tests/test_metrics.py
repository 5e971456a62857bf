"""Tests for kdistill.metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kdistill.data import get_task
from kdistill.data.tasks import TaskSpec
from kdistill.metrics import compute_metrics, main_metric


def _logits(ids, num_labels=2):
    out = np.zeros((len(ids), num_labels), dtype=np.float32)
    out[np.arange(len(ids)), ids] = 1.0
    return out


# preds  = [1, 1, 0, 1, 0, 0]
# refs   = [1, 0, 0, 1, 1, 0]
# TP=2 (idx 0,3), FP=1 (idx 1), FN=1 (idx 4), TN=2 (idx 2,5)
PREDS = [1, 1, 0, 1, 0, 0]
REFS = [1, 0, 0, 1, 1, 0]


def test_accuracy_sst2():
    out = compute_metrics(get_task("sst2"), _logits(PREDS), np.array(REFS))
    assert out == {"accuracy": pytest.approx(4 / 6)}
    assert isinstance(out["accuracy"], float)


def test_mrpc_binary_f1_and_accuracy():
    out = compute_metrics(get_task("mrpc"), _logits(PREDS), np.array(REFS))
    # precision = 2/3, recall = 2/3 -> F1 = 2/3
    assert list(out) == ["f1", "accuracy"]
    assert out["f1"] == pytest.approx(2 / 3)
    assert out["accuracy"] == pytest.approx(4 / 6)


def test_qqp_f1_asymmetric():
    # preds [1,1,1,0], refs [1,0,0,0]: TP=1, FP=2, FN=0 -> P=1/3, R=1, F1=0.5
    out = compute_metrics(get_task("qqp"), _logits([1, 1, 1, 0]), np.array([1, 0, 0, 0]))
    assert out == {"accuracy": pytest.approx(0.5), "f1": pytest.approx(0.5)}


def test_cola_mcc():
    out = compute_metrics(get_task("cola"), _logits(PREDS), np.array(REFS))
    # MCC = (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (4 - 1) / sqrt(3*3*3*3) = 1/3
    assert out == {"matthews_correlation": pytest.approx(1 / 3)}


def test_cola_mcc_constant_predictions_is_zero():
    out = compute_metrics(get_task("cola"), _logits([1, 1, 1, 1]), np.array([1, 0, 1, 0]))
    assert out["matthews_correlation"] == 0.0


def test_stsb_pearson_spearman():
    preds = np.array([1.0, 2.0, 3.0, 4.0])
    refs = np.array([1.0, 2.0, 3.0, 5.0])
    out = compute_metrics(get_task("stsb"), preds[:, None], refs)
    # pearson by hand: means 2.5 / 2.75; dx = [-1.5,-.5,.5,1.5], dy = [-1.75,-.75,.25,2.25]
    # sum dx*dy = 2.625+.375+.125+3.375 = 6.5; sum dx^2 = 5; sum dy^2 = 3.0625+.5625+.0625+5.0625 = 8.75
    assert out["pearson"] == pytest.approx(6.5 / math.sqrt(5 * 8.75))
    assert out["spearmanr"] == pytest.approx(1.0)  # same ranking
    out_flat = compute_metrics(get_task("stsb"), preds, refs)
    assert out_flat == out


def test_stsb_spearman_reversed_and_constant():
    out = compute_metrics(get_task("stsb"), np.array([3.0, 2.0, 1.0]), np.array([0.5, 1.0, 4.0]))
    assert out["spearmanr"] == pytest.approx(-1.0)
    const = compute_metrics(get_task("stsb"), np.array([2.0, 2.0, 2.0]), np.array([0.5, 1.0, 4.0]))
    assert const == {"pearson": 0.0, "spearmanr": 0.0}


def test_mnli_three_way_accuracy_and_class_ids():
    logits = np.array([[2.0, 0.1, 0.3], [0.0, 0.0, 5.0], [0.2, 0.9, 0.1]])
    assert compute_metrics(get_task("mnli"), logits, np.array([0, 2, 2])) == {"accuracy": pytest.approx(2 / 3)}
    assert compute_metrics(get_task("mnli"), np.array([0, 2, 1]), np.array([0, 2, 2]))["accuracy"] == pytest.approx(
        2 / 3
    )


def test_macro_f1_for_many_labels():
    spec = TaskSpec(
        name="custom", glue_dir="", text_columns=("text",), label_column="label", labels=("a", "b", "c"),
        metrics=("accuracy", "f1"), main_metric="accuracy",
    )
    # preds [0,1,2,2], refs [0,1,1,2]: class a F1=1, class b P=1 R=.5 F1=2/3, class c P=.5 R=1 F1=2/3
    out = compute_metrics(spec, _logits([0, 1, 2, 2], 3), np.array([0, 1, 1, 2]))
    assert out["accuracy"] == pytest.approx(0.75)
    assert out["f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)


def test_main_metric():
    assert main_metric(get_task("cola")) == "matthews_correlation"
    assert main_metric(get_task("mrpc")) == "f1"
    assert main_metric(get_task("stsb")) == "pearson"
    assert main_metric(get_task("sst2")) == "accuracy"


def test_shape_errors():
    with pytest.raises(ValueError):
        compute_metrics(get_task("sst2"), _logits([0, 1]), np.array([0, 1, 1]))
    with pytest.raises(ValueError):
        compute_metrics(get_task("sst2"), _logits([0, 1], 3), np.array([0, 1]))
    with pytest.raises(ValueError):
        compute_metrics(get_task("sst2"), np.zeros((0, 2)), np.array([], dtype=int))
    with pytest.raises(ValueError):
        compute_metrics(get_task("stsb"), np.zeros((3, 2)), np.zeros(3))
