"""Typed run configuration (pydantic): the CLI and the Python API both build these objects.

Split by concern: :mod:`~kdistill.config.base` (the strict base), :mod:`~kdistill.config.data`,
:mod:`~kdistill.config.students`, :mod:`~kdistill.config.methods` (each method's settings),
:mod:`~kdistill.config.train` (the engine's), :mod:`~kdistill.config.schedules`, :mod:`~kdistill.config.run` (whole
runs), :mod:`~kdistill.config.files` (``--config FILE``) and :mod:`~kdistill.config.merge` (the one merge: a file and
flat options → a config). Every name is importable from here.
"""

from __future__ import annotations

from kdistill.config.base import ConfigBase
from kdistill.config.data import DataConfig
from kdistill.config.students import (LayersFromTeacherStudent, SpecStudent, PretrainedStudent, BiLSTMStudent,
                                      StudentConfig, STUDENT_KINDS, student_config, GENERAL_STUDENT)
from kdistill.config.schedules import KINDS, KNOBS, TERM_NAMES, Schedule, parse_schedule, check_schedules
from kdistill.config.methods import (DistillConfig, AugmentConfig, TinyBertConfig, DistilBertGeneralConfig,
                                     MiniLMConfig, ExitConfig, SweepConfig, ENTROPY_GRID, MAX_PROB_GRID, FinetuneMethod,
                                     KDMethod, TinyBertMethod, METHODS, TinyBertGeneralObjective,
                                     DistilBertGeneralObjective, MiniLMGeneralObjective, GENERAL_OBJECTIVES)
from kdistill.config.train import TrainConfig, ExportConfig
from kdistill.config.run import (RunConfig, GeneralDistillConfig, MlmHeadConfig, CompressConfig, TeacherStageConfig,
                                 ChainConfig, EarlyExitRunConfig, BornAgainConfig, MethodConfig, migrate_run,
                                 GeneralObjective, migrate_general)
from kdistill.config.transfer import LabelConfig
from kdistill.config.files import FILE_KINDS, read_config_file, load_config
from kdistill.config.merge import merge, flat_names

__all__ = ['ConfigBase', 'DataConfig', 'LayersFromTeacherStudent', 'SpecStudent', 'PretrainedStudent', 'BiLSTMStudent',
           'StudentConfig', 'STUDENT_KINDS', 'student_config', 'GENERAL_STUDENT', 'KINDS', 'KNOBS', 'TERM_NAMES',
           'Schedule', 'parse_schedule', 'check_schedules', 'DistillConfig', 'AugmentConfig', 'TinyBertConfig',
           'DistilBertGeneralConfig', 'MiniLMConfig', 'ExitConfig', 'SweepConfig', 'ENTROPY_GRID', 'MAX_PROB_GRID',
           'FinetuneMethod', 'KDMethod', 'TinyBertMethod', 'METHODS', 'MethodConfig', 'migrate_run',
           'TinyBertGeneralObjective', 'DistilBertGeneralObjective', 'MiniLMGeneralObjective', 'GENERAL_OBJECTIVES',
           'GeneralObjective', 'migrate_general',
           'TrainConfig', 'ExportConfig', 'RunConfig', 'GeneralDistillConfig', 'MlmHeadConfig', 'CompressConfig',
           'TeacherStageConfig', 'ChainConfig', 'EarlyExitRunConfig', 'BornAgainConfig', 'FILE_KINDS',
           'read_config_file', 'load_config', 'merge', 'flat_names', 'LabelConfig']
