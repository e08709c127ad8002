"""A trial's life beyond ask and tell: heartbeats, dead workers, interrupts and requeues.

This is the only module that touches Optuna's internals (a study's storage, a trial's id), and
tests/test_layout.py keeps it so: when Optuna changes them, this is the one file to update.
"""
from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from effnas.search.utils.processes import pid_alive

HEARTBEAT_INTERVAL = 10  # seconds between a running trial's heartbeats
GRACE_PERIOD = 60  # a trial silent this long belongs to a dead worker
REQUEUE_KEEPS = ("role", "triple", "seed")  # what a trial is part of, and the seed it trains with, survive its retry


def worker_id() -> str:
    """HOST:PID of this process, recorded on every trial it holds."""
    return f"{socket.gethostname()}:{os.getpid()}"


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    return study._storage


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    return trial._trial_id


def write_user_attrs(trial: optuna.Trial, values: dict[str, Any]) -> None:
    """Set several user attributes of a live trial in one transaction where the storage is a database.

    Optuna's public API writes one attribute per transaction (a commit, an fsync on SQLite); a trial's
    record is some twenty attributes, so one transaction per write is most of a small trial's overhead.
    """
    storage = trial.storage
    backend = getattr(storage, "_backend", storage)
    if not isinstance(backend, optuna.storages.RDBStorage) or len(values) < 2:
        for key, value in values.items():
            trial.set_user_attr(key, value)
        return
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(backend.scoped_session, True) as session:
        for key, value in values.items():
            backend._set_trial_attr_without_commit(session, models.TrialUserAttributeModel, trial._trial_id, key,
                                                   value)
    trial._cached_frozen_trial.user_attrs.update(values)


class _CollectParams:
    """Stands for a trial's storage while it suggests: parameter writes are collected, the rest passes through."""

    def __init__(self, storage: Any) -> None:
        self.storage, self.pending = storage, []

    def set_trial_param(self, trial_id: int, name: str, value: float, distribution: Any) -> None:
        self.pending.append((trial_id, name, value, distribution))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.storage, name)


@contextlib.contextmanager
def params_in_one_transaction(trial: optuna.Trial) -> Iterator[None]:
    """While a trial suggests its parameters (35 for a 7-stage space), write them in one transaction at the end
    instead of one each; the trial sees its own parameters throughout (Optuna keeps them on the trial)."""
    storage = trial.storage
    backend = getattr(storage, "_backend", storage)
    if not isinstance(backend, optuna.storages.RDBStorage):
        yield
        return
    from optuna.storages._rdb.storage import _create_scoped_session

    collector = _CollectParams(storage)
    trial.storage = collector
    try:
        yield
    finally:
        trial.storage = storage
        if collector.pending:
            with _create_scoped_session(backend.scoped_session, True) as session:
                for trial_id, name, value, distribution in collector.pending:
                    backend._set_trial_param_without_commit(session, trial_id, name, value, distribution)


def requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue a failed trial's parameters again, so its architecture is still evaluated."""
    if trial.params:
        keep = {k: trial.user_attrs[k] for k in REQUEUE_KEEPS if k in trial.user_attrs}
        study.enqueue_trial(trial.params, user_attrs={**keep, "retry_of": trial.number})


def fail_and_requeue(study: optuna.Study, trial: FrozenTrial, reason: str) -> bool:
    """Fail a RUNNING trial with ``reason`` and queue its parameters again; False if another worker won."""
    storage = storage_of(study)
    try:
        storage.set_trial_user_attr(trial_id(trial), "error", reason)
        if not storage.set_trial_state_values(trial_id(trial), state=TrialState.FAIL):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    requeue(study, trial)
    return True


def recover_dead_trials(study: optuna.Study) -> list[int]:
    """Fail and requeue RUNNING trials whose worker is gone; returns their numbers.

    A worker on this host is checked by its pid at once; one elsewhere by Optuna's heartbeat
    (silent for longer than the grace period); a trial that never recorded its worker (the process died between
    ask and its first write, before any heartbeat) once it is older than the grace period.
    """
    recovered = []
    host = socket.gethostname()
    now = datetime.now()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if "worker" not in trial.user_attrs:  # killed between ask() and recording itself: no heartbeat either
            started = trial.datetime_start
            if started is not None and (now - started).total_seconds() > GRACE_PERIOD and \
                    fail_and_requeue(study, trial, "its worker died before recording itself"):
                recovered.append(trial.number)
            continue
        worker_host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
        if worker_host == host and pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            if fail_and_requeue(study, trial, f"worker {worker_host}:{pid} died"):
                recovered.append(trial.number)
    storage = storage_of(study)
    if isinstance(storage, optuna.storages.RDBStorage) or hasattr(storage, "record_heartbeat"):
        before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
        optuna.storages.fail_stale_trials(study)
        after = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
        recovered += sorted(after - before)
    return recovered


def release_own_trials(study: optuna.Study, *, reason: str) -> list[int]:
    """Fail and requeue every RUNNING trial this process holds (on Ctrl-C, wherever it landed)."""
    me = worker_id()
    return [trial.number for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if trial.user_attrs.get("worker") == me and fail_and_requeue(study, trial, reason)]


class Heartbeat:
    """Records the heartbeats of the trials in flight (``live()``) from a thread, while they train."""

    def __init__(self, study: optuna.Study, live: Callable[[], Iterable[optuna.Trial]],
                 interval: float = HEARTBEAT_INTERVAL) -> None:
        self.storage, self.live, self.interval = storage_of(study), live, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        if callable(getattr(self.storage, "record_heartbeat", None)) and \
                getattr(self.storage, "get_heartbeat_interval", lambda: None)() is not None:
            self._record()
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()
        return self

    def _record(self) -> None:
        for trial in list(self.live()):
            try:
                self.storage.record_heartbeat(trial_id(trial))
            except Exception:  # a missed beat is retried; the trial itself decides the outcome
                pass

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            self._record()

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def whole_line_journal(path: str) -> Any:
    """Optuna's journal file backend whose appends are whole records or nothing: an append that fails part-way
    (a full disk, a quota) is cut back to where it began, under the same file lock, so the journal never holds
    half a record for every later reader to trip on."""
    from optuna.storages.journal import JournalFileBackend
    from optuna.storages.journal._file import get_lock_file

    class WholeLineJournal(JournalFileBackend):
        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            import json

            data = memoryview(("\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n").encode())
            with get_lock_file(self._lock):
                handle = os.open(self._file_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
                try:
                    start = os.lseek(handle, 0, os.SEEK_END)
                    try:
                        while data:
                            data = data[os.write(handle, data):]
                        os.fsync(handle)
                    except BaseException:  # a full disk, or a signal between two partial writes
                        os.ftruncate(handle, start)
                        raise
                finally:
                    os.close(handle)

    return WholeLineJournal(path)
