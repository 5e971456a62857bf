"""Question-answering windows and answers: questions and contexts into overlapping windows, start/end logits back
into answer texts — the procedure of transformers' ``run_qa`` example (Devlin et al. 2019, Sec. 4.2).

* :func:`encode_windows`: each (question, context) pair tokenised as ``[CLS] question [SEP] context [SEP]``, the
  context cut into windows of ``max_length`` tokens that overlap by ``doc_stride`` tokens (``only_second``
  truncation); each window keeps its question (``example``), the character span of each context token
  (``offsets``; ``None`` elsewhere) and, for training, the answer's token span in the window — or ``(0, 0)``, the
  ``[CLS]`` token, when the answer is not wholly inside it (or the question has none).
* :func:`best_answers`: per question, over all its windows, the ``n_best`` start and end positions by logit among the window's context tokens, every
  valid span (inside the context, start <= end, at most ``max_answer_length`` tokens) scored ``start + end``; the best
  span's characters are the answer. SQuAD v2.0: the null answer (``[CLS]``'s start + end, the smallest over windows)
  wins when it beats the best span by more than ``null_threshold``.

Teacher and student must read the same windows (same tokenizer, ``max_length``, ``doc_stride``) for per-window KD.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from kdistill.errors import DataError
from kdistill.serve import best_answers


def encode_windows(tokenizer, questions: Sequence[str], contexts: Sequence[str], *, max_length: int, doc_stride: int,
                   answer_starts: Sequence[Sequence[int]] | None = None,
                   answers: Sequence[Sequence[str]] | None = None) -> dict[str, list]:
    """The windows of every question (see the module docstring).

    Returns:
        ``input_ids``, ``attention_mask`` [, ``token_type_ids``], ``example`` (the question's index), ``offsets``
        (per token its ``(start, end)`` characters in the context, or ``None`` off the context) and, with answers,
        ``start_positions`` / ``end_positions`` (the first answer's token span in the window, ``0`` / ``0`` when
        it is not inside).

    Raises:
        DataError: a tokenizer without offsets (not a fast one); ``doc_stride`` not below ``max_length``; a question
            so long that no context token fits.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise DataError(f"question answering needs a fast tokenizer (character offsets); {type(tokenizer).__name__} "
                        "is not: save the model with a tokenizer.json")
    if doc_stride >= max_length:
        raise DataError(f"--doc-stride {doc_stride} must be below --max-length {max_length} (the overlap of windows)")
    pad_right = getattr(tokenizer, "padding_side", "right") == "right"
    try:
        enc = tokenizer([q.lstrip() for q in questions], list(contexts), truncation="only_second",
                        max_length=max_length, stride=doc_stride, return_overflowing_tokens=True,
                        return_offsets_mapping=True, padding=False)
    except Exception as err:  # noqa: BLE001 - the tokenizers library: a question longer than max_length
        raise DataError(f"cannot cut the contexts into windows of {max_length} tokens ({str(err).splitlines()[0][:120]}); "
                        "raise --max-length or shorten the questions") from None
    if not pad_right:
        raise DataError("question answering windows need a tokenizer that pads on the right")
    out: dict[str, list] = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                            "example": list(enc["overflow_to_sample_mapping"]), "offsets": []}
    if "token_type_ids" in enc:
        out["token_type_ids"] = enc["token_type_ids"]
    if answer_starts is not None:
        out["start_positions"], out["end_positions"] = [], []
    for w in range(len(enc["input_ids"])):
        seq = enc.sequence_ids(w)
        offsets = [tuple(o) if seq[i] == 1 else None for i, o in enumerate(enc["offset_mapping"][w])]
        out["offsets"].append(offsets)
        if answer_starts is None:
            continue
        q = out["example"][w]
        start_tok = end_tok = 0
        if answer_starts[q]:
            lo = answer_starts[q][0]
            hi = lo + len(answers[q][0])
            inside = [i for i, o in enumerate(offsets) if o is not None]
            if inside and offsets[inside[0]][0] <= lo and offsets[inside[-1]][1] >= hi:
                start_tok = next(i for i in inside if offsets[i][1] > lo)
                end_tok = next(i for i in reversed(inside) if offsets[i][0] < hi)
        out["start_positions"].append(start_tok)
        out["end_positions"].append(end_tok)
    return out


def tokenize_qa(ds, tokenizer, *, max_length: int, doc_stride: int):
    """The windows of a split of questions (:func:`kdistill.qa.data.load_qa_splits`) as a torch-formatted Dataset:
    model inputs, ``labels`` ``[2]`` (the answer's start and end token in the window; ``0, 0`` — ``[CLS]`` — when it is
    not inside), ``idx`` (0..windows-1) and ``length``; beside them (read with ``with_format(None)``, not batched):
    ``example`` (the question's row), ``offsets`` (``[lo, hi]`` characters per token, ``[-1, -1]`` off the context),
    ``context``, ``answers`` and ``qid`` — what :class:`QAReferences` turns logits back into answers with.

    Raises:
        DataError: as :func:`encode_windows`.
    """
    import datasets

    data = ds.to_dict()
    enc = encode_windows(tokenizer, data["question"], data["context"], max_length=max_length, doc_stride=doc_stride,
                         answer_starts=data["answer_starts"], answers=data["answers"])
    examples = enc.pop("example")
    out = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
    out["labels"] = [[s, e] for s, e in zip(enc.pop("start_positions"), enc.pop("end_positions"))]
    out["idx"] = list(range(len(examples)))
    out["length"] = [len(x) for x in out["input_ids"]]
    out["example"] = [data["idx"][q] for q in examples]
    out["offsets"] = [[list(o) if o is not None else [-1, -1] for o in offs] for offs in enc["offsets"]]
    out["context"] = [data["context"][q] for q in examples]
    out["answers"] = [data["answers"][q] for q in examples]
    out["qid"] = [data["id"][q] for q in examples]
    columns = [c for c in ("input_ids", "attention_mask", "token_type_ids", "labels", "idx", "length") if c in out]
    return datasets.Dataset.from_dict(out).with_format("torch", columns=columns)


class QAReferences:
    """What turns a split's window logits into per-question answers and scores: each window's question and token
    offsets, and each question's context and reference answers (from :func:`tokenize_qa`'s columns).

    :func:`kdistill.engine.predict` returns one in place of the labels for a question-answering split, and
    :func:`kdistill.metrics.compute_metrics` scores logits ``[W, T, 2]`` (start, end per window) against it.
    """

    def __init__(self, ds):
        rows = ds.with_format(None)
        cols = rows.select_columns(["idx", "example", "offsets", "context", "answers", "qid"]).to_dict()
        order = np.argsort(cols["idx"], kind="stable")  # windows in idx order, as predict orders the logits
        examples = [cols["example"][i] for i in order]
        self.questions = sorted(set(examples))
        where = {q: n for n, q in enumerate(self.questions)}
        self.window_question = [where[q] for q in examples]
        self.offsets = [[None if o[0] < 0 else (o[0], o[1]) for o in cols["offsets"][i]] for i in order]
        self.contexts, self.answers, self.ids = [""] * len(where), [[]] * len(where), [""] * len(where)
        for i in order:
            q = where[cols["example"][i]]
            self.contexts[q], self.answers[q], self.ids[q] = cols["context"][i], cols["answers"][i], cols["qid"][i]

    def __len__(self) -> int:
        return len(self.questions)

    def answers_of(self, logits, task) -> list[dict]:
        """Per question, the best answer of its windows (:func:`best_answers` with the task's ``n_best``,
        ``max_answer_length`` and ``null_threshold``). ``logits``: ``[W, T, 2]`` in window order."""
        logits = np.asarray(logits)
        if logits.ndim != 3 or logits.shape[0] != len(self.offsets) or logits.shape[-1] != 2:
            raise ValueError(f"question answering needs start/end logits [windows={len(self.offsets)}, T, 2], got "
                             f"{logits.shape}")
        return best_answers(self.contexts, self.window_question, self.offsets, logits[..., 0], logits[..., 1],
                            n_best=task.n_best, max_answer_length=task.max_answer_length,
                            null_threshold=task.null_threshold)

    def scores(self, logits, task) -> np.ndarray:
        """Per question ``[exact match, F1]`` in [0, 1] (``[Q, 2]``), SQuAD's official rules."""
        from kdistill.qa.metrics import question_scores

        return question_scores([a["text"] for a in self.answers_of(logits, task)], self.answers)


__all__ = ["QAReferences", "best_answers", "encode_windows", "tokenize_qa"]
