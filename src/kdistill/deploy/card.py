"""The model card (``README.md`` with Hugging Face model-card metadata) written beside an exported model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kdistill.results import fmt_num

GLUE_DATASETS = {"sst2": "glue/sst2", "cola": "glue/cola", "mrpc": "glue/mrpc", "stsb": "glue/stsb", "qqp": "glue/qqp",
                 "mnli": "glue/mnli", "qnli": "glue/qnli", "rte": "glue/rte", "wnli": "glue/wnli"}


def _run_facts(model: str) -> dict[str, Any]:
    """What the model's own folder says about how it was made (``kdistill_run.json``, ``report.json``), if anything."""
    out: dict[str, Any] = {}
    folder = Path(model)
    for name in ("kdistill_run.json", "report.json"):
        path = folder / name
        if path.is_file():
            try:
                out[name] = json.loads(path.read_text())
            except ValueError:
                pass
    return out


def _yaml_list(key: str, values: list[str]) -> list[str]:
    return [f"{key}:"] + [f"- {v}" for v in values]


def model_card(meta: dict[str, Any], model: str) -> str:
    """The card's text: YAML front matter (``base_model``, ``datasets``, ``metrics``, ``model-index``, tags) and a body
    with how the model was made, the proof table (PyTorch vs ONNX Runtime fp32 vs int8 on dev, parity, sizes) and
    how to run it without torch."""
    facts = _run_facts(model)
    run = facts.get("kdistill_run.json", {})
    rep = facts.get("report.json", {})
    teacher = run.get("teacher") or rep.get("teacher")
    task = meta.get("task") or "custom"
    dataset = GLUE_DATASETS.get(task, task)
    metric = meta["metric_name"]
    best = meta.get("int8_metric", meta.get("fp32_metric"))  # None: undefined on the dev split (n/a, YAML null)
    front = ["---", "library_name: onnxruntime", "pipeline_tag: text-classification"]
    if teacher:
        front.append(f"base_model: {teacher}")
    front += _yaml_list("datasets", [dataset])
    front += _yaml_list("metrics", [metric])
    front += _yaml_list("tags", ["kdistill", "knowledge-distillation", "onnx"] + (["int8"] if "int8" in meta["files"] else []))
    front += ["model-index:", f"- name: {Path(meta.get('output', model)).name or 'model'}", "  results:",
              "  - task:", "      type: text-classification", "    dataset:", f"      name: {dataset}",
              f"      type: {dataset}", "      split: validation", "    metrics:", f"    - type: {metric}",
              f"      value: {fmt_num(best, na='null')}", f"      name: dev {metric} ({'ONNX Runtime int8' if 'int8' in meta['files'] else 'ONNX Runtime fp32'})",
              "---", ""]
    method = run.get("method")
    lines = [f"# {task} classifier for ONNX Runtime", ""]
    made = f"Exported by kdistill from `{model}`"
    if method:
        made += f", a student made by `kdistill` method `{method}` from the teacher `{teacher}`"
    lines += [made + ".", ""]
    q = meta.get("quantization", {})
    lines += ["## Proof (measured at export, dev split, "
              f"{meta['dev_examples']} examples)", "", f"| graph | dev {metric} | size MB |", "|---|---:|---:|",
              f"| PyTorch fp32 (source) | {fmt_num(meta.get('pytorch_metric'))} | |",
              f"| ONNX Runtime fp32 (`{meta['files']['fp32']}`) | {fmt_num(meta.get('fp32_metric'))} | "
              f"{fmt_num(meta['sizes_mb']['fp32'], '.1f')} |"]
    if "int8" in meta["files"]:
        lines.append(f"| ONNX Runtime int8 {q.get('mode')} (`{meta['files']['int8']}`) | {fmt_num(meta.get('int8_metric'))} | "
                     f"{fmt_num(meta['sizes_mb']['int8'], '.1f')} |")
    lines += ["", f"fp32 parity: max |ORT - PyTorch| logit difference {fmt_num(meta['parity']['max_abs_diff'], '.1e')} over "
              f"the dev split (limit {fmt_num(meta['parity']['atol'], '.0e')})."]
    if "int8" in meta["files"]:
        lines.append(f"int8 gate: {fmt_num(meta.get('int8_drop_points'), '+.2f')} points below fp32 "
                     f"(limit {fmt_num(meta.get('max_drop_points'), 'g')}); "
                     f"quantization {json.dumps({k: v for k, v in q.items() if k != 'requested'})}.")
    if meta.get("auto"):
        lines.append(f"`--quantize auto` chose `{meta['auto']['chosen']}` on {meta['auto']['chosen_on']}: "
                     f"{json.dumps(meta['auto']['selection_metrics'])}.")
    if rep:
        undefined = rep.get("undefined") if isinstance(rep.get("undefined"), dict) else {}
        why = "; ".join(f"{k}: {undefined[k]}" for k in ("teacher_metric", "student_metric", "retention", "speedup")
                        if k in undefined and rep.get(k) is None)
        lines += ["", "Against its teacher (the distillation run's report, eager PyTorch): "
                  f"teacher {fmt_num(rep.get('teacher_metric'))}, student {fmt_num(rep.get('student_metric'))}, "
                  f"retention {fmt_num(rep.get('retention'), '.1f', '%', scale=100)}, "
                  f"speedup {fmt_num(rep.get('speedup'), '.2f', 'x')}" + (f" (n/a: {why})." if why else ".")]
    lines += ["", "## Use it without torch", "", "```bash", "pip install onnxruntime tokenizers numpy", "```", "", "```python",
              "import sys; sys.path.insert(0, \"<this folder>\")", "from predict import Predictor",
              "labels, probabilities = Predictor(\"<this folder>\").predict([\"a gorgeous, witty film\"])", "```", "",
              f"Labels: {', '.join(meta['labels'])}. Inputs: {', '.join(meta['inputs'])} (max length {meta['max_length']}).", ""]
    return "\n".join(front + lines)


def write_model_card(folder: str | Path, meta: dict[str, Any], model: str) -> Path:
    """Write :func:`model_card` to ``folder/README.md``; returns the path."""
    path = Path(folder) / "README.md"
    path.write_text(model_card(meta, model))
    return path


__all__ = ["model_card", "write_model_card"]
