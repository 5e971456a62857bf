"""``kdistill`` command line (typer + rich): :data:`app` with every command registered.

* :mod:`kdistill.cli.common` — the app, exit codes, shared options and parsers;
* :mod:`kdistill.cli.commands` — distill, finetune, evaluate, report, export, run, general-distill, fit-mlm-head,
  augment, compress;
* :mod:`kdistill.cli.search` — search, provision;
* :mod:`kdistill.cli.self_distill` — early-exit, exit-sweep, born-again, export-early-exit.
"""

from kdistill.cli import commands, search, self_distill  # noqa: F401  (importing registers the commands on `app`)
from kdistill.cli.common import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_STOPPED, USER_ERRORS, app

__all__ = ["app", "main", "USER_ERRORS", "EXIT_BAD_INPUT", "EXIT_STOPPED", "EXIT_INTERRUPTED"]


def main() -> None:  # pragma: no cover
    app()
