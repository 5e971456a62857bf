"""kdistill: knowledge distillation for BERT-family transformers.

The Python API mirrors the ``kdistill`` CLI: :func:`distill`, :func:`finetune`,
:func:`evaluate`, :func:`report`, :func:`run` (imported lazily, so ``import kdistill``
and the CLI start fast).
"""

from kdistill.errors import DataError, KDistillError, ModelError, TrainingDiverged

__version__ = "0.1.0"

_API = ("distill", "finetune", "evaluate", "report", "run", "general_distill", "search", "provision", "export",
        "compress", "fit_mlm_head", "early_exit", "born_again", "exit_sweep", "export_early_exit", "exit_pipeline",
        "label", "RunResult")


def __getattr__(name):
    if name in _API:
        from kdistill import api

        return getattr(api, name)
    raise AttributeError(f"module 'kdistill' has no attribute '{name}'")


__all__ = [*_API, "KDistillError", "DataError", "ModelError", "TrainingDiverged", "__version__"]
