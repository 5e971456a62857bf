"""Hyper-parameter search of a distillation run (``kdistill search``): Optuna's TPE sampler (Akiba et al. 2019),
pruning on intermediate evaluations, SQLite storage (resumable), trials scored on the held-out selection slice of the
train split and never on the dev split; see :mod:`kdistill.search.study`."""

from kdistill.search.space import (DEFAULT_RANGES, SEARCHABLE, ParamRange, SearchSpace, build_space, default_params,
                                   parse_param)
from kdistill.search.study import SearchConfig, SearchResult, base_run_config, run_search, search
from kdistill.search.trial import run_scored, scoring_recipe

__all__ = ["DEFAULT_RANGES", "SEARCHABLE", "ParamRange", "SearchConfig", "SearchResult", "SearchSpace", "base_run_config",
           "build_space", "default_params", "parse_param", "run_scored", "run_search", "scoring_recipe", "search"]
