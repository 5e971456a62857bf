"""Self-distillation (issue 18): born-again students, early exits taught by the model's own final layer, and batched
adaptive inference.

* :mod:`~kdistill.selfdistill.modeling` — the ``kdistill-early-exit-*`` model types (any supported layout, pruned
  too): exits after every (or every k-th) layer, full-depth prediction by default; registered with ``AutoConfig`` /
  ``AutoModelForSequenceClassification`` on import of this package;
* :mod:`~kdistill.selfdistill.rules` — exit rules: entropy (FastBERT / DeeBERT), max probability, patience (PABEE);
* :mod:`~kdistill.selfdistill.adaptive` — batched adaptive inference (rows that exit leave the batch);
* :mod:`~kdistill.selfdistill.objective` — the exits' self-distillation objective (a term per exit);
* :mod:`~kdistill.selfdistill.sweep` — the speed–accuracy sweep, chosen on the held-out selection slice;
* :mod:`~kdistill.selfdistill.export` — per-segment ONNX graphs and their ONNX Runtime driver, parity-checked;
* :mod:`~kdistill.selfdistill.layout` — the base type and encoder layers under any kdistill type.

The recipes (``early-exit``, ``born-again``: Furlanello et al. 2018) and the flat-option Python API (``early_exit``,
``born_again``, ``exit_sweep``, ``export_early_exit``, ``exit_pipeline``) are :mod:`kdistill.recipes.self_distill` and
:mod:`kdistill.api` (recipes sit above this library tier).
"""

from kdistill.selfdistill.modeling import add_exits, is_early_exit, register_early_exit_classes, strip_exits
from kdistill.selfdistill.rules import ExitRule

register_early_exit_classes()


def __getattr__(name):
    if name == "OrtEarlyExit":  # needs onnxruntime: imported when asked for
        from kdistill.selfdistill.export import OrtEarlyExit

        return OrtEarlyExit
    raise AttributeError(f"module 'kdistill.selfdistill' has no attribute '{name}'")


__all__ = ["ExitRule", "OrtEarlyExit", "add_exits", "is_early_exit", "register_early_exit_classes", "strip_exits"]
