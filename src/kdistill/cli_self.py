"""Self-distillation commands (born-again, early exits; registered on :data:`kdistill.cli.app`)."""

from __future__ import annotations
