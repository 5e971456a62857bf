"""Recipes: each method described as data, run by one lifecycle (:func:`run_recipe`).

* :mod:`~kdistill.recipes.base` — :class:`Recipe`, :class:`Stage`, :class:`Prepared`, :func:`run_recipe`, :data:`RECIPES`;
* :mod:`~kdistill.recipes.kd` — ``kd`` (Hinton / DistilBERT L_cos / Tang MSE, BiLSTM students) and ``finetune``;
* :mod:`~kdistill.recipes.tinybert` — ``tinybert`` (intermediate → prediction stages);
* :mod:`~kdistill.recipes.general` — ``general`` (TinyBERT's or DistilBERT's general distillation on streamed text);
* :mod:`~kdistill.recipes.mlm_head` — ``mlm-head`` (a masked-LM head fitted onto a frozen encoder);
* :mod:`~kdistill.recipes.compress` — prune → recover rounds that call the ``kd`` recipe;
* :mod:`~kdistill.recipes.chain` — ``kdistill run``: fine-tune the teacher if needed, then distil;
* :mod:`~kdistill.recipes.self_distill` — ``early-exit`` (exits taught by the final layer) and ``born-again``.

A new method is one new module that builds a :class:`Recipe` and calls :func:`register`.
"""

from kdistill.recipes.base import RECIPES, Prepared, Recipe, RunResult, Stage, get_recipe, register, run_recipe
from kdistill.recipes import general, kd, mlm_head, self_distill, tinybert  # noqa: E402,F401 - register the built-in recipes
from kdistill.recipes.chain import run_chain  # noqa: E402
from kdistill.recipes.compress import run_compress  # noqa: E402

__all__ = ["RECIPES", "Prepared", "Recipe", "RunResult", "Stage", "get_recipe", "register", "run_recipe",
           "run_chain", "run_compress"]
