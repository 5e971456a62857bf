"""``kdistill search`` and ``kdistill provision`` (registered on :data:`kdistill.cli.app`)."""

from __future__ import annotations
