"""Loss terms (pure functions of tensors). See :mod:`kdistill.losses.kd`."""

from kdistill.losses.kd import (hard_label_ce, hidden_cosine, logit_mse, multilabel_bce, multilabel_soft_kl, regression_mse,
                               soft_target_kl)

__all__ = ["soft_target_kl", "logit_mse", "hard_label_ce", "regression_mse", "hidden_cosine", "multilabel_soft_kl",
           "multilabel_bce"]
