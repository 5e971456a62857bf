"""Serving an exported model with ONNX Runtime alone: no torch, no transformers.

This module imports only ``onnxruntime``, ``tokenizers`` and ``numpy`` (and the standard library), so a
served model needs nothing else::

    pip install onnxruntime tokenizers numpy        # ~200 MB installed; torch alone is ~750 MB

``kdistill export`` copies this file into every exported folder as ``predict.py``; use it from there
without installing kdistill at all::

    import sys; sys.path.insert(0, "students/sst2-int8")
    from predict import Predictor
    labels, probabilities = Predictor("students/sst2-int8").predict(["a gorgeous, witty film"])

(or ``from kdistill.serve import Predictor`` where kdistill is installed; ``pip install --no-deps kdistill``
installs it without its training dependencies).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

#: The export's description of the graph and its labels, written by ``kdistill export``.
EXPORT_FILE = "kdistill_export.json"


class Predictor:
    """Labels and probabilities of an exported classifier, computed by ONNX Runtime.

    Args:
        folder: a folder written by ``kdistill export`` (``model.onnx`` [+ ``model_quantized.onnx``],
            ``tokenizer.json``, ``kdistill_export.json``).
        quantized: use the int8 graph (``model_quantized.onnx``); default: it when the folder has one.
        threads: ONNX Runtime intra-op threads (default: ONNX Runtime's choice, all cores).

    Raises:
        FileNotFoundError: the folder lacks one of those files (the message names it).
        ValueError: ``quantized=True`` for a folder without an int8 graph, or a recorded multi-label ``threshold``
            outside (0, 1); :class:`DamagedExport` (a ValueError) when one of the folder's files cannot be read
            (truncated, overwritten): one line naming the file; re-export.
    """

    def __init__(self, folder: str | Path, *, quantized: bool | None = None, threads: int | None = None):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        meta_path = self.folder / EXPORT_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path} not found: pass a folder written by `kdistill export`")
        try:
            self.meta = json.loads(meta_path.read_text())
            graphs = self.meta["files"]
        except (ValueError, KeyError, TypeError) as err:
            raise DamagedExport(meta_path, err) from None
        if quantized is None:
            quantized = "int8" in graphs
        if quantized and "int8" not in graphs:
            raise ValueError(f"{self.folder} has no int8 graph; export it with --quantize dynamic|static|auto")
        graph = self.folder / graphs["int8" if quantized else "fp32"]
        tok_path = self.folder / "tokenizer.json"
        for path in (graph, tok_path):
            if not path.is_file():
                raise FileNotFoundError(f"{path} not found; re-run `kdistill export`")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - ORT's InvalidProtobuf / Fail / ...: one line naming the file
            raise DamagedExport(graph, err) from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        try:
            self.tokenizer = Tokenizer.from_file(str(tok_path))
        except Exception as err:  # noqa: BLE001 - the tokenizers library's own exception
            raise DamagedExport(tok_path, err) from None
        try:
            self.tokenizer.enable_truncation(max_length=int(self.meta["max_length"]))
            self.tokenizer.enable_padding(pad_id=int(self.meta["pad_id"]), pad_token=str(self.meta["pad_token"]))
            self.labels = [str(x) for x in self.meta["labels"]]
        except (KeyError, TypeError, ValueError) as err:
            raise DamagedExport(meta_path, err) from None
        self.problem_type = self.meta.get("problem_type") or "single_label_classification"
        #: multi-label decision threshold on each sigmoid: the one the run chose on its selection slice (recorded by
        #: ``kdistill export`` as ``threshold``), else 0.5
        recorded = self.meta.get("threshold")
        try:
            self.threshold = 0.5 if recorded is None else float(recorded)
        except (TypeError, ValueError):
            self.threshold = float("nan")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"{meta_path} records threshold {self.meta.get('threshold')!r}; it must lie in (0, 1): "
                             "re-run `kdistill export`")

    def logits(self, texts: Sequence[str] | Sequence[tuple[str, str]], *, batch_size: int = 32) -> np.ndarray:
        """Raw logits ``[N, C]`` (float32) of ``texts`` (strings, or ``(text_a, text_b)`` pairs for pair tasks).

        Raises:
            TypeError: an input is not a string or a pair of strings (``5``, ``None``, bytes): one line naming its
                index (bytes: decode them first, e.g. ``b.decode("utf-8")``).
        """
        if isinstance(texts, str):
            texts = [texts]
        if texts is None or isinstance(texts, (bytes, bytearray)) or not hasattr(texts, "__iter__"):
            hint = ": decode them first, e.g. texts.decode('utf-8')" if isinstance(texts, (bytes, bytearray)) else ""
            raise TypeError(f"texts must be a list of strings (or of (text, text) pairs), not {type(texts).__name__}{hint}")
        items = list(texts)
        for i, item in enumerate(items):
            _check_text(i, item)
        out = [self._forward(items[start:start + batch_size])[1] for start in range(0, len(items), batch_size)]
        n_out = len(self.labels) or 1
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, n_out), np.float32)

    def predict(self, texts: Sequence[str] | Sequence[tuple[str, str]], *, batch_size: int = 32
                ) -> tuple[list, np.ndarray | None]:
        """``(labels, probabilities)`` of ``texts``.

        Single-label: each label is the name of the arg-max class, ``probabilities`` the softmax ``[N, C]``.
        Token classification: per text its entities (:meth:`entities`), and ``None``. Question answering:
        ``texts`` are ``(question, context)`` pairs, the labels their answers (:meth:`answers`), and ``None``.
        Multi-label: each label is the list of names whose sigmoid is above :attr:`threshold` (the run's, chosen on
        its selection slice; else 0.5), ``probabilities`` the sigmoids ``[N, C]``. Regression: the predicted scores
        (floats) and ``None``.
        """
        if self.problem_type == "token_classification":
            return self.entities(texts, batch_size=batch_size), None
        if self.problem_type == "question_answering":
            pairs = [(i, t) for i, t in enumerate([texts] if isinstance(texts, tuple) else texts)]
            for i, item in pairs:
                _check_text(i, item)
                if isinstance(item, str):
                    raise TypeError(f"input {i} is one string: question answering takes (question, context) pairs")
            return self.answers([q for _, (q, _c) in pairs], [c for _, (_q, c) in pairs], batch_size=batch_size), None
        z = self.logits(texts, batch_size=batch_size)
        if self.problem_type == "regression":
            return [float(v) for v in z[:, 0]], None
        if self.problem_type == "multi_label_classification":
            p = 1.0 / (1.0 + np.exp(-z))
            return [[self.labels[j] for j in np.flatnonzero(row > self.threshold)] for row in p], p
        e = np.exp(z - z.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        return [self.labels[j] for j in p.argmax(axis=1)], p


    def _forward(self, chunk: list) -> tuple[list, np.ndarray]:
        """``(encodings, the graph's first output)`` of one batch of texts (or pairs)."""
        enc = self.tokenizer.encode_batch([tuple(t) if isinstance(t, (tuple, list)) else t for t in chunk])
        columns = {"input_ids": [e.ids for e in enc], "attention_mask": [e.attention_mask for e in enc],
                   "token_type_ids": [e.type_ids for e in enc]}
        feed = {name: np.asarray(columns[name], dtype=np.int64) for name in self.input_names}
        return enc, self.session.run(None, feed)[0]

    def entities(self, texts: Sequence[str], *, batch_size: int = 32) -> list[list[dict]]:
        """Token classification: the entities of each text, as transformers' ``pipeline("token-classification",
        aggregation_strategy="simple")`` gives them — ``{"entity_group", "score", "word", "start", "end"}`` with
        character spans into the text. Each word takes the tag of its first sub-token (arg-max); ``B-X`` starts an
        entity, ``I-X`` continues one of type X (or starts one after another type); ``score`` is the mean
        probability of the words' tags.

        Raises:
            TypeError: as :meth:`logits`.
        """
        if isinstance(texts, str):
            texts = [texts]
        items = list(texts)
        for i, item in enumerate(items):
            _check_text(i, item)
        out = []
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            enc, z = self._forward(chunk)  # z: [B, T, C]
            z = z.astype(np.float32)
            e = np.exp(z - z.max(axis=-1, keepdims=True))
            p = e / e.sum(axis=-1, keepdims=True)
            for text, encoding, probs in zip(chunk, enc, p):
                out.append(self._group(text, encoding, probs))
        return out

    def answers(self, questions: Sequence[str], contexts: Sequence[str], *, batch_size: int = 32) -> list[dict]:
        """Extractive question answering: per question, the span of its context that answers it, as transformers'
        question-answering pipeline gave it — ``{"answer", "score", "start", "end"}`` (characters in the context;
        ``score`` the probability of the span's start times its end). A context longer than the export's
        ``max_length`` is read in windows that overlap by ``doc_stride`` tokens; the best span over all windows wins
        (``n_best`` candidates, at most ``max_answer_length`` tokens; with ``null_threshold`` — SQuAD v2.0 — the
        answer is empty when the null score beats it by more than that): :func:`best_answers`.

        Raises:
            TypeError: a question or context that is not a string (one line naming its index).
        """
        if isinstance(questions, str):
            questions, contexts = [questions], [contexts]
        items = list(zip(questions, contexts))
        for i, item in enumerate(items):
            _check_text(i, item)
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=int(self.meta["max_length"]), stride=int(self.meta["doc_stride"]),
                                         strategy="only_second")
        windows, examples = [], []
        for q, (question, context) in enumerate(items):
            enc = self.tokenizer.encode(question.lstrip(), context)
            for w in [enc, *enc.overflowing]:
                windows.append(w)
                examples.append(q)
        starts, ends, offsets = [], [], []
        for lo in range(0, len(windows), batch_size):
            chunk = windows[lo:lo + batch_size]
            width = max(len(w.ids) for w in chunk)
            pad = int(self.meta["pad_id"])
            columns = {"input_ids": [w.ids + [pad] * (width - len(w.ids)) for w in chunk],
                       "attention_mask": [[1] * len(w.ids) + [0] * (width - len(w.ids)) for w in chunk],
                       "token_type_ids": [w.type_ids + [0] * (width - len(w.ids)) for w in chunk]}
            feed = {name: np.asarray(columns[name], dtype=np.int64) for name in self.input_names}
            s, e = self.session.run(None, feed)[:2]
            for k, w in enumerate(chunk):
                n = len(w.ids)
                starts.append(s[k, :n]), ends.append(e[k, :n])
                offsets.append([tuple(o) if seq == 1 else None for o, seq in zip(w.offsets, w.sequence_ids)])
        best = best_answers([c for _, c in items], examples, offsets, starts, ends,
                            n_best=int(self.meta.get("n_best", 20)),
                            max_answer_length=int(self.meta.get("max_answer_length", 30)),
                            null_threshold=self.meta.get("null_threshold"))
        return [{"answer": b["text"], "score": b["probability"], "start": b["start"], "end": b["end"]} for b in best]

    def _group(self, text: str, encoding, probs: np.ndarray) -> list[dict]:
        words: dict[int, list] = {}  # word -> [first-sub-token tag id, its probability, start, end]
        for pos, (word, (lo, hi)) in enumerate(zip(encoding.word_ids, encoding.offsets)):
            if word is None or encoding.attention_mask[pos] == 0:
                continue
            if word not in words:
                tag = int(probs[pos].argmax())
                words[word] = [tag, float(probs[pos, tag]), lo, hi]
            else:
                words[word][3] = hi
        entities: list[dict] = []
        current = None
        for word in sorted(words):
            tag, prob, lo, hi = words[word]
            name = self.labels[tag]
            kind = name[2:] if name[:2] in ("B-", "I-") else None
            if kind is not None and name.startswith("I-") and current is not None and current["entity_group"] == kind:
                current["end"], current["_scores"] = hi, current["_scores"] + [prob]
                continue
            if current is not None:
                entities.append(current)
            current = None if kind is None else {"entity_group": kind, "start": lo, "end": hi, "_scores": [prob]}
        if current is not None:
            entities.append(current)
        for ent in entities:
            ent["score"] = float(np.mean(ent.pop("_scores")))
            ent["word"] = text[ent["start"]:ent["end"]]
        return entities


def best_answers(contexts: Sequence[str], examples: Sequence[int], offsets: Sequence[Sequence], start_logits,
                 end_logits, *, n_best: int = 20, max_answer_length: int = 30,
                 null_threshold: float | None = None) -> list[dict]:
    """Per question (``0..len(contexts)-1``), its answer from its windows' logits (see the module docstring).

    Args:
        contexts: the questions' contexts; examples: each window's question; offsets: each window's token offsets
            (``None`` off the context); start_logits, end_logits: per window ``[T]`` (padding allowed beyond the
            offsets).
        null_threshold: SQuAD v2.0 — answer empty when ``null score - best span score > null_threshold``; ``None``
            (v1.1): always the best span.

    Returns:
        One ``{"text", "score", "start", "end", "null_score", "probability"}`` per question (``text`` empty for the
        null answer; ``start``/``end`` characters in the context; ``score`` the start + end logit,
        ``probability`` the product of the start and end probabilities in the answer's window, as transformers'
        question-answering pipeline scores).
    """
    best: list[dict] = [{"text": "", "score": -np.inf, "start": 0, "end": 0, "null_score": np.inf, "probability": 0.0}
                        for _ in range(len(contexts))]
    for w, q in enumerate(examples):
        s, e, offs = np.asarray(start_logits[w]), np.asarray(end_logits[w]), offsets[w]
        length = len(offs)
        ps, pe = (np.exp(x[:length] - x[:length].max()) for x in (s, e))
        ps, pe = ps / ps.sum(), pe / pe.sum()  # the window's start and end distributions
        null = float(s[0] + e[0])
        best[q]["null_score"] = min(best[q]["null_score"], null)
        inside = np.asarray([i for i, o in enumerate(offs) if o is not None], dtype=np.int64)  # the context's tokens
        starts = inside[np.argsort(-s[inside], kind="stable")[:n_best]].tolist()  # n_best among them: padding and
        ends = inside[np.argsort(-e[inside], kind="stable")[:n_best]].tolist()  # the question never crowd them out
        for i in starts:
            for j in ends:
                if j < i or j - i + 1 > max_answer_length:
                    continue
                score = float(s[i] + e[j])
                if score > best[q]["score"]:
                    lo, hi = offs[i][0], offs[j][1]
                    best[q].update(text=contexts[q][lo:hi], score=score, start=lo, end=hi,
                                   probability=float(ps[i] * pe[j]))
    for b in best:
        if null_threshold is not None and b["null_score"] - b["score"] > null_threshold:
            b.update(text="", start=0, end=0)
        b["score"] = float(b["score"]) if np.isfinite(b["score"]) else None
        b["null_score"] = float(b["null_score"]) if np.isfinite(b["null_score"]) else None
    return best


class DamagedExport(ValueError):
    """A file of an exported folder cannot be read (truncated, overwritten, not what ``kdistill export`` wrote)."""

    def __init__(self, path: Path, err: Exception):
        reason = (str(err).strip().splitlines() or [""])[0][:160]
        super().__init__(f"{path} is damaged or not written by `kdistill export` ({type(err).__name__}: {reason}); "
                         "re-run `kdistill export` to write the folder again")
        self.path = path


def _check_text(index: int, item) -> None:
    """Refuse an input that is not a string or a ``(text, text)`` pair, in one line naming its index."""
    if isinstance(item, str):
        return
    if isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(t, str) for t in item):
        return
    hint = ": decode it first, e.g. text.decode('utf-8')" if isinstance(item, (bytes, bytearray)) else ""
    raise TypeError(f"input {index} is {type(item).__name__} {_short(item)}, not a string or a (text, text) pair{hint}")


def _short(item) -> str:
    text = repr(item)
    return text if len(text) <= 40 else text[:37] + "..."


__all__ = ["Predictor", "DamagedExport", "EXPORT_FILE", "best_answers"]
