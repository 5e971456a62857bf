"""Typed run configuration (pydantic): the CLI and the Python API both build these objects.

Split by concern: :mod:`~kdistill.config.base` (the strict base), :mod:`~kdistill.config.data`,
:mod:`~kdistill.config.students`, :mod:`~kdistill.config.methods` (each method's settings),
:mod:`~kdistill.config.train` (the engine's), :mod:`~kdistill.config.schedules`, :mod:`~kdistill.config.run` (whole
runs) and :mod:`~kdistill.config.files` (flat options and ``--config FILE``). Every name is importable from here.
"""

from __future__ import annotations

from kdistill.config.base import ConfigBase
from kdistill.config.data import DataConfig
from kdistill.config.students import (LayersFromTeacherStudent, SpecStudent, PretrainedStudent, BiLSTMStudent,
                                      StudentConfig, STUDENT_KINDS, student_config, GENERAL_STUDENT)
from kdistill.config.schedules import KINDS, KNOBS, TERM_NAMES, Schedule, parse_schedule, check_schedules
from kdistill.config.methods import (DistillConfig, AugmentConfig, TinyBertConfig, DistilBertGeneralConfig,
                                     MiniLMConfig, ExitConfig, SweepConfig, ENTROPY_GRID, MAX_PROB_GRID)
from kdistill.config.train import TrainConfig, ExportConfig
from kdistill.config.run import (RunConfig, GeneralDistillConfig, MlmHeadConfig, CompressConfig, TeacherStageConfig,
                                 ChainConfig, EarlyExitRunConfig, BornAgainConfig)
from kdistill.config.files import (SECTIONS, RUN_SECTIONS, STUDENT_OPTIONS, split_options, from_flat, Default, SST2,
                                   LAYERS_FROM_TEACHER, KD, FILE_KINDS, read_config_file, load_config, override_config)

__all__ = ['ConfigBase', 'DataConfig', 'LayersFromTeacherStudent', 'SpecStudent', 'PretrainedStudent', 'BiLSTMStudent',
           'StudentConfig', 'STUDENT_KINDS', 'student_config', 'GENERAL_STUDENT', 'KINDS', 'KNOBS', 'TERM_NAMES',
           'Schedule', 'parse_schedule', 'check_schedules', 'DistillConfig', 'AugmentConfig', 'TinyBertConfig',
           'DistilBertGeneralConfig', 'MiniLMConfig', 'ExitConfig', 'SweepConfig', 'ENTROPY_GRID', 'MAX_PROB_GRID',
           'TrainConfig', 'ExportConfig', 'RunConfig', 'GeneralDistillConfig', 'MlmHeadConfig', 'CompressConfig',
           'TeacherStageConfig', 'ChainConfig', 'EarlyExitRunConfig', 'BornAgainConfig', 'SECTIONS', 'RUN_SECTIONS',
           'STUDENT_OPTIONS', 'split_options', 'from_flat', 'Default', 'SST2', 'LAYERS_FROM_TEACHER', 'KD',
           'FILE_KINDS', 'read_config_file', 'load_config', 'override_config']
