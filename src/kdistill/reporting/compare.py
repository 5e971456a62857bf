"""Teacher vs student on the dev split: metric, retention, size, latency, speedup, and how far the
numbers can be trusted (baseline, bootstrap intervals, paired test) — the report of every run."""

from __future__ import annotations

import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kdistill.config import DataConfig

#: Distributions whose versions every report records (``onnxruntime`` only when installed).
VERSIONED = ("torch", "transformers", "accelerate", "datasets", "tokenizers", "numpy", "scipy", "scikit-learn",
             "onnxruntime", "kdistill")
#: Config fields recorded as a model's architecture, when the config has them.
ARCH_FIELDS = ("model_type", "num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size",
               "vocab_size", "kdistill_layers", "fc_size", "embedding_dim")


#: The batch-1 input length (sub-tokens) at which token-classification students are timed (issue 28).
TOKEN_SEQ_LEN = 30
#: ... and question-answering ones: one 256-token window (capped at the run's --max-length)
QA_SEQ_LEN = 256


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


#: Whether reports add the ONNX Runtime rows by default (when onnxruntime is installed).
ORT_ROWS = True
ORT_TIMING = ("interleaved with the eager models in one process; ONNX Runtime's intra-op thread spinning off "
              "(session.intra_op.allow_spinning = 0), intra-op threads = torch's")


def _ort_variants(nets, toks, dev_sets, work: Path):
    """``({role: [Variant, ...]}, {role: error})``: each model's ORT fp32 + int8, parity-checked on 8 dev rows."""
    from kdistill.data.batching import eval_loader, model_inputs
    from kdistill.deploy.variants import ort_variants
    from kdistill.errors import KDistillError

    out, errors = {}, {}
    for role, net, tok in zip(("teacher", "student"), nets, toks):
        batch = model_inputs(next(iter(eval_loader(dev_sets[role], tok, batch_size=8))))
        try:
            out[role] = ort_variants(net, tok, work / role, parity_inputs=batch)
        except KDistillError as err:
            errors[role] = str(err)
    return out, errors


def _runtime_rows(spec, timed, stats, variants, dev_sets, toks, labels, preds, entries) -> dict:
    """``{role: {runtime: {metric, latency_ms, latency_p90_ms, throughput, disk_mb, ...facts}}}``."""
    from kdistill.data.batching import eval_loader
    from kdistill.engine.evaluation import predict
    from kdistill.metrics import compute_metrics, decision_logits, decision_threshold, undefined_metrics

    rows: dict[str, dict[str, Any]] = {}
    facts = {(role, v.runtime): v for role, vs in variants.items() for v in vs}
    sizes = {name: size.disk_mb for name, _, _, size in entries}
    for (role, runtime, module, _), lat in zip(timed, stats):
        if role not in variants:
            continue
        if runtime == "eager_fp32":
            logits, disk, extra = preds[role], sizes.get(role), {}
        else:
            tok = toks[0 if role == "teacher" else 1]
            logits, _ = predict(module, eval_loader(dev_sets[role], tok, batch_size=64), desc=f"{role} {runtime}",
                                show_progress=False)
            if spec.multi_label:  # at the model's recorded threshold, as its eager row
                logits = decision_logits(spec, logits, decision_threshold(getattr(module, "config", None)))
            v = facts[(role, runtime)]
            disk, extra = v.disk_mb, dict(v.facts)
        why = undefined_metrics(spec, logits, labels).get(spec.main_metric)  # e.g. constant predictions: null
        rows.setdefault(role, {})[runtime] = {
            "metric": None if why else float(compute_metrics(spec, logits, labels)[spec.main_metric]),
            **({"metric_undefined": why} if why else {}), "latency_ms": lat.batch1_median_ms,
            "latency_p90_ms": lat.batch1_p90_ms, "throughput": lat.throughput_bs32, "disk_mb": disk, **extra}
    return rows


def _time_variants(spec, nets, toks, dev_sets, texts, labels, preds, entries, *, runtimes: bool, latency_runs: int,
                   seq_cap: int = 512):
    """Teacher and student (eager, and with ``runtimes`` also ORT fp32 / int8) timed interleaved in one process.

    Returns ``(stats, rows, errors)``: latency stats with the two eager models first, the ``runtimes`` rows and the
    export errors per model (both empty without ``runtimes``)."""
    from kdistill.reporting.measure import measure_latency_interleaved

    with tempfile.TemporaryDirectory(prefix="kdistill-ort-") as work:
        variants, errors = _ort_variants(nets, toks, dev_sets, Path(work)) if runtimes else ({}, {})
        timed = [(role, "eager_fp32", net, tok) for role, net, tok in zip(("teacher", "student"), nets, toks)]
        timed += [(role, v.runtime, v.module, toks[i]) for i, role in enumerate(("teacher", "student"))
                  for v in variants.get(role, [])]
        # token classification: a 30-token sentence (CoNLL-2003 sentences average ~14 words, ~20-30 sub-tokens)
        stats = measure_latency_interleaved([t[2] for t in timed], [t[3] for t in timed], texts, n_runs=latency_runs,
                                            **({"seq_len": TOKEN_SEQ_LEN} if spec.token_level else {}),
                                            **({"seq_len": min(QA_SEQ_LEN, seq_cap)} if spec.qa else {}))
        rows = _runtime_rows(spec, timed, stats, variants, dev_sets, toks, labels, preds, entries) if variants else {}
    return stats, rows, errors


def _runtime_fields(rows: dict, errors: dict) -> dict[str, Any]:
    def ratio(a, b):
        return None if a is None or b is None or b <= 0 else a / b

    t, s = rows.get("teacher", {}), rows.get("student", {})
    lat = lambda r, k: (r.get(k) or {}).get("latency_ms")  # noqa: E731
    out: dict[str, Any] = {"runtimes": rows, "ort_timing": ORT_TIMING,
                           "ort_speedup": ratio(lat(t, "ort_fp32"), lat(s, "ort_fp32")),
                           "ort_int8_speedup": ratio(lat(t, "ort_int8"), lat(s, "ort_int8")),
                           "deployment_speedup": ratio(lat(t, "ort_fp32"), lat(s, "ort_int8"))}
    if errors:
        out["runtimes_errors"] = errors
    return out


def dev_texts(spec, dev) -> list:
    """The dev inputs latency is timed on: texts, ``(text_a, text_b)`` pairs, or ``(question, context)`` pairs (QA,
    timed as one window of :data:`QA_SEQ_LEN` tokens)."""
    if spec.qa:
        return list(zip(dev["question"], dev["context"]))
    return list(zip(dev["text_a"], dev["text_b"])) if "text_b" in dev.column_names else dev["text_a"]


def make_report(*, teacher: str, student: str, data: DataConfig, output_dir: str | Path, teacher_metric: float | None = None,
                student_metric: float | None = None, latency_runs: int = 100, extra: dict | None = None,
                n_resamples: int = 1000, seed: int = 0, level: float = 0.95, runtimes: bool | None = None) -> dict[str, Any]:
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

    With ``runtimes`` (default: whenever onnx and onnxruntime are installed, :data:`ORT_ROWS`), teacher and student
    are each also exported to ONNX Runtime fp32 (fused where parity holds) and dynamic int8
    (:func:`kdistill.deploy.variants.ort_variants`): dev metric, batch-1 latency, throughput and size of all six
    variants, timed interleaved in this process with ORT's thread spinning off, go to ``runtimes``, with
    ``ort_speedup`` (ORT fp32 / ORT fp32), ``ort_int8_speedup`` (int8 / int8) and ``deployment_speedup`` (teacher ORT
    fp32 / student ORT int8). A model that does not export gets its error in ``runtimes_errors`` instead.

    Args:
        teacher, student: saved model directories (or hub ids).
        data: where the dev split comes from; ``max_eval_samples`` cuts it (recorded as ``dev_truncated``).
        output_dir: where the report files go.
        teacher_metric, student_metric: main-metric values already measured, or ``None``.
        latency_runs: timed batch-1 passes per model.
        extra: JSON-able keys merged into the report last.
        n_resamples, seed, level: of the bootstrap (see :func:`kdistill.reporting.stats.bootstrap_ci`).
        runtimes: add the ONNX Runtime rows (None: :data:`ORT_ROWS` and onnxruntime installed).

    Returns:
        The :class:`~kdistill.reporting.render.Report` (a dict of the fields of :func:`build_report` and the keys
        listed on the docs' report page; ``.files``: the written paths).

    Raises:
        ModelError / DataError: a model without a trained head for the task, bad data options.
    """
    from kdistill.data.loading import load_data
    from kdistill.reporting.render import ModelEntry, Report, build_report, write_report
    from kdistill.reporting.stats import assess

    splits, spec = load_data(data)
    dev = splits["validation"]
    texts = dev_texts(spec, dev)
    sides = {name: _predict_dev(name, path, metric, spec, dev, data)
             for name, path, metric in (("teacher", teacher, teacher_metric), ("student", student, student_metric))}
    t, s = sides["teacher"], sides["student"]
    preds = {name: side.preds for name, side in sides.items()}
    if runtimes is None:
        from kdistill.deploy.variants import onnxruntime_available

        runtimes = ORT_ROWS and onnxruntime_available()
    entries = [side.entry for side in (t, s)]
    stats, runtime_rows, ort_errors = _time_variants(spec, [t.net, s.net], [t.tok, s.tok],
                                                     {"teacher": t.ds, "student": s.ds}, texts, t.gold, preds,
                                                     entries, runtimes=runtimes, latency_runs=latency_runs,
                                                     seq_cap=data.max_length)
    entries = [ModelEntry(name=n, path=str(p), metric=m, size=sz, latency=lat)
               for (n, p, m, sz), lat in zip(entries, stats)]
    train_labels = splits["train"]["label"] if "train" in splits and "label" in splits["train"].column_names else None
    a = assess(spec, t.preds, s.preds, t.gold, train_labels, n_resamples=n_resamples, seed=seed, level=level)
    fields = _assessment_fields(spec, a, sides, data, len(dev))
    if runtimes:
        fields.update(_runtime_fields(runtime_rows, ort_errors))
    rep = build_report(task=spec.name, metric_name=spec.main_metric, teacher=entries[0], student=entries[1],
                       extra={**fields, **(extra or {})})
    return Report(rep, files=write_report(rep, output_dir))


@dataclass
class _DevSide:
    """One model's part of a report: loaded model and tokenizer, tokenized dev split (``ds``), its predictions
    (``preds``: logits ``[N, C]``, decision logits for multi-label, per-question ``[EM, F1]`` for QA), the gold
    labels, the metric passed in (``given``), its size entry, architecture, decision threshold and the metrics
    undefined on this split (``reasons``: metric -> why)."""

    net: Any
    tok: Any
    ds: Any
    preds: Any
    gold: Any
    given: float | None
    entry: tuple
    arch: dict
    threshold: float | None
    reasons: dict[str, str]


def _predict_dev(name: str, path, metric: float | None, spec, dev, data: DataConfig) -> _DevSide:
    """Load ``path`` as the ``name`` ("teacher"/"student") and predict the dev split (see :func:`make_report`)."""
    from kdistill.data.batching import eval_loader, tokenize
    from kdistill.engine.evaluation import predict
    from kdistill.metrics import compute_metrics, decision_logits, decision_threshold, undefined_metrics
    from kdistill.models import load_classifier, load_tokenizer
    from kdistill.reporting.measure import SizeStats, count_parameters, disk_size_mb

    net = load_classifier(path, spec, require_trained_head=True, what=name)
    tok = load_tokenizer(path)
    ds = tokenize(dev, tok, max_length=data.max_length, doc_stride=data.doc_stride, cache_dir=data.cache_dir,
                  desc=f"tokenize dev ({name})")
    logits, gold = predict(net, eval_loader(ds, tok, batch_size=64), desc=f"predict dev ({name})")
    threshold = None
    if spec.multi_label:  # each model decides at its own recorded threshold (config.json kdistill_threshold)
        threshold = decision_threshold(net.config)
        logits = decision_logits(spec, logits, threshold)
    if spec.qa:  # per question [exact match, F1]: the answers of its windows, scored (the report's unit)
        from kdistill.metrics import qa_scores

        logits = qa_scores(spec, logits, gold)
    recomputed = compute_metrics(spec, logits, gold)[spec.main_metric]
    reasons = {m: f"the {name}'s {why}" for m, why in undefined_metrics(spec, logits, gold).items()}
    value = None if spec.main_metric in reasons else float(recomputed if metric is None else metric)
    total, non_emb = count_parameters(net)
    disk = disk_size_mb(path) if Path(path).is_dir() else None
    entry = (name, path, value, SizeStats(params_total=total, params_non_embedding=non_emb, disk_mb=disk))
    return _DevSide(net=net, tok=tok, ds=ds, preds=logits, gold=gold, given=metric, entry=entry,
                    arch=architecture(net), threshold=threshold, reasons=reasons)


def _assessment_fields(spec, a: dict, sides: dict[str, _DevSide], data: DataConfig, n_dev: int) -> dict[str, Any]:
    """The report's fields from :func:`kdistill.reporting.stats.assess`'s result ``a``: metrics (undefined ones
    nulled with their reason), intervals, the paired test, flags (a cut dev split, a passed-in metric that differs
    from the recomputed one by more than 1e-6), dev size, architectures, versions and the source commit."""
    from kdistill.results import mark_undefined

    undefined = {f"{name}_metric": side.reasons[spec.main_metric] for name, side in sides.items()
                 if spec.main_metric in side.reasons}
    fields: dict[str, Any] = {
        **{f"{name}_metrics": mark_undefined(a[name]["metrics"], sides[name].reasons, prefix=f"{name}_metrics",
                                             undefined=undefined) for name in ("teacher", "student")},
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
        "dev_examples": int(n_dev),
        "max_eval_samples": data.max_eval_samples,
        "dev_examples_full": _full_dev_size(data, n_dev),
        "teacher_architecture": sides["teacher"].arch,
        "student_architecture": sides["student"].arch,
        "versions": library_versions(),
        **source_commit(),
    }
    thresholds = {name: side.threshold for name, side in sides.items() if side.threshold is not None}
    if thresholds:
        fields["decision_thresholds"] = thresholds  # multi-label: a label is predicted when its sigmoid is above these
    fields["dev_truncated"] = fields["dev_examples_full"] > n_dev
    if fields["dev_truncated"]:
        fields["flags"].append(f"the dev split was cut to its first {n_dev} rows (--max-eval-samples): the metrics "
                               "are not those of the full dev set")
    if undefined:
        fields["undefined"] = undefined  # null values and why (build_report adds retention / speedup)
    for name, side in sides.items():
        recomputed = None if spec.main_metric in side.reasons else a[name]["metric"]
        if side.given is not None and recomputed is None:
            fields[f"{name}_metric_recomputed"] = None
        elif side.given is not None:
            fields[f"{name}_metric_recomputed"] = recomputed
            if abs(float(side.given) - recomputed) > 1e-6:
                fields["flags"].append(
                    f"the {name} {spec.main_metric} passed in ({float(side.given):.4f}) differs from the one "
                    f"recomputed on this dev split ({recomputed:.4f}); the intervals and the test use the recomputed "
                    "predictions")
    return fields
