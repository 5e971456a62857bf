"""Teacher vs student on the dev split: metric, retention, size, latency, speedup, and how far the
numbers can be trusted (baseline, bootstrap intervals, paired test) — the report of every run."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from kdistill.config import DataConfig

#: Distributions whose versions every report records (``onnxruntime`` only when installed).
VERSIONED = ("torch", "transformers", "accelerate", "datasets", "tokenizers", "numpy", "scipy", "scikit-learn",
             "onnxruntime", "kdistill")
#: Config fields recorded as a model's architecture, when the config has them.
ARCH_FIELDS = ("model_type", "num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size",
               "vocab_size", "kdistill_layers", "fc_size", "embedding_dim")


def library_versions() -> dict[str, str | None]:
    """Installed versions: ``{"python": "3.11.9", "torch": "2.4.1", ...}``; a distribution that is not
    installed is left out (``onnxruntime``) or, for the required ones, recorded as ``None``. Never raises."""
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except Exception:  # noqa: BLE001 - not installed / broken metadata
            if name == "kdistill":  # not installed as a distribution: the package's own version
                out[name] = getattr(sys.modules.get("kdistill"), "__version__", None)
            elif name != "onnxruntime":
                out[name] = None
    return out


def source_commit() -> dict[str, Any]:
    """The git commit of the kdistill source checkout: ``{"git_commit": sha | None, "git_dirty": bool | None}``.

    ``git -C <dir of the kdistill package> rev-parse HEAD``, only when the package's files are tracked by
    that repository (an installed copy inside some other repository gets ``None``); ``git_dirty`` is True
    when tracked files of the checkout differ from the commit. ``None`` when git or the repository is
    missing, or git takes over 10 s. Never raises.
    """
    pkg = Path(__file__).resolve().parents[1]  # src/kdistill

    def git(*args: str) -> subprocess.CompletedProcess | None:
        try:
            return subprocess.run(["git", "-C", str(pkg), *args], capture_output=True, text=True, timeout=10)
        except Exception:  # noqa: BLE001 - no git, timeout, ...
            return None

    tracked = git("ls-files", "--error-unmatch", "__init__.py")
    head = git("rev-parse", "HEAD") if tracked is not None and tracked.returncode == 0 else None
    if head is None or head.returncode != 0 or not head.stdout.strip():
        return {"git_commit": None, "git_dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    dirty = None if status is None or status.returncode != 0 else bool(status.stdout.strip())
    return {"git_commit": head.stdout.strip(), "git_dirty": dirty}


def architecture(net) -> dict[str, Any]:
    """A model's shape from its config (layers, hidden size, heads, ...): the fields of :data:`ARCH_FIELDS` it has."""
    cfg = getattr(net, "config", None)
    out = {}
    for key in ARCH_FIELDS:
        value = getattr(cfg, key, None)
        if value is not None and isinstance(value, (int, float, str, list, tuple)):
            out[key] = list(value) if isinstance(value, tuple) else value
    return out


def _full_dev_size(data: DataConfig, n: int) -> int:
    """Rows of the whole dev split (read again without ``max_eval_samples`` when that option cut it; dev splits are small)."""
    if data.max_eval_samples is None or n < data.max_eval_samples:
        return n
    from kdistill.data.loading import load_data

    full = data.model_copy(update={"max_eval_samples": None, "max_train_samples": 1})
    return len(load_data(full)[0]["validation"])


def make_report(*, teacher: str, student: str, data: DataConfig, output_dir: str | Path, teacher_metric: float | None = None,
                student_metric: float | None = None, latency_runs: int = 100, extra: dict | None = None,
                n_resamples: int = 1000, seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """Compare ``teacher`` and ``student``: metric, retention, size, latency, speedup, and whether the
    difference is real.

    Both models always predict the validation split (:func:`kdistill.engine.evaluation.predict`); every
    metric of the task is computed for both, and :func:`kdistill.reporting.stats.assess` adds the
    constant baseline (majority class of the train split, or mean score), bootstrap intervals of the
    teacher's, the student's and the baseline's main metric and of their difference, a paired test and
    flags in words. A metric passed in (e.g. the one the training loop measured) is kept as
    ``teacher_metric``/``student_metric``; the intervals and the test use the recomputed predictions,
    and a passed-in value that differs from the recomputed one by more than 1e-6 is flagged (the
    recomputed one goes to ``*_metric_recomputed``). Batch-1 latency is timed teacher and student
    interleaved (:func:`kdistill.reporting.measure_latency_interleaved`), so both see the same machine
    conditions. Writes ``report.json``, ``report.md`` and ``report.png`` into ``output_dir``.

    Args:
        teacher, student: saved model directories (or hub ids).
        data: where the dev split comes from; ``max_eval_samples`` cuts it (recorded as ``dev_truncated``).
        output_dir: where the report files go.
        teacher_metric, student_metric: main-metric values already measured, or ``None``.
        latency_runs: timed batch-1 passes per model.
        extra: JSON-able keys merged into the report last.
        n_resamples, seed, level: of the bootstrap (see :func:`kdistill.reporting.stats.bootstrap_ci`).

    Returns:
        The report dict (see :func:`kdistill.reporting.render.build_report`; the added keys are listed
        in the README's "Report" section), with a private ``_files`` entry listing the written paths.

    Raises:
        ModelError / DataError: a model without a trained head for the task, bad data options.
    """
    from kdistill.data.batching import eval_loader, tokenize
    from kdistill.data.loading import load_data
    from kdistill.engine.evaluation import predict
    from kdistill.metrics import compute_metrics
    from kdistill.models import load_classifier, load_tokenizer
    from kdistill.reporting.measure import SizeStats, count_parameters, disk_size_mb, measure_latency_interleaved
    from kdistill.reporting.render import ModelEntry, build_report, write_report
    from kdistill.reporting.stats import assess

    splits, spec = load_data(data)
    dev = splits["validation"]
    texts = list(zip(dev["text_a"], dev["text_b"])) if "text_b" in dev.column_names else dev["text_a"]
    entries, nets, toks, preds, labels, given, arch = [], [], [], {}, None, {}, {}
    for name, path, metric in (("teacher", teacher, teacher_metric), ("student", student, student_metric)):
        net = load_classifier(path, spec, require_trained_head=True, what=name)
        tok = load_tokenizer(path)
        ds = tokenize(dev, tok, max_length=data.max_length, cache_dir=data.cache_dir, desc=f"tokenize dev ({name})")
        logits, gold = predict(net, eval_loader(ds, tok, batch_size=64), desc=f"predict dev ({name})")
        preds[name] = logits
        labels = gold if labels is None else labels
        recomputed = compute_metrics(spec, logits, gold)[spec.main_metric]
        given[name] = metric
        if metric is None:
            metric = recomputed
        total, non_emb = count_parameters(net)
        disk = disk_size_mb(path) if Path(path).is_dir() else None
        entries.append((name, path, float(metric), SizeStats(params_total=total, params_non_embedding=non_emb, disk_mb=disk)))
        arch[name] = architecture(net)
        nets.append(net), toks.append(tok)
    stats = measure_latency_interleaved(nets, toks, texts, n_runs=latency_runs)
    entries = [ModelEntry(name=n, path=str(p), metric=m, size=s, latency=lat) for (n, p, m, s), lat in zip(entries, stats)]

    train_labels = splits["train"]["label"] if "train" in splits else None
    a = assess(spec, preds["teacher"], preds["student"], labels, train_labels, n_resamples=n_resamples, seed=seed,
               level=level)
    fields: dict[str, Any] = {
        "teacher_metrics": a["teacher"]["metrics"],
        "student_metrics": a["student"]["metrics"],
        "baseline": {k: v for k, v in a["baseline"].items() if k not in ("ci", "metric", "metrics")},
        "baseline_metric": a["baseline"]["metric"],
        "baseline_metrics": a["baseline"]["metrics"],
        "baseline_ci": a["baseline"]["ci"],
        "teacher_ci": a["teacher"]["ci"],
        "student_ci": a["student"]["ci"],
        "difference": a["difference"]["teacher_minus_student"],
        "difference_ci": a["difference"]["ci"],
        "paired_test": a["paired_test"],
        "ci_level": a["level"],
        "bootstrap_resamples": a["n_resamples"],
        "bootstrap_seed": a["seed"],
        "flags": list(a["flags"]),
        "dev_examples": int(len(dev)),
        "max_eval_samples": data.max_eval_samples,
        "dev_examples_full": _full_dev_size(data, len(dev)),
        "teacher_architecture": arch["teacher"],
        "student_architecture": arch["student"],
        "versions": library_versions(),
        **source_commit(),
    }
    fields["dev_truncated"] = fields["dev_examples_full"] > len(dev)
    if fields["dev_truncated"]:
        fields["flags"].append(f"the dev split was cut to its first {len(dev)} rows (--max-eval-samples): the metrics "
                               "are not those of the full dev set")
    for name in ("teacher", "student"):
        recomputed = a[name]["metric"]
        if given[name] is not None:
            fields[f"{name}_metric_recomputed"] = recomputed
            if abs(float(given[name]) - recomputed) > 1e-6:
                fields["flags"].append(
                    f"the {name} {spec.main_metric} passed in ({float(given[name]):.4f}) differs from the one recomputed "
                    f"on this dev split ({recomputed:.4f}); the intervals and the test use the recomputed predictions")
    rep = build_report(task=spec.name, metric_name=spec.main_metric, teacher=entries[0], student=entries[1],
                       extra={**fields, **(extra or {})})
    rep["_files"] = write_report(rep, output_dir)
    return rep
