"""Shared fixtures: tiny random BERT teachers, a tokenizer built offline, the real SST-2 data."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):  # `pytest -n N`: one torch thread per worker, or N workers x cores threads
    os.environ["OMP_NUM_THREADS"] = "1"   # thrash the cores (subprocesses inherit it)

import pytest  # noqa: E402
import torch  # noqa: E402

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

@pytest.fixture(scope="session", autouse=True)
def _session_kdistill_cache(tmp_path_factory):
    """No test shares ``~/.cache/kdistill`` with real runs: the session (and its session/module-scoped
    fixtures) gets its own cache folder, and :func:`kdistill_cache` gives each test a fresh one."""
    before = os.environ.get("KDISTILL_CACHE")
    os.environ["KDISTILL_CACHE"] = str(tmp_path_factory.mktemp("kcache-session"))
    yield
    if before is None:
        os.environ.pop("KDISTILL_CACHE", None)
    else:
        os.environ["KDISTILL_CACHE"] = before


@pytest.fixture(autouse=True)
def kdistill_cache(_session_kdistill_cache, tmp_path_factory, monkeypatch):
    """Every test its own ``$KDISTILL_CACHE`` (tokenised splits, augmented sets): a stale cached set of an
    earlier run or test cannot hide a regression. Outside the test's ``tmp_path``, so tests that check
    what a command created there see only their own files. Subprocesses inherit it through ``os.environ``."""
    path = tmp_path_factory.mktemp("kcache")
    monkeypatch.setenv("KDISTILL_CACHE", str(path))
    return path


SHARED = Path(__file__).resolve().parents[1].parent / "shared"
GLUE_DIR = SHARED / "data" / "glue"


@pytest.fixture(scope="session")
def glue_dir() -> Path:
    if not (GLUE_DIR / "SST-2" / "train.tsv").exists():
        pytest.skip("../shared/data/glue/SST-2 is not beside the repository")
    return GLUE_DIR


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory):
    """A BERT WordPiece tokenizer over the real teacher's vocabulary (so SST-2 text tokenises sensibly)."""
    from transformers import AutoTokenizer

    teacher = SHARED / "teachers" / "minilm-l6-sst2"
    if not teacher.exists():
        pytest.skip("../shared/teachers/minilm-l6-sst2 is not beside the repository")
    return AutoTokenizer.from_pretrained(str(teacher))


def make_tiny_bert(vocab_size: int = 30522, layers: int = 4, hidden: int = 32, heads: int = 2, num_labels: int = 2, seed: int = 0,
                   **config):
    """A random tiny BERT classifier; ``config`` overrides :class:`~transformers.BertConfig` fields (e.g. dropout)."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                     intermediate_size=hidden * 2, max_position_embeddings=128, num_labels=num_labels,
                     id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1}, **config)
    return BertForSequenceClassification(cfg)


def save_classifier(model, path, tokenizer, names=None) -> Path:
    """Give ``model`` the label ``names`` (``id2label``/``label2id``, class id = position) and save it with ``tokenizer``."""
    if names is not None:
        model.config.id2label = dict(enumerate(names))
        model.config.label2id = {n: i for i, n in enumerate(names)}
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return Path(path)


@pytest.fixture(scope="session")
def tiny_teacher_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """A tiny random 4-layer BERT teacher with a 'trained' (explicitly saved) head, saved with the tokenizer."""
    path = tmp_path_factory.mktemp("tiny_teacher")
    model = make_tiny_bert()
    model.save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


def _state(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


class EngineSpy:
    """Records every call of :func:`kdistill.engine.train` (the one engine every recipe goes through).

    ``calls[i]`` holds the call's keyword arguments (``kw``), the student's and objective's weights when the
    stage starts (``start``, ``start_objective``), after its last optimizer step of this call (``last``,
    ``last_objective``: taken by a callback the spy adds, so before the engine loads the best student back)
    and when the call returns (``end``, ``end_objective``), and the result.
    ``before``: functions called with the keyword arguments just before the engine runs (e.g. to hook the student).
    """

    def __init__(self):
        self.calls: list[dict] = []
        self.before: list = []


@pytest.fixture
def engine_spy(monkeypatch) -> EngineSpy:
    import kdistill.engine

    spy, real = EngineSpy(), kdistill.engine.train

    def train(**kw):
        call = {"kw": kw, "start": _state(kw["student"]), "start_objective": _state(kw["objective"])}
        spy.calls.append(call)
        for hook in spy.before:
            hook(kw)

        def last(state):  # after the user's callbacks: sees their stop requests
            if state.stop_requested or state.global_step >= state.total_steps:
                call["last"], call["last_objective"] = _state(kw["student"]), _state(kw["objective"])
                call["last_step"] = state.global_step

        kw = {**kw, "callbacks": [*kw.get("callbacks", ()), last]}
        call["result"] = real(**kw)
        call["end"], call["end_objective"] = _state(kw["student"]), _state(kw["objective"])
        return call["result"]

    monkeypatch.setattr(kdistill.engine, "train", train)
    return spy
