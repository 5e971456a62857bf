"""Tests for kdistill.data: the GLUE task table and load_splits (real SST-2 + small GLUE-layout fixtures)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import datasets
import pytest

from kdistill.data import TASKS, TaskSpec, get_task, load_splits
from kdistill.errors import DataError

GLUE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "glue"


def _write(path: Path, lines: list[str], *, bom: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(("\ufeff" if bom else "") + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def _assert_one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg and msg
    return msg


# ---------------------------------------------------------------------------------------------
# Fixtures in the real GLUE distribution layout (a few rows each).
# ---------------------------------------------------------------------------------------------

MNLI_TRAIN_HEADER = (
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
    "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label"
)
MNLI_DEV_HEADER = (
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
    "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label"
)
STSB_HEADER = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"


def _mnli_row(i: int, s1: str, s2: str, gold: str, dev: bool) -> str:
    parses = "\t".join(["( x )", "( y )", "(ROOT x)", "(ROOT y)"])
    votes = "\t".join([gold] * (5 if dev else 1))
    return f"{i}\t{1000 + i}\t{1000 + i}e\tfiction\t{parses}\t{s1}\t{s2}\t{votes}\t{gold}"


@pytest.fixture()
def glue(tmp_path: Path) -> Path:
    """A tiny GLUE folder with every task except SST-2, in the official file layouts."""
    root = tmp_path / "glue"
    cola = [
        "gj04\t1\t\tOur friends won't buy this analysis, let alone the next one we propose.",
        "gj04\t0\t*\tOne more pseudo generalization and I'm giving up.",
        'gj04\t1\t\tHe said "hello.',  # unbalanced quote, as in the real files
    ]
    _write(root / "CoLA" / "train.tsv", cola)
    _write(root / "CoLA" / "dev.tsv", cola[:2])

    mrpc_header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"
    mrpc = [
        "1\t702876\t702977\tAmrozi accused his brother .\tReferring to him , Amrozi accused his brother .",
        "0\t2108705\t2108831\tYucaipa owned Dominick 's .\tYucaipa bought Dominick 's in 1995 .",
    ]
    _write(root / "MRPC" / "train.tsv", [mrpc_header, *mrpc], bom=True)
    _write(root / "MRPC" / "dev.tsv", [mrpc_header, *mrpc[::-1]])

    stsb = [
        "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane is taking off.\tAn air plane is taking off.\t5.000",
        "1\tmain-captions\tMSRvid\t2012test\t0004\tnone\tnone\tA man is playing a flute.\tA man is playing a flute.\t3.800",
        "2\tmain-captions\tMSRvid\t2012test\t0005\tnone\tnone\tA man spreads cheese.\tA dog runs.\t0",
    ]
    _write(root / "STS-B" / "train.tsv", [STSB_HEADER, *stsb])
    _write(root / "STS-B" / "dev.tsv", [STSB_HEADER, *stsb[:2]])

    qqp_header = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate"
    qqp = [
        "133273\t213221\t213222\tHow is the life of a math student?\tWhich level of prepration is enough?\t0",
        "402555\t536040\t536041\tHow do I control my horny emotions?\tHow do you control your horniness?\t1",
    ]
    _write(root / "QQP" / "train.tsv", [qqp_header, *qqp])
    _write(root / "QQP" / "dev.tsv", [qqp_header, *qqp])

    _write(
        root / "MNLI" / "train.tsv",
        [
            MNLI_TRAIN_HEADER,
            _mnli_row(0, "Conceptually cream skimming has two dimensions.", "Product and geography.", "neutral", False),
            _mnli_row(1, "you know during the season", "You lose the things.", "entailment", False),
            _mnli_row(2, "One of our number will carry out.", "A member will carry out.", "contradiction", False),
        ],
    )
    _write(
        root / "MNLI" / "dev_matched.tsv",
        [
            MNLI_DEV_HEADER,
            _mnli_row(0, "The new rights are nice enough", "Everyone really likes it.", "neutral", True),
            _mnli_row(1, "This site includes a list.", "The Government Executive articles.", "contradiction", True),
        ],
    )

    qnli = [
        "index\tquestion\tsentence\tlabel",
        "0\tWhen did the third Digimon series begin?\tUnlike the two seasons before it.\tnot_entailment",
        "1\tWhich missile batteries often have individual launchers?\tThe missile batteries have launchers.\tentailment",
    ]
    _write(root / "QNLI" / "train.tsv", qnli)
    _write(root / "QNLI" / "dev.tsv", qnli)

    rte = [
        "index\tsentence1\tsentence2\tlabel",
        "0\tNo Weapons of Mass Destruction Found in Iraq Yet.\tWeapons of Mass Destruction Found in Iraq.\tnot_entailment",
        "1\tA place of sorrow, after Pope John Paul II died.\tPope Benedict XVI is the new leader.\tentailment",
    ]
    _write(root / "RTE" / "train.tsv", rte)
    _write(root / "RTE" / "dev.tsv", rte)

    wnli = [
        "index\tsentence1\tsentence2\tlabel",
        "0\tI stuck a pin through a carrot.\tThe carrot had a hole.\t1",
        "1\tJohn couldn't see the stage.\tJohn is so short.\t0",
    ]
    _write(root / "WNLI" / "train.tsv", wnli)
    _write(root / "WNLI" / "dev.tsv", wnli)
    return root


@pytest.fixture()
def sst2_dir(tmp_path: Path) -> Path:
    """A tiny SST-2 folder (used for the error tests, so they do not need the real data)."""
    d = tmp_path / "glue" / "SST-2"
    _write(d / "train.tsv", ["sentence\tlabel", "hide new secretions \t0", "that loves its characters \t1"])
    _write(d / "dev.tsv", ["sentence\tlabel", "it 's a charming journey . \t1", "unflinchingly bleak \t0"])
    return d


# ---------------------------------------------------------------------------------------------
# Task table.
# ---------------------------------------------------------------------------------------------


def test_task_table_covers_glue():
    assert set(TASKS) == {"cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli", "conll2003", "squad",
                          "squad_v2"}
    for spec in TASKS.values():
        assert spec.main_metric in spec.metrics
        assert spec.hub == ("nyu-mll/glue", spec.name) or spec.token_level or spec.qa
    assert get_task("conll2003").token_level and get_task("conll2003").main_metric == "f1"
    assert get_task("SQuAD-v2").qa and get_task("squad_v2").null_threshold == 0.0 and get_task("squad").null_threshold is None
    assert get_task("squad").problem_type == "question_answering" and not get_task("squad").is_regression
    assert get_task("stsb").is_regression and get_task("stsb").num_labels == 1
    assert get_task("mnli").labels == ("entailment", "neutral", "contradiction")
    assert get_task("mnli").dev_file == "dev_matched.tsv"
    assert get_task("qnli").labels == get_task("rte").labels == ("entailment", "not_entailment")
    assert get_task("cola").has_header is False
    assert get_task("cola").main_metric == "matthews_correlation"
    assert get_task("mrpc").main_metric == "f1"
    assert get_task("stsb").main_metric == "pearson"
    assert get_task("qqp").main_metric == "accuracy"
    assert get_task("sst2").num_labels == 2 and not get_task("sst2").is_regression


@pytest.mark.parametrize("name", ["sst2", "SST-2", "sst-2", "Sst_2", " SST2 "])
def test_get_task_aliases(name):
    assert get_task(name) is TASKS["sst2"]


def test_get_task_other_aliases():
    assert get_task("STS-B").name == "stsb"
    assert get_task("CoLA").name == "cola"


def test_unknown_task_lists_known():
    with pytest.raises(DataError) as err:
        get_task("imdb")
    msg = _assert_one_line(err)
    assert "imdb" in msg and "sst2" in msg and "mnli" in msg


# ---------------------------------------------------------------------------------------------
# Real SST-2.
# ---------------------------------------------------------------------------------------------


def _real_glue() -> Path:
    if not (GLUE_DIR / "SST-2" / "train.tsv").is_file():
        pytest.skip(f"real GLUE data not found at {GLUE_DIR}")
    return GLUE_DIR


def test_sst2_real_full():
    ds, spec = load_splits("sst2", data_dir=_real_glue())
    assert spec is TASKS["sst2"]
    assert set(ds) == {"train", "validation"}
    assert ds["train"].num_rows == 67_349
    assert ds["validation"].num_rows == 872
    for split in ds.values():
        assert split.column_names == ["text_a", "label", "idx"]
    val = ds["validation"]
    assert Counter(val["label"]) == {1: 444, 0: 428}
    assert val["idx"] == list(range(872))
    assert val[0]["text_a"].startswith("it 's a charming and often affecting journey")
    assert val[0]["label"] == 1
    first_line = (GLUE_DIR / "SST-2" / "train.tsv").read_text(encoding="utf-8").split("\n", 2)[1]
    text, label = first_line.split("\t")
    assert ds["train"][0] == {"text_a": text, "label": int(label), "idx": 0}


def test_sst2_real_task_folder_and_max_samples():
    root = _real_glue()
    ds, _ = load_splits("SST-2", data_dir=root / "SST-2", max_train_samples=100, max_eval_samples=10)
    assert ds["train"].num_rows == 100 and ds["validation"].num_rows == 10
    assert ds["train"]["idx"] == list(range(100))
    full, _ = load_splits("sst2", data_dir=root, max_eval_samples=872)
    assert ds["validation"]["text_a"] == full["validation"]["text_a"][:10]  # first N rows, deterministic


# ---------------------------------------------------------------------------------------------
# Other GLUE tasks from fixtures.
# ---------------------------------------------------------------------------------------------


def test_cola_headerless(glue):
    ds, spec = load_splits("cola", data_dir=glue)
    assert spec.name == "cola"
    train = ds["train"]
    assert train.column_names == ["text_a", "label", "idx"]
    assert train["label"] == [1, 0, 1]
    assert train[0]["text_a"] == "Our friends won't buy this analysis, let alone the next one we propose."
    assert train[2]["text_a"] == 'He said "hello.'
    assert ds["validation"].num_rows == 2


def test_mrpc_pair_with_bom(glue):
    ds, spec = load_splits("mrpc", data_dir=glue)
    train = ds["train"]
    assert train.column_names == ["text_a", "text_b", "label", "idx"]
    assert train[0] == {
        "text_a": "Amrozi accused his brother .",
        "text_b": "Referring to him , Amrozi accused his brother .",
        "label": 1,
        "idx": 0,
    }
    assert ds["validation"]["label"] == [0, 1]


def test_stsb_float_labels(glue):
    ds, spec = load_splits("STS-B", data_dir=glue)
    assert spec.is_regression
    train = ds["train"]
    assert train.features["label"].dtype == "float32"
    assert train["label"] == pytest.approx([5.0, 3.8, 0.0])
    assert train[1]["text_a"] == "A man is playing a flute."
    assert ds["validation"].num_rows == 2


def test_mnli_dev_matched(glue):
    ds, spec = load_splits("mnli", data_dir=glue)
    assert ds["train"]["label"] == [1, 0, 2]  # neutral, entailment, contradiction
    val = ds["validation"]
    assert val["label"] == [1, 2]
    assert val[0]["text_a"] == "The new rights are nice enough"
    assert val[0]["text_b"] == "Everyone really likes it."


@pytest.mark.parametrize(
    ("task", "train_labels"),
    [("qqp", [0, 1]), ("qnli", [1, 0]), ("rte", [1, 0]), ("wnli", [1, 0])],
)
def test_other_pair_tasks(glue, task, train_labels):
    ds, spec = load_splits(task, data_dir=glue)
    assert spec.name == task
    assert ds["train"].column_names == ["text_a", "text_b", "label", "idx"]
    assert ds["train"]["label"] == train_labels
    assert all(t.strip() for t in ds["train"]["text_b"])


def test_qnli_columns_by_name(glue):
    ds, _ = load_splits("qnli", data_dir=glue)
    assert ds["train"][0]["text_a"] == "When did the third Digimon series begin?"
    assert ds["train"][0]["text_b"] == "Unlike the two seasons before it."


def test_lowercase_task_folder(tmp_path):
    d = tmp_path / "data" / "sst-2"
    _write(d / "train.tsv", ["sentence\tlabel", "good \t1", "bad \t0"])
    _write(d / "dev.tsv", ["sentence\tlabel", "fine \t1"])
    ds, _ = load_splits("sst2", data_dir=tmp_path / "data")
    assert ds["validation"]["label"] == [1]


# ---------------------------------------------------------------------------------------------
# Hub source (mocked: tests run offline).
# ---------------------------------------------------------------------------------------------


def test_hub_mapping(monkeypatch):
    def fake_load(path, config):
        assert (path, config) == ("nyu-mll/glue", "mnli")
        split = {"premise": ["p0", "p1"], "hypothesis": ["h0", "h1"], "label": [2, 0], "idx": [7, 9]}
        return datasets.DatasetDict(
            {
                "train": datasets.Dataset.from_dict(split),
                "validation_matched": datasets.Dataset.from_dict(split),
                "validation_mismatched": datasets.Dataset.from_dict(split),
            }
        )

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    ds, spec = load_splits("mnli", max_eval_samples=1)
    assert ds["train"].column_names == ["text_a", "text_b", "label", "idx"]
    assert ds["train"]["label"] == [2, 0]
    assert ds["train"]["idx"] == [0, 1]
    assert ds["validation"]["text_b"] == ["h0"]


def test_hub_stsb_and_unlabelled(monkeypatch):
    split = {"sentence1": ["a", "b"], "sentence2": ["c", "d"], "label": [4.2, 0.0], "idx": [0, 1]}
    monkeypatch.setattr(
        datasets, "load_dataset",
        lambda path, config: datasets.DatasetDict({k: datasets.Dataset.from_dict(split) for k in ("train", "validation")}),
    )
    ds, spec = load_splits("stsb")
    assert ds["train"]["label"] == pytest.approx([4.2, 0.0])
    unlabelled = {"sentence": ["a", "b"], "label": [-1, -1], "idx": [0, 1]}
    monkeypatch.setattr(
        datasets, "load_dataset",
        lambda path, config: datasets.DatasetDict({k: datasets.Dataset.from_dict(unlabelled) for k in ("train", "validation")}),
    )
    with pytest.raises(DataError) as err:
        load_splits("sst2")
    assert "-1" in _assert_one_line(err)


def test_hub_unreachable(monkeypatch):
    def fail(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'nyu-mll/glue' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(datasets, "load_dataset", fail)
    with pytest.raises(DataError) as err:
        load_splits("sst2")
    msg = _assert_one_line(err)
    assert "--data-dir" in msg and "--train-file" in msg


# ---------------------------------------------------------------------------------------------
# Custom files.
# ---------------------------------------------------------------------------------------------


def test_custom_csv(tmp_path):
    train = _write(tmp_path / "train.csv", ["text,sentiment", '"Great, really great",pos', "awful,neg", "meh,neutral"])
    val = _write(tmp_path / "val.csv", ["text,sentiment", "lovely,pos"])
    ds, spec = load_splits(train_file=train, validation_file=val, text_columns=["text"], label_column="sentiment")
    assert spec.name == "custom"
    assert spec.labels == ("neg", "neutral", "pos")
    assert spec.metrics == ("accuracy", "f1") and spec.main_metric == "accuracy"
    assert ds["train"]["text_a"] == ["Great, really great", "awful", "meh"]
    assert ds["train"]["label"] == [2, 0, 1]
    assert ds["validation"]["label"] == [2]
    assert ds["train"].column_names == ["text_a", "label", "idx"]


def test_custom_tsv_pair_with_explicit_labels(tmp_path):
    train = _write(tmp_path / "train.tsv", ["q\tp\ty", 'a "quote\tb\tyes', "c\td\tno"])
    val = _write(tmp_path / "dev.tsv", ["q\tp\ty", "e\tf\tno"])
    ds, spec = load_splits(
        train_file=train, validation_file=val, text_columns=("q", "p"), label_column="y", labels=["no", "yes"]
    )
    assert spec.labels == ("no", "yes")
    assert ds["train"][0] == {"text_a": 'a "quote', "text_b": "b", "label": 1, "idx": 0}
    assert ds["validation"]["label"] == [0]


def test_custom_jsonl_numeric_labels(tmp_path):
    rows = [{"s": f"text {i}", "y": i % 3 if i != 5 else 10} for i in range(6)]
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    val = tmp_path / "val.jsonl"
    val.write_text(json.dumps({"s": "x", "y": 10.0}) + "\n")
    ds, spec = load_splits(
        train_file=train, validation_file=val, text_columns=["s"], label_column="y", max_train_samples=4
    )
    assert spec.labels == ("0", "1", "2", "10")  # numeric order; taken from the whole file
    assert ds["train"]["label"] == [0, 1, 2, 0]
    assert ds["validation"]["label"] == [3]


def test_custom_files_with_task(tmp_path):
    train = _write(tmp_path / "train.jsonl", [json.dumps({"sentence": "good", "label": 1}), json.dumps({"sentence": "bad", "label": 0})])
    ds, spec = load_splits("sst2", train_file=train, validation_file=train)
    assert spec.name == "sst2" and spec.metrics == ("accuracy",)
    assert ds["train"]["label"] == [1, 0]
    bad = _write(tmp_path / "bad.jsonl", [json.dumps({"sentence": "good", "label": "positive"})])
    with pytest.raises(DataError) as err:
        load_splits("sst2", train_file=bad, validation_file=train)
    msg = _assert_one_line(err)
    assert "'positive'" in msg and "line 1" in msg and "['0', '1']" in msg


def test_custom_regression_with_stsb(tmp_path):
    train = _write(tmp_path / "train.csv", ["a,b,score", "x,y,4.5", "x,z,1"])
    ds, spec = load_splits("stsb", train_file=train, validation_file=train, text_columns=["a", "b"], label_column="score")
    assert spec.is_regression and ds["train"]["label"] == pytest.approx([4.5, 1.0])
    bad = _write(tmp_path / "bad.csv", ["a,b,score", "x,y,high"])
    with pytest.raises(DataError) as err:
        load_splits("stsb", train_file=train, validation_file=bad, text_columns=["a", "b"], label_column="score")
    msg = _assert_one_line(err)
    assert "'high'" in msg and "not a finite number" in msg and "line 2" in msg


# ---------------------------------------------------------------------------------------------
# Bad inputs -> one-line DataError saying what to do.
# ---------------------------------------------------------------------------------------------


def test_missing_glue_file(tmp_path):
    (tmp_path / "glue").mkdir()
    with pytest.raises(DataError) as err:
        load_splits("sst2", data_dir=tmp_path / "glue")
    msg = _assert_one_line(err)
    assert str(tmp_path / "glue" / "SST-2" / "train.tsv") in msg
    assert "<data-dir>/SST-2/train.tsv" in msg


def test_missing_dev_file(sst2_dir):
    (sst2_dir / "dev.tsv").unlink()
    with pytest.raises(DataError) as err:
        load_splits("sst2", data_dir=sst2_dir.parent)
    assert "dev.tsv" in _assert_one_line(err)


def test_missing_data_dir(tmp_path):
    with pytest.raises(DataError) as err:
        load_splits("sst2", data_dir=tmp_path / "nope")
    assert "does not exist" in _assert_one_line(err)


def test_missing_column(sst2_dir):
    _write(sst2_dir / "train.tsv", ["text\tlabel", "good\t1"])
    with pytest.raises(DataError) as err:
        load_splits("sst2", data_dir=sst2_dir.parent)
    msg = _assert_one_line(err)
    assert "['sentence']" in msg and "found ['text', 'label']" in msg


def test_label_outside_set(sst2_dir):
    _write(sst2_dir / "dev.tsv", ["sentence\tlabel", "ok\t1", "great\tpositive"])
    with pytest.raises(DataError) as err:
        load_splits("sst2", data_dir=sst2_dir.parent)
    msg = _assert_one_line(err)
    assert "dev.tsv line 3" in msg and "'positive'" in msg and "['0', '1']" in msg


def test_malformed_row(sst2_dir):
    _write(sst2_dir / "train.tsv", ["sentence\tlabel", "fine\t1", "a stray\ttab\t0"])
    with pytest.raises(DataError) as err:
        load_splits("sst2", data_dir=sst2_dir.parent)
    msg = _assert_one_line(err)
    assert "train.tsv line 3" in msg and "found 3" in msg


def test_empty_split(sst2_dir):
    _write(sst2_dir / "dev.tsv", ["sentence\tlabel"])
    with pytest.raises(DataError) as err:
        load_splits("sst2", data_dir=sst2_dir.parent)
    msg = _assert_one_line(err)
    assert "validation split" in msg and "no rows" in msg


def test_empty_file(sst2_dir):
    (sst2_dir / "dev.tsv").write_text("")
    with pytest.raises(DataError) as err:
        load_splits("sst2", data_dir=sst2_dir.parent)
    assert "empty" in _assert_one_line(err)


def test_empty_text(sst2_dir):
    _write(sst2_dir / "train.tsv", ["sentence\tlabel", "fine\t1", "  \t0"])
    with pytest.raises(DataError) as err:
        load_splits("sst2", data_dir=sst2_dir.parent)
    msg = _assert_one_line(err)
    assert "line 3" in msg and "empty" in msg


def test_bad_regression_label(glue):
    path = glue / "STS-B" / "dev.tsv"
    _write(path, [STSB_HEADER, "0\tg\tf\ty\t1\tn\tn\tA.\tB.\tn/a"])
    with pytest.raises(DataError) as err:
        load_splits("stsb", data_dir=glue)
    assert "'n/a'" in _assert_one_line(err)


def test_custom_needs_columns(tmp_path):
    f = _write(tmp_path / "t.csv", ["text,label", "a,1"])
    with pytest.raises(DataError) as err:
        load_splits(train_file=f, validation_file=f)
    assert "--text-columns" in _assert_one_line(err)


def test_custom_missing_column_and_file(tmp_path):
    f = _write(tmp_path / "t.csv", ["text,label", "a,1", "b,0"])
    with pytest.raises(DataError) as err:
        load_splits(train_file=f, validation_file=f, text_columns=["sentence"], label_column="label")
    msg = _assert_one_line(err)
    assert "['sentence']" in msg and "found ['text', 'label']" in msg
    with pytest.raises(DataError) as err:
        load_splits(train_file=f, validation_file=tmp_path / "nope.csv", text_columns=["text"], label_column="label")
    assert "nope.csv" in _assert_one_line(err)


def test_custom_bad_inputs(tmp_path):
    good = _write(tmp_path / "t.csv", ["text,label", "a,1", "b,0"])
    bad_ext = _write(tmp_path / "t.xlsx", ["x"])
    with pytest.raises(DataError) as err:
        load_splits(train_file=bad_ext, validation_file=good, text_columns=["text"], label_column="label")
    assert ".jsonl" in _assert_one_line(err)
    bad_json = _write(tmp_path / "t.jsonl", ['{"text": "a", "label": 1}', "{not json"])
    with pytest.raises(DataError) as err:
        load_splits(train_file=bad_json, validation_file=good, text_columns=["text"], label_column="label")
    assert "line 2" in _assert_one_line(err)
    one_class = _write(tmp_path / "one.csv", ["text,label", "a,1", "b,1"])
    with pytest.raises(DataError) as err:
        load_splits(train_file=one_class, validation_file=good, text_columns=["text"], label_column="label")
    assert "distinct" in _assert_one_line(err)
    # validation label unseen in train
    val = _write(tmp_path / "v.csv", ["text,label", "c,2"])
    with pytest.raises(DataError) as err:
        load_splits(train_file=good, validation_file=val, text_columns=["text"], label_column="label")
    assert "'2'" in _assert_one_line(err)


def test_argument_errors(tmp_path, sst2_dir):
    f = _write(tmp_path / "t.csv", ["text,label", "a,1"])
    with pytest.raises(DataError):
        load_splits("sst2", data_dir=sst2_dir.parent, train_file=f, validation_file=f)
    with pytest.raises(DataError):
        load_splits(train_file=f, text_columns=["text"], label_column="label")
    with pytest.raises(DataError):
        load_splits(data_dir=sst2_dir.parent)
    with pytest.raises(DataError):
        load_splits("sst2", data_dir=sst2_dir.parent, max_train_samples=0)
    with pytest.raises(DataError):
        load_splits("stsb", data_dir=sst2_dir.parent, labels=["a", "b"])
    with pytest.raises(DataError):
        load_splits("no-such-task", data_dir=sst2_dir.parent)


def test_taskspec_is_frozen():
    spec = get_task("sst2")
    assert isinstance(spec, TaskSpec)
    with pytest.raises(AttributeError):
        spec.name = "x"  # type: ignore[misc]
