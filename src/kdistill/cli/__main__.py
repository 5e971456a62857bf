"""``python -m kdistill.cli``: the ``kdistill`` command line."""

from kdistill.cli import main

main()
