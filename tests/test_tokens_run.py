"""Token classification end to end (issue 28): a tiny teacher fine-tuned on a CoNLL-2003 slice, then distilled into
a layer copy with per-token KD; evaluated with entity-level F1 on the reported split."""

import json

import numpy as np
import pytest

import kdistill

DATA = dict(max_train_samples=120, max_eval_samples=40, max_length=64, selection_size=10, epochs=1, batch_size=16,
            show_progress=False)


@pytest.fixture(scope="module")
def ner_teacher(tiny_teacher_dir, tmp_path_factory):
    from pathlib import Path

    conll = Path(__file__).resolve().parents[2] / "shared" / "data"
    out = tmp_path_factory.mktemp("ner") / "teacher"
    res = kdistill.finetune(str(tiny_teacher_dir), "conll2003", output_dir=out, data_dir=str(conll), learning_rate=5e-3,
                            **DATA)
    return out, conll, res


def test_a_token_classification_teacher_and_its_student(ner_teacher, tmp_path):
    from transformers import AutoConfig

    teacher, conll, res = ner_teacher
    assert set(res.metrics) >= {"f1", "precision", "recall", "f1_PER"} and 0 <= res.metrics["f1"] <= 1
    conf = AutoConfig.from_pretrained(teacher)
    assert conf.architectures == ["BertForTokenClassification"] and conf.id2label[1] == "B-PER"
    student = kdistill.distill(str(teacher), "conll2003", output_dir=tmp_path / "s", data_dir=str(conll), layers=[0, 3],
                               report=False, **DATA)
    results = json.loads((tmp_path / "s" / "train_results.json").read_text())
    assert results["problem_type"] == "token_classification" and "f1" in student.metrics
    assert AutoConfig.from_pretrained(tmp_path / "s").architectures == ["BertForTokenClassification"]
    again = kdistill.evaluate(str(tmp_path / "s"), "conll2003", data_dir=str(conll), max_eval_samples=40, max_length=64)
    assert again["f1"] == pytest.approx(student.metrics["f1"])


def test_the_student_loads_in_the_token_classification_pipeline(ner_teacher):
    """The saved model is a stock token classifier with the tag names: transformers' pipeline groups its B-/I- tags
    into entities with character spans."""
    from transformers import pipeline

    teacher, _, _ = ner_teacher
    ner = pipeline("token-classification", model=str(teacher), aggregation_strategy="simple")
    text = "EU rejects German call to boycott British lamb ."
    out = ner(text)
    assert isinstance(out, list)
    for ent in out:
        assert ent["entity_group"] in {"PER", "ORG", "LOC", "MISC"} and text[ent["start"]:ent["end"]] == ent["word"] \
            or ent["word"].lower() == text[ent["start"]:ent["end"]].lower()


def test_own_ner_files_through_the_cli(tiny_teacher_dir, tmp_path):
    """Your own files in the original CoNLL-2003 layout (IOB1, -DOCSTART-) are recognised by their content, converted
    to IOB2 (said once) and fine-tuned on from the command line; labels come from the train file."""
    from typer.testing import CliRunner

    from kdistill.cli import app

    rows = ["-DOCSTART- -X- O O", "", "EU NNP I-NP I-ORG", "rejects VBZ I-VP O", "German JJ I-NP I-MISC", "call NN I-NP O",
            "", "Peter NNP I-NP I-PER", "Blackburn NNP I-NP I-PER", ""]
    train = tmp_path / "train.txt"
    train.write_text("\n".join(rows * 15) + "\n")
    r = CliRunner().invoke(app, ["finetune", "--model", str(tiny_teacher_dir), "--train-file", str(train),
                                 "--validation-file", str(train), "--output", str(tmp_path / "m"), "--epochs", "1",
                                 "--select-on", "last", "--batch-size", "8"])
    assert r.exit_code == 0, r.output
    results = json.loads((tmp_path / "m" / "train_results.json").read_text())
    assert results["problem_type"] == "token_classification"
    assert results["labels"] == ["O", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert "f1" in results["eval"]


def test_the_report_of_a_token_classification_student(ner_teacher, tmp_path):
    """distill's report on a token task: entity F1 of both models with bootstrap intervals over sentences (from
    per-sentence counts), the difference and its interval, retention, latency on a 30-token input, parameters."""
    teacher, conll, _ = ner_teacher
    res = kdistill.distill(str(teacher), "conll2003", output_dir=tmp_path / "r", data_dir=str(conll), layers=[0, 3],
                           latency_runs=5, **DATA)
    rep = res.report
    assert rep["metric_name"] == "f1" and rep["task"] == "conll2003"
    lo, hi = rep["student_ci"]
    assert lo <= rep["student_metric"] <= hi and rep["retention"] is None or rep["retention"] >= 0
    assert rep["seq_len"] == 30 and rep["speedup"] > 0
    assert rep["baseline"]["kind"] == "all O (no entity)" and rep["baseline_metric"] == 0.0


def test_export_of_a_token_classifier_and_the_torch_free_predictor(ner_teacher, tmp_path):
    """`kdistill export` of a token classifier: ONNX graphs whose output is per-token logits, parity checked, the int8
    gate on entity F1; the torch-free predictor gives entities with character spans."""
    teacher, conll, _ = ner_teacher
    kdistill.export(str(teacher), tmp_path / "onnx", "conll2003", data_dir=str(conll), quantize="dynamic",
                           max_eval_samples=40, max_length=64)
    exported = json.loads((tmp_path / "onnx" / "kdistill_export.json").read_text())
    assert exported["problem_type"] == "token_classification" and exported["metric_name"] == "f1"
    from kdistill.serve import Predictor

    predictor = Predictor(tmp_path / "onnx")
    text = "EU rejects German call to boycott British lamb ."
    entities, probabilities = predictor.predict([text])
    assert probabilities is None and len(entities) == 1
    for ent in entities[0]:
        assert ent["word"] == text[ent["start"]:ent["end"]] and ent["entity_group"] in {"PER", "ORG", "LOC", "MISC"}
    # the grouping itself, on made-up per-token probabilities: B-PER I-PER O B-LOC over four one-piece words
    names = predictor.labels
    enc = predictor.tokenizer.encode("Peter Blackburn in Paris")
    tags = [None, "B-PER", "I-PER", "O", "B-LOC", None]
    probs = np.full((len(enc.ids), len(names)), 0.01, dtype=np.float32)
    for pos, tag in enumerate(tags[: len(enc.ids)]):
        if tag:
            probs[pos, names.index(tag)] = 0.9
    got = predictor._group("Peter Blackburn in Paris", enc, probs)
    assert [(e["entity_group"], e["word"]) for e in got] == [("PER", "Peter Blackburn"), ("LOC", "Paris")]


def test_word_level_kd_across_tokenizers(ner_teacher, tmp_path):
    """A student with its own tokenizer: the teacher's tag distribution at the first sub-token of each word (its own
    tokens) is paired with the student's at its own first sub-token of the same word; L_cos is refused in one line."""
    from conftest import make_tiny_bert
    from test_cross_tokenizer import _own_tokenizer

    from kdistill.errors import KDistillError
    from kdistill.engine import teacher as teacher_mod
    from kdistill.tokens.data import read_sentences

    teacher, conll, _ = ner_teacher
    words = read_sentences(conll / "conll2003" / "train.txt").words[:300]
    own = _own_tokenizer(tmp_path, [" ".join(w) for w in words])
    student_dir = tmp_path / "student"
    make_tiny_bert(vocab_size=len(own), layers=1, seed=5).save_pretrained(student_dir)
    own.save_pretrained(student_dir)
    seen = []
    real = teacher_mod.CachedLogits.__call__
    teacher_mod.CachedLogits.__call__ = lambda self, b: seen.append(real(self, b)) or seen[-1]
    try:
        res = kdistill.distill(str(teacher), "conll2003", str(student_dir), output_dir=tmp_path / "kd",
                               data_dir=str(conll), report=False, **DATA)
    finally:
        teacher_mod.CachedLogits.__call__ = real
    assert "f1" in res.metrics and seen and all(s.logits.dim() == 2 for s in seen)  # word-level teacher signal
    with pytest.raises(KDistillError, match="word by word"):
        kdistill.distill(str(teacher), "conll2003", str(student_dir), output_dir=tmp_path / "cos", data_dir=str(conll),
                         cos_weight=1.0, report=False, **DATA)


def test_a_token_transfer_set_holds_word_level_logits_and_serves_any_student(ner_teacher, tmp_path):
    """`kdistill label --task conll2003`: one [n_words, C] matrix of the teacher's logits per sentence (word level);
    a student distilled from the set trains as one distilled from its own teacher pass (same seed), and a student
    with its own tokenizer reads the same set."""
    from safetensors.torch import load_file

    from kdistill.transfer import read_complete_set

    teacher, conll, _ = ner_teacher
    data = {k: v for k, v in DATA.items() if k in ("max_train_samples", "max_eval_samples", "max_length")}
    manifest = kdistill.label(str(teacher), "conll2003", output_dir=tmp_path / "set", data_dir=str(conll),
                              shard_rows=50, batch_size=8, show_progress=False, **data)
    assert manifest["problem_type"] == "token_classification" and manifest["rows"] == 120
    table = read_complete_set(tmp_path / "set")[1]
    first = table.slice(0, 1).to_pylist()[0]
    assert len(first["logits"]) == len(first["tokens"]) == len(first["label"])  # one row of logits per word
    info = kdistill.transfer.inspect_transfer_set(tmp_path / "set")
    assert info["words"] == sum(info["gold_label_counts"].values()) > 120 and 0 <= info["teacher_accuracy_on_gold"] <= 1
    base = dict(data_dir=str(conll), layers=[0, 3], report=False, seed=4, **DATA)
    own = kdistill.distill(str(teacher), "conll2003", output_dir=tmp_path / "own", **base)
    via = kdistill.distill(str(teacher), "conll2003", output_dir=tmp_path / "via", transfer_set=[str(tmp_path / "set")],
                           **base)
    a, b = load_file(str(tmp_path / "own" / "model.safetensors")), load_file(str(tmp_path / "via" / "model.safetensors"))
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-3  # the same soft targets, up to batching's last bits
    assert json.loads((tmp_path / "via" / "train_results.json").read_text())["transfer_sets"]["level"] == "word"
    assert own.metrics.keys() == via.metrics.keys()
    from conftest import make_tiny_bert
    from test_cross_tokenizer import _own_tokenizer

    own_tok = _own_tokenizer(tmp_path, [" ".join(t) for t in table.column("tokens").to_pylist()])
    student_dir = tmp_path / "student"
    make_tiny_bert(vocab_size=len(own_tok), layers=1, seed=5).save_pretrained(student_dir)
    own_tok.save_pretrained(student_dir)
    other = kdistill.distill(str(teacher), "conll2003", str(student_dir), output_dir=tmp_path / "other",
                             transfer_set=[str(tmp_path / "set")], **{k: v for k, v in base.items() if k != "layers"})
    assert "f1" in other.metrics  # its own tokens, the set's word-level targets
    free = kdistill.distill(None, "conll2003", str(student_dir), output_dir=tmp_path / "free",
                            transfer_set=[str(tmp_path / "set")], **{k: v for k, v in base.items() if k != "layers"})
    stored = json.loads((tmp_path / "free" / "train_results.json").read_text())["teacher_from_transfer_set"]
    assert "f1" in free.metrics and stored["teacher_dev_metrics"]["f1"] == manifest["teacher_dev_metrics"]["f1"]
    # without the teacher's tokenizer the windows fit the student's alone, so this run is not the one above


def test_the_whole_chain_on_a_token_task(tiny_teacher_dir, tmp_path):
    """`kdistill run --task conll2003` from a base model: the teacher stage fine-tunes a token classifier (the
    no-better-than-baseline check reads entity F1), then the student is distilled and reported."""
    from pathlib import Path

    from kdistill.recipes.chain import TeacherAtBaseline

    conll = Path(__file__).resolve().parents[2] / "shared" / "data"
    try:
        res = kdistill.run(str(tiny_teacher_dir), "conll2003", output_dir=tmp_path / "chain", data_dir=str(conll),
                           teacher_epochs=1, teacher_learning_rate=5e-3, layers=[0, 3], latency_runs=3,
                           **{k: v for k, v in DATA.items() if k != "epochs"}, epochs=1)
    except TeacherAtBaseline as stop:  # a tiny teacher may learn no entity in one epoch: the chain says so, one line
        assert "baseline" in str(stop)
        return
    assert (tmp_path / "chain" / "teacher").is_dir() and res.report["metric_name"] == "f1"


def test_tinybert_task_distillation_of_a_token_classifier(ner_teacher, tmp_path):
    """TinyBERT's two steps on a token task: intermediate layers (attention, hidden states, embeddings), then the
    per-token prediction layer; the student is a token classifier with the teacher's tags."""
    from transformers import AutoConfig

    teacher, conll, _ = ner_teacher
    res = kdistill.distill(str(teacher), "conll2003", "spec", output_dir=tmp_path / "tb", data_dir=str(conll),
                           method="tinybert", num_layers=2, hidden_size=16, num_heads=2, intermediate_size=32,
                           intermediate_epochs=1, prediction_epochs=1, report=False,
                           **{k: v for k, v in DATA.items() if k != "epochs"})
    assert "f1" in res.metrics
    conf = AutoConfig.from_pretrained(tmp_path / "tb")
    assert conf.architectures == ["BertForTokenClassification"] and conf.num_labels == 9


def test_pruning_a_token_classifier(ner_teacher, tmp_path):
    """`kdistill compress` on a token task: head/FFN importance scored at the labelled positions, pruned rounds of a
    token classifier (compressed token-classification classes load through the Auto API), each reported in F1."""
    from test_compress_schedule import SCHEDULE
    from transformers import AutoModelForTokenClassification

    from kdistill.api import compress

    teacher, conll, _ = ner_teacher
    rep = compress(str(teacher), "conll2003", output_dir=tmp_path / "c", data_dir=str(conll),
                   **{**SCHEDULE, "max_rounds": 2, **{k: v for k, v in DATA.items() if k != "epochs"}})
    assert rep["metric_name"] == "f1" and len(rep["rounds"]) >= 2
    assert AutoModelForTokenClassification.from_pretrained(tmp_path / "c").config.num_labels == 9
