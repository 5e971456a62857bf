"""Deployment benchmark (issue 14): the shared teacher and five students in eager PyTorch, ONNX Runtime fp32 and int8.

    python benchmarks/sst2_deploy.py --prepare          # re-create missing students first (hours on 2 cores)
    python benchmarks/sst2_deploy.py                    # export, verify, time (the machine must be otherwise idle)

Every model goes through ``kdistill.deploy.export_model`` exactly as ``kdistill export --quantize auto --optimize``
does: fp32 graph with ONNX Runtime's fusions (kept where parity <= 1e-4 holds), dynamic and static int8, the one with
the better accuracy on the held-out selection slice kept, refused if it loses > 1 point on dev. Exports live under
``~/.cache/kdistill/deploy/`` (outside the work tree). Latency: batch 1 on the dev-median sentence and batch-32
throughput, all 18 variants timed interleaved in one process, ONNX Runtime's thread spinning off, at 2 threads and
again at 1 thread. Writes benchmarks/results/sst2_deploy.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sst2_foundation import FIELDS, GLUE, RESULTS, ROOT, TEACHER, machine  # noqa: E402

RUNS = ROOT / "runs"
CACHE = Path(os.environ.get("KDISTILL_CACHE", Path.home() / ".cache" / "kdistill")) / "deploy"
PY = sys.executable

#: name -> (folder, method in words, the commands that (re-)create it, in order)
STUDENTS = {
    "kd_l3": (RUNS / "sst2_l3_kd_holdout", "kd (T=2, alpha=0.5), 3 teacher layers 0,2,5, selected on the holdout slice",
              [f"{PY} benchmarks/sst2_foundation.py --name sst2_l3_kd_holdout --alpha 0.5 --temperature 2 --select-on holdout"]),
    "tinybert_3x192": (RUNS / "sst2_tinybert3_deploy", "tinybert task distillation (1 intermediate + 1 prediction epoch) "
                       "of a random 3 x 192 student (12 heads, FFN 768): no general distillation, no augmentation",
                       [f"{PY} benchmarks/sst2_tinybert.py task --name sst2_tinybert3_deploy --no-general "
                        "--intermediate-epochs 1 --prediction-epochs 1 --eval-steps 1000"]),
    "pruned_teacher": (RUNS / "sst2_compress_prune_v2", "compress: iterative head/FFN/layer pruning of the teacher + KD recovery",
                       [f"{PY} benchmarks/sst2_compress.py prune --name sst2_compress_prune_v2 --final-steps 2105"]),
    "lowrank_l3": (RUNS / "sst2_lowrank128_l3", "low-rank (SVD rank 128) of kd_l3 + KD recovery",
                   [f"{PY} benchmarks/sst2_compress.py lowrank --student runs/sst2_l3_kd_holdout"]),
    "bilstm": (RUNS / "sst2_bilstm_aug", "BiLSTM (Tang et al. 2019), logit MSE, Tang augmentation",
               [f"{PY} benchmarks/sst2_bilstm.py --name aug"]),
}
RUNTIMES = ("eager_fp32", "ort_fp32", "ort_int8")


def model_dir(folder: Path) -> Path | None:
    """The folder holding the kept model (a compress run keeps it in its last round's or final folder)."""
    if (folder / "model.safetensors").exists() and (folder / "config.json").exists():
        return folder
    for cand in sorted(folder.glob("*/"), key=lambda p: p.stat().st_mtime, reverse=True):
        if (cand / "model.safetensors").exists() and (cand / "train_results.json").exists():
            return cand
    return None


def prepare() -> None:
    for name, (folder, _, commands) in STUDENTS.items():
        if model_dir(folder) is None:
            for cmd in commands:
                print(f"[{name}] {cmd}", flush=True)
                subprocess.run(shlex.split(cmd), cwd=ROOT, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prepare", action="store_true", help="re-create missing students first")
    ap.add_argument("--latency-runs", type=int, default=300)
    ap.add_argument("--threads", default="2,1")
    ap.add_argument("--reexport", action="store_true", help="export again even when a verified export exists")
    ap.add_argument("--render-only", action="store_true", help="rewrite the .md and .png from the committed .json")
    args = ap.parse_args()
    if args.render_only:
        out = json.loads((RESULTS / "sst2_deploy.json").read_text())
        fixed = _machine_without_threads(out["machine"])
        if any(_machine_without_threads(r["machine"]) != r["machine"] for r in [out, *out["pairs"]]):
            out["machine"] = fixed
            for r in out["pairs"]:
                r["machine"] = _machine_without_threads(r["machine"])
            out["note"] = ("machine string corrected by --render-only: the timings were taken at the threads in "
                           "threads_measured; the first write named only the setting left after the last pass")
            (RESULTS / "sst2_deploy.json").write_text(json.dumps(out, indent=1, default=str))
        t_main = int(out["threads_measured"].split(",")[0])
        _markdown(out, t_main)
        _plot(out, t_main)
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    if args.prepare:
        prepare()
    import numpy as np
    import torch

    from kdistill.config import DataConfig
    from kdistill.data.batching import eval_loader, tokenize
    from kdistill.data.loading import load_data
    from kdistill.deploy.export import export_model
    from kdistill.deploy.runtime import OrtModel
    from kdistill.engine.evaluation import predict
    from kdistill.metrics import compute_metrics
    from kdistill.models import load_classifier, load_tokenizer
    from kdistill.reporting.measure import count_parameters, disk_size_mb, measure_latency_interleaved
    from kdistill.reporting.stats import paired_bootstrap_diff

    command = "python benchmarks/" + Path(__file__).name + " " + shlex.join(sys.argv[1:])
    where = _machine_without_threads(machine())
    data = DataConfig(task="sst2", data_dir=str(GLUE))
    splits, spec = load_data(data)
    dev = splits["validation"]
    texts = list(dev["text_a"])
    models = {"teacher": (TEACHER, "fine-tuned all-MiniLM-L6-v2 (the shared teacher)")}
    missing = {}
    for name, (folder, method, commands) in STUDENTS.items():
        found = model_dir(folder)
        if found is None:
            missing[name] = f"not found under {folder.relative_to(ROOT)}; create it with: " + " && ".join(commands)
        else:
            models[name] = (found, method)
    variants, preds, facts, labels = {}, {}, {}, None
    for name, (path, method) in models.items():
        out = CACHE / name
        meta_file = out / "kdistill_export.json"
        if args.reexport or not meta_file.exists():
            print(f"[{name}] export {path}", flush=True)
            export_model(str(path), out, data=data, quantize="auto", optimize=True, overwrite=True)
        meta = json.loads(meta_file.read_text())
        net = load_classifier(str(path), spec, require_trained_head=True, what=name)
        tok = load_tokenizer(str(path))
        ds = tokenize(dev, tok, max_length=128, desc=f"tokenize dev ({name})")
        total, _ = count_parameters(net)
        facts[name] = {"path": str(path), "method": method, "params": total, "export": meta,
                       "disk_mb": {"eager_fp32": disk_size_mb(path), "ort_fp32": meta["sizes_mb"]["fp32"],
                                   "ort_int8": meta["sizes_mb"]["int8"]}}
        variants[name] = {"tok": tok, "modules": {"eager_fp32": net, "ort_fp32": out / "model.onnx",
                                                   "ort_int8": out / "model_quantized.onnx"}}
        for runtime in RUNTIMES:
            module = net if runtime == "eager_fp32" else OrtModel(variants[name]["modules"][runtime], net.config)
            logits, gold = predict(module, eval_loader(ds, tok, batch_size=64), desc=f"{name} {runtime}")
            preds[(name, runtime)] = logits
            labels = gold
    timing = {}
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        order, mods, toks = [], [], []
        for name, v in variants.items():
            for runtime in RUNTIMES:
                m = v["modules"][runtime]
                order.append((name, runtime))
                mods.append(m if runtime == "eager_fp32" else OrtModel(m, v["modules"]["eager_fp32"].config,
                                                                       threads=threads))
                toks.append(v["tok"])
        print(f"timing {len(mods)} variants interleaved at {threads} thread(s)", flush=True)
        stats = measure_latency_interleaved(mods, toks, texts, n_runs=args.latency_runs)
        for key, s in zip(order, stats):
            timing[(key, threads)] = s
    t_main = int(args.threads.split(",")[0])
    rows = []
    teacher_fp32 = preds[("teacher", "ort_fp32")]
    t_metric = float(compute_metrics(spec, teacher_fp32, labels)["accuracy"])
    t_lat = timing[(("teacher", "ort_fp32"), t_main)].batch1_median_ms
    for (name, runtime), logits in preds.items():
        metric = float(compute_metrics(spec, logits, labels)["accuracy"])
        lat = {t: timing[((name, runtime), t)] for t in [int(x) for x in args.threads.split(",")]}
        row = {"model": name, "runtime": runtime, "metric": metric,
               "latency_ms": {str(t): s.batch1_median_ms for t, s in lat.items()},
               "latency_p90_ms": {str(t): s.batch1_p90_ms for t, s in lat.items()},
               "throughput_bs32": {str(t): s.throughput_bs32 for t, s in lat.items()},
               "disk_mb": facts[name]["disk_mb"][runtime], "params": facts[name]["params"],
               "seq_len": lat[t_main].seq_len}
        if runtime == "ort_int8":
            d = paired_bootstrap_diff(spec, logits, preds[(name, "ort_fp32")], labels)
            row["int8_minus_fp32"] = {"difference": d["difference"], "ci": d["ci"], "p_value": d["p_value"]}
            row["quantization"] = facts[name]["export"]["quantization"]
            row["auto"] = facts[name]["export"].get("auto")
        if name != "teacher":
            d = paired_bootstrap_diff(spec, logits, teacher_fp32, labels)
            row["minus_teacher_ort_fp32"] = {"difference": d["difference"], "ci": d["ci"], "p_value": d["p_value"]}
            row["retention_vs_teacher_ort_fp32"] = metric / t_metric
            row["speedup_vs_teacher_ort_fp32"] = {str(t): timing[(("teacher", "ort_fp32"), t)].batch1_median_ms
                                                  / s.batch1_median_ms for t, s in lat.items()}
            row["speedup_vs_same_runtime_teacher"] = {str(t): timing[(("teacher", runtime), t)].batch1_median_ms
                                                      / s.batch1_median_ms for t, s in lat.items()}
        rows.append(row)
    students = [r for r in rows if r["model"] != "teacher" and r["runtime"] == "ort_int8"]

    def met(r, speed, keep):
        return r["speedup_vs_teacher_ort_fp32"][str(t_main)] >= speed and r["retention_vs_teacher_ort_fp32"] >= keep

    targets = {
        "int8 student >= 5x teacher ORT fp32 at >= 97% accuracy": [r["model"] for r in students if met(r, 5, 0.97)],
        "int8 student >= 8x teacher ORT fp32 at >= 95% accuracy": [r["model"] for r in students if met(r, 8, 0.95)],
        "every int8 model within 1 point of its fp32 self": all(
            r["int8_minus_fp32"]["difference"] >= -0.01 for r in rows if r["runtime"] == "ort_int8"),
    }
    pairs = []
    for r in students:  # one row per student in the project's standard fields: int8 student vs teacher ORT fp32
        pairs.append({"task": "sst2", "teacher": "shared/teachers/minilm-l6-sst2 (ONNX Runtime fp32)",
                      "student": f"{r['model']} (ONNX Runtime int8 {r['quantization']['mode']})",
                      "method": facts[r["model"]]["method"], "metric_name": "accuracy", "teacher_metric": t_metric,
                      "student_metric": r["metric"], "retention": r["retention_vs_teacher_ort_fp32"],
                      "teacher_latency_ms": t_lat, "student_latency_ms": r["latency_ms"][str(t_main)],
                      "speedup": r["speedup_vs_teacher_ort_fp32"][str(t_main)], "teacher_params": facts["teacher"]["params"],
                      "student_params": r["params"], "train_seconds": None, "command": command, "machine": where,
                      "date": None})
    import datetime as dt

    date = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    for p in pairs:
        p["date"] = date
        assert all(f in p for f in FIELDS)
    out = {"benchmark": "sst2_deploy", "command": command, "machine": where, "date": date,
           "threads_measured": args.threads, "latency_runs": args.latency_runs,
           "timing": "batch 1 on one dev text of the dev-median length and batch-32 throughput (512 dev texts); all "
                     "variants timed interleaved in one process; ONNX Runtime intra-op spinning off "
                     "(session.intra_op.allow_spinning = 0), intra-op threads = torch's",
           "export": "kdistill export --quantize auto --optimize (fp32 fused where parity holds; dynamic vs static int8 "
                     "chosen on the 1,000-row held-out selection slice of train; dev gate 1 point)",
           "pairs": pairs, "rows": rows, "targets": targets, "missing": missing,
           "exports": {n: f["export"] for n, f in facts.items()}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sst2_deploy.json").write_text(json.dumps(out, indent=1, default=str))
    _markdown(out, t_main)
    _plot(out, t_main)
    print(json.dumps(targets, indent=1))


def _machine_without_threads(text: str) -> str:
    """The machine description without torch's current thread count (this benchmark times several)."""
    import re

    return re.sub(r",\s*threads \d+$", "", text)


def _markdown(out: dict, t_main: int) -> None:
    names = {"eager_fp32": "PyTorch eager", "ort_fp32": "ORT fp32", "ort_int8": "ORT int8"}
    other = [t for t in out["threads_measured"].split(",") if t != str(t_main)]
    lines = ["# sst2_deploy", "", f"`{out['command']}`", "", f"Machine: {out['machine']}; threads timed: "
             f"{out['threads_measured']}; {out['latency_runs']} timed batch-1 runs per variant; date {out['date']}", "",
             out["timing"] + ".", "", out["export"] + ".", "",
             f"| model | runtime | dev acc | vs teacher ORT fp32 (95% CI, points) | bs1 ms ({t_main} thr) | "
             + "".join(f"bs1 ms ({t} thr) | " for t in other)
             + f"speedup vs teacher ORT fp32 ({t_main} thr) | bs32 ex/s | MB | params |",
             "|---|---|---:|---:|---:|" + "---:|" * len(other) + "---:|---:|---:|---:|"]
    for r in out["rows"]:
        d = r.get("minus_teacher_ort_fp32")
        diff = f"{100 * d['difference']:+.1f} [{100 * d['ci'][0]:+.1f}, {100 * d['ci'][1]:+.1f}]" if d else ""
        sp = r.get("speedup_vs_teacher_ort_fp32", {}).get(str(t_main))
        lines.append(f"| {r['model']} | {names[r['runtime']]} | {r['metric']:.4f} | {diff} | {r['latency_ms'][str(t_main)]:.2f} | "
                     + "".join(f"{r['latency_ms'][t]:.2f} | " for t in other)
                     + f"{'' if sp is None else f'{sp:.2f}x'} | {r['throughput_bs32'][str(t_main)]:.0f} | "
                     f"{r['disk_mb']:.1f} | {r['params'] / 1e6:.1f}M |")
    lines += ["", "int8 vs its own fp32 graph (paired bootstrap, points):", ""]
    for r in out["rows"]:
        if r["runtime"] == "ort_int8":
            d = r["int8_minus_fp32"]
            auto = r.get("auto") or {}
            lines.append(f"- {r['model']}: {r['quantization']['mode']} int8 {100 * d['difference']:+.2f} "
                         f"[{100 * d['ci'][0]:+.2f}, {100 * d['ci'][1]:+.2f}] (p {d['p_value']:.2f}); chosen on the "
                         f"selection slice from {json.dumps(auto.get('selection_metrics'))}")
    lines += ["", "## Targets", ""]
    for k, v in out["targets"].items():
        ok = bool(v)
        lines.append(f"- {k}: **{'met' if ok else 'missed'}**" + (f" ({', '.join(v)})" if isinstance(v, list) and v else ""))
    if out["missing"]:
        lines += ["", "Not measured:"] + [f"- {k}: {v}" for k, v in out["missing"].items()]
    lines += ["", "![metric vs ONNX Runtime latency](sst2_deploy.png)", ""]
    (RESULTS / "sst2_deploy.md").write_text("\n".join(lines))


def _plot(out: dict, t_main: int) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    marker = {"eager_fp32": "s", "ort_fp32": "D", "ort_int8": "o"}
    colors = {}
    pts = []
    for r in out["rows"]:
        c = colors.setdefault(r["model"], f"C{len(colors)}")
        x, y = r["latency_ms"][str(t_main)], r["metric"]
        ax.scatter([x], [y], marker=marker[r["runtime"]], color=c, s=60, zorder=3,
                   facecolors="none" if r["runtime"] == "eager_fp32" else c)
        ax.annotate(f"{r['model']} {r['runtime'].replace('_fp32', '').replace('ort_', '')}", (x, y),
                    textcoords="offset points", xytext=(5, 4), fontsize=7)
        if r["runtime"] != "eager_fp32":
            pts.append((x, y))
    front, best = [], -1.0
    for x, y in sorted(pts):
        if y > best:
            front.append((x, y))
            best = y
    ax.plot([p[0] for p in front], [p[1] for p in front], "k--", linewidth=1, label="Pareto front (ONNX Runtime)")
    t = next(r for r in out["rows"] if r["model"] == "teacher" and r["runtime"] == "ort_fp32")
    for keep, style in ((0.97, ":"), (0.95, "-.")):
        ax.axhline(keep * t["metric"], color="gray", linestyle=style, linewidth=1, label=f"{keep:.0%} of teacher ORT fp32")
    for speed, style in ((5, ":"), (8, "-.")):
        ax.axvline(t["latency_ms"][str(t_main)] / speed, color="tab:red", linestyle=style, linewidth=1,
                   label=f"{speed}x faster than teacher ORT fp32")
    ax.set_xscale("log")
    from matplotlib.ticker import FormatStrFormatter

    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(FormatStrFormatter("%g"))
    ax.set_xlabel(f"batch-1 latency, median (ms, log scale, {t_main} threads)")
    ax.set_ylabel("SST-2 dev accuracy")
    ax.set_title("SST-2: every model in eager (hollow square), ORT fp32 (diamond), ORT int8 (dot)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(RESULTS / "sst2_deploy.png")


if __name__ == "__main__":
    main()
