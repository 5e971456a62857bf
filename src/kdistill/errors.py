"""User-facing errors.

Every problem a user can fix (bad data, bad paths, bad options) is raised as a
:class:`KDistillError` whose message is one line saying what is wrong and what to do.
The CLI prints it without a traceback and exits with status 2.
"""

from __future__ import annotations

from pathlib import Path


class KDistillError(Exception):
    """A problem the user can fix; ``str(err)`` is a one-line instruction."""


class DataError(KDistillError):
    """Missing, malformed or inconsistent data files, columns or labels."""


class ModelError(KDistillError):
    """A teacher/student that cannot be used as asked (untrained head, unsupported architecture, vocab mismatch)."""


class TrainingDiverged(KDistillError):
    """A NaN or infinite loss stopped training; the last good checkpoint is kept."""


class TeacherAtBaseline(ModelError):
    """``kdistill run``: the fine-tuned teacher is no better than a constant prediction on its held-out rows, so the
    chain stops before distilling (the teacher folder is kept)."""


def os_error(err: OSError, path: Path, doing: str) -> KDistillError:
    """One line for an OS failure: what failed, where, and what to do."""
    import errno

    what = err.strerror or type(err).__name__
    if err.errno == errno.ENOSPC:
        advice = "free disk space, then --resume"
    elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        advice = "make it writable or choose another --output"
    else:
        advice = "check the path"
    return KDistillError(f"cannot {doing} in '{path}' ({what}); {advice}")


class OptionError(KDistillError):
    """An option given on the command line or as a keyword argument has a value its config field refuses.

    ``option`` is the flat name (``alpha``); the CLI prints it as its flag (``--alpha``). The message is one line:
    ``alpha: Input should be less than or equal to 1 (got 1.5)``.
    """

    def __init__(self, option: str, message: str, value=None):
        self.option, self.reason, self.value = option, message, value
        super().__init__(f"{option}: {message} (got {value!r})")
