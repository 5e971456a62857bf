"""Hybrid compression: importance scores, structured pruning, vocabulary pruning, low-rank factorisation.

* :mod:`~kdistill.compress.importance` — head / FFN-neuron importance (Michel et al. 2019) via gates on hooks;
* :mod:`~kdistill.compress.prune` — remove heads, FFN neurons and layers so the model really shrinks;
* :mod:`~kdistill.compress.vocab` — keep only the corpus' token embeddings and remap the tokenizer;
* :mod:`~kdistill.compress.lowrank` — truncated-SVD factorisation of dense layers;
* :mod:`~kdistill.compress.modeling` — the ``kdistill-compressed-*`` model types that save and load them.

Importing this package registers the compressed types with ``AutoConfig``, ``AutoModel`` and
``AutoModelForSequenceClassification``, so a pruned / factorised model saved with
``save_pretrained`` loads back with ``AutoModelForSequenceClassification.from_pretrained(path)``
(or :func:`load_pruned`).
"""

from kdistill.compress.importance import (Importance, compute_importance, gated, gated_loss, importance_batches,
                                          layers_by_importance, normalize_per_layer)
from kdistill.compress.lowrank import factorize, factorize_linear, rank_for_energy
from kdistill.compress.modeling import (
    ffn_per_layer,
    heads_per_layer,
    is_compressed,
    load_compressed,
    register_auto_classes,
)
from kdistill.compress.prune import (
    load_pruned,
    lowest_heads,
    lowest_neurons,
    parameter_count,
    prune_ffn,
    prune_heads,
    prune_layers,
)
from kdistill.compress.vocab import VocabPruneResult, prune_embeddings, prune_vocabulary, remap_tokenizer

from kdistill.compress.rounds import RoundRecord, targets_met  # noqa: E402

register_auto_classes()

__all__ = [
    "RoundRecord", "targets_met", "layers_by_importance", "importance_batches",
    "Importance", "compute_importance", "gated", "gated_loss", "normalize_per_layer",
    "factorize", "factorize_linear", "rank_for_energy",
    "ffn_per_layer", "heads_per_layer", "is_compressed", "load_compressed", "register_auto_classes",
    "load_pruned", "lowest_heads", "lowest_neurons", "parameter_count", "prune_ffn", "prune_heads", "prune_layers",
    "VocabPruneResult", "prune_embeddings", "prune_vocabulary", "remap_tokenizer",
]
