"""Folder locks: one kdistill process at a time in a run folder (``RUN/.kdistill.lock``) or an export's output.

A lock file holds ``{"pid", "host"}`` of its process. Taking it (read the holder, decide, write) is serialised by an
``flock`` on the folder, so two processes never both take it; a lock whose process is gone is taken over.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path

from kdistill.errors import KDistillError, os_error

LOCK_FILE = ".kdistill.lock"

__all__ = ["LOCK_FILE", "hold_lock", "live_holder", "is_this_process", "refuse_if_in_use", "in_use_message",
           "read_lock"]


def read_lock(path: Path) -> dict | None:
    """The holder ``{"pid", "host"}`` written in the lock file ``path``, or None (missing, unreadable, not JSON)."""
    try:
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def refuse_if_in_use(folder: str | Path) -> None:
    """Raise the one-line :class:`KDistillError` that names the live process whose lock is on ``folder`` (if any,
    and not this process): checked before any advice about the folder's contents, which cannot help while it runs."""
    holder = live_holder(Path(folder) / LOCK_FILE)
    if holder is not None and not _is_me(holder):
        raise KDistillError(in_use_message(Path(folder), holder))


def live_holder(path: Path) -> dict | None:
    """``{"pid", "host"}`` of the live process named by the lock file ``path``, or None (no lock, or a dead one's)."""
    holder = read_lock(path)
    return holder if holder is not None and _alive(holder) else None


def is_this_process(holder: dict) -> bool:
    """Whether the lock holder ``holder`` is this process."""
    return _is_me(holder)


def _me() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname()}


def _is_me(holder: dict) -> bool:
    return holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname()


def in_use_message(folder: Path, holder: dict) -> str:
    """The one line that refuses ``folder`` while the live process ``holder`` uses it."""
    return (f"'{folder}' is in use by another kdistill run (process {holder.get('pid')} on {holder.get('host')}); "
            "wait for it to end or choose another --output")


@contextlib.contextmanager
def _guard(folder: Path):
    """Serialise the read-decide-write of a lock file in ``folder`` among processes (``flock`` on the folder itself).

    Where the platform or file system has no ``flock`` it does nothing: the lock file alone then decides, as before.
    """
    try:
        import fcntl

        fd = os.open(folder, os.O_RDONLY)
    except (ImportError, OSError):
        fd = None
    try:
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd is closed
        yield
    finally:
        if fd is not None:
            os.close(fd)


@contextlib.contextmanager
def hold_lock(path: Path, busy, *, reentrant: bool = True):
    """Hold the lock file ``path`` (``{"pid", "host"}`` of this process) while the block runs.

    Taking it (read the holder, decide, write) happens under :func:`_guard`, so two processes can never both take
    it, even when both find a stale lock; a lock whose process is gone is taken over. The file is written whole
    before the guard is left, so a reader never sees it half-written.

    Args:
        path: the lock file; its folder must exist.
        busy: ``holder -> message`` of the :class:`KDistillError` raised when a live process holds it.
        reentrant: when this process holds it already, run the block without taking it again (a stage of the same
            run); otherwise that, too, is refused.

    Raises:
        KDistillError: a live process holds the lock (``busy(holder)``, one line); an OS failure, one line.
    """
    me = _me()
    with _guard(path.parent):
        holder = read_lock(path)
        if holder is not None and _is_me(holder) and reentrant:
            held = False
        elif holder is not None and _alive(holder):
            raise KDistillError(busy(holder))
        else:
            try:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()  # stale (its process is gone) or unreadable
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                with os.fdopen(fd, "w") as f:
                    json.dump(me, f)
            except FileExistsError:  # a process without the guard took it meanwhile
                holder = read_lock(path) or {"pid": "?", "host": "?"}
                raise KDistillError(busy(holder)) from None
            except OSError as err:
                raise os_error(err, path.parent, "write the lock file") from None
            held = True
    try:
        yield
    finally:
        if held:
            with _guard(path.parent):
                if read_lock(path) == me:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()


def _alive(holder: dict) -> bool:
    """Whether the lock holder's process runs (on another host: assume it does)."""
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder.get("pid", -1)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, OverflowError):
        return True
    return True
