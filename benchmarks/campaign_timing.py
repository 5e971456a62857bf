"""The campaign's timing step: each task's teacher and KD students, batch 1 and batch 32 (SST-2: the dev set's median
length; NER: a 30-token sentence; QA: one 256-token window).

    python benchmarks/campaign.py time       # every KD experiment with a result, in one run; on an idle machine

One process, eager PyTorch, ``--num-threads`` threads (2), the models interleaved round by round (so a drift of the
machine hits all alike); each input is one real dev input cut or chosen to the timed length (SST-2: the dev set's
median under the teacher's tokenizer), repeated 32 times for batch 32; each student's speedup is over its own task's
teacher. Writes ``benchmarks/results/campaign/timing.json``
(median ms per call, speedups over the teacher, command, commit, machine, threads).
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from campaign import RESULTS, RUNS, git_commit, load_experiment, machine, places

ROUNDS = {1: 200, 32: 30}
WARMUP = 5


def time_models(names: list[str], *, threads: int) -> dict[str, Any]:
    """Time each task's teacher and the first seed's model of every KD experiment with a result, in one run
    (speedups are compared only within one run: ``names``, when given, must all have results, and the others are
    timed too). SST-2 models at the dev set's median length under the teacher's tokenizer; token classification at
    a 30-token sentence and question answering at one 256-token window (capped at the run's ``max_length``), as the
    report times them (:data:`kdistill.reporting.compare.TOKEN_SEQ_LEN`, ``QA_SEQ_LEN``). Every model of every task
    is interleaved in the same rounds; each student's speedup is over its own task's teacher."""
    import numpy as np
    import torch

    from kdistill.data.batching import forward_keys
    from kdistill.models import load_classifier, load_tokenizer
    from kdistill.reporting.measure import _batch1_inputs, _split_texts, _token_lengths

    runs = {}
    for path in sorted(RESULTS.glob("*-s*.json")):
        row = json.loads(path.read_text())
        if row["role"] == "kd" and row["name"] not in runs:
            runs[row["name"]] = row
    for name in names:
        if name not in runs:
            load_experiment(name)  # a one-line error for an unknown name
            raise SystemExit(f"{name}: no result yet to time; run it first")
    groups = task_groups(runs)
    dirs, models, toks, inputs, task_of, seq_lens = {}, {}, {}, {}, {}, {}
    for task, g in groups.items():
        texts = g["texts"]
        firsts, seconds = _split_texts(texts)
        for k, d in {g["teacher_key"]: g["teacher"], **g["students"]}.items():
            dirs[k], task_of[k] = d, task
            models[k] = load_classifier(str(d), g["spec"], require_trained_head=True).eval()
            toks[k] = load_tokenizer(str(d))
        teacher_lengths = _token_lengths(toks[g["teacher_key"]], firsts, seconds)
        seq_lens[task] = g["seq_len"] or int(statistics.median_low(teacher_lengths))
        for k in [g["teacher_key"], *g["students"]]:
            one = _batch1_inputs(toks[k], firsts, seconds, _token_lengths(toks[k], firsts, seconds), seq_lens[task],
                                 forward_keys(models[k]))
            inputs[k] = {1: one, 32: {key: v.repeat(32, *[1] * (v.dim() - 1)) for key, v in one.items()}}
    ms: dict[str, dict[int, float]] = {k: {} for k in models}
    with torch.inference_mode():
        for batch, rounds in ROUNDS.items():
            times = {k: [] for k in models}
            for i in range(WARMUP + rounds):
                for k, m in models.items():
                    t0 = time.perf_counter()
                    m(**inputs[k][batch])
                    if i >= WARMUP:
                        times[k].append(time.perf_counter() - t0)
            for k in models:
                ms[k][batch] = 1000 * float(np.median(times[k]))

    def params(k: str) -> int:
        return sum(p.numel() for p in models[k].parameters())

    teacher_keys = {task: g["teacher_key"] for task, g in groups.items()}
    teachers = {task: {"model_dir": str(dirs[k]), "batch1_ms": ms[k][1], "batch32_ms": ms[k][32], "params": params(k),
                       "seq_len": seq_lens[task]} for task, k in teacher_keys.items()}
    out = {"name": "timing", "command": "python benchmarks/campaign.py time",
           "git_commit": git_commit(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": machine(threads), "runtime": "eager PyTorch", "seq_len": seq_lens.get("sst2"),
           "rounds": ROUNDS, "teacher": teachers.get("sst2"), "teachers": teachers,
           "models": {k: {"task": task_of[k], "model_dir": str(dirs[k]), "batch1_ms": ms[k][1], "batch32_ms": ms[k][32],
                          "speedup_batch1": ms[teacher_keys[task_of[k]]][1] / ms[k][1],
                          "speedup_batch32": ms[teacher_keys[task_of[k]]][32] / ms[k][32], "params": params(k),
                          "seq_len": seq_lens[task_of[k]]}
                      for k in models if k not in teacher_keys.values()}}
    if "sst2" in groups:
        sst2 = [k for k in models if task_of[k] == "sst2"]
        out["int8"] = int8_rows({k: dirs[k] for k in sst2}, {k: models[k] for k in sst2},
                                {k: inputs[k] for k in sst2}, groups["sst2"]["splits"], groups["sst2"]["spec"],
                                threads=threads)
    path = RESULTS / "timing.json"
    Path(path).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return out


def task_groups(runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The KD results grouped by task: per task its teacher (the KD runs' ``config.teacher``; the SST-2 teacher keeps
    the key ``teacher``, the others ``teacher:<task>``), the students' model folders, the task spec, the dev inputs
    (:func:`kdistill.reporting.compare.dev_texts`) and the timed length (None: the dev median)."""
    from kdistill.config import DataConfig
    from kdistill.data.loading import load_data
    from kdistill.reporting.compare import QA_SEQ_LEN, TOKEN_SEQ_LEN, dev_texts

    where, groups = places(), {}
    for name, row in runs.items():
        task = row.get("task", "sst2")
        if task not in groups:
            data = dict(row["config"].get("data") or {}) if task != "sst2" else {"task": "sst2",
                                                                                 "data_dir": where["glue"]}
            cfg = DataConfig(**{k: v for k, v in data.items() if k in DataConfig.model_fields})
            splits, spec = load_data(cfg)
            seq_len = TOKEN_SEQ_LEN if spec.token_level else min(QA_SEQ_LEN, cfg.max_length) if spec.qa else None
            groups[task] = {"teacher": where["teacher"] if task == "sst2" else row["config"]["teacher"],
                            "teacher_key": "teacher" if task == "sst2" else f"teacher:{task}", "students": {},
                            "spec": spec, "splits": splits, "texts": dev_texts(spec, splits["validation"]),
                            "seq_len": seq_len}
        groups[task]["students"][name] = row["model_dir"]
    return groups


def int8_rows(dirs: dict[str, str], models: dict, inputs: dict, splits, spec, *, threads: int) -> dict[str, Any]:
    """ONNX Runtime int8 (dynamic quantization, ``kdistill export``) of the teacher and each student: dev accuracy
    and per-example correctness of the int8 graph, and its batch-1 latency timed interleaved with the others' (the
    same inputs as the eager timing); speedups are over the teacher's int8 graph."""
    import numpy as np
    import torch

    import kdistill
    from kdistill.data.batching import eval_loader, tokenize
    from kdistill.deploy.runtime import OrtModel
    from kdistill.engine.evaluation import predict
    from kdistill.errors import ModelError
    from kdistill.models import load_tokenizer

    graphs, rows = {}, {}
    for k, d in dirs.items():
        folder = RUNS / "int8" / k  # never beside the model (the teacher may live in a read-only place)
        if not (folder / "kdistill_export.json").exists():
            try:
                kdistill.export(str(d), folder, "sst2", data_dir=places()["glue"], quantize="dynamic", max_drop=1.0,
                                overwrite=True)
            except ModelError as err:  # e.g. int8 below the 1-point gate: said, not timed
                rows[k] = {"export_error": str(err)}
                continue
        meta = json.loads((folder / "kdistill_export.json").read_text())
        graphs[k] = OrtModel(folder / meta["files"]["int8"], models[k].config, threads=threads)
        tok = load_tokenizer(str(d))
        ds = tokenize(splits["validation"], tok, max_length=128, desc="tokenize dev")
        logits, gold = predict(graphs[k], eval_loader(ds, tok, batch_size=64), desc="int8 dev", show_progress=False)
        correct = (logits.argmax(-1) == gold).astype(int)
        rows[k] = {"export": str(folder), "dev_accuracy": float(correct.mean()),
                   "correct": "".join(map(str, correct.tolist())), "size_mb": meta.get("sizes_mb", {}).get("int8")}
    times = {k: [] for k in graphs}
    with torch.inference_mode():
        for i in range(WARMUP + ROUNDS[1]):
            for k, g in graphs.items():
                t0 = time.perf_counter()
                g(**inputs[k][1])
                if i >= WARMUP:
                    times[k].append(time.perf_counter() - t0)
    for k in graphs:
        rows[k]["batch1_ms"] = 1000 * float(np.median(times[k]))
    for k in graphs:
        if "teacher" in graphs:
            rows[k]["speedup_over_teacher_int8"] = rows["teacher"]["batch1_ms"] / rows[k]["batch1_ms"]
    return rows

