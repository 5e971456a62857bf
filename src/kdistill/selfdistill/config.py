"""Typed configuration of self-distillation runs: defined in :mod:`kdistill.config` (methods and runs), named here
too for existing imports."""

from __future__ import annotations

from kdistill.config import ENTROPY_GRID, MAX_PROB_GRID, BornAgainConfig, EarlyExitRunConfig, ExitConfig, SweepConfig

__all__ = ["BornAgainConfig", "EarlyExitRunConfig", "ExitConfig", "SweepConfig", "ENTROPY_GRID", "MAX_PROB_GRID"]
