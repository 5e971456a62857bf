"""Layer mapping ``m → g(m)``: which teacher layer each student layer learns from (TinyBERT, Sec. 3.1).

Layers are numbered as in Hugging Face's ``hidden_states`` tuple: 0 is the embedding layer,
``1..N`` the Transformer layers. The embedding layer always maps to the embedding layer
(``g(0) = 0``, implicit: it is not part of the returned list), so ``hidden_states[m]`` of the
student is matched with ``hidden_states[g(m)]`` of the teacher, and the attention of student
layer ``m`` (``rec.scores[m - 1]`` of :func:`kdistill.students.capture.capture_attention`) with
that of teacher layer ``g(m)`` (``rec.scores[g(m) - 1]``).
"""

from __future__ import annotations

from typing import Sequence

from kdistill.errors import ModelError

RULES = ("uniform", "last", "first")


def layer_map(n_student: int, n_teacher: int, rule: str | Sequence[int] = "uniform") -> list[int]:
    """The teacher layer ``g(m)`` for each student layer ``m = 1..M`` (1-based; ``g(0) = 0`` implicit).

    Rules (``M = n_student``, ``N = n_teacher``):

    * ``"uniform"``: ``g(m) = ⌊m·N/M⌋`` -- TinyBERT's uniform strategy (Jiao et al. 2020, Sec. 3.1
      and Sec. 4.5, "g(m) = 3·m" for 4 → 12: ``[3, 6, 9, 12]``). When ``M`` does not divide ``N`` the
      floor spreads the layers as evenly as integers allow and still ends on ``N``
      (4 student / 6 teacher layers → ``[1, 3, 4, 6]``).
    * ``"last"``: ``g(m) = N − M + m``, the top ``M`` teacher layers (TinyBERT's "top" strategy).
    * ``"first"``: ``g(m) = m``, the bottom ``M`` teacher layers ("bottom" strategy).
    * an explicit sequence of ``M`` strictly increasing teacher layers in ``1..N`` (e.g. ``[3, 6, 9, 12]``).

    Args:
        n_student: ``M``, number of student Transformer layers, ``1 <= M <= N``.
        n_teacher: ``N``, number of teacher Transformer layers.
        rule: a rule name or an explicit list (see :func:`parse_layer_map` for CLI strings).

    Returns:
        ``[g(1), ..., g(M)]``, strictly increasing, each in ``1..N``.

    Raises:
        ModelError: unknown rule, ``M`` outside ``1..N``, or an explicit list of the wrong length,
        out of range or not strictly increasing.
    """
    if n_teacher < 1 or not 1 <= n_student <= n_teacher:
        raise ModelError(
            f"layer map needs 1 <= student layers <= teacher layers, got {n_student} student and {n_teacher} teacher layers"
        )
    if isinstance(rule, str):
        name = rule.strip().lower()
        if name == "uniform":
            return [m * n_teacher // n_student for m in range(1, n_student + 1)]
        if name == "last":
            return [n_teacher - n_student + m for m in range(1, n_student + 1)]
        if name == "first":
            return list(range(1, n_student + 1))
        raise ModelError(f"unknown layer map rule '{rule}'; use one of {', '.join(RULES)} or a list like 3,6,9,12")
    try:
        layers = [int(g) for g in rule]
    except (TypeError, ValueError):
        raise ModelError(f"layer map must be a rule name or a list of integers, got {rule!r}") from None
    if (
        len(layers) != n_student
        or any(not 1 <= g <= n_teacher for g in layers)
        or any(a >= b for a, b in zip(layers, layers[1:]))
    ):
        raise ModelError(
            f"explicit layer map {layers} must list {n_student} strictly increasing teacher layers in 1..{n_teacher} "
            "(one per student layer; 0 = embeddings is implicit)"
        )
    return layers


def parse_layer_map(text: str) -> str | list[int]:
    """Parse a CLI layer-map string: ``"uniform"``, ``"last"``, ``"first"`` or comma-separated layers ``"3,6,9,12"``.

    Returns:
        The rule name (lower-cased) or the list of integers, to pass to :func:`layer_map`
        (which checks the list against the model depths).

    Raises:
        ModelError: neither a known rule nor a comma-separated list of integers.
    """
    value = text.strip().lower()
    if value in RULES:
        return value
    parts = [p.strip() for p in value.split(",")]
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise ModelError(
            f"cannot parse layer map '{text}'; use one of {', '.join(RULES)} or comma-separated teacher layers like 3,6,9,12"
        ) from None


__all__ = ["RULES", "layer_map", "parse_layer_map"]
