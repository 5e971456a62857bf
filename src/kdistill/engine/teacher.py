"""Teacher sources: where the objective's teacher signal comes from (DistillKit's "signal source" idea).

* :class:`NoTeacher` — the objective needs none (fine-tuning, ``alpha = 1``);
* :class:`CachedLogits` — teacher logits computed once per training example, then read by ``idx``;
* :class:`LiveTeacher` — the frozen teacher runs on every batch (hidden states and, when the
  objective asks, attention recorded by hooks for its lifetime as a context manager).

A :class:`TeacherView` is the teacher's own tokenisation of the train split when its tokenizer differs from the
student's: the cache is computed from it, and the live teacher looks its inputs up by the batch's ``idx``.

:func:`teacher_source_for` picks one from what the objective needs; the training loop only calls
``source(batch)``. Every source is a context manager (entered once for the whole run).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator

from kdistill.config import TrainConfig
from kdistill.data.batching import model_inputs, model_logits
from kdistill.errors import KDistillError
from kdistill.rundir import os_error
from kdistill.objectives import Objective, TeacherSignal


def teacher_pass(teacher, features: list[dict], tokenizer, *, batch_size: int, hidden: list | None = None,
                 show_progress: bool = False, desc: str = "teacher pass") -> np.ndarray:
    """The teacher's logits for tokenised ``features`` (dicts with ``input_ids``, ``attention_mask`` [,
    ``token_type_ids``]), in input order: the rows sorted by token length (stable) into batches of ``batch_size``,
    padded per batch, under ``torch.inference_mode()`` — the same batches on every call, so the same bytes. The one
    teacher pass of the per-run logit cache (:func:`teacher_logits_cache`) and of transfer sets
    (:func:`kdistill.transfer.label.shard_logits`).

    Returns:
        ``[N, C]`` float32; per-token logits ``[N, T, C]`` (``T`` the longest row; zeros past each row's end).
        With a list ``hidden``, each row's last hidden states ``[tokens, H]`` (float16, real tokens only) are put in
        it, in input order.
    """
    from tqdm.auto import tqdm
    from transformers import DataCollatorWithPadding

    from kdistill.data.batching import forward_keys

    order = np.argsort([len(f["input_ids"]) for f in features], kind="stable")
    pad = DataCollatorWithPadding(tokenizer, return_tensors="pt")
    keys = forward_keys(teacher)
    device = next(iter(teacher.parameters()), torch.zeros(0)).device
    out: np.ndarray | None = None
    states: list = [None] * len(features)
    with torch.inference_mode():
        for start in tqdm(range(0, len(order), batch_size), desc=desc, disable=not show_progress, leave=False):
            ids = order[start:start + batch_size]
            batch = {k: v.to(device) for k, v in pad([features[i] for i in ids]).items()}
            res = teacher(**model_inputs(batch, keys), **({"output_hidden_states": True} if hidden is not None else {}))
            logits = model_logits(res).float().cpu().numpy()
            if out is None:
                width = max(len(f["input_ids"]) for f in features)
                shape = (len(features), width, logits.shape[-1]) if logits.ndim == 3 else (len(features), logits.shape[-1])
                out = np.zeros(shape, dtype=np.float32)
            if logits.ndim == 3:
                for j, i in enumerate(ids):
                    n = len(features[i]["input_ids"])
                    out[i, :n] = logits[j, :n]
            else:
                out[ids] = logits
            if hidden is not None:
                last = res.hidden_states[-1].to(torch.float16).cpu().numpy()
                for j, i in enumerate(ids):
                    states[i] = last[j, : len(features[i]["input_ids"])]
    if hidden is not None:
        hidden.extend(states)
    return out if out is not None else np.zeros((0, teacher.config.num_labels), dtype=np.float32)


def teacher_logits_cache(teacher, train_ds, tokenizer, *, path: Path, fingerprint: str, batch_size: int,
                         accelerator: Accelerator, show_progress: bool = True) -> torch.Tensor:
    """Teacher logits for every training example, ``[N, C]`` float32 indexed by ``idx`` (per token ``[N, T, C]``).

    A transfer set made on the fly (:mod:`kdistill.transfer.runcache`): computed once by :func:`teacher_pass` (on the
    main process, in length-sorted batches), written atomically into the folder ``path`` with ``fingerprint`` (teacher
    weights + tokenised train texts and labels, see :func:`kdistill.recipes.kd.prepare_task_data`); reused only when
    the fingerprint matches.
    """
    from kdistill.transfer.runcache import cached_fingerprint, read_cache, write_cache

    if accelerator.is_main_process:
        if cached_fingerprint(path) != fingerprint:
            rows = train_ds.with_format(None)
            cols = [c for c in ("input_ids", "attention_mask", "token_type_ids") if c in rows.column_names]
            data = {c: rows[c] for c in cols}
            features = [{c: data[c][i] for c in cols} for i in range(len(rows))]
            found = teacher_pass(teacher, features, tokenizer, batch_size=batch_size, show_progress=show_progress,
                                 desc="teacher logits (cached once)")
            try:  # written aside, then renamed: a kill never leaves a cache that a later run trusts
                write_cache(path, found, np.asarray(rows["idx"]), data["input_ids"], fingerprint=fingerprint)
            except OSError as err:
                raise os_error(err, Path(path).parent, "write the teacher-logit cache") from None
    accelerator.wait_for_everyone()
    return read_cache(path)


def teacher_key(name: str | Path | None) -> str:
    """Identity of a teacher's weights for cache keys: its path plus the size and mtime of each weight/config file."""
    p = Path(str(name)) if name else None
    if p is None or not p.is_dir():
        return str(name)
    parts = [str(p.resolve())]
    for f in sorted(p.iterdir()):
        if f.suffix in (".safetensors", ".bin", ".json") and f.is_file():
            st = f.stat()
            parts.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


class TeacherView:
    """The train split as the teacher tokenizes it (another tokenizer than the student's), rows aligned by ``idx``.

    Args:
        ds: :func:`kdistill.data.batching.tokenize` of the same split with the teacher's tokenizer (``idx`` 0..N-1, as
            the student's); with ``word_ids`` when hidden states are aligned by words.
        tokenizer: the teacher's tokenizer (pads the teacher's batches).
    """

    def __init__(self, ds, tokenizer):
        from kdistill.data.batching import Collator

        self.ds, self.tokenizer, self._collate = ds, tokenizer, Collator(tokenizer)
        self._row = {int(i): n for n, i in enumerate(ds.with_format(None)["idx"])}

    def batch(self, idx: torch.Tensor, device) -> dict[str, torch.Tensor]:
        """The teacher's padded inputs (and ``word_ids``) for the examples ``idx`` ``[B]``, in that order."""
        rows = self.ds.with_format(None).select([self._row[int(i)] for i in idx.tolist()])
        feats = [dict(zip(rows.column_names, values)) for values in zip(*(rows[c] for c in rows.column_names))]
        return {k: v.to(device) for k, v in self._collate(feats).items()}


class NoTeacher:
    """For objectives that need no teacher: ``source(batch)`` is ``None``."""

    seconds = 0.0

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def __call__(self, batch) -> None:
        return None


def _rows(logits: torch.Tensor, batch) -> torch.Tensor:
    """The cached logits of the batch's rows (``idx``); per-token logits ``[N, T_max, C]`` cut to the batch's width
    (rows are padded on the right, so position t is the same token in both)."""
    out = logits[batch["idx"].cpu()]
    return out[:, : batch["input_ids"].shape[1]] if out.dim() == 3 else out


class CachedLogits(NoTeacher):
    """Teacher logits ``[N, C]`` indexed by the batch's ``idx`` (computed once; see :func:`teacher_logits_cache`).

    Token classification across tokenizers (``word_labels``: the teacher's own ``[N, T]`` labels, -100 off each
    word's first sub-token): the signal is word level, ``[M, C]`` — the teacher's logits at the first sub-token of
    every word of the batch's rows, row by row — which the soft-target terms pair with the student's own first
    sub-tokens (:func:`kdistill.objectives.terms.labelled_positions`)."""

    def __init__(self, logits: torch.Tensor, device, seconds: float = 0.0, word_labels: torch.Tensor | None = None):
        self.logits, self.device, self.seconds, self.word_labels = logits, device, seconds, word_labels

    def __call__(self, batch) -> TeacherSignal:
        if self.word_labels is not None:
            ids = batch["idx"].cpu()
            rows, keep = self.logits[ids], self.word_labels[ids] != -100
            return TeacherSignal(logits=rows[keep[:, : rows.shape[1]]].to(self.device))
        return TeacherSignal(logits=_rows(self.logits, batch).to(self.device))


class StoredLogits(NoTeacher):
    """Teacher logits ``[N, C]`` read from a transfer set (:mod:`kdistill.transfer`), indexed by the batch's ``idx``,
    on the batch's device: no teacher runs."""

    provides = frozenset({"logits"})

    def __init__(self, logits: torch.Tensor):
        self.logits, self.seconds = logits, 0.0

    def __call__(self, batch) -> TeacherSignal:
        return TeacherSignal(logits=_rows(self.logits, batch).to(batch["idx"].device))


class StoredWordLogits(NoTeacher):
    """Token classification from a transfer set: the teacher's word-level logits, one ``[n_words, C]`` array per
    sentence (indexed by the split's ``idx``); for a batch of sentence windows, the rows of the words each window
    labels (its first sub-tokens, in order), concatenated ``[M, C]`` — paired word by word with the student's
    (:func:`kdistill.objectives.terms.labelled_positions`), whatever its tokenizer."""

    provides = frozenset({"logits"})

    def __init__(self, per_sentence: list):
        self.per_sentence, self.seconds = per_sentence, 0.0

    def __call__(self, batch) -> TeacherSignal:
        labels, word_ids, sentences = batch["labels"].cpu(), batch["word_ids"].cpu(), batch["sentence"].cpu()
        parts = []
        for row, s in enumerate(sentences.tolist()):
            words = word_ids[row][labels[row] != -100].tolist()
            parts.append(torch.from_numpy(np.asarray(self.per_sentence[s][words], dtype=np.float32)))
        return TeacherSignal(logits=torch.cat(parts).to(batch["idx"].device))


class StoredWindowLogits(NoTeacher):
    """Question answering from a transfer set: per question (the split's ``idx``) one ``[tokens, 2]`` float32 matrix,
    the teacher's start and end logits of its windows' real tokens, window after window. :meth:`bind` matches it to
    the run's windows (:func:`kdistill.qa.features.tokenize_qa`: ``example``, ``length``); a batch of windows gets
    ``[B, T, 2]``, zero past each window's end (padding, masked out by the QA losses).

    Raises:
        KDistillError: (bind) a question whose windows hold another number of tokens than its stored logits — the
            set was cut into other windows.
    """

    provides = frozenset({"logits"})

    def __init__(self, per_question: list):
        self.per_question, self.seconds, self.where = per_question, 0.0, None

    def bind(self, ds) -> None:
        """Match the stored logits to ``ds``, the run's windows (:func:`kdistill.qa.features.tokenize_qa`): window
        ``idx`` → (its question, where its tokens start in the question's matrix, how many). Raises as the class
        says."""
        rows = ds.with_format(None).select_columns(["idx", "example", "length"]).to_dict()
        used: dict[int, int] = {}
        self.where = {}
        for i in np.argsort(rows["idx"], kind="stable"):
            q, n = int(rows["example"][i]), int(rows["length"][i])
            self.where[int(rows["idx"][i])] = (q, used.get(q, 0), n)
            used[q] = used.get(q, 0) + n
        bad = [q for q, n in used.items() if self.per_question[q].shape[0] != n]
        if bad:
            raise KDistillError(f"the transfer set's start/end logits of {len(bad)} question(s) cover another number of "
                                f"tokens than this run's windows (question {bad[0]}: {self.per_question[bad[0]].shape[0]} "
                                f"vs {used[bad[0]]}): label the set with this run's --max-length and --doc-stride")

    def __call__(self, batch) -> TeacherSignal:
        ids = batch["idx"].cpu().tolist()
        out = torch.zeros(len(ids), batch["input_ids"].shape[1], 2)
        for j, i in enumerate(ids):
            q, start, n = self.where[i]
            out[j, :n] = torch.tensor(self.per_question[q][start:start + n], dtype=torch.float32)
        return TeacherSignal(logits=out.to(batch["idx"].device))


class StoredHidden(StoredLogits):
    """Teacher logits ``[N, C]`` and last hidden states (one float16 ``[tokens, H]`` matrix per row) read from a
    transfer set, indexed by the batch's ``idx``: what L_cos needs, with no teacher pass. The rows must be tokenised
    as the set's teacher tokenised them (same tokenizer and max length), so each stored matrix fills exactly the
    row's real tokens of the padded batch.

    Raises:
        KDistillError: a row whose real token count differs from its stored matrix (another tokenisation).
    """

    provides = frozenset({"logits", "hidden_states"})

    def __init__(self, logits: torch.Tensor, hidden: list, word_ids: list | None = None):
        super().__init__(logits)
        self.hidden, self.word_ids = hidden, word_ids

    def __call__(self, batch) -> TeacherSignal:
        if self.word_ids is not None:
            return self._in_own_tokens(batch)
        ids = batch["idx"].cpu().tolist()
        mask = batch["attention_mask"].cpu()
        width = self.hidden[ids[0]].shape[1]
        out = torch.zeros(len(ids), mask.shape[1], width)
        for j, i in enumerate(ids):
            n = int(mask[j].sum())
            if self.hidden[i].shape[0] != n:
                raise KDistillError(f"the transfer set's hidden states of a row have {self.hidden[i].shape[0]} tokens, "
                                    f"the batch's {n}: it was tokenised differently; use the set's tokenizer and "
                                    "--max-length, or drop its hidden states (the teacher then runs live)")
            out[j, :n] = torch.from_numpy(self.hidden[i].astype(np.float32))
        device = batch["idx"].device
        return TeacherSignal(logits=self.logits[ids].to(device), hidden_states=(out.to(device),))


    def _in_own_tokens(self, batch) -> TeacherSignal:
        """The teacher's own tokens (another tokenizer than the student's): its stored rows padded to the longest,
        with their word ids (-1 past each row), for L_cos aligned by words."""
        ids = batch["idx"].cpu().tolist()
        width = max(self.hidden[i].shape[0] for i in ids)
        out = torch.zeros(len(ids), width, self.hidden[ids[0]].shape[1])
        words = torch.full((len(ids), width), -1, dtype=torch.long)
        for j, i in enumerate(ids):
            n = self.hidden[i].shape[0]
            out[j, :n] = torch.from_numpy(self.hidden[i].astype(np.float32))
            words[j, :n] = torch.from_numpy(self.word_ids[i].astype(np.int64))
        device = batch["idx"].device
        return TeacherSignal(logits=self.logits[ids].to(device), hidden_states=(out.to(device),),
                             word_ids=words.to(device))


class LiveTeacher(NoTeacher):
    """The frozen teacher run under ``no_grad`` on each batch (never wrapped in DDP).

    Args:
        teacher: the model (moved to the accelerator's device, eval mode, no gradients).
        want_hidden: ask for ``hidden_states``.
        attention_layers: record attention of these layers (0-based; ``None`` = all) while the
            source is entered, or ``False`` for no recording.
    """

    def __init__(self, teacher, accelerator: Accelerator, *, want_hidden: bool, attention_layers=False,
                 view: TeacherView | None = None, qkv_layer: int | None = None):
        self.teacher, self.accelerator, self.want_hidden = teacher, accelerator, want_hidden
        self.attention_layers, self.recorder, self._capture = attention_layers, None, None
        self.view, self.qkv_layer, self.qkv, self._qkv_capture = view, qkv_layer, None, None

    def __enter__(self):
        if self.attention_layers is not False:
            from kdistill.students.capture import capture_attention

            self._capture = capture_attention(self.teacher, self.attention_layers)
            self.recorder = self._capture.__enter__()
        if self.qkv_layer is not None:
            from kdistill.students.relations import capture_qkv

            self._qkv_capture = capture_qkv(self.teacher, self.qkv_layer)
            self.qkv = self._qkv_capture.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._capture is not None:
            self._capture.__exit__(*exc)
            self._capture = self.recorder = None
        if self._qkv_capture is not None:
            self._qkv_capture.__exit__(*exc)
            self._qkv_capture = self.qkv = None

    def __call__(self, batch) -> TeacherSignal:
        inputs = batch if self.view is None else self.view.batch(batch["idx"], self.accelerator.device)
        with torch.no_grad(), self.accelerator.autocast():
            out = self.teacher(**model_inputs(inputs), output_hidden_states=self.want_hidden)
        logits = model_logits(out)  # a bare encoder (general distillation) has none
        signal = TeacherSignal(logits=None if logits is None else logits.float(),
                               hidden_states=getattr(out, "hidden_states", None),
                               word_ids=inputs.get("word_ids") if self.view is not None else None,
                               qkv=dict(self.qkv) if self.qkv is not None else None)
        if self.recorder is not None:
            signal.attention_scores, signal.attention_probs = list(self.recorder.scores), list(self.recorder.probs)
            self.recorder.clear()
        return signal


def teacher_source_for(objective: Objective, teacher, *, train_ds, tokenizer, cfg: TrainConfig, cache_path: Path,
                       fingerprint: str, accelerator: Accelerator, view: TeacherView | None = None):
    """The cheapest source that gives ``objective`` what it needs.

    Cached logits when the objective needs only the teacher's logits, ``cfg.cache_teacher`` is on
    and the train split is a dataset (not a stream); else the live teacher (with attention capture
    when the objective asks); :class:`NoTeacher` when no teacher is needed. With a ``view`` (the teacher tokenizes
    the text itself), the cache is computed from the view and the live teacher reads its inputs from it.

    Raises:
        KDistillError: the objective needs a teacher and none is given.
    """
    if not objective.needs_teacher:
        if teacher is not None:
            teacher.eval().requires_grad_(False).to(accelerator.device)
        return NoTeacher()
    if teacher is None:
        raise KDistillError(f"method '{objective.name}' needs a teacher; pass --teacher")
    teacher.eval().requires_grad_(False).to(accelerator.device)
    internals = objective.needs_hidden_states or objective.needs_attentions or objective.teacher_qkv_layer is not None
    if cfg.cache_teacher and not internals and train_ds is not None:
        t0 = time.perf_counter()
        t_ds, t_tok = (train_ds, tokenizer) if view is None else (view.ds, view.tokenizer)
        logits = teacher_logits_cache(teacher, t_ds, t_tok, path=cache_path, fingerprint=fingerprint or "unnamed",
                                      batch_size=cfg.eval_batch_size, accelerator=accelerator,
                                      show_progress=cfg.show_progress)
        words = None
        if view is not None and logits.dim() == 3:  # token classification, the teacher's own tokens: word level
            words = torch.full(logits.shape[:2], -100, dtype=torch.long)
            for i, row in enumerate(view.ds.with_format(None)["labels"]):
                words[i, : len(row)] = torch.as_tensor(row[: logits.shape[1]])
        return CachedLogits(logits, accelerator.device, time.perf_counter() - t0, word_labels=words)
    layers = objective.teacher_attention_layers if objective.needs_attentions else False
    return LiveTeacher(teacher, accelerator, want_hidden=objective.needs_hidden_states or objective.needs_attentions,
                       attention_layers=layers, view=view, qkv_layer=objective.teacher_qkv_layer)
