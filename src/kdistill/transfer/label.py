"""Write a transfer set: the teacher's outputs on a set of inputs, labelled once, stored as Parquet shards.

Hinton et al. (2015, Sec. 2) train the student on a *transfer set*: the inputs with the teacher's soft targets. Here
it is a folder::

    SET_DIR/manifest.json            what the set is (teacher and tokenizer fingerprints, inputs and their hashes,
                                     task, labels, shards with their rows and sha256, the teacher's dev metric, speed)
    SET_DIR/shards/part-00000.parquet  idx, source_idx, text_a [, text_b], label (gold; null when unknown), logits

Each shard is computed on its own (the rows sorted by length into batches, so padding is small; the order restored)
and written aside, then renamed: a killed run resumed with ``resume`` recomputes only the missing shards, and gives
the same bytes as an uninterrupted run (same batches, same kernels). A manifest that names another teacher, tokenizer
or input is refused in one line (a set is never served stale); a second writer on the folder is refused (the lock).
Loadable with ``datasets.load_dataset("parquet", data_files="SET_DIR/shards/*.parquet")``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from kdistill.errors import KDistillError
from kdistill.transfer.layout import FORMAT, FORMAT_VERSION, MANIFEST, SHARDS, file_sha256  # noqa: F401 - re-exported

LOG = logging.getLogger("kdistill")
#: Manifest keys added after the first sets were written, with the value those sets had.
LEGACY = {"runtime_asked": "eager", "hidden_states": False, "doc_stride": None}


def teacher_fingerprint(name: str | Path) -> str:
    """Content hash of a teacher's weights and config (sha256 over its ``*.safetensors``/``*.bin``/``config.json``),
    computed once per file state and cached in ``$KDISTILL_CACHE/fingerprints.json`` (keyed by path, size and mtime).
    A hub id without a local folder is fingerprinted by its name."""
    from kdistill.data.batching import default_cache_dir
    from kdistill.engine.teacher import teacher_key

    folder = Path(str(name))
    if not folder.is_dir():
        return hashlib.sha256(str(name).encode()).hexdigest()
    key = teacher_key(folder)
    cache = default_cache_dir() / "fingerprints.json"
    known = json.loads(cache.read_text()) if cache.exists() else {}
    if key not in known:
        h = hashlib.sha256()
        for f in sorted(folder.iterdir()):
            if f.is_file() and (f.suffix in (".safetensors", ".bin") or f.name == "config.json"):
                h.update(f.name.encode())
                h.update(file_sha256(f).encode())
        known[key] = h.hexdigest()
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, indent=1))
        os.replace(tmp, cache)
    return known[key]


def _inputs(cfg) -> tuple[Any, Any, dict[str, Any], Any]:
    """``(rows, task spec or None, description, validation split or None)``: the inputs as a Dataset with ``text_a``
    [``text_b``], ``label`` (None when unknown) and ``source_idx``, from the task's train split or from text files."""
    import datasets

    if cfg.text_files:
        texts, sources = [], []
        for name in cfg.text_files:
            path = Path(name)
            if not path.is_file():
                raise KDistillError(f"--text-file {path}: no such file")
            texts += [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            sources.append({"file": str(path.resolve()), "sha256": file_sha256(path)})
        if not texts:
            raise KDistillError("the --text-file inputs hold no text: one input per line")
        rows = datasets.Dataset.from_dict({"text_a": texts, "label": [None] * len(texts),
                                           "source_idx": list(range(len(texts)))})
        return rows, None, {"kind": "text", "sources": sources}, None
    from kdistill.data import load_data

    splits, spec = load_data(cfg.data)
    train = splits["train"]
    if spec.qa:  # questions: (question, context) as the pair, the gold answers beside them
        train = datasets.Dataset.from_dict({"text_a": train["question"], "text_b": train["context"],
                                            "label": [None] * len(train), "answers": train["answers"],
                                            "answer_starts": train["answer_starts"]})
    keep = [c for c in ("text_a", "text_b", "tokens", "label", "answers", "answer_starts") if c in train.column_names]
    augmented = None
    if cfg.augment.augment != "none":
        rows, augmented = _augmented(cfg, train, spec)
    else:
        rows = train.select_columns(keep).add_column("source_idx", list(range(len(train))))
    files = [Path(cfg.data.train_file)] if cfg.data.train_file else []
    if cfg.data.task and cfg.data.data_dir:  # a GLUE folder: the task's train file in it
        folder = Path(cfg.data.data_dir)
        files += [p for p in (folder / spec.glue_dir / spec.train_file, folder / spec.train_file) if p.is_file()][:1]
    sources = [{"file": str(f.resolve()), "sha256": file_sha256(f)} for f in files]
    described = {"kind": "task", "task": cfg.data.task, "sources": sources, "max_train_samples": cfg.data.max_train_samples}
    if augmented is not None:
        described.update(kind="augment", augment=augmented)
    return rows, spec, described, splits.get("validation")


def _augmented(cfg, train, spec) -> tuple[Any, dict[str, Any]]:
    """``(rows, record)``: Tang et al.'s perturbations (2019, Sec. 3.1), or TinyBERT's word replacements (Jiao et al.
    2020, Algorithm 1), of the train split less its held-out selection slice (chosen as distill chooses it: ``cfg.data`` and ``cfg.seed``), without gold labels, each with the
    ``source_idx`` of the train row it was made from. The record (settings, counts, the slice left out and the hash of
    the train split) goes into the manifest; distill checks it against its own split."""
    from kdistill.data.augment.tang import augment_train_split, pos_tagger_for
    from kdistill.data.selection import selection_split
    from kdistill.models import load_tokenizer

    source = train.add_column("train_idx", list(range(len(train))))  # carried to each augmented row by its original
    rest, selection = source, None
    if cfg.data.select_on == "holdout":
        rest, selection, _ = selection_split(cfg.data, source, spec, seed=cfg.seed)
    tok = load_tokenizer(cfg.teacher)
    if cfg.augment.augment == "tinybert":
        made, info = _tinybert_rows(cfg, rest)
    else:
        both, info = augment_train_split(rest, cfg.augment, mask_token=tok.mask_token or tok.unk_token or "[MASK]",
                                         seed=cfg.seed, pos_tagger=pos_tagger_for(cfg.augment),
                                         cache_dir=cfg.data.cache_dir, show_progress=True)
        made = both.select(range(len(rest), len(both)))
    keep = [c for c in ("text_a", "text_b") if c in made.column_names]
    rows = (made.select_columns([*keep, "train_idx"]).rename_column("train_idx", "source_idx")
            .add_column("label", [None] * len(made)))
    record = {**{k: v for k, v in info.items() if k != "cache"}, "seed": cfg.seed, "select_on": cfg.data.select_on,
              "selection_rows_left_out": 0 if selection is None else len(selection),
              "source_split_sha256": _rows_hash(train.select_columns(keep + ["label"]))}
    return rows.select_columns([*keep, "label", "source_idx"]), record


def _tinybert_rows(cfg, rest) -> tuple[Any, dict[str, Any]]:
    """TinyBERT's augmented rows (Jiao et al. 2020, Sec. 3.3, Algorithm 1) of ``rest``: each eligible word replaced
    with probability 0.4 by one of its 15 nearest neighbours in the teacher's input-embedding space (no masked-LM head
    here), ``n_iter`` copies per example (the paper: 20), ``max_augmented`` a seeded subset; with ``train_idx``."""
    import random
    import time

    from kdistill.data.augment.candidates import EmbeddingNeighbours
    from kdistill.data.augment.tinybert import augment_dataset

    t0 = time.perf_counter()
    neighbours = EmbeddingNeighbours.from_pretrained(cfg.teacher)
    both = augment_dataset(rest, tokenizer=neighbours.tokenizer, neighbours=neighbours, n_aug=cfg.augment.n_iter,
                           seed=cfg.seed, cache_dir=cfg.data.cache_dir)
    made = both.filter(lambda flags: flags, input_columns="augmented", batched=False)
    generated = len(made)
    if cfg.augment.max_augmented and generated > cfg.augment.max_augmented:
        keep = sorted(random.Random(f"{cfg.seed}:max_augmented").sample(range(generated), cfg.augment.max_augmented))
        made = made.select(keep)
    return made, {"augment": "tinybert", "original_rows": len(rest), "augmented_generated": generated,
                  "augmented_used": len(made), "n_iter": cfg.augment.n_iter, "p_t": 0.4, "k": 15,
                  "candidates": "nearest neighbours in the teacher's input embeddings (no masked-LM head)",
                  "max_augmented": cfg.augment.max_augmented, "seconds": round(time.perf_counter() - t0, 1)}


def _rows_hash(rows) -> str:
    """sha256 of the inputs themselves (texts and gold labels, in order): what the set was made from."""
    h = hashlib.sha256()
    for chunk in rows.with_format("arrow").iter(batch_size=10_000):
        for col in ("text_a", "text_b", "tokens", "label", "source_idx"):
            if col in chunk.column_names:
                h.update(str(chunk[col].to_pylist()).encode())
    return h.hexdigest()


def shard_logits(teacher, tokenizer, texts_a: list[str], texts_b: list[str] | None, *, max_length: int,
                 batch_size: int, hidden: list | None = None, word_ids: list | None = None) -> np.ndarray:
    """The teacher's logits ``[n, C]`` (float32) for one shard of inputs, in input order: the rows tokenised and run
    by :func:`kdistill.engine.teacher.teacher_pass` (length-sorted batches, dynamic padding; the same batches on every
    call, so the same bytes on a resume). With a list ``hidden``, each row's last hidden states ``[tokens, H]``
    (float16, real tokens only) are put in it, in input order; with a list ``word_ids``, each row's word of each
    token (:func:`kdistill.data.batching.word_index`: what word-aligned L_cos across tokenizers pairs)."""
    from kdistill.data.batching import word_index
    from kdistill.engine.teacher import teacher_pass

    offsets = word_ids is not None and getattr(tokenizer, "is_fast", False)
    enc = tokenizer(texts_a, texts_b, truncation=True, max_length=max_length, return_offsets_mapping=offsets)
    if offsets:
        spans = enc.pop("offset_mapping")
        word_ids.extend(np.asarray(word_index(texts_a[i], texts_b[i] if texts_b else None, spans[i],
                                              enc.sequence_ids(i)), dtype=np.int16) for i in range(len(texts_a)))
    features = [{k: enc[k][i] for k in enc.keys()} for i in range(len(texts_a))]
    return teacher_pass(teacher, features, tokenizer, batch_size=batch_size, hidden=hidden)


def shard_word_logits(teacher, tokenizer, words: list[list[str]], *, max_length: int, batch_size: int) -> list:
    """Token classification: the teacher's logits at the first sub-token of every word, one ``[n_words, C]`` float32
    array per sentence (word level: any student tokenizer can be paired with it). Sentences longer than
    ``max_length`` sub-tokens are run in windows of whole words (:func:`kdistill.tokens.data.encode_words`), through
    :func:`kdistill.engine.teacher.teacher_pass`."""
    from kdistill.engine.teacher import teacher_pass
    from kdistill.tokens.data import encode_words

    enc = encode_words(tokenizer, words, None, {}, max_length=max_length)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    features = [{k: enc[k][i] for k in keys} for i in range(len(enc["input_ids"]))]
    logits = teacher_pass(teacher, features, tokenizer, batch_size=batch_size)  # [windows, T, C]
    out = [np.zeros((len(w), teacher.config.num_labels), dtype=np.float32) for w in words]
    for i, (wids, s) in enumerate(zip(enc["word_ids"], enc["sentence"])):
        prev = None
        for pos, w in enumerate(wids):
            if w >= 0 and w != prev:
                out[s][w] = logits[i, pos]
            prev = w
    return out


def shard_window_logits(teacher, tokenizer, questions: list[str], contexts: list[str], *, max_length: int,
                        doc_stride: int, batch_size: int) -> tuple[list, list]:
    """Question answering: the teacher's start and end logits of every window of each question (the contexts cut
    with ``doc_stride`` as :func:`kdistill.qa.features.encode_windows` cuts them), through
    :func:`kdistill.engine.teacher.teacher_pass`. Returns ``(logits, window_tokens)``: per question one float32
    ``[sum of its windows' tokens, 2]`` matrix (its windows in order, real tokens only), and its windows' token
    counts."""
    from kdistill.engine.teacher import teacher_pass
    from kdistill.qa.features import encode_windows

    enc = encode_windows(tokenizer, questions, contexts, max_length=max_length, doc_stride=doc_stride)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    features = [{k: enc[k][i] for k in keys} for i in range(len(enc["input_ids"]))]
    logits = teacher_pass(teacher, features, tokenizer, batch_size=batch_size)  # [windows, T, 2]
    parts: list[list] = [[] for _ in questions]
    for w, q in enumerate(enc["example"]):
        parts[q].append(logits[w, : len(features[w]["input_ids"])])
    return ([np.concatenate(x).astype(np.float32) for x in parts], [[len(x) for x in windows] for windows in parts])


def _write_shard(path: Path, rows: dict[str, list], logits: np.ndarray, start: int, hidden: list | None = None,
                 word_ids: list | None = None, window_tokens: list | None = None) -> None:
    """One shard (``rows``: columns as lists; ``hidden``: per row a float16 ``[tokens, H]`` matrix, or None) as
    Parquet, written aside then renamed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {"idx": pa.array(range(start, start + len(rows["text_a"])), pa.int64()),
               "source_idx": pa.array(rows["source_idx"], pa.int64()),
               "text_a": pa.array(rows["text_a"], pa.string())}
    if "text_b" in rows:
        columns["text_b"] = pa.array(rows["text_b"], pa.string())
    if "tokens" in rows:
        columns["tokens"] = pa.array(rows["tokens"], pa.list_(pa.string()))
    columns["label"] = pa.array(rows["label"])
    if "answers" in rows:  # question answering: the gold answers, and the token count of each window of the logits
        columns["answers"] = pa.array(rows["answers"], pa.list_(pa.string()))
        columns["answer_starts"] = pa.array(rows["answer_starts"], pa.list_(pa.int64()))
    if window_tokens is not None:
        columns["window_tokens"] = pa.array(window_tokens, pa.list_(pa.int32()))
    if isinstance(logits, list):  # word level: list<fixed_size_list<float32, C>>, one [n_words, C] matrix per row
        width = logits[0].shape[1] if logits else 0
        offsets = np.concatenate([[0], np.cumsum([x.shape[0] for x in logits])]).astype(np.int32)
        flat = pa.array(np.concatenate([x.reshape(-1) for x in logits]) if logits else np.zeros(0, np.float32))
        columns["logits"] = pa.ListArray.from_arrays(pa.array(offsets), pa.FixedSizeListArray.from_arrays(flat, width))
    else:
        columns["logits"] = pa.FixedSizeListArray.from_arrays(pa.array(logits.reshape(-1), pa.float32()),
                                                              logits.shape[1])
    if hidden is not None:  # list<fixed_size_list<float16, H>>: one [tokens, H] matrix per row
        width = hidden[0].shape[1] if hidden else 0
        offsets = np.concatenate([[0], np.cumsum([h.shape[0] for h in hidden])]).astype(np.int32)
        flat = pa.array(np.concatenate([h.reshape(-1) for h in hidden]) if hidden else np.zeros(0, np.float16))
        columns["hidden_states"] = pa.ListArray.from_arrays(pa.array(offsets),
                                                            pa.FixedSizeListArray.from_arrays(flat, width))
    if word_ids:  # the teacher's word of each of its tokens (-1: none), beside its hidden states
        columns["word_ids"] = pa.array([w.tolist() for w in word_ids], pa.list_(pa.int16()))
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(pa.table(columns), tmp)
    os.replace(tmp, path)


def _identity(cfg, teacher_fp: str, tok_hash: str, rows_hash: str, inputs: dict, qa: bool = False) -> dict[str, Any]:
    return {"teacher": str(cfg.teacher), "teacher_fingerprint": teacher_fp, "tokenizer_hash": tok_hash,
            "inputs_sha256": rows_hash, "inputs": inputs, "max_length": cfg.data.max_length,
            "shard_rows": cfg.shard_rows, "batch_size": cfg.batch_size, "runtime_asked": cfg.runtime,
            "hidden_states": cfg.hidden_states, "doc_stride": cfg.data.doc_stride if qa else None}


def _check_folder(out: Path, identity: dict[str, Any], cfg) -> dict[str, Any] | None:
    """The existing manifest when the folder holds this very set (to finish or already complete); None for a fresh
    folder (or one ``overwrite`` replaces). Changes nothing (every process of a launch checks). Raises one line for a
    folder that holds another set, an unfinished one without ``resume``, or files of something else."""
    manifest = out / MANIFEST
    if cfg.overwrite and out.exists():
        if manifest.exists() or not any(out.iterdir()):
            return None  # replaced by the main process
        raise KDistillError(f"{out} is not empty and holds no transfer set: --overwrite replaces only a transfer set")
    if not out.exists() or not any(out.iterdir()):
        return None
    if not manifest.exists():
        raise KDistillError(f"{out} is not empty and holds no transfer set; use a new folder")
    old = json.loads(manifest.read_text())
    changed = [k for k in ("teacher_fingerprint", "tokenizer_hash", "inputs_sha256", "max_length", "shard_rows",
                           "batch_size", "runtime_asked", "hidden_states", "doc_stride")
               if old.get(k, LEGACY.get(k)) != identity[k]]
    if changed:
        what = {"teacher_fingerprint": "the teacher's weights", "tokenizer_hash": "the tokenizer",
                "inputs_sha256": "the inputs", "max_length": "--max-length", "shard_rows": "--shard-rows",
                "batch_size": "--batch-size", "runtime_asked": "--runtime", "hidden_states": "--hidden-states",
                "doc_stride": "--doc-stride"}
        raise KDistillError(f"{out} holds a transfer set that differs in {', '.join(what[k] for k in changed)}; a "
                            "set is never reused stale: use a new folder, or --overwrite to replace it")
    if not old.get("complete") and not cfg.resume:
        raise KDistillError(f"{out} holds an unfinished transfer set ({len(old.get('shards', []))} shard(s) done); "
                            "pass --resume to finish it, or --overwrite to start again")
    return old


def write_transfer_set(cfg, *, show_progress: bool = True) -> dict[str, Any]:
    """Label ``cfg``'s inputs with its teacher into a transfer set (see the module docstring); returns the manifest.

    Under ``accelerate launch --num_processes N`` (one machine or several sharing the folder) process ``r`` computes
    shards ``r, r + N, ...`` — whole shards, so whole batches, the same as one process computes them — and the main
    process writes the manifest once every process is done.

    Args:
        cfg: a :class:`~kdistill.config.LabelConfig`.

    Returns:
        The manifest (also ``SET_DIR/manifest.json``): ``rows``, ``shards``, ``teacher_fingerprint``,
        ``tokenizer_hash``, ``inputs``, ``task``, ``labels``, ``problem_type``, ``teacher_dev_metrics``,
        ``rows_per_second`` ...

    Raises:
        KDistillError: a folder holding another set or an unfinished one without ``resume``, a second writer on the
            folder, missing inputs; :class:`~kdistill.errors.ModelError` for a teacher without a trained head.
    """
    import contextlib

    from kdistill.data.batching import tokenizer_key
    from kdistill.locks import hold_lock, in_use_message
    from kdistill.models import load_tokenizer
    from kdistill.rundir import process_state

    procs = process_state()
    out = Path(cfg.output_dir)
    rows, spec, inputs, dev = _inputs(cfg)
    if spec is not None and spec.token_level and (cfg.hidden_states or cfg.runtime == "ort"):
        raise KDistillError("a token-classification set stores word-level logits from the eager teacher: drop "
                            "--hidden-states and --runtime ort")
    if spec is not None and spec.qa and (cfg.hidden_states or cfg.runtime == "ort" or cfg.augment.augment != "none"):
        raise KDistillError("a question-answering set stores per-window start/end logits from the eager teacher: drop "
                            "--hidden-states, --runtime ort and --augment")
    tokenizer = load_tokenizer(cfg.teacher)
    identity = _identity(cfg, teacher_fingerprint(cfg.teacher), tokenizer_key(tokenizer), _rows_hash(rows), inputs,
                         qa=spec is not None and spec.qa)
    out.parent.mkdir(parents=True, exist_ok=True)
    lock = out.parent / f".{out.name}.kdistill.lock"
    busy = lambda holder: KDistillError(in_use_message(out, holder))  # noqa: E731
    # the main process holds the lock; the launch's other processes must not take it for another writer's
    with hold_lock(lock, busy, reentrant=False) if procs.is_main_process else contextlib.nullcontext():
        old = _check_folder(out, identity, cfg)  # every process checks (and raises) before anything changes
        procs.wait_for_everyone()
        if old is not None and old.get("complete"):
            LOG.warning("%s: the transfer set is already complete; nothing was changed", out)
            return old
        return _label_shards(cfg, rows, spec, dev, tokenizer, identity, procs, show_progress)


def _label_shards(cfg, rows, spec, dev, tokenizer, identity: dict, procs, show_progress: bool) -> dict[str, Any]:
    """The teacher pass of :func:`write_transfer_set`, in the folder it checked: this process's missing shards, then
    (main process) the complete manifest."""
    import torch
    from tqdm.auto import tqdm

    from importlib.metadata import version

    from kdistill.deploy.runtime import OrtModel
    from kdistill.models import load_classifier
    from kdistill.results import to_json

    out, main = Path(cfg.output_dir), procs.is_main_process
    teacher_spec = spec or _spec_of_teacher(cfg.teacher)
    teacher = load_classifier(cfg.teacher, teacher_spec, require_trained_head=True, what="teacher").eval()
    n_shards = (len(rows) + cfg.shard_rows - 1) // cfg.shard_rows
    paths = [out / SHARDS / f"part-{i:05d}.parquet" for i in range(n_shards)]
    if main:
        if cfg.overwrite and out.exists():
            import shutil

            shutil.rmtree(out)
        (out / SHARDS).mkdir(parents=True, exist_ok=True)
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, **identity, "complete": False,
                    "task": teacher_spec.name if spec is not None else None,
                    "problem_type": _problem_type(teacher_spec), "labels": list(teacher_spec.labels or []),
                    "logits_dtype": "float32", "hidden_states_dtype": "float16" if cfg.hidden_states else None,
                    "columns": ["idx", "source_idx", "text_a", "text_b", "label", "logits",
                                *(["hidden_states", "word_ids"] if cfg.hidden_states else []),
                                *(["answers", "answer_starts", "window_tokens"] if teacher_spec.qa else [])],
                    "rows": len(rows), "shards": [], "kdistill_version": version("kdistill"),
                    "threads": torch.get_num_threads(), "processes": procs.num_processes}
        runner, manifest["runtime"] = teacher, {"used": "eager"}  # what runs the teacher pass (dev: always eager)
        if cfg.hidden_states:
            manifest["hidden_states_bytes_estimate"] = _hidden_size(cfg, rows, tokenizer, teacher.config.hidden_size)
        if cfg.runtime == "ort" and cfg.hidden_states:
            manifest["runtime"]["note"] = "--hidden-states: the exported graph gives logits only, so eager runs"
        elif cfg.runtime == "ort":
            first = rows.select(range(min(cfg.shard_rows, len(rows)))).to_dict()
            runner, manifest["runtime"] = ort_teacher(teacher, tokenizer, first, out, cfg)
        _save(out / MANIFEST, manifest, to_json)
    procs.wait_for_everyone()  # the folder is ready
    missing = [i for i, path in enumerate(paths) if not path.exists()]
    procs.wait_for_everyone()  # every process has seen what was missing before any writes a shard
    if not main:  # the main process chose the runtime (ORT only where it matched eager)
        manifest = json.loads((out / MANIFEST).read_text())
        used = manifest["runtime"]
        runner = OrtModel(out / used["graph"], teacher.config) if used["used"] == "ort" else teacher
    mine = [i for i in missing if i % procs.num_processes == procs.process_index]
    hashes: dict[str, str] = {}
    t0, computed = time.perf_counter(), 0
    bar = tqdm(total=sum(min(cfg.shard_rows, len(rows) - i * cfg.shard_rows) for i in mine),
               desc=f"label (teacher pass{'' if procs.num_processes == 1 else ', this process'})", unit="row",
               disable=not (show_progress and main))
    for i in mine:  # finished shards are never recomputed
        part = rows.select(range(i * cfg.shard_rows, min((i + 1) * cfg.shard_rows, len(rows)))).to_dict()
        hidden = [] if cfg.hidden_states else None
        words = [] if cfg.hidden_states else None
        windows = None
        if "tokens" in part:  # token classification: word-level logits
            logits = shard_word_logits(runner, tokenizer, part["tokens"], max_length=cfg.data.max_length,
                                       batch_size=cfg.batch_size)
        elif "answers" in part:  # question answering: per-window start/end logits
            logits, windows = shard_window_logits(runner, tokenizer, part["text_a"], part["text_b"],
                                                  max_length=cfg.data.max_length, doc_stride=cfg.data.doc_stride,
                                                  batch_size=cfg.batch_size)
        else:
            logits = shard_logits(runner, tokenizer, part["text_a"], part.get("text_b"),
                                  max_length=cfg.data.max_length, batch_size=cfg.batch_size, hidden=hidden,
                                  word_ids=words)
        _write_shard(paths[i], part, logits, i * cfg.shard_rows, hidden, words, windows)
        computed += len(part["text_a"])
        bar.update(len(part["text_a"]))
        bar.set_postfix(rows_per_s=f"{computed / max(time.perf_counter() - t0, 1e-9):.0f}")
        if main:  # the shards done so far (by any process), for --inspect and the resume message
            manifest["shards"] = _records(paths, hashes, only_done=True)
            _save(out / MANIFEST, manifest, to_json)
    bar.close()
    procs.wait_for_everyone()
    seconds = time.perf_counter() - t0
    if main:
        done = sum(min(cfg.shard_rows, len(rows) - i * cfg.shard_rows) for i in missing)
        manifest.update(shards=_records(paths, hashes, only_done=False), complete=True, rows_computed_here=done,
                        teacher_seconds=round(seconds, 3), rows_per_second=round(done / seconds, 1) if done else None,
                        teacher_dev_metrics=_dev_metrics(cfg, teacher, tokenizer, spec, dev))
        _save(out / MANIFEST, manifest, to_json)
    procs.wait_for_everyone()
    return manifest if main else json.loads((out / MANIFEST).read_text())


def _hidden_size(cfg, rows, tokenizer, width: int) -> int:
    """Bytes the stored hidden states will take (float16: tokens x hidden x 2, Parquet adds little), said in a log
    line before the pass starts."""
    tokens = 0
    for start in range(0, len(rows), 10_000):
        part = rows.select(range(start, min(start + 10_000, len(rows)))).to_dict()
        enc = tokenizer(part["text_a"], part.get("text_b"), truncation=True, max_length=cfg.data.max_length)
        tokens += sum(len(ids) for ids in enc["input_ids"])
    size = 2 * tokens * width
    LOG.warning("--hidden-states: %d rows, %d tokens x %d float16 values: about %.2f GB on disk", len(rows), tokens,
                width, size / 1e9)
    return size


def _records(paths: list[Path], hashes: dict[str, str], *, only_done: bool) -> list[dict[str, Any]]:
    """The manifest's shard records (file, rows, sha256), each file hashed once (``hashes`` remembers)."""
    import pyarrow.parquet as pq

    records = []
    for path in paths:
        if only_done and not path.exists():
            continue
        if path.name not in hashes:
            hashes[path.name] = file_sha256(path)
        records.append({"file": f"{SHARDS}/{path.name}", "rows": pq.ParquetFile(path).metadata.num_rows,
                        "sha256": hashes[path.name]})
    return records


def _spec_of_teacher(name: str):
    """A task spec from the teacher's own config (text inputs have no task): its labels and problem type."""
    from transformers import AutoConfig

    from kdistill.data.tasks import TaskSpec

    conf = AutoConfig.from_pretrained(str(name))
    regression = conf.problem_type == "regression"
    labels = None if regression else tuple(str(conf.id2label[i]) for i in range(conf.num_labels))
    metrics = ("pearson",) if regression else ("accuracy",)
    return TaskSpec(name="custom", glue_dir="", text_columns=("text",), label_column="label", labels=labels,
                    metrics=metrics, main_metric=metrics[0],
                    multi_label=conf.problem_type == "multi_label_classification")


def _problem_type(spec) -> str:
    if spec.token_level:
        return "token_classification"
    if spec.qa:
        return "question_answering"
    return "regression" if spec.is_regression else ("multi_label" if spec.multi_label else "single_label")


def _dev_metrics(cfg, teacher, tokenizer, spec, validation) -> dict[str, Any] | None:
    """The teacher's metrics on the task's validation split (so a report gives retention without the teacher)."""
    if spec is None or validation is None or len(validation) == 0:
        return None
    from kdistill.data.batching import tokenize
    from kdistill.engine.evaluation import evaluate_model

    dev = tokenize(validation, tokenizer, max_length=cfg.data.max_length, doc_stride=cfg.data.doc_stride, cache_dir=cfg.data.cache_dir,
                   desc="tokenize dev")
    return {"split": "validation", "rows": len(validation),
            **evaluate_model(teacher, dev, tokenizer, spec, batch_size=cfg.batch_size, show_progress=False)}


def _save(path: Path, manifest: dict, to_json) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(to_json(manifest, indent=1) + "\n")
    os.replace(tmp, path)


def read_complete_set(folder: str | Path, what: str = "") -> tuple[dict[str, Any], Any]:
    """``(manifest, table)`` of the complete transfer set in ``folder`` (all shards as one pyarrow table).

    Raises:
        KDistillError: no set there, or an unfinished one (``what``: how the folder was named, e.g. the option).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(folder)
    where = f"{what} {folder}".strip()
    if not (folder / MANIFEST).is_file():
        raise KDistillError(f"{where} holds no transfer set (no {MANIFEST}); make one with kdistill label")
    manifest = json.loads((folder / MANIFEST).read_text())
    if not manifest.get("complete"):
        raise KDistillError(f"{where} holds an unfinished transfer set; finish it with kdistill label --resume")
    return manifest, pa.concat_tables([pq.read_table(folder / s["file"]) for s in manifest["shards"]])


#: Largest |logit difference| between the ONNX Runtime graph and eager PyTorch on the first shard for ORT to be used.
ORT_PARITY = 1e-4


def ort_teacher(teacher, tokenizer, first: dict[str, list], out: Path, cfg) -> tuple[Any, dict[str, Any]]:
    """The teacher as an ONNX Runtime fp32 graph (the deploy path's export, ``SET_DIR/teacher.onnx``; ORT's transformer
    fusions tried first, ``teacher.opt.onnx``) when its logits on the first shard are within :data:`ORT_PARITY` of eager
    PyTorch's; else the eager teacher, with a note. Returns ``(model, record)`` — the record (runtime used, fusions
    applied, measured differences, note) goes into the manifest."""
    from kdistill.deploy.graph import export_graph, optimize_graph
    from kdistill.deploy.runtime import OrtModel

    path = out / "teacher.onnx"
    if not path.exists():
        export_graph(teacher, tokenizer, path.with_name("teacher.onnx.tmp"))
        os.replace(path.with_name("teacher.onnx.tmp"), path)
    fused = optimize_graph(path, out / "teacher.opt.onnx", teacher.config)
    texts_b = first.get("text_b")
    eager = shard_logits(teacher, tokenizer, first["text_a"], texts_b, max_length=cfg.data.max_length,
                         batch_size=cfg.batch_size)
    record: dict[str, Any] = {"parity_rows": len(eager), "fusions": fused.get("fusions", {}),
                              "fusion_note": fused.get("reason")}
    for name in (["teacher.opt.onnx"] if fused["applied"] else []) + ["teacher.onnx"]:
        graph = OrtModel(out / name, teacher.config)
        ort = shard_logits(graph, tokenizer, first["text_a"], texts_b, max_length=cfg.data.max_length,
                           batch_size=cfg.batch_size)
        diff = float(np.abs(eager - ort).max()) if len(eager) else 0.0
        record[f"max_abs_logit_diff[{name}]"] = diff
        if diff <= ORT_PARITY:
            return graph, {"used": "ort", "graph": name, **record}
    note = (f"ONNX Runtime's logits differ from eager PyTorch's by more than {ORT_PARITY:g} on the first shard: the "
            "eager teacher labels the set")
    LOG.warning("%s", note)
    return teacher, {"used": "eager", "note": note, **record}
