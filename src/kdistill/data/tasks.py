"""The GLUE task table: where each task's files live, which columns hold text and labels,
the label set (in the order of the hub ``glue`` dataset's ``ClassLabel``) and the official metrics.

GLUE: Wang et al., "GLUE: A Multi-Task Benchmark and Analysis Platform for Natural Language
Understanding", ICLR 2019. Column names follow the files of the official GLUE distribution
(``download_glue_data.py``); the label order follows ``nyu-mll/glue`` on the Hugging Face hub so
that class ids agree whichever source the data comes from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kdistill.errors import DataError

__all__ = ["TaskSpec", "TASKS", "get_task"]

#: Metric names understood by :func:`kdistill.metrics.compute_metrics`.
KNOWN_METRICS = ("accuracy", "f1", "matthews_correlation", "pearson", "spearmanr", "micro_f1", "macro_f1", "exact_match",
                 "precision", "recall")


@dataclass(frozen=True)
class TaskSpec:
    """Everything the loaders and metrics need to know about one task.

    Attributes:
        name: short lowercase name, e.g. ``"sst2"`` (``"custom"`` for the user's own files).
        glue_dir: folder of the task in the GLUE distribution, e.g. ``"SST-2"`` (``""`` for custom).
        text_columns: 1 or 2 column names holding the text, as named in the files' header
            (for a headerless file, as named in :attr:`columns`).
        label_column: column holding the label.
        labels: label values exactly as they appear in the files (compared as stripped strings);
            the index of a value is its class id. ``None`` for a regression task (STS-B).
        metrics: metric names reported for the task, see :mod:`kdistill.metrics`.
        main_metric: the one metric used for model selection and the report; one of ``metrics``.
        train_file / dev_file: file names inside ``<data-dir>/<glue_dir>/``.
        has_header: whether the TSV files start with a header row (CoLA: no).
        columns: for headerless files, the names of all columns in order.
        hub: ``(path, config)`` for ``datasets.load_dataset``; ``None`` when not on the hub.
        hub_text_columns: text column names in the hub dataset when they differ from ``text_columns``.
        hub_label_column: label column in the hub dataset (``"label"`` for every GLUE config).
        hub_validation_split: name of the hub split used as ``validation``.
        multi_label: several labels per example (multi-hot targets ``[C]``, one sigmoid per label).
        label_separator: what separates the labels of a multi-label cell (``None``: a JSON list, ``|`` or ``;``).
        label_ids: cells may hold class ids (0-based positions in ``labels``) instead of names, as with
            ``--label-names FILE``; a cell that is a name is read as that name.
        token_level: token classification (NER): one label per word (IOB2 tags, :mod:`kdistill.tokens`); rows hold
            ``tokens`` and a list of tag ids, the metric is entity-level F1.
        qa: extractive question answering (SQuAD, :mod:`kdistill.qa`): rows are questions with their context and
            answers; the model predicts a start and an end position per window (``labels`` names the two outputs),
            the metrics are SQuAD's exact match and F1.
        doc_stride, max_answer_length, n_best, null_threshold: question answering only — the overlap of context
            windows (tokens), and the answer post-processing of transformers' ``run_qa`` (longest answer in tokens,
            start/end candidates per window, SQuAD v2.0's null-answer margin; ``None``: never the null answer).
    """

    name: str
    glue_dir: str
    text_columns: tuple[str, ...]
    label_column: str
    labels: tuple[str, ...] | None
    metrics: tuple[str, ...]
    main_metric: str
    train_file: str = "train.tsv"
    dev_file: str = "dev.tsv"
    has_header: bool = True
    columns: tuple[str, ...] | None = None
    hub: tuple[str, str] | None = None
    hub_text_columns: tuple[str, ...] | None = None
    hub_label_column: str = "label"
    hub_validation_split: str = "validation"
    multi_label: bool = False  # several labels per example (multi-hot targets, sigmoid outputs)
    #: multi-label cells: the separator between labels (``None``: a JSON list, or ``|`` / ``;``)
    label_separator: str | None = None
    #: cells may hold class ids (``"8"`` = ``labels[8]``), as with a ``--label-names`` file
    label_ids: bool = False
    #: token classification: one IOB2 tag per word (``tokens``, ``label`` a list of tag ids)
    token_level: bool = False
    #: extractive question answering: start/end logits per window, SQuAD exact match and F1
    qa: bool = False
    doc_stride: int = 128
    max_answer_length: int = 30
    n_best: int = 20
    null_threshold: float | None = None

    def __post_init__(self) -> None:
        if len(self.text_columns) not in (1, 2):
            raise DataError(
                f"task {self.name!r} has {len(self.text_columns)} text columns {list(self.text_columns)}; "
                "give one column (single sentence) or two (sentence pair)"
            )
        if self.main_metric not in self.metrics:
            raise ValueError(f"task {self.name!r}: main_metric {self.main_metric!r} is not in metrics {self.metrics}")
        unknown = [m for m in self.metrics if m not in KNOWN_METRICS]
        if unknown:
            raise ValueError(f"task {self.name!r}: unknown metrics {unknown}; known: {list(KNOWN_METRICS)}")
        if self.labels is not None:
            stripped = [str(v).strip() for v in self.labels]
            if len(stripped) < 2 or len(set(stripped)) != len(stripped):
                raise DataError(
                    f"task {self.name!r} has label set {list(self.labels)}; give at least two distinct label values"
                )
        if not self.has_header and not self.columns:
            raise ValueError(f"task {self.name!r}: a headerless task needs `columns`")

    @property
    def is_regression(self) -> bool:
        """True when the label is a real number (``labels is None``), e.g. STS-B."""
        return self.labels is None

    @property
    def problem_type(self) -> str:
        """The transformers ``config.problem_type``: ``regression``, ``multi_label_classification`` or
        ``single_label_classification``."""
        if self.is_regression:
            return "regression"
        if self.token_level:
            return "token_classification"
        if self.qa:
            return "question_answering"
        return "multi_label_classification" if self.multi_label else "single_label_classification"

    @property
    def num_labels(self) -> int:
        """Number of classes; 1 for regression (one output unit)."""
        return 1 if self.labels is None else len(self.labels)

    @property
    def is_pair(self) -> bool:
        """True for sentence-pair tasks (two text columns -> ``text_a`` and ``text_b``)."""
        return len(self.text_columns) == 2


_BIN = ("0", "1")

TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        # CoLA: no header; source, label (0 = unacceptable, 1 = acceptable), original_mark, sentence.
        TaskSpec(
            name="cola", glue_dir="CoLA", text_columns=("sentence",), label_column="label", labels=_BIN,
            metrics=("matthews_correlation",), main_metric="matthews_correlation",
            has_header=False, columns=("source", "label", "original_mark", "sentence"),
            hub=("nyu-mll/glue", "cola"),
        ),
        # SST-2: sentence, label (0 = negative, 1 = positive).
        TaskSpec(
            name="sst2", glue_dir="SST-2", text_columns=("sentence",), label_column="label", labels=_BIN,
            metrics=("accuracy",), main_metric="accuracy", hub=("nyu-mll/glue", "sst2"),
        ),
        # MRPC: Quality, #1 ID, #2 ID, #1 String, #2 String (1 = equivalent).
        TaskSpec(
            name="mrpc", glue_dir="MRPC", text_columns=("#1 String", "#2 String"), label_column="Quality",
            labels=_BIN, metrics=("f1", "accuracy"), main_metric="f1",
            hub=("nyu-mll/glue", "mrpc"), hub_text_columns=("sentence1", "sentence2"),
        ),
        # STS-B: index genre filename year old_index source1 source2 sentence1 sentence2 score (0..5).
        TaskSpec(
            name="stsb", glue_dir="STS-B", text_columns=("sentence1", "sentence2"), label_column="score",
            labels=None, metrics=("pearson", "spearmanr"), main_metric="pearson",
            hub=("nyu-mll/glue", "stsb"),
        ),
        # QQP: id qid1 qid2 question1 question2 is_duplicate.
        TaskSpec(
            name="qqp", glue_dir="QQP", text_columns=("question1", "question2"), label_column="is_duplicate",
            labels=_BIN, metrics=("accuracy", "f1"), main_metric="accuracy", hub=("nyu-mll/glue", "qqp"),
        ),
        # MNLI: index promptID pairID genre *_binary_parse *_parse sentence1 sentence2 label1[..5] gold_label.
        TaskSpec(
            name="mnli", glue_dir="MNLI", text_columns=("sentence1", "sentence2"), label_column="gold_label",
            labels=("entailment", "neutral", "contradiction"), metrics=("accuracy",), main_metric="accuracy",
            dev_file="dev_matched.tsv", hub=("nyu-mll/glue", "mnli"),
            hub_text_columns=("premise", "hypothesis"), hub_validation_split="validation_matched",
        ),
        # QNLI: index question sentence label.
        TaskSpec(
            name="qnli", glue_dir="QNLI", text_columns=("question", "sentence"), label_column="label",
            labels=("entailment", "not_entailment"), metrics=("accuracy",), main_metric="accuracy",
            hub=("nyu-mll/glue", "qnli"),
        ),
        # RTE: index sentence1 sentence2 label.
        TaskSpec(
            name="rte", glue_dir="RTE", text_columns=("sentence1", "sentence2"), label_column="label",
            labels=("entailment", "not_entailment"), metrics=("accuracy",), main_metric="accuracy",
            hub=("nyu-mll/glue", "rte"),
        ),
        # CoNLL-2003 NER (Tjong Kim Sang & De Meulder 2003): one `token TAG` per line (or the original four columns),
        # IOB2 tags in the hub's ClassLabel order; papers report entity-level F1 on test.txt, which is the split
        # reported here (the kept model is chosen on a held-out train slice; valid.txt is not used).
        TaskSpec(
            name="conll2003", glue_dir="conll2003", text_columns=("tokens",), label_column="ner_tags",
            labels=("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"),
            metrics=("f1", "precision", "recall"), main_metric="f1", train_file="train.txt", dev_file="test.txt",
            hub=("eriktks/conll2003", "conll2003"), hub_validation_split="test", token_level=True,
        ),
        # SQuAD v1.1 (Rajpurkar et al. 2016): <data-dir>/squad/{train,dev}-v1.1.json; the model predicts a start and an end
        # token per window ("labels" names those two outputs); exact match and F1 with the official normalisation.
        TaskSpec(
            name="squad", glue_dir="squad", text_columns=("question", "context"), label_column="answers",
            labels=("start", "end"), metrics=("f1", "exact_match"), main_metric="f1", train_file="train-v1.1.json",
            dev_file="dev-v1.1.json", hub=("rajpurkar/squad", "plain_text"), qa=True,
        ),
        # SQuAD v2.0 (Rajpurkar et al. 2018): unanswerable questions; the null answer wins by a margin of 0.
        TaskSpec(
            name="squad_v2", glue_dir="squad_v2", text_columns=("question", "context"), label_column="answers",
            labels=("start", "end"), metrics=("f1", "exact_match"), main_metric="f1", train_file="train-v2.0.json",
            dev_file="dev-v2.0.json", hub=("rajpurkar/squad_v2", "squad_v2"), qa=True, null_threshold=0.0,
        ),
        # WNLI: index sentence1 sentence2 label (0 = not_entailment, 1 = entailment).
        TaskSpec(
            name="wnli", glue_dir="WNLI", text_columns=("sentence1", "sentence2"), label_column="label",
            labels=_BIN, metrics=("accuracy",), main_metric="accuracy", hub=("nyu-mll/glue", "wnli"),
        ),
    )
}


def _normalize(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name.strip().lower())


def get_task(name: str) -> TaskSpec:
    """Look up a GLUE task by name.

    Accepts the short name or the GLUE folder name in any case, with or without ``-``/``_``:
    ``"sst2"``, ``"SST-2"``, ``"sst-2"``, ``"STS-B"``, ``"CoLA"``...

    Raises:
        DataError: unknown task (the message lists the known ones).
    """
    key = _normalize(str(name))
    if key in TASKS:
        return TASKS[key]
    for spec in TASKS.values():
        if _normalize(spec.glue_dir) == key:
            return spec
    raise DataError(
        f"unknown task {name!r}; use one of {', '.join(TASKS)} "
        "(or pass --train-file/--validation-file with --text-columns/--label-column for your own data)"
    )
