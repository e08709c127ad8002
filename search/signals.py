"""Ctrl-C and SIGTERM stop effnas at a safe point, never inside a database write.

Python raises KeyboardInterrupt wherever the main thread is when the signal arrives. Inside a storage call that
leaves a transaction half done -- with SQLite the write lock stays held, and the clean-up's own write (failing
and requeueing the trial in flight) then waits for it until the busy timeout: a hang, seen in the SIGTERM test.
Here both signals still raise in the main thread (KeyboardInterrupt, or :class:`Terminated` for SIGTERM), at
once during training, data loading or anything else, but not while the main thread runs the storage's code
(SQLAlchemy, a database driver, Optuna's storages and ``tell``, effnas's fail-and-requeue): the signal is then
kept and re-delivered every ``RETRY`` seconds until the main thread is out of that code, and raised there. A
storage call that does not return within ``PATIENCE`` seconds (an unreachable server) is interrupted anyway.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from types import FrameType

from space.errors import Terminated

RETRY = 0.05
PATIENCE = 10.0
# Code that talks to the storage: a signal raised inside it could leave a transaction open.
STORAGE_MODULES = ("sqlalchemy", "sqlite3", "psycopg", "psycopg2", "alembic", "optuna.storages", "optuna.study._tell",
                   "search.lifecycle")

_state: dict = {"pending": None, "since": None}


def install(*, sigint: bool = True) -> None:
    """Route SIGTERM, and SIGINT unless it is ignored (``nohup``, a shell's ``cmd &``) or ``sigint`` is False,
    through the safe-point handler. Call from the main thread."""
    signal.signal(signal.SIGTERM, _handle)
    if sigint and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _handle)


def interruption(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def in_storage(frame: FrameType | None) -> bool:
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if any(module == name or module.startswith(name + ".") for name in STORAGE_MODULES):
            return True
        frame = frame.f_back
    return False


def _handle(signum: int, frame: FrameType | None) -> None:
    if _state["pending"] is None:
        _state["pending"], _state["since"] = signum, time.monotonic()
    if in_storage(frame) and time.monotonic() - _state["since"] < PATIENCE:
        timer = threading.Timer(RETRY, os.kill, (os.getpid(), _state["pending"]))
        timer.daemon = True
        timer.start()
        return
    pending = _state["pending"]
    _state["pending"] = _state["since"] = None
    raise interruption(pending)
