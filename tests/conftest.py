"""Shared fixtures: tiny random BERT teachers, a tokenizer built offline, the real SST-2 data."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

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


def make_tiny_bert(vocab_size: int = 30522, layers: int = 4, hidden: int = 32, heads: int = 2, num_labels: int = 2, seed: int = 0):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                     intermediate_size=hidden * 2, max_position_embeddings=128, num_labels=num_labels,
                     id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    return BertForSequenceClassification(cfg)


@pytest.fixture(scope="session")
def tiny_teacher_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """A tiny random 4-layer BERT teacher with a 'trained' (explicitly saved) head, saved with the tokenizer."""
    path = tmp_path_factory.mktemp("tiny_teacher")
    model = make_tiny_bert()
    model.save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path
