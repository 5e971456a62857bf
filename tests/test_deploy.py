"""Deployment (issue 14): export → ONNX Runtime parity for every model kind, the int8 gate, the torch-free predictor,
bad input in one line, the report's ORT rows and ``--deploy int8`` as a run's output stage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_tiny_bert

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

TEXTS = ["a gorgeous , witty , seductive movie .", "the plot is nothing but boilerplate clichés from start to finish ,",
         "bad", "it 's a charming and often affecting journey ."]


def _data(glue_dir, **over):
    from kdistill.config import DataConfig

    return DataConfig(task="sst2", data_dir=str(glue_dir), max_train_samples=300, max_eval_samples=48,
                      selection_size=30, **over)


def _family(name: str, tok):
    """A tiny random classifier of each layout kdistill exports (BERT-uncased vocabulary of the real tokenizer)."""
    from transformers import (DebertaV2Config, DebertaV2ForSequenceClassification, DistilBertConfig,
                              DistilBertForSequenceClassification, ElectraConfig, ElectraForSequenceClassification,
                              ModernBertConfig, ModernBertForSequenceClassification, MPNetConfig,
                              MPNetForSequenceClassification, RobertaConfig, RobertaForSequenceClassification)

    torch.manual_seed(0)
    common = dict(vocab_size=len(tok), max_position_embeddings=160, num_labels=2, initializer_range=0.2,
                  id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    if name == "distilbert":
        return DistilBertForSequenceClassification(DistilBertConfig(dim=32, n_layers=2, n_heads=4, hidden_dim=48, **common))
    if name == "roberta":
        return RobertaForSequenceClassification(RobertaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                                              intermediate_size=48, pad_token_id=1, **common))
    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48)
    if name == "mpnet":  # all-mpnet-base-v2's layout (relative position bias shared by the layers)
        return MPNetForSequenceClassification(MPNetConfig(**small, **common))
    if name == "deberta-v2":
        return DebertaV2ForSequenceClassification(DebertaV2Config(**small, relative_attention=True, position_buckets=32,
                                                                  pos_att_type=["p2c", "c2p"], **common))
    if name == "modernbert":  # global attention every 2nd layer, local (sliding window) otherwise
        return ModernBertForSequenceClassification(ModernBertConfig(**{**small, "num_hidden_layers": 3}, pad_token_id=0,
                                                                    cls_token_id=101, sep_token_id=102, bos_token_id=None,
                                                                    eos_token_id=None, global_attn_every_n_layers=2,
                                                                    local_attention=16, **common))
    if name == "electra":
        return ElectraForSequenceClassification(ElectraConfig(embedding_size=16, hidden_size=32, num_hidden_layers=2,
                                                              num_attention_heads=4, intermediate_size=48, **common))
    bert = make_tiny_bert(vocab_size=len(tok), layers=3, hidden=32, heads=4, initializer_range=0.2)
    import kdistill.compress as kc

    if name == "pruned":  # unequal head counts and FFN widths per layer
        return kc.prune_ffn(kc.prune_heads(bert, {0: [1, 2], 2: [0]}), {1: list(range(0, 64, 3))})
    if name == "lowrank":
        return kc.factorize(bert, rank=4)
    return bert


def _save(name: str, tok, path: Path) -> Path:
    if name == "bilstm":
        from kdistill.students.bilstm import BiLSTMConfig, BiLSTMForSequenceClassification

        torch.manual_seed(0)
        cfg = BiLSTMConfig.from_tokenizer(tok, embedding_dim=16, hidden_size=8, fc_size=12, num_labels=2,
                                          id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
        BiLSTMForSequenceClassification(cfg).save_pretrained(path)
        tok.save_pretrained(path)
    elif name == "vocab":
        import kdistill.compress as kc

        res = kc.prune_vocabulary(_family("bert", tok), tok, TEXTS)
        res.save(path)
    else:
        _family(name, tok).save_pretrained(path)
        tok.save_pretrained(path)
    return path


def _torch_logits(folder: Path, texts):
    from kdistill.data.tasks import get_task
    from kdistill.models import load_classifier, load_tokenizer

    net = load_classifier(str(folder), get_task("sst2"), require_trained_head=True).eval()
    tok = load_tokenizer(str(folder))
    enc = tok(list(texts), padding=True, return_tensors="pt")
    from kdistill.data.batching import forward_keys, model_inputs

    with torch.no_grad():
        return net(**model_inputs(enc, forward_keys(net))).logits.numpy()


KINDS = ["bert", "roberta", "distilbert", "electra", "mpnet", "deberta-v2", "modernbert", "pruned", "lowrank", "vocab",
         "bilstm"]


@pytest.mark.parametrize("kind", KINDS)
def test_export_parity_and_predictor_round_trip(kind, tiny_tokenizer, glue_dir, tmp_path):
    """Every kind exports with fp32 ORT logits within 1e-4 of PyTorch's on the dev rows, quantizes, and the
    exported folder's own predict.py (onnxruntime + tokenizers + numpy) gives PyTorch's logits back."""
    from kdistill.deploy.export import export_model

    src = _save(kind, tiny_tokenizer, tmp_path / "model")
    meta = export_model(str(src), tmp_path / "onnx", data=_data(glue_dir), quantize="dynamic", optimize=True,
                        max_drop=100.0)  # random weights: int8 may flip a prediction or two
    out = tmp_path / "onnx"
    assert meta["parity"]["max_abs_diff"] <= 1e-4 and meta["parity"]["rows"] == 48
    assert meta["fp32_metric"] == pytest.approx(meta["pytorch_metric"])
    for name in ("model.onnx", "model_quantized.onnx", "tokenizer.json", "config.json", "predict.py", "README.md",
                 "kdistill_export.json"):
        assert (out / name).is_file(), name
    assert not list(tmp_path.glob(".onnx.partial*"))
    takes_types = ("bert", "roberta", "electra", "deberta-v2", "pruned", "lowrank", "vocab")
    assert ("token_type_ids" in meta["inputs"]) == (kind in takes_types)
    if kind in ("bert", "pruned", "lowrank", "vocab", "roberta"):
        assert meta["optimize"]["applied"] in (True, False) and "fusions" in meta["optimize"]
    if kind == "bert":  # uniform heads: ORT's attention fusion applies, and parity still holds
        assert meta["optimize"]["fusions"].get("Attention") == 3
    sys.path.insert(0, str(out))
    try:
        sys.modules.pop("predict", None)
        from predict import Predictor

        fp32 = Predictor(out, quantized=False).logits(TEXTS)
        labels, probs = Predictor(out).predict(TEXTS)
    finally:
        sys.path.remove(str(out))
        sys.modules.pop("predict", None)
    np.testing.assert_allclose(fp32, _torch_logits(src, TEXTS), atol=1e-4, rtol=0)
    assert len(labels) == len(TEXTS) and set(labels) <= {"negative", "positive"}
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)


def test_predictor_imports_no_torch(tiny_tokenizer, glue_dir, tmp_path):
    """The served model needs no torch: predict.py runs in a process where importing torch or transformers fails."""
    from kdistill.deploy.export import export_model

    src = _save("bert", tiny_tokenizer, tmp_path / "model")
    export_model(str(src), tmp_path / "onnx", data=_data(glue_dir))
    code = ("import sys, json; sys.modules['torch'] = None; sys.modules['transformers'] = None; "
            f"sys.path.insert(0, {str(tmp_path / 'onnx')!r}); from predict import Predictor; "
            f"labels, p = Predictor({str(tmp_path / 'onnx')!r}).predict(['a fine film', 'dull']); "
            "print(json.dumps([labels, p.shape[1]]))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    labels, width = json.loads(res.stdout)
    assert len(labels) == 2 and width == 2
    card = (tmp_path / "onnx" / "README.md").read_text()
    assert card.startswith("---\n") and "model-index:" in card and "pip install onnxruntime tokenizers numpy" in card


def _always_negative(tok, path: Path) -> Path:
    model = make_tiny_bert(vocab_size=len(tok), layers=2)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([5.0, 0.0]))  # 25 of the first 48 dev rows are negative
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _negating_quantizer(src, dst):
    """A 'quantizer' that flips every prediction: the gate must catch it."""
    import onnx

    m = onnx.load(str(src))
    out = m.graph.output[0].name
    for node in m.graph.node:
        node.output[:] = [o + "_pre" if o == out else o for o in node.output]
    m.graph.node.append(onnx.helper.make_node("Neg", [out + "_pre"], [out]))
    onnx.save(m, str(dst))
    return {"mode": "dynamic", "note": "test double"}


def test_int8_gate_refuses_and_writes_nothing(tiny_tokenizer, glue_dir, tmp_path, monkeypatch):
    """An int8 graph whose dev metric falls more than --max-drop below fp32 is refused with both figures, and
    neither the output folder nor a partial one is left; the same model with ORT's real quantizer passes max_drop 0."""
    import kdistill.deploy.graph as graph
    from kdistill.deploy.export import export_model
    from kdistill.errors import ModelError

    src = _always_negative(tiny_tokenizer, tmp_path / "model")
    data = _data(glue_dir)
    meta = export_model(str(src), tmp_path / "ok", data=data, quantize="dynamic", max_drop=0.0)
    assert meta["int8_drop_points"] == pytest.approx(0.0) and meta["int8_metric"] == pytest.approx(meta["fp32_metric"])
    monkeypatch.setattr(graph, "quantize_dynamic_graph", _negating_quantizer)
    with pytest.raises(ModelError, match=r"int8 \(dynamic\) dev accuracy .* points below the fp32 graph's .*--max-drop 0.5"):
        export_model(str(src), tmp_path / "refused", data=data, quantize="dynamic", max_drop=0.5)
    assert not (tmp_path / "refused").exists() and not list(tmp_path.glob(".refused*"))


def test_auto_chooses_on_the_selection_slice(tiny_tokenizer, glue_dir, tmp_path):
    from kdistill.deploy.export import export_model

    src = _save("bert", tiny_tokenizer, tmp_path / "model")
    meta = export_model(str(src), tmp_path / "onnx", data=_data(glue_dir), quantize="auto", max_drop=100.0,
                        calibration_size=20)
    auto = meta["auto"]
    assert set(auto["selection_metrics"]) == {"dynamic", "static"} and "never the dev split" in auto["chosen_on"]
    best = max(auto["selection_metrics"].values())
    assert auto["selection_metrics"][auto["chosen"]] == best and meta["quantization"]["mode"] == auto["chosen"]
    assert meta["selection"]["selection_rows"] == 30
    static = export_model(str(src), tmp_path / "static", data=_data(glue_dir), quantize="static", max_drop=100.0,
                          calibration_size=20)
    assert static["quantization"]["format"] == "QDQ" and static["quantization"]["calibration_examples"] == 20


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kdistill.cli", *args], capture_output=True, text=True, timeout=300)


def test_bad_input_one_line(tiny_tokenizer, glue_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for args, needle in (
        (["--model", str(empty), "--output", str(tmp_path / "o")], "holds no saved model"),
        (["--model", str(empty), "--output", str(tmp_path / "o"), "--quantize", "int4"], "--quantize must be one of"),
    ):
        res = _cli("export", *args, "--data-dir", str(glue_dir), "--max-eval-samples", "8")
        assert res.returncode == 2, res.stderr
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and needle in lines[0] and "Traceback" not in res.stderr
    src = _save("bert", tiny_tokenizer, tmp_path / "model")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    res = _cli("export", "--model", str(src), "--output", str(busy), "--overwrite", "--data-dir", str(glue_dir),
               "--max-eval-samples", "8")
    assert res.returncode == 2 and "not a kdistill export folder" in res.stderr
    assert (busy / "notes.txt").read_text() == "mine"


def test_report_has_ort_rows(tiny_teacher_dir, tiny_tokenizer, glue_dir, tmp_path):
    """Teacher and student each in eager, ORT fp32 and ORT int8: metric, latency, size; the ORT speedups and the
    deployment speedup (student int8 vs teacher ORT fp32) are consistent with the rows."""
    from kdistill.reporting.compare import make_report

    student = tmp_path / "student"
    make_tiny_bert(layers=1, seed=3).save_pretrained(student)
    tiny_tokenizer.save_pretrained(student)
    rep = make_report(teacher=str(tiny_teacher_dir), student=str(student), data=_data(glue_dir), output_dir=tmp_path / "r",
                      latency_runs=5, runtimes=True)
    rows = rep["runtimes"]
    for role in ("teacher", "student"):
        assert list(rows[role]) == ["eager_fp32", "ort_fp32", "ort_int8"]
        assert rows[role]["ort_fp32"]["metric"] == pytest.approx(rows[role]["eager_fp32"]["metric"])
        assert rows[role]["ort_int8"]["disk_mb"] < rows[role]["ort_fp32"]["disk_mb"]
        assert rows[role]["ort_fp32"]["parity_max_abs_diff"] <= 1e-4
    assert rep["deployment_speedup"] == pytest.approx(rows["teacher"]["ort_fp32"]["latency_ms"]
                                                      / rows["student"]["ort_int8"]["latency_ms"])
    assert rep["teacher_latency_ms"] == rows["teacher"]["eager_fp32"]["latency_ms"]
    assert "allow_spinning = 0" in rep["ort_timing"]
    md = (tmp_path / "r" / "report.md").read_text()
    assert "## Runtimes" in md and "deployment speedup" in md


def test_run_deploy_int8_output_stage(tiny_teacher_dir, glue_dir, tmp_path):
    import kdistill

    res = kdistill.distill(str(tiny_teacher_dir), "sst2", output_dir=tmp_path / "run", data_dir=str(glue_dir),
                           max_train_samples=120, max_eval_samples=32, selection_size=10, epochs=1, batch_size=16,
                           report=False, deploy="int8", quantize="dynamic", max_drop=100.0)
    onnx_dir = tmp_path / "run" / "onnx"
    assert res.deployment["output"] == str(onnx_dir) and (onnx_dir / "model_quantized.onnx").is_file()
    meta = json.loads((onnx_dir / "kdistill_export.json").read_text())
    assert meta["pytorch_metric"] == pytest.approx(res.metrics["accuracy"])
    assert json.loads((tmp_path / "run" / "kdistill_run.json").read_text())["export"]["deploy"] == "int8"


def test_parity_failure_refuses_with_the_measured_difference(tiny_tokenizer, glue_dir, tmp_path, monkeypatch):
    import onnx

    import kdistill.deploy.graph as graph
    from kdistill.deploy.export import export_model
    from kdistill.errors import ModelError

    real = graph.export_graph

    def off_by_a_hundredth(model, tok, path, **kw):
        names = real(model, tok, path, **kw)
        m = onnx.load(str(path))
        out = m.graph.output[0].name
        for node in m.graph.node:
            node.output[:] = [o + "_pre" if o == out else o for o in node.output]
        m.graph.initializer.append(onnx.numpy_helper.from_array(np.array(0.01, dtype=np.float32), "shift"))
        m.graph.node.append(onnx.helper.make_node("Add", [out + "_pre", "shift"], [out]))
        onnx.save(m, str(path))
        return names

    monkeypatch.setattr(graph, "export_graph", off_by_a_hundredth)
    src = _save("bert", tiny_tokenizer, tmp_path / "model")
    with pytest.raises(ModelError, match=r"differ from PyTorch's by 1\.00e-02 .*limit 1e-04"):
        export_model(str(src), tmp_path / "onnx", data=_data(glue_dir))
    assert not (tmp_path / "onnx").exists()


def test_push_to_hub_offline_is_one_line_and_keeps_the_export(tiny_tokenizer, glue_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    src = _save("bert", tiny_tokenizer, tmp_path / "model")
    res = _cli("export", "--model", str(src), "--output", str(tmp_path / "onnx"), "--data-dir", str(glue_dir),
               "--max-eval-samples", "8", "--push-to-hub", "someone/tiny")
    assert res.returncode == 2 and "--push-to-hub someone/tiny: upload failed" in res.stderr
    assert (tmp_path / "onnx" / "model.onnx").is_file()
