"""Token-classification data (NER): reading CoNLL-style files, IOB1 → IOB2, labels, sub-token alignment, windows.

Three layouts are read (:func:`read_sentences`), told apart by their content:

* **CoNLL, one token a line** (``token TAG`` or ``token TAG 0``, e.g. ``../shared/data/conll2003``): the tag is the
  second column; blank lines end sentences;
* **CoNLL-2003 original** (``token POS chunk NER``, IOB1 tags, ``-DOCSTART- -X- O O`` document lines): the tag is the
  last column; document lines are dropped;
* **JSONL** (``{"tokens": [...], "ner_tags": [...]}``, tags as names or as ids into ``label_names``).

IOB1 tags (an ``I-`` that starts an entity) are converted to IOB2 (:func:`iob1_to_iob2`, Tjong Kim Sang & Veenstra
1999), said once in a log line. Labels are inferred from the train split (``O`` first, then ``B-``/``I-`` of each type
in alphabetical order) or given.

A sentence is aligned to sub-tokens the usual Hugging Face way (:func:`encode_words`): the label of a word sits on its
first sub-token, the other sub-tokens and the special tokens get ``-100`` (ignored by the loss and the metric). A
sentence longer than ``max_length`` sub-tokens is split into windows of whole words (never truncated), so every gold
entity is scored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from kdistill.data.files import json_lines
from kdistill.errors import DataError

LOG = logging.getLogger("kdistill")
IGNORE = -100
DOCSTART = "-DOCSTART-"


@dataclass
class Sentences:
    """Sentences read from one file: ``words[i]`` and ``tags[i]`` (IOB2 strings), and how they were read."""

    words: list[list[str]]
    tags: list[list[str]]
    layout: str
    converted_from_iob1: bool = False
    dropped_document_lines: int = 0
    source: str = ""
    notes: list[str] = field(default_factory=list)


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """IOB1 → IOB2: an ``I-X`` that does not continue an entity of type X (sentence start, after ``O`` or after another
    type) becomes ``B-X``; everything else is kept. IOB2 input comes back unchanged."""
    out, prev = [], "O"
    for tag in tags:
        if tag.startswith("I-") and (prev == "O" or prev[2:] != tag[2:]):
            tag = "B-" + tag[2:]
        out.append(tag)
        prev = tag
    return out


def _is_iob1(tag_lists: Sequence[Sequence[str]]) -> bool:
    """True when some entity starts with ``I-`` (IOB1), i.e. the conversion changes something."""
    return any(iob1_to_iob2(tags) != list(tags) for tags in tag_lists)


def _check_tags(tags: Sequence[str], where: str) -> None:
    for tag in tags:
        if tag != "O" and not (len(tag) > 2 and tag[:2] in ("B-", "I-")):
            raise DataError(f"{where}: tag '{tag}' is not IOB (O, B-TYPE or I-TYPE); give a CoNLL/IOB file")


def read_sentences(path: str | Path, *, label_names: Sequence[str] | None = None) -> Sentences:
    """The sentences of a CoNLL-style or JSONL NER file (see the module docstring), tags in IOB2.

    Args:
        path: the file.
        label_names: for JSONL files whose ``ner_tags`` are ids: the name of each id.

    Raises:
        DataError: no such file, an empty file, a line that is not ``token ... TAG``, a tag that is not IOB, JSONL
            rows without ``tokens``/``ner_tags`` or of different lengths, ids without ``label_names`` (one line each).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    text = path.read_text(encoding="utf-8")
    first = next((line for line in text.splitlines() if line.strip()), "")
    if not first:
        raise DataError(f"{path} is empty: give one token per line (CoNLL) or one sentence per JSON line")
    if first.lstrip().startswith("{"):
        sents = _read_jsonl(path, text, label_names)
    else:
        sents = _read_conll(path, text)
    if not sents.words:
        raise DataError(f"{path} holds no sentence")
    if _is_iob1(sents.tags):
        sents.tags = [iob1_to_iob2(t) for t in sents.tags]
        sents.converted_from_iob1 = True
        LOG.info("%s: IOB1 tags (entities starting with I-) converted to IOB2", path.name)
    return sents


def _read_conll(path: Path, text: str) -> Sentences:
    words: list[list[str]] = []
    tags: list[list[str]] = []
    cur_w: list[str] = []
    cur_t: list[str] = []
    widths, docs = set(), 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            if cur_w:
                words.append(cur_w), tags.append(cur_t)
                cur_w, cur_t = [], []
            continue
        parts = line.split()
        if parts[0] == DOCSTART:
            docs += 1
            continue
        if len(parts) < 2:
            raise DataError(f"{path}:{n}: '{line[:60]}' is not 'token TAG' (CoNLL: a token and its tag per line)")
        widths.add(len(parts))
        tag = parts[-1] if len(parts) >= 4 else parts[1]  # original 4 columns: NER last; else token TAG [0]
        _check_tags([tag], f"{path}:{n}")
        cur_w.append(parts[0]), cur_t.append(tag)
    if cur_w:
        words.append(cur_w), tags.append(cur_t)
    layout = "conll-2003 (token POS chunk NER)" if max(widths, default=0) >= 4 else "conll (token TAG)"
    return Sentences(words, tags, layout, dropped_document_lines=docs, source=str(path))


def _read_jsonl(path: Path, text: str, label_names: Sequence[str] | None) -> Sentences:
    words, tags = [], []
    for n, row in json_lines(path, text, "one sentence a line: {\"tokens\": [...], \"ner_tags\": [...]}"):
        if not isinstance(row, dict) or "tokens" not in row or "ner_tags" not in row:
            raise DataError(f"{path}:{n}: a JSONL NER row needs 'tokens' and 'ner_tags'")
        toks, ts = list(row["tokens"]), list(row["ner_tags"])
        if len(toks) != len(ts):
            raise DataError(f"{path}:{n}: {len(toks)} tokens but {len(ts)} tags")
        if ts and all(isinstance(t, int) for t in ts):
            if not label_names:
                raise DataError(f"{path}: ner_tags are ids; give the tag names (--label-names FILE, one per line, "
                                "in id order)")
            if max(ts) >= len(label_names) or min(ts) < 0:
                raise DataError(f"{path}:{n}: tag id {max(ts)} has no name ({len(label_names)} names given)")
            ts = [label_names[t] for t in ts]
        ts = [str(t) for t in ts]
        _check_tags(ts, f"{path}:{n}")
        words.append([str(t) for t in toks]), tags.append(ts)
    return Sentences(words, tags, "jsonl (tokens, ner_tags)", source=str(path))


def infer_labels(tag_lists: Sequence[Sequence[str]]) -> list[str]:
    """The label set of IOB2 tag lists: ``O``, then ``B-T``, ``I-T`` for each entity type ``T`` in alphabetical
    order (both prefixes of every type seen, so a type seen only as ``B-`` still has its ``I-``)."""
    types = sorted({t[2:] for tags in tag_lists for t in tags if t != "O"})
    return ["O", *[f"{p}-{t}" for t in types for p in ("B", "I")]]


def entity_types(labels: Sequence[str]) -> list[str]:
    """The entity types of a label list (``B-PER`` → ``PER``), in order of first appearance."""
    seen: list[str] = []
    for label in labels:
        if label != "O" and label[2:] not in seen:
            seen.append(label[2:])
    return seen


def word_windows(n_subtokens: Sequence[int], budget: int) -> list[tuple[int, int]]:
    """Split a sentence into windows of whole words, each at most ``budget`` sub-tokens (a single longer word gets a
    window of its own and is cut by the tokenizer). Returns ``[(first word, end word), ...]``, covering every word
    exactly once."""
    out, start, used = [], 0, 0
    for i, n in enumerate(n_subtokens):
        if used + n > budget and i > start:
            out.append((start, i))
            start, used = i, 0
        used += n
    out.append((start, len(n_subtokens)))
    return out


def encode_words(tokenizer, words: list[list[str]], tags: list[list[Any]] | None, label2id: dict[Any, int], *,
                 max_length: int, window_with: Sequence = ()) -> dict[str, list]:
    """Sub-token features of word-split sentences: ``input_ids``, ``attention_mask`` [, ``token_type_ids``], ``labels``
    (the word's label id on its first sub-token, ``-100`` elsewhere), ``word_ids`` (the word of each sub-token in its
    sentence, ``-1`` for special tokens) and ``sentence`` (the sentence each window comes from). A sentence longer than
    ``max_length`` sub-tokens becomes several windows of whole words (:func:`word_windows`); with ``window_with``
    (other tokenizers, e.g. the teacher's of a student with its own), the windows fit every one of them, so two
    tokenizations of the same sentences hold the same words row by row.

    Raises:
        DataError: a fast tokenizer is needed (word ids); a tag that is not in ``label2id``.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise DataError(f"token classification needs a fast tokenizer (word ids); {type(tokenizer).__name__} is not: "
                        "save the model with a tokenizer.json")
    special = tokenizer.num_special_tokens_to_add(pair=False)
    budget = max(1, max_length - special)
    out: dict[str, list] = {"input_ids": [], "attention_mask": [], "labels": [], "word_ids": [], "sentence": []}
    splits = [t(words, is_split_into_words=True, add_special_tokens=False) for t in (tokenizer, *window_with)]
    budget = min([budget, *(max(1, max_length - t.num_special_tokens_to_add(pair=False)) for t in window_with)])
    for s, sentence in enumerate(words):
        counts = [0] * len(sentence)
        for pieces in splits:
            mine = [0] * len(sentence)
            for w in pieces.word_ids(s):
                if w is not None:
                    mine[w] += 1
            counts = [max(a, b) for a, b in zip(counts, mine)]
        for lo, hi in word_windows(counts, budget):
            enc = tokenizer(sentence[lo:hi], is_split_into_words=True, truncation=True, max_length=max_length)
            wid = [(-1 if w is None else w + lo) for w in enc.word_ids()]
            labels, prev = [], None
            for w in enc.word_ids():
                if w is None or w == prev:
                    labels.append(IGNORE)
                else:
                    tag = tags[s][w + lo] if tags is not None else None
                    if tag is not None and tag not in label2id:
                        raise DataError(f"tag '{tag}' is not among the labels ({', '.join(label2id)}); give "
                                        "--labels with every tag, or let them be read from the train file")
                    labels.append(IGNORE if tag is None else label2id[tag])
                prev = w
            for key in ("input_ids", "attention_mask", "token_type_ids"):
                if key in enc:
                    out.setdefault(key, []).append(enc[key])
            out["labels"].append(labels)
            out["word_ids"].append(wid)
            out["sentence"].append(s)
    return out


def word_predictions(logits_per_window: Sequence[Any], word_ids: Sequence[Sequence[int]], sentences: Sequence[int],
                     lengths: Sequence[int]) -> list[list[int]]:
    """Per sentence, the predicted label id of each word: the argmax of the logits at the word's first sub-token, from
    whichever window holds that word. ``lengths``: the number of words of each sentence."""
    import numpy as np

    preds = [[0] * n for n in lengths]
    for logits, wids, s in zip(logits_per_window, word_ids, sentences):
        prev = None
        for pos, w in enumerate(wids):
            if w >= 0 and w != prev:
                preds[s][w] = int(np.argmax(logits[pos]))
            prev = w
    return preds


def load_token_splits(spec, *, data_dir=None, train_file=None, validation_file=None, labels=None,
                      max_train_samples: int | None = None, max_eval_samples: int | None = None):
    """``(DatasetDict, TaskSpec)`` of a token-classification task: splits ``train`` and ``validation`` with columns
    ``text_a`` (the words joined by spaces), ``tokens`` (the words), ``label`` (tag ids, one per word) and ``idx``.

    ``spec``: the task's (``conll2003``: files ``train.txt`` and ``test.txt`` in ``data_dir``, the task's folder),
    or None with your own ``train_file``/``validation_file`` in any of the three layouts
    (labels: ``labels``, else the task's, else inferred from the train file).

    Raises:
        DataError: missing files (the expected layout said), a tag outside the labels, unreadable lines.
    """
    import dataclasses

    import datasets

    if train_file is None:
        folder = Path(data_dir)  # the task's folder (the caller resolves <data_dir>/<task folder>)
        train_file, validation_file = folder / spec.train_file, folder / spec.dev_file
        for f in (train_file, validation_file):
            if not Path(f).is_file():
                raise DataError(f"{f} not found: --data-dir should hold {spec.glue_dir}/{spec.train_file} and "
                                f"{spec.glue_dir}/{spec.dev_file} (one 'token TAG' per line, blank line between "
                                "sentences)")
    given = list(labels) if labels else (list(spec.labels) if spec is not None and spec.labels else None)
    train = read_sentences(train_file, label_names=given)
    dev = read_sentences(validation_file, label_names=given)
    names = given or infer_labels(train.tags)
    if spec is None:
        spec = custom_spec(names)
    elif labels:
        spec = dataclasses.replace(spec, labels=tuple(names))
    out = {split: _split(sents.words[:cap], sents.tags[:cap], names, sents.source)
           for split, sents, cap in (("train", train, max_train_samples), ("validation", dev, max_eval_samples))}
    return datasets.DatasetDict(out), spec


def custom_spec(names: Sequence[str]):
    """The TaskSpec of your own token-classification data with these tag names."""
    from kdistill.data.tasks import TaskSpec

    return TaskSpec(name="custom", glue_dir="", text_columns=("tokens",), label_column="ner_tags", labels=tuple(names),
                    metrics=("f1", "precision", "recall"), main_metric="f1", token_level=True)


def _split(words: list[list[str]], tags: list[list[str]], names: Sequence[str], where: str):
    """One token split: ``text_a`` (the words joined), ``tokens``, ``label`` (tag ids), ``idx``.

    Raises:
        DataError: a tag outside ``names`` (one line naming ``where``).
    """
    import datasets

    label2id = {n: i for i, n in enumerate(names)}
    unknown = sorted({t for ts in tags for t in ts if t not in label2id})
    if unknown:
        raise DataError(f"{where}: tag(s) {', '.join(unknown[:5])} not among the labels ({', '.join(names)}); give "
                        "--labels with every tag")
    return datasets.Dataset.from_dict(
        {"text_a": [" ".join(w) for w in words], "tokens": [list(w) for w in words],
         "label": [[label2id[t] for t in ts] for ts in tags], "idx": list(range(len(words)))},
        features=datasets.Features({"text_a": datasets.Value("string"),
                                    "tokens": datasets.Sequence(datasets.Value("string")),
                                    "label": datasets.Sequence(datasets.Value("int64")),
                                    "idx": datasets.Value("int64")}))


def load_token_dataset(dataset: str, spec, *, labels=None, max_train_samples: int | None = None,
                       max_eval_samples: int | None = None):
    """``(DatasetDict, TaskSpec)`` of a token-classification dataset in the Hugging Face hub's form: a hub id
    (``datasets.load_dataset(id)``; loading scripts are not run) or a local folder of its Parquet files
    (``train*.parquet`` and ``validation*.parquet`` / ``test*.parquet``, at any depth). Columns ``tokens`` and
    ``ner_tags`` (tag ids with a ``ClassLabel`` of their names, or names). The reported split is the task's
    (``conll2003``: test), else ``validation``, else ``test``.

    Raises:
        DataError: the hub unreachable or the id unknown, a folder without Parquet files of a train and a reported
            split, missing columns, tags outside the labels.
    """
    import datasets

    from kdistill.data.files import hub_or_parquet

    raw = hub_or_parquet(dataset)
    wanted = spec.hub_validation_split if spec is not None else None
    report = next((s for s in (wanted, "validation", "test") if s and s in raw), None)
    if "train" not in raw or report is None:
        raise DataError(f"--dataset {dataset} has splits {sorted(raw)}: a train split and a validation or test split "
                        "are needed")
    for col in ("tokens", "ner_tags"):
        if col not in raw["train"].column_names:
            raise DataError(f"--dataset {dataset}: no '{col}' column (found {raw['train'].column_names})")
    feature = raw["train"].features["ner_tags"]
    names = list(getattr(getattr(feature, "feature", None), "names", None) or labels or
                 (spec.labels if spec is not None and spec.labels else []))

    def tags_of(split):
        rows = split["ner_tags"]
        if names and rows and rows[0] and isinstance(rows[0][0], int):
            return [[names[t] for t in r] for r in rows]
        return [[str(t) for t in r] for r in rows]

    train_tags, dev_tags = tags_of(raw["train"]), tags_of(raw[report])
    names = names or infer_labels(train_tags)
    if spec is None:
        spec = custom_spec(names)
    out = {split: _split(list(words[:cap]), tags[:cap], spec.labels, f"--dataset {dataset}")
           for split, words, tags, cap in (("train", raw["train"]["tokens"], train_tags, max_train_samples),
                                           ("validation", raw[report]["tokens"], dev_tags, max_eval_samples))}
    return datasets.DatasetDict(out), spec


def tokenize_words(ds, tokenizer, *, max_length: int, window_with: Sequence = ()):
    """Sub-token features of a token split (:func:`encode_words`) as a torch-formatted Dataset: ``input_ids``,
    ``attention_mask`` [, ``token_type_ids``], ``labels`` (per sub-token, -100 off first sub-tokens), ``word_ids``,
    ``sentence`` (the split's ``idx`` of the row each window comes from), ``idx`` (0..windows-1) and ``length``."""
    import datasets

    data = ds.to_dict()
    ids = {t for row in data["label"] for t in row}
    enc = encode_words(tokenizer, data["tokens"], data["label"], {i: i for i in ids}, max_length=max_length,
                       window_with=window_with)
    enc["sentence"] = [data["idx"][s] for s in enc["sentence"]]
    enc["idx"] = list(range(len(enc["input_ids"])))
    enc["length"] = [len(x) for x in enc["input_ids"]]
    return datasets.Dataset.from_dict(enc).with_format("torch")


__all__ = ["IGNORE", "Sentences", "encode_words", "entity_types", "infer_labels", "iob1_to_iob2", "load_token_splits",
           "read_sentences", "tokenize_words", "word_predictions", "word_windows"]
