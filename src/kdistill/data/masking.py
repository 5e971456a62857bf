"""Dynamic masking for masked-language-model distillation (BERT, Devlin et al. 2019, Sec. 3.1; DistilBERT, Sanh et al. 2019).

Each call draws a fresh mask (dynamic masking, as RoBERTa and DistilBERT do), from a generator the caller seeds, so
a resumed run that replays a batch with the same generator state draws the same mask.
"""

from __future__ import annotations

import torch

from kdistill.errors import KDistillError


def mask_tokens(input_ids: torch.Tensor, attention_mask: torch.Tensor, special_tokens_mask: torch.Tensor, *,
                mask_token_id: int, vocab_size: int, generator: torch.Generator, mlm_probability: float = 0.15,
                mask_share: float = 0.8, random_share: float = 0.1, word_ids: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose ``mlm_probability`` of the real, non-special tokens as prediction targets; of those, replace
    ``mask_share`` by the mask token, ``random_share`` by a random token, and keep the rest (BERT's 80 / 10 / 10).

    Args:
        input_ids: ``[B, L]`` long.
        attention_mask: ``[B, L]``, 1 = real token.
        special_tokens_mask: ``[B, L]``, 1 = [CLS]/[SEP]/... (never chosen).
        mask_token_id: the tokenizer's mask id; vocab_size: random replacements are drawn from ``[0, vocab_size)``.
        generator: the source of randomness (seeded by the caller: the same state gives the same mask).
        mlm_probability: share of candidate tokens chosen (0.15).
        mask_share, random_share: of the chosen, replaced by the mask token / by a random token; the rest are kept.
        word_ids: ``[B, L]`` whole-word masking: the word of each token (-1 = none); a word is chosen or not as a
            whole (with probability ``mlm_probability`` per word), every piece of it then a target.

    Returns:
        ``(masked_input_ids [B, L], labels [B, L])``: ``labels`` holds the original id at target positions and -100
        elsewhere (what ``CrossEntropyLoss(ignore_index=-100)`` skips).

    Raises:
        KDistillError: shares outside [0, 1] or ``mask_share + random_share > 1``; shapes that differ.
    """
    if not 0 < mlm_probability < 1 or not 0 <= mask_share <= 1 or not 0 <= random_share <= 1 or mask_share + random_share > 1:
        raise KDistillError(f"masking shares must be probabilities with mask + random <= 1; got p={mlm_probability}, "
                            f"mask={mask_share}, random={random_share}")
    if attention_mask.shape != input_ids.shape or special_tokens_mask.shape != input_ids.shape:
        raise KDistillError(f"mask_tokens: input_ids {tuple(input_ids.shape)}, attention_mask {tuple(attention_mask.shape)} "
                            f"and special_tokens_mask {tuple(special_tokens_mask.shape)} must have one shape")
    candidate = attention_mask.bool() & ~special_tokens_mask.bool()
    if word_ids is None:
        chosen = (torch.rand(input_ids.shape, generator=generator) < mlm_probability) & candidate
    else:
        n_words = int(word_ids.max().item()) + 1 if word_ids.numel() else 0
        pick = torch.rand((input_ids.shape[0], max(n_words, 1)), generator=generator) < mlm_probability
        chosen = torch.gather(pick, 1, word_ids.clamp(min=0)) & (word_ids >= 0) & candidate
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    roll = torch.rand(input_ids.shape, generator=generator)
    to_mask = chosen & (roll < mask_share)
    to_random = chosen & (roll >= mask_share) & (roll < mask_share + random_share)
    masked = input_ids.clone()
    masked[to_mask] = mask_token_id
    masked[to_random] = torch.randint(vocab_size, (int(to_random.sum()),), generator=generator, dtype=input_ids.dtype)
    return masked, labels


class Masker:
    """A batch transform (``Objective.prepare_batch``): BERT's dynamic masking of a collated batch.

    ``masker(batch, generator)`` replaces ``input_ids`` by their masked copy and adds ``labels`` (the original ids at
    the target positions, -100 elsewhere); special tokens (the tokenizer's ``all_special_ids``) and padding are never
    targets. With ``whole_words`` the batch must hold ``word_ids``.

    Args:
        tokenizer: gives ``mask_token_id``, ``all_special_ids`` and the vocabulary size (random replacements).
        mlm_probability, mask_share, random_share, whole_words: see :func:`mask_tokens`.

    Raises:
        KDistillError: a tokenizer without a mask token.
    """

    def __init__(self, tokenizer, *, mlm_probability: float = 0.15, mask_share: float = 0.8, random_share: float = 0.1,
                 whole_words: bool = False):
        if getattr(tokenizer, "mask_token_id", None) is None:
            raise KDistillError(f"masked-LM distillation needs a tokenizer with a mask token; {type(tokenizer).__name__} "
                                "has none")
        self.mask_token_id, self.vocab_size = int(tokenizer.mask_token_id), len(tokenizer)
        self.special = torch.tensor(sorted(set(int(i) for i in tokenizer.all_special_ids)), dtype=torch.long)
        self.p, self.mask_share, self.random_share, self.whole_words = mlm_probability, mask_share, random_share, whole_words

    def __call__(self, batch: dict, generator: torch.Generator) -> dict:
        ids = batch["input_ids"]
        special = torch.isin(ids, self.special.to(ids.device)).long()
        words = batch.get("word_ids") if self.whole_words else None
        if self.whole_words and words is None:
            raise KDistillError("whole-word masking needs word_ids in the batch")
        masked, labels = mask_tokens(ids.cpu(), batch["attention_mask"].cpu(), special.cpu(),
                                     mask_token_id=self.mask_token_id, vocab_size=self.vocab_size, generator=generator,
                                     mlm_probability=self.p, mask_share=self.mask_share, random_share=self.random_share,
                                     word_ids=None if words is None else words.cpu())
        return {**batch, "input_ids": masked.to(ids.device), "labels": labels.to(ids.device)}


__all__ = ["Masker", "mask_tokens"]
