"""Vocabulary pruning: keep only the token embeddings a task's corpus uses (plus special tokens).

The word-embedding matrix of a small BERT is a large share of its parameters (all-MiniLM-L6-v2:
30522 × 384 ≈ 11.7 M of 22.7 M) and a task corpus uses a fraction of it. Pruning keeps the rows of
the token ids that occur when the corpus is tokenised, plus every special / added token, in their
original order, and writes a tokenizer whose vocabulary is exactly those tokens, so that

    new_tokenizer(text).input_ids == old_to_new[old_tokenizer(text).input_ids]

and the pruned model gives the same logits as the original on every corpus text.

Limitation (documented, not a bug): WordPiece segments a word greedily (longest match first).
Because the kept vocabulary is a subset containing every piece the corpus produced, corpus words
tokenise exactly as before; a word *outside* the corpus whose pieces were dropped splits into smaller
pieces (every single-character piece is kept by default; without them it becomes ``[UNK]``), so the
pruned model can differ from the original on new text. Prune with the task's full corpus (train +
dev + test texts) to be safe.

Supported: WordPiece tokenizers (BERT, DistilBERT, ELECTRA, MiniLM …) with a ``tokenizers``
backend. Others (BPE: RoBERTa; Unigram: XLM-R) raise :class:`~kdistill.errors.ModelError`.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import AutoTokenizer, PreTrainedModel

from kdistill.errors import KDistillError, ModelError


@dataclass
class VocabPruneResult:
    """What :func:`prune_vocabulary` returns.

    Attributes:
        model: the model with ``len(kept_ids)`` embedding rows (a new object; the input is unchanged).
        tokenizer: the remapped tokenizer (same class as the original).
        kept_ids: ``[V']`` original ids kept, increasing; new id ``i`` is old id ``kept_ids[i]``.
    """

    model: PreTrainedModel
    tokenizer: object
    kept_ids: torch.Tensor

    def old_to_new(self, old_vocab_size: int) -> torch.Tensor:
        """``[V]`` map from old to new ids (−1 for dropped tokens)."""
        table = torch.full((old_vocab_size,), -1, dtype=torch.long)
        table[self.kept_ids] = torch.arange(len(self.kept_ids))
        return table

    def save(self, directory: str | Path) -> Path:
        """``save_pretrained`` the model and the tokenizer into ``directory`` (they load with the Auto classes)."""
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        return Path(directory)


def corpus_token_ids(tokenizer, texts: Iterable[str], text_pairs: Iterable[str] | None = None, *,
                     batch_size: int = 1000) -> set[int]:
    """Token ids the tokenizer produces on ``texts`` (and sentence pairs, if given), special tokens included."""
    texts = list(texts)
    pairs = list(text_pairs) if text_pairs is not None else None
    if pairs is not None and len(pairs) != len(texts):
        raise KDistillError(f"got {len(texts)} texts and {len(pairs)} second texts; pass one pair per example")
    ids: set[int] = set()
    for start in range(0, len(texts), batch_size):
        a = texts[start:start + batch_size]
        b = pairs[start:start + batch_size] if pairs is not None else None
        for row in tokenizer(a, b, truncation=False)["input_ids"]:
            ids.update(row)
    return ids


def alphabet_token_ids(tokenizer) -> set[int]:
    """Ids of the single-character pieces, word-initial (``a``) and continuation (``##a``).

    With these kept, WordPiece can still spell out a word none of whose longer pieces survived
    pruning, instead of mapping it to ``[UNK]``.
    """
    prefix = _continuation_prefix(tokenizer)
    ids = set()
    for token, i in tokenizer.get_vocab().items():
        core = token[len(prefix):] if prefix and token.startswith(prefix) else token
        if len(core) == 1:
            ids.add(i)
    return ids


def _continuation_prefix(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    if backend is None:
        return "##"
    return json.loads(backend.to_str())["model"].get("continuing_subword_prefix") or "##"


def kept_token_ids(tokenizer, texts: Iterable[str], text_pairs: Iterable[str] | None = None, *,
                   keep_alphabet: bool = True) -> torch.Tensor:
    """``[V']`` increasing ids: those the corpus uses, all special and added tokens, and (``keep_alphabet``)
    every single-character piece (:func:`alphabet_token_ids`).

    Keeping a superset of the corpus's pieces never changes how a corpus word is segmented
    (WordPiece takes the longest matching piece, and no kept piece is longer than the original match).

    Raises:
        KDistillError: an empty corpus.
    """
    used = corpus_token_ids(tokenizer, texts, text_pairs)
    if not used:
        raise KDistillError("vocabulary pruning needs a non-empty corpus; pass the task's texts")
    keep = used | set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}).keys())
    if keep_alphabet:
        keep |= alphabet_token_ids(tokenizer)
    return torch.tensor(sorted(keep), dtype=torch.long)


def prune_embeddings(model: PreTrainedModel, kept_ids: torch.Tensor) -> PreTrainedModel:
    """A copy of ``model`` whose word embeddings (and tied/untied output embeddings and bias) keep rows ``kept_ids``.

    Updates ``config.vocab_size`` and the config's special-token ids (``pad_token_id`` …) to the new
    numbering, and the embedding ``padding_idx``. Records ``config.kdistill_vocab_pruned``.

    Args:
        model: any Hugging Face model with ``get_input_embeddings()``.
        kept_ids: ``[V']`` increasing original ids.

    Raises:
        ModelError: ids out of range, or a ``pad_token_id`` that is not kept.
    """
    import copy

    old = model.get_input_embeddings()
    vocab = old.weight.shape[0]
    kept_ids = kept_ids.to(torch.long).cpu()
    if len(kept_ids) == 0 or int(kept_ids.min()) < 0 or int(kept_ids.max()) >= vocab:
        raise ModelError(f"kept token ids must lie in 0..{vocab - 1}; the tokenizer and model vocabularies differ")
    remap = {int(o): n for n, o in enumerate(kept_ids.tolist())}
    new_model = copy.deepcopy(model)
    cfg = new_model.config
    pad = getattr(cfg, "pad_token_id", None)
    if pad is not None and int(pad) not in remap:
        raise ModelError(f"pad token id {pad} is not among the kept ids; keep the tokenizer's special tokens")
    emb = new_model.get_input_embeddings()
    new_emb = nn.Embedding(len(kept_ids), emb.weight.shape[1], padding_idx=remap.get(emb.padding_idx) if emb.padding_idx is not None else None,
                           device=emb.weight.device, dtype=emb.weight.dtype)
    with torch.no_grad():
        new_emb.weight.copy_(emb.weight.index_select(0, kept_ids.to(emb.weight.device)))
    new_model.set_input_embeddings(new_emb)
    _prune_output_embeddings(new_model, kept_ids, tied=bool(getattr(cfg, "tie_word_embeddings", False)))
    cfg.vocab_size = len(kept_ids)
    for attr in ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id", "mask_token_id", "unk_token_id"):
        value = getattr(cfg, attr, None)
        if isinstance(value, int):
            setattr(cfg, attr, remap.get(value))
    embeddings = getattr(new_model.base_model, "embeddings", None)
    if embeddings is not None and hasattr(embeddings, "padding_idx") and pad is not None:
        embeddings.padding_idx = remap[int(pad)]  # RoBERTa-style position ids read it
    cfg.kdistill_vocab_pruned = {"original_vocab_size": vocab, "kept": len(kept_ids)}
    return new_model


def _prune_output_embeddings(model: PreTrainedModel, kept_ids: torch.Tensor, *, tied: bool) -> None:
    """Slice an MLM decoder (``get_output_embeddings()``) and its bias to ``kept_ids``; re-tie when tied."""
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if out is None:
        return
    idx = kept_ids.to(out.weight.device)
    if tied:
        out.weight = model.get_input_embeddings().weight
    else:
        out.weight = nn.Parameter(out.weight.detach().index_select(0, idx).clone())
    if getattr(out, "bias", None) is not None:
        out.bias = nn.Parameter(out.bias.detach().index_select(0, idx).clone())
    if hasattr(out, "out_features"):
        out.out_features = len(kept_ids)
    for module in model.modules():  # BERT's MLM head keeps its own reference to the decoder bias
        if module is not out and isinstance(getattr(module, "bias", None), nn.Parameter) and getattr(module, "decoder", None) is out:
            module.bias = out.bias


def remap_tokenizer(tokenizer, kept_ids: torch.Tensor):
    """A tokenizer whose vocabulary is ``kept_ids`` of ``tokenizer``'s, renumbered ``0..V'−1`` in the same order.

    Rewrites the ``tokenizers`` JSON of a WordPiece tokenizer (vocabulary, added tokens, the special
    ids of the post-processor) and a ``vocab.txt``, and reloads it with ``AutoTokenizer``, so the
    result has the original class and settings (lower-casing, max length, special tokens).

    Raises:
        ModelError: a slow tokenizer or a non-WordPiece model (BPE, Unigram): vocabulary pruning
            would need their merges / scores rewritten, which is not supported.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ModelError("vocabulary pruning needs a fast (tokenizers-backed) tokenizer; load it with AutoTokenizer")
    spec = json.loads(backend.to_str())
    kind = spec.get("model", {}).get("type")
    if kind != "WordPiece":
        raise ModelError(f"vocabulary pruning supports WordPiece tokenizers (BERT, DistilBERT, ELECTRA), not {kind}; "
                         "skip vocabulary pruning for this model")
    old_vocab = spec["model"]["vocab"]
    id_to_token = {i: t for t, i in old_vocab.items()}
    for added in spec.get("added_tokens", []):
        id_to_token.setdefault(added["id"], added["content"])
    kept = [int(i) for i in kept_ids.tolist()]
    missing = [i for i in kept if i not in id_to_token]
    if missing:
        raise ModelError(f"kept ids {missing[:5]} are not in the tokenizer's vocabulary; the tokenizer and model differ")
    remap = {old: new for new, old in enumerate(kept)}
    spec["model"]["vocab"] = {id_to_token[old]: new for old, new in remap.items()}
    spec["added_tokens"] = [{**a, "id": remap[a["id"]]} for a in spec.get("added_tokens", []) if a["id"] in remap]
    _remap_post_processor(spec.get("post_processor"), remap)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        (Path(tmp) / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False))
        tokens = [id_to_token[old] for old in kept]
        (Path(tmp) / "vocab.txt").write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
        new = AutoTokenizer.from_pretrained(tmp)
        new.name_or_path = getattr(tokenizer, "name_or_path", "")
    return new


def _remap_post_processor(proc: dict | None, remap: dict[int, int]) -> None:
    """Renumber the special-token ids of a (sequence of) TemplateProcessing / BertProcessing post-processor(s)."""
    if not proc:
        return
    for sub in proc.get("processors", []):
        _remap_post_processor(sub, remap)
    for entry in (proc.get("special_tokens") or {}).values():
        entry["ids"] = [remap[i] for i in entry["ids"]]
    for key in ("sep", "cls"):
        if isinstance(proc.get(key), list) and len(proc[key]) == 2:
            proc[key] = [proc[key][0], remap[proc[key][1]]]


def prune_vocabulary(model: PreTrainedModel, tokenizer, texts: Sequence[str], text_pairs: Sequence[str] | None = None,
                     *, keep_alphabet: bool = True) -> VocabPruneResult:
    """Keep only the tokens the corpus ``texts`` (and ``text_pairs``) use, plus special tokens.

    Args:
        model: the model (any head; a tied MLM decoder is sliced too).
        tokenizer: its fast WordPiece tokenizer.
        texts / text_pairs: the task corpus (all splits, for the same outputs on all of them).
        keep_alphabet: also keep every single-character piece (about 1,000 for BERT's vocabulary), so
            a word outside the corpus is spelled out in smaller pieces instead of becoming ``[UNK]``.

    Returns:
        :class:`VocabPruneResult` — a new model and tokenizer that work together and give the
        original logits on the corpus (words outside it may segment differently, see the module doc).

    Raises:
        ModelError: a non-WordPiece tokenizer, or tokenizer and model vocabularies that differ.
        KDistillError: an empty corpus.
    """
    vocab = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > vocab:
        raise ModelError(f"the tokenizer has {len(tokenizer)} tokens but the model only {vocab} embeddings; pass the model's own tokenizer")
    kept = kept_token_ids(tokenizer, texts, text_pairs, keep_alphabet=keep_alphabet)
    new_tokenizer = remap_tokenizer(tokenizer, kept)
    return VocabPruneResult(prune_embeddings(model, kept), new_tokenizer, kept)
