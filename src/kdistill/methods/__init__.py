"""Distillation methods as objectives for the one engine."""

from kdistill.methods.objectives import METHODS, Finetune, Objective, TeacherSignal, VanillaKD, make_objective

__all__ = ["METHODS", "Finetune", "Objective", "TeacherSignal", "VanillaKD", "make_objective"]
