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

from effnas.space.errors import Terminated

RETRY = 0.05
PATIENCE = 10.0
# Code that talks to the storage: a signal raised inside it could leave a transaction open.
STORAGE_MODULES = ("sqlalchemy", "sqlite3", "psycopg", "psycopg2", "alembic", "optuna.storages", "optuna.study._tell",
                   "effnas.search.lifecycle")

_state: dict = {"pending": None, "since": None, "timer": None, "raised": (None, 0.0)}
BURST = 1.0  # seconds: the same signal again this soon after it was raised is the same request (a process
# group's SIGTERM and the parent's to each worker), not a second one


def install(*, sigint: bool = True) -> None:
    """Route SIGTERM, and SIGINT unless it is ignored (a shell's ``cmd &`` ignores it in the background job) or
    ``sigint`` is False, through the safe-point handler. Call from the main thread."""
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
    now = time.monotonic()
    last, raised_at = _state["raised"]
    if _state["pending"] is None and signum == last and now - raised_at < BURST:
        return  # the same request delivered twice (or a retry that crossed the raise)
    if _state["pending"] is None or signum == signal.SIGTERM:  # SIGTERM outranks a waiting Ctrl-C
        _state["pending"] = signum
    if _state["since"] is None:
        _state["since"] = now
    if in_storage(frame) and now - _state["since"] < PATIENCE:
        if _state["timer"] is None:  # one retry at a time, however many signals came
            _state["timer"] = threading.Timer(RETRY, _redeliver)
            _state["timer"].daemon = True
            _state["timer"].start()
        return
    pending, timer = _state["pending"], _state["timer"]
    if timer is not None:
        timer.cancel()
    _state.update(pending=None, since=None, timer=None, raised=(pending, now))
    raise interruption(pending)


def _redeliver() -> None:
    """From the timer's thread: deliver the waiting signal again, so the handler looks at the main thread anew."""
    _state["timer"] = None
    pending = _state["pending"]
    if pending is not None:
        os.kill(os.getpid(), pending)
