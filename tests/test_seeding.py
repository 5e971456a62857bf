"""The run's seed fixes everything random, from the first step: a pretrained encoder saved without a task head (as
sentence-transformers bases are) gets the same fresh head in every run with the same seed — torch's default generator
starts from a random seed in each process, so a head drawn before the engine seeds would differ run to run."""

import json

import torch
from safetensors.torch import load_file
from transformers import BertConfig, BertModel

import kdistill


def _headless_base(path, tokenizer):
    torch.manual_seed(0)
    BertModel(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                         max_position_embeddings=128)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _finetuned(base, out, glue_dir, seed):
    torch.manual_seed(torch.randint(0, 2 ** 31, (1,)).item() + 1)  # whatever state the process is in
    kdistill.finetune(str(base), "sst2", output_dir=out, data_dir=str(glue_dir), max_train_samples=64, max_eval_samples=32,
                      max_steps=2, batch_size=16, eval_steps=2, seed=seed, max_length=32)
    return load_file(out / "model.safetensors"), json.loads((out / "train_results.json").read_text())


def test_a_fresh_head_is_the_same_in_two_runs_with_one_seed_and_differs_with_another(tmp_path, tiny_tokenizer, glue_dir):
    base = _headless_base(tmp_path / "base", tiny_tokenizer)
    (a, ra), (b, rb) = (_finetuned(base, tmp_path / n, glue_dir, 42) for n in ("a", "b"))
    c, rc = _finetuned(base, tmp_path / "c", glue_dir, 43)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["classifier.weight"], c["classifier.weight"])
    # each run records its student's initialisation (what a gold-only twin is checked against)
    assert len(ra["student_init_sha256"]) == 64 and ra["student_init_sha256"] == rb["student_init_sha256"]
    assert rc["student_init_sha256"] != ra["student_init_sha256"]
