"""Recipes ``kd`` (Hinton 2015 soft targets; DistilBERT's L_cos; Tang 2019 logit MSE and BiLSTM) and ``finetune``.

Also the task-data steps the task recipes share (:func:`load_task`, :func:`prepare_task_data`).
"""

from __future__ import annotations

import logging

from kdistill.errors import KDistillError, ModelError
from kdistill.recipes.base import Prepared, Recipe, Stage, fingerprint, register

LOG = logging.getLogger("kdistill")

ALL_STUDENTS = ("layers-from-teacher", "spec", "pretrained", "bilstm")


def check_augment(cfg) -> None:
    """Augmented rows have no gold label: only a teacher can label them; a transfer set is a teacher's outputs."""
    if cfg.method.name == "finetune" and cfg.train.transfer_set:
        raise KDistillError("--transfer-set holds a teacher's outputs, which fine-tuning on gold labels does not use: "
                            "distil with them (kdistill distill), or drop --transfer-set")
    if cfg.augment.augment == "none":
        return
    if cfg.augment.augment == "tinybert":
        raise KDistillError("--augment tinybert makes a transfer set: kdistill label --augment tinybert ... -o SET, then "
                            "distill --transfer-set SET (or kdistill augment, then --train-file)")
    if cfg.method.name == "finetune" or (cfg.method.name == "kd" and cfg.method.alpha >= 1 and cfg.method.cos_weight == 0):
        raise KDistillError("--augment tang adds rows without gold labels that only the teacher can label; "
                            "distil with --alpha < 1 (the paper: --kd-loss mse --alpha 0)")


def check_kd(cfg) -> None:
    check_augment(cfg)
    if cfg.student.kind == "bilstm" and cfg.method.cos_weight > 0:
        raise ModelError("a BiLSTM student has no per-token hidden states or attention: distil it with "
                         "--method kd and --cos-weight 0 (the paper: --kd-loss mse)")


def load_task(cfg) -> Prepared:
    """Data splits, the teacher (fine-tuned on the task), its tokenizer and the student; every cross-check.

    Layers/heads chosen by importance are recorded in the returned ``Prepared.cfg`` (a copy).

    Raises:
        KDistillError / ModelError / DataError: no teacher, a missing POS tagger, mismatched vocabularies,
            a student the method cannot train, bad data.
    """
    from kdistill.data.augment.tang import pos_tagger_for
    from kdistill.data.batching import tokenize
    from kdistill.data.loading import load_data
    from kdistill.models import check_same_vocab, load_classifier, load_tokenizer
    from kdistill.students.build import build_student, is_bilstm

    pos_tagger = pos_tagger_for(cfg.augment)  # a missing tagger fails here, before any model is loaded
    splits, task = load_data(cfg.data)
    if not cfg.teacher:
        if cfg.train.transfer_set and cfg.student.kind == "pretrained":
            return load_without_teacher(cfg, splits, task, pos_tagger)
        raise KDistillError("distillation needs --teacher (a model fine-tuned on the task), or --transfer-set with a "
                            "pretrained --student: the stored logits then stand in for the teacher")
    teacher = load_classifier(cfg.teacher, task, require_trained_head=True, what="teacher")
    tokenizer = load_tokenizer(cfg.teacher)
    splits, task, mapping = match_teacher_labels(cfg, splits, task, teacher, tokenizer)
    sc = cfg.student
    if sc.kind == "layers-from-teacher" and (sc.layer_selection == "importance" or sc.keep_heads):
        from kdistill.students.layer_choice import select_by_importance

        ds = tokenize(splits["train"], tokenizer, max_length=cfg.data.max_length, doc_stride=cfg.data.doc_stride, cache_dir=cfg.data.cache_dir,
                      desc="tokenize train")
        layers, heads = select_by_importance(teacher, tokenizer, ds, sc, seed=cfg.train.seed)
        sc = sc.model_copy(update={"layers": layers, "heads": heads})
        cfg = cfg.model_copy(update={"student": sc})
    student = build_student(sc, teacher, task, seed=cfg.train.seed, tokenizer=tokenizer)
    if is_bilstm(student):
        if student.config.vocab_size < len(tokenizer):
            raise ModelError(f"the BiLSTM student's vocabulary ({student.config.vocab_size}) is smaller than the "
                             f"teacher tokenizer's ({len(tokenizer)}); build it on the teacher's tokenizer")
    info: dict = {"pos_tagger": pos_tagger}
    if mapping.rule != "none":
        info["label_mapping"] = mapping.to_json()
    if sc.kind == "pretrained" and not same_tokenizer(tokenizer, student_tok := load_tokenizer(sc.path)):
        check_cross_tokenizer(cfg, tokenizer, student_tok, token_level=task.token_level, qa=task.qa)
        info["teacher_tokenizer"] = tokenizer  # the student reads its own tokens; the teacher gets a TeacherView
        tokenizer = student_tok
    elif not is_bilstm(student):
        if sc.kind == "pretrained":
            check_same_vocab(tokenizer, student_tok)
        if student.config.vocab_size != teacher.config.vocab_size:
            raise ModelError(f"student vocabulary ({student.config.vocab_size}) differs from the teacher's "
                             f"({teacher.config.vocab_size}); build the student on the teacher's tokenizer")
    return Prepared(cfg=cfg, task=task, tokenizer=tokenizer, student=student, teacher=teacher, splits=splits, info=info)


def load_without_teacher(cfg, splits, task, pos_tagger) -> Prepared:
    """A run with no teacher weights: logit KD from transfer sets (``--transfer-set``, no ``--teacher``) into a
    pretrained student. The class names come from the first set's manifest (matched to the data's by the rule of
    :mod:`kdistill.data.label_map`); the teacher's dev metrics, for the retention, too.

    Raises:
        KDistillError: a method or setting that needs the teacher itself (L_cos, TinyBERT, --augment); no complete set.
    """
    import json
    from pathlib import Path

    from transformers import PretrainedConfig

    from kdistill.data.label_map import match_labels, renumber_splits
    from kdistill.models import load_tokenizer
    from kdistill.students.build import build_student
    from kdistill.transfer.label import MANIFEST

    if cfg.method.name != "kd" or cfg.method.cos_weight > 0 or cfg.augment.augment != "none":
        raise KDistillError("without --teacher only the stored logits are there: use --method kd, --cos-weight 0 and no "
                            "--augment (label augmented rows into a set with kdistill label --augment)")
    folder = Path(cfg.train.transfer_set[0])
    manifest = json.loads((folder / MANIFEST).read_text()) if (folder / MANIFEST).is_file() else {}
    if not manifest.get("complete"):
        raise KDistillError(f"--transfer-set {folder} holds no complete transfer set; make it with kdistill label")
    labels = manifest.get("labels") or []
    said = PretrainedConfig(id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)},
                            problem_type={"multi_label": "multi_label_classification", "regression": "regression"}.get(
                                manifest.get("problem_type"), "single_label_classification"))
    task, mapping = match_labels(task, said)
    if mapping.order is not None:
        splits = renumber_splits(splits, mapping.order, task.multi_label)
    student = build_student(cfg.student, None, task, seed=cfg.train.seed)
    info: dict = {"pos_tagger": pos_tagger, "no_teacher": {
        "teacher": manifest.get("teacher"), "teacher_fingerprint": manifest.get("teacher_fingerprint"),
        "teacher_dev_metrics": manifest.get("teacher_dev_metrics"), "from": str(folder),
        "latency": "not measured: the run had the teacher's outputs, not its weights"}}
    if mapping.rule != "none":
        info["label_mapping"] = mapping.to_json()
    return Prepared(cfg=cfg, task=task, tokenizer=load_tokenizer(cfg.student.path), student=student, teacher=None,
                    splits=splits, info=info)


def match_teacher_labels(cfg, splits, task, teacher, tokenizer, sample: int = 512):
    """``(splits, task, mapping)``: the data's labels matched to the teacher's classes by the rule of
    :mod:`kdistill.data.label_map` (by name, renumbering the splits when the orders differ; else by position), and a
    positional mapping of your own single-label data checked on ``sample`` seeded train rows.

    Raises:
        DataError: a mapping under which the teacher agrees with the train labels less than chance (one line).
    """
    from kdistill.data.label_map import LabelMapping, check_agreement, match_labels, renumber_splits, teacher_label_names

    if task.qa:  # the two outputs are start and end, whatever a hub QA model names them
        return splits, task, LabelMapping(rule="none")
    task, mapping = match_labels(task, teacher.config)
    if mapping.order is not None:
        splits = renumber_splits(splits, mapping.order, task.multi_label)
    if mapping.rule == "by position" and task.name == "custom" and not task.multi_label:
        import numpy as np

        from kdistill.data.batching import eval_loader, tokenize
        from kdistill.engine.evaluation import predict

        train = splits["train"]
        rows = np.random.default_rng(cfg.train.seed).permutation(len(train))[:sample]
        ds = tokenize(train.select(np.sort(rows)), tokenizer, max_length=cfg.data.max_length, doc_stride=cfg.data.doc_stride,
                      cache_dir=cfg.data.cache_dir, desc="tokenize label check")
        logits, gold = predict(teacher, eval_loader(ds, tokenizer, batch_size=64), desc="label check",
                               show_progress=False)
        check_agreement(mapping, logits.argmax(-1), gold, task, teacher_label_names(teacher.config))
    return splits, task, mapping


def same_tokenizer(a, b) -> bool:
    """True when both tokenizers map text to the same ids (same vocabulary)."""
    return a is b or a.get_vocab() == b.get_vocab()


def check_same_windows(student_ds, teacher_ds, max_length: int) -> None:
    """Token classification across tokenizers: both tokenizations must cut the sentences into the same windows of
    words (each row the same words), so that KD pairs the two models word by word.

    Raises:
        KDistillError: a sentence that one tokenizer splits into more windows than the other (one line).
    """
    def words(ds):
        return [(int(s), sum(1 for v in row if v != -100)) for s, row in zip(ds.with_format(None)["sentence"],
                                                                             ds.with_format(None)["labels"])]

    a, b = words(student_ds), words(teacher_ds)
    if a != b:
        raise KDistillError(f"the student's and the teacher's tokenizers cut some sentences into different windows at "
                            f"--max-length {max_length} (one splits words into more pieces): raise --max-length so "
                            "that every sentence fits one window of both")


def check_cross_tokenizer(cfg, teacher_tok, student_tok, token_level: bool = False, qa: bool = False) -> None:
    """What works when teacher and student tokenize differently: logit KD (per example, cached or live) and L_cos
    aligned by words; layer-wise (token by token) losses do not. Raises a one-line :class:`ModelError` otherwise."""
    what = (f"the student's tokenizer ({len(student_tok)} tokens) differs from the teacher's ({len(teacher_tok)})")
    if qa:
        raise ModelError(f"{what}: question answering distils start and end distributions over the same windows of "
                         "tokens, which needs one tokenizer: use a student built on the teacher's tokenizer")
    if token_level and (cfg.method.name != "kd" or cfg.method.cos_weight > 0):
        raise ModelError(f"{what}: token classification across tokenizers distils the teacher's tag distributions word "
                         "by word (first sub-token of each word); token-level terms (L_cos, TinyBERT's layers) pair "
                         "tokens one to one: use --method kd with --cos-weight 0")
    if cfg.method.name == "tinybert":
        raise ModelError(f"{what}: TinyBERT's attention and hidden-state losses pair tokens one to one; use --method kd "
                         "(soft targets, and --cos-weight for hidden states aligned by words)")
    if cfg.method.cos_weight > 0 and cfg.method.hidden_align == "tokens":
        raise ModelError(f"{what}: --hidden-align tokens pairs tokens one to one, which different tokenizers do not "
                         "have; use --hidden-align words (or auto)")
    for name, tok in (("teacher", teacher_tok), ("student", student_tok)):
        if cfg.method.cos_weight > 0 and not getattr(tok, "is_fast", False):
            raise ModelError(f"{what}: word alignment needs character offsets, which the {name}'s "
                             f"{type(tok).__name__} does not give; save it with a tokenizer.json (fast tokenizer)")


def hidden_align(p: Prepared) -> str:
    """``tokens`` or ``words``: how this run's L_cos pairs hidden states (``--hidden-align``; auto = words across
    tokenizers)."""
    how = p.cfg.method.hidden_align
    return ("words" if "teacher_tokenizer" in p.info else "tokens") if how == "auto" else how


def prepare_task_data(p: Prepared, procs) -> None:
    """Tang augmentation (when asked), tokenised train/dev splits and the teacher-logit cache key."""
    from kdistill.data.augment.tang import augment_train_split
    from kdistill.data.batching import dataset_key, tokenize
    from kdistill.engine.teacher import teacher_key

    from kdistill.engine.teacher import TeacherView

    cfg, tok, cache = p.cfg, p.tokenizer, p.cfg.data.cache_dir
    teacher_tok = p.info.get("teacher_tokenizer", tok)  # the teacher's own, when the student's differs
    words = cfg.method.name == "kd" and cfg.method.cos_weight > 0 and hidden_align(p) == "words"
    train_split, aug_info = p.splits["train"], None
    selection = None
    if cfg.data.select_on == "holdout":  # chosen off the reported split, before any augmentation sees the rows
        train_split, selection, p.info["selection"] = selection_split(cfg, train_split, p.task)
    if cfg.train.transfer_set:  # stored teacher logits, and the sets' extra (unlabeled) rows, instead of a teacher pass
        align = hidden_align(p) if cfg.method.name == "kd" else "tokens"
        train_split, p.teacher_source, p.info["transfer_sets"] = transfer_set_source(
            cfg, train_split, p.splits["train"], selection, tok if align == "tokens" else None)
    if cfg.augment.augment != "none":  # Tang et al. (2019) transfer set: originals + unlabeled perturbations
        train_split, aug_info = augment_train_split(
            train_split, cfg.augment, mask_token=teacher_tok.mask_token or teacher_tok.unk_token or "[MASK]", seed=cfg.train.seed,
            pos_tagger=p.info.get("pos_tagger"), cache_dir=cache,
            show_progress=cfg.train.show_progress and procs.is_main_process)
    train_key = dataset_key(train_split, tok, cfg.data.max_length)  # hashes every text: computed once, used twice
    both = [teacher_tok] if teacher_tok is not tok and p.task.token_level else []  # the same windows of words
    p.train_ds = tokenize(train_split, tok, max_length=cfg.data.max_length, doc_stride=cfg.data.doc_stride, cache_dir=cache, desc="tokenize train",
                          key=train_key, word_ids=words, window_with=both)
    logits_only = p.teacher_source is not None and cfg.method.name == "kd" and cfg.method.cos_weight == 0
    if teacher_tok is not tok and not logits_only:  # the teacher, when it runs, reads the same rows in its own tokens
        train_key = dataset_key(train_split, teacher_tok, cfg.data.max_length)
        p.teacher_view = TeacherView(tokenize(train_split, teacher_tok, max_length=cfg.data.max_length, doc_stride=cfg.data.doc_stride, cache_dir=cache,
                                              desc="tokenize train (teacher)", key=train_key, word_ids=words,
                                              window_with=[tok] if both else []), teacher_tok)
        if p.task.token_level:
            check_same_windows(p.train_ds, p.teacher_view.ds, cfg.data.max_length)
    if hasattr(p.teacher_source, "bind"):  # stored per-window logits: matched to the windows just cut
        p.teacher_source.bind(p.train_ds)
    p.report_ds = tokenize(p.splits["validation"], tok, max_length=cfg.data.max_length, doc_stride=cfg.data.doc_stride, cache_dir=cache, desc="tokenize dev")
    p.eval_ds = p.report_ds if selection is None else tokenize(selection, tok, max_length=cfg.data.max_length, doc_stride=cfg.data.doc_stride,
                                                               cache_dir=cache, desc="tokenize selection slice")
    # teacher-logit cache key: the teacher's weights, and the train texts, labels and tokenizer (the tokenisation key)
    p.fingerprint = fingerprint(teacher_key(cfg.teacher) if cfg.teacher else "transfer-set", train_key,
                                *([f"doc_stride {cfg.data.doc_stride}"] if p.task.qa else []))
    if aug_info is not None:
        p.info["augment"] = aug_info


def transfer_set_source(cfg, train_split, full_train, selection, tokenizer=None):
    """``(train rows, teacher source, info)`` from ``cfg.train.transfer_set``: the run's rows and the sets' extra rows
    appended (:func:`kdistill.transfer.read.transfer_rows`), with the stored logits as the teacher source; for L_cos
    (token by token) the stored hidden states too, when every set has them and was tokenised by ``tokenizer``'s twin.
    A method that needs more (TinyBERT's layers, word-aligned L_cos, sets without hidden states) gets source None:
    the teacher runs live on the rows.

    Raises:
        KDistillError: --augment beside a set (augment with kdistill label --augment), and what ``transfer_rows``
            refuses.
    """

    import torch

    from kdistill.data.batching import tokenizer_key
    from kdistill.engine.teacher import StoredHidden, StoredLogits
    from kdistill.transfer.read import manifests, transfer_rows

    if cfg.augment.augment != "none":
        raise KDistillError("--augment beside --transfer-set: make the augmented rows once with kdistill label --augment "
                            "tang and pass that set as another --transfer-set")
    if "question" in train_split.column_names:  # question answering: per-window logits, the same windows
        return qa_transfer_source(cfg, train_split, tokenizer)
    method = cfg.method
    cos = method.name == "kd" and method.cos_weight > 0
    same_tokens = tokenizer is not None and all(m.get("tokenizer_hash") == tokenizer_key(tokenizer)
                                                for m in manifests(cfg.train.transfer_set) if m)
    hidden: list | None = [] if cos else None
    words: list | None = [] if cos and not same_tokens else None  # another tokenizer: L_cos by words
    rows, logits, info = transfer_rows(cfg.train.transfer_set, cfg.train.transfer_set_ratio, train_split,
                                       full_train=full_train, selection=selection, teacher=cfg.teacher,
                                       max_length=cfg.data.max_length, seed=cfg.train.seed, hidden=hidden,
                                       hidden_words=words)
    if cos and hidden and not same_tokens:
        if words:  # the teacher's own tokens and their words, stored beside its hidden states
            return rows, StoredHidden(torch.from_numpy(logits), hidden, words), {
                **info, "teacher": "stored logits, hidden states and word ids (L_cos by words)"}
        hidden = None
    if isinstance(logits, list):  # token classification: word-level logits per sentence
        from kdistill.engine.teacher import StoredWordLogits

        return rows, StoredWordLogits(logits), {**info, "teacher": "stored word-level logits"}
    if cos and hidden:
        return rows, StoredHidden(torch.from_numpy(logits), hidden), {**info, "teacher": "stored logits and hidden states"}
    if method.name != "kd" or cos:  # a stage that needs internals the set lacks runs the teacher (recipes.base)
        LOG.info("--transfer-set: this method needs the teacher's hidden states or attention, which the set(s) do not "
                 "store for this run's tokens: the teacher runs live on the set's rows where a stage needs them")
        what = "stored logits where a stage needs only logits; live where it needs the teacher's internals"
        return rows, StoredLogits(torch.from_numpy(logits)), {**info, "teacher": what}
    return rows, StoredLogits(torch.from_numpy(logits)), {**info, "teacher": "stored logits"}


def qa_transfer_source(cfg, train_split, tokenizer):
    """``(rows, teacher source, info)`` of question answering from transfer sets: each question's stored start/end
    logits (its windows' tokens, in order), looked up by (question, context) and served window by window
    (:class:`kdistill.engine.teacher.StoredWindowLogits`, bound to the run's windows once they are cut).

    Raises:
        KDistillError: a set made with another tokenizer or --doc-stride (other windows), or what
            :func:`kdistill.transfer.read.transfer_rows` refuses.
    """

    from kdistill.data.batching import tokenizer_key
    from kdistill.engine.teacher import StoredWindowLogits
    from kdistill.transfer.read import manifests, transfer_rows

    for folder, manifest in zip(cfg.train.transfer_set, manifests(cfg.train.transfer_set)):
        if manifest and (tokenizer is None or manifest.get("tokenizer_hash") != tokenizer_key(tokenizer)
                         or manifest.get("doc_stride") != cfg.data.doc_stride):
            raise KDistillError(f"--transfer-set {folder} holds start/end logits of other windows (another tokenizer or "
                                f"--doc-stride {manifest.get('doc_stride')}): question answering needs the student's "
                                "windows; use a student on the teacher's tokenizer and the set's --doc-stride")
    view = train_split.select_columns(["question", "context", "idx"]).rename_columns(
        {"question": "text_a", "context": "text_b"})
    _, per_question, info = transfer_rows(cfg.train.transfer_set, cfg.train.transfer_set_ratio, view,
                                          teacher=cfg.teacher, max_length=cfg.data.max_length, seed=cfg.train.seed)
    return train_split, StoredWindowLogits(per_question), {**info, "level": "window",
                                                           "teacher": "stored per-window start/end logits"}


def selection_split(cfg, train_split, task):
    """``(train rest, selection slice, info)``: see :func:`kdistill.data.selection.selection_split`."""
    from kdistill.data.selection import selection_split as split

    return split(cfg.data, train_split, task, seed=cfg.train.seed)


def selected_on(p: Prepared) -> str:
    """In words: which split chose the kept student."""
    how = p.cfg.data.select_on
    if how == "last":
        return "last step (no selection)"
    if how == "dev":
        return "dev split — the reported split: optimistic"
    sel = p.info.get("selection", {})
    if "selection_file" in sel:
        return f"--selection-file {sel['selection_file']} ({sel['selection_rows']} rows)"
    if "selection_unit" in sel:  # question answering: whole articles (or paragraphs)
        unit = sel["selection_unit"]
        return (f"held-out train slice of {sel.get('selection_rows')} questions in {sel.get(f'selection_{unit}s')} "
                f"whole {unit}s (seed {sel.get('seed')})")
    return (f"held-out train slice of {sel.get('selection_rows')} full-length rows (stratified, seed {sel.get('seed')}; "
            "related phrases stay in training)")


def task_summary(p: Prepared, result) -> dict:
    out = {"task": p.task.name, "problem_type": p.task.problem_type, "labels": list(p.task.labels or []) or None,
           "selected_on": selected_on(p)}
    if "selection" in p.info:
        out["selection"] = p.info["selection"]
    for key in ("augment", "transfer_sets", "label_mapping"):
        if key in p.info:
            out[key] = p.info[key]
    if "no_teacher" in p.info:  # the teacher's metric from the set's manifest (retention: added beside the dev eval)
        out["teacher_from_transfer_set"] = dict(p.info["no_teacher"])
    return out


def student_facts(p: Prepared) -> dict:
    """What the report records about the student (layers copied, heads kept, BiLSTM shape, augmentation)."""
    from kdistill.students.build import is_bilstm

    extra = {"student_layers": getattr(p.student.config, "kdistill_layers", None), "selected_on": selected_on(p),
             "problem_type": p.task.problem_type}
    if getattr(p.cfg.student, "heads", None) is not None:
        extra["student_heads"] = p.cfg.student.heads  # teacher heads kept per copied layer (--keep-heads)
    if is_bilstm(p.student):
        sc = p.student.config
        extra["student_kind"] = "bilstm"
        extra["bilstm"] = {"hidden_size": sc.hidden_size, "fc_size": sc.fc_size, "pair": sc.pair,
                           "embedding_dim": sc.embedding_dim, "embedding_mode": sc.embedding_mode,
                           "embeddings": p.cfg.student.word_vectors or "teacher input embeddings"}
    if "augment" in p.info:
        extra["augment"] = {k: v for k, v in p.info["augment"].items() if k != "cache"}
    for key in ("transfer_sets", "label_mapping"):
        if key in p.info:
            extra[key] = p.info[key]
    return extra


def kd_report_extra(p: Prepared, objective) -> dict:
    d = p.cfg.method
    if p.task.is_regression:  # what ran: MSE to the teacher's prediction, no temperature
        kd = {"temperature": None, "kd_loss": "mse to the teacher's prediction (regression)"}
    else:
        kd = {"temperature": d.temperature if d.kd_loss == "kl" else None, "kd_loss": d.kd_loss}
    extra = {**kd, "alpha": d.alpha, "cos_weight": d.cos_weight, **student_facts(p)}
    if "teacher_tokenizer" in p.info:
        extra["cross_tokenizer"] = {"teacher_vocab": len(p.info["teacher_tokenizer"]), "student_vocab": len(p.tokenizer),
                                    "hidden_align": hidden_align(p) if d.cos_weight > 0 else None,
                                    "note": "each model reads its own tokenization; soft targets per example"}
    return extra


def _kd_objective(p: Prepared):
    from kdistill.objectives import kd_objective

    return kd_objective(p.task, p.cfg.method, hidden_align=hidden_align(p))


KD = register(Recipe(
    name="kd", students=ALL_STUDENTS, check=check_kd, load=load_task, data=prepare_task_data,
    stages=lambda p: [Stage("", _kd_objective)], summary=task_summary, report_extra=kd_report_extra,
))


# --------------------------------------------------------------------------- finetune
def load_finetune(cfg) -> Prepared:
    """The pretrained model to fine-tune (``cfg.student.path``) with a fresh head for the task, and the data."""
    from kdistill.data.loading import load_data
    from kdistill.models import load_classifier, load_tokenizer

    splits, task = load_data(cfg.data)
    tokenizer = load_tokenizer(cfg.student.path)
    student = load_classifier(cfg.student.path, task, require_trained_head=False)
    return Prepared(cfg=cfg, task=task, tokenizer=tokenizer, student=student, splits=splits)


def _finetune_objective(p: Prepared):
    from kdistill.objectives import finetune_objective

    return finetune_objective(p.task)


FINETUNE = register(Recipe(
    name="finetune", students=("pretrained",), check=check_augment, load=load_finetune, data=prepare_task_data,
    stages=lambda p: [Stage("", _finetune_objective)], summary=task_summary,
))
