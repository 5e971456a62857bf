"""Word-level alignment of hidden states between two tokenizers (pure functions).

When teacher and student tokenize the same text differently (e.g. MPNet's and BERT's WordPiece vocabularies), their
token sequences have different lengths and boundaries, so a token-by-token hidden-state loss has nothing to pair.
Both tokenizations, however, cover the same whitespace-separated words of the raw text: each model's token states are
mean-pooled per word (``word_ids`` from :func:`kdistill.data.batching.word_index`, -1 = no word) and the loss pairs
word with word, over the words both models saw (truncation can cut a word from one side only).
"""

from __future__ import annotations

import torch

from kdistill.errors import KDistillError


def pool_words(hidden: torch.Tensor, word_ids: torch.Tensor, num_words: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of the token states of each word.

    Args:
        hidden: ``[B, L, H]`` token states.
        word_ids: ``[B, L]`` long, the word of each token, ``-1`` for special tokens and padding.
        num_words: ``W``, the number of word slots (at least ``max(word_ids) + 1``).

    Returns:
        ``(pooled [B, W, H], present [B, W] bool)``; a word with no token has a zero vector and ``present`` False.

    Raises:
        KDistillError: shapes that do not match (``[B, L, H]`` vs ``[B, L]``).
    """
    if hidden.dim() != 3 or tuple(word_ids.shape) != tuple(hidden.shape[:2]):
        raise KDistillError(f"pool_words needs hidden [B, L, H] and word_ids [B, L]; got {tuple(hidden.shape)} and "
                            f"{tuple(word_ids.shape)}")
    slots = torch.arange(num_words, device=word_ids.device)
    member = (word_ids.unsqueeze(-1) == slots).to(hidden.dtype)  # [B, L, W]
    counts = member.sum(dim=1)  # [B, W]
    pooled = torch.einsum("blw,blh->bwh", member, hidden) / counts.clamp(min=1).unsqueeze(-1)
    return pooled, counts > 0


def word_aligned_cosine(student_hidden: torch.Tensor, student_word_ids: torch.Tensor, teacher_hidden: torch.Tensor,
                        teacher_word_ids: torch.Tensor) -> torch.Tensor:
    """DistilBERT's L_cos (Sanh et al. 2019, Sec. 3), word by word across tokenizers: mean of ``1 − cos(w_s, w_t)``
    over the words both sides hold, ``w`` the mean of a word's token states (:func:`pool_words`).

    Args:
        student_hidden: ``[B, L_s, H]``; student_word_ids: ``[B, L_s]``.
        teacher_hidden: ``[B, L_t, H]`` (same width ``H``); teacher_word_ids: ``[B, L_t]``.

    Returns:
        Scalar in ``[0, 2]`` (0 with the graph kept when no word is shared).

    Raises:
        KDistillError: different widths or batch sizes, or mismatched word-id shapes.
    """
    if student_hidden.shape[0] != teacher_hidden.shape[0] or student_hidden.shape[-1] != teacher_hidden.shape[-1]:
        raise KDistillError(f"word_aligned_cosine needs the same batch size and width; got student "
                            f"{tuple(student_hidden.shape)} and teacher {tuple(teacher_hidden.shape)}; set --cos-weight 0 "
                            "for students narrower than the teacher")
    num_words = int(max(student_word_ids.max().item(), teacher_word_ids.max().item(), -1)) + 1
    if num_words == 0:
        return student_hidden.sum() * 0.0
    dtype = torch.promote_types(student_hidden.dtype, torch.float32)
    ws, ps = pool_words(student_hidden.to(dtype), student_word_ids, num_words)
    wt, pt = pool_words(teacher_hidden.to(dtype), teacher_word_ids, num_words)
    both = ps & pt
    if not bool(both.any()):
        return student_hidden.sum() * 0.0
    cos = torch.nn.functional.cosine_similarity(ws[both], wt[both], dim=-1, eps=1e-8)
    return (1.0 - cos).mean()


__all__ = ["pool_words", "word_aligned_cosine"]
