"""Opening Optuna storages safely, masking credentials, and recovering trials of dead workers."""
from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from studies.errors import UserError

HEARTBEAT_INTERVAL = 10  # seconds between a running trial's heartbeats
GRACE_PERIOD = 60  # a trial silent this long belongs to a dead worker
SQLITE_MAGIC = b"SQLite format 3\x00"
REQUEUE_KEEPS = ("role", "triple")  # what a trial is part of survives its retry


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***, safe to print, log or store."""
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        if parsed.password:
            return parsed.render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL: mask user:password@ by hand
        pass
    head, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        credentials, _, host = rest.partition("@")
        user = credentials.split(":", 1)[0]
        return f"{head}://{user}:***@{host}" if ":" in credentials else url
    return url


def scrub(text: str, url: str) -> str:
    """``text`` (an error message, say) with the URL's password removed."""
    try:
        from sqlalchemy.engine import make_url

        password = make_url(url).password
    except Exception:
        password = None
    text = text.replace(url, mask_url(url))
    return text.replace(password, "***") if password else text


def sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite:///"):
        return None
    return Path(url[len("sqlite:///"):].split("?", 1)[0])


def check_storage_url(url: str, *, create_default_dir: bool = False) -> None:
    """Reject a URL that cannot be a persistent storage, before anything is created."""
    if url.startswith("journal:"):
        path = Path(url[len("journal:"):])
        if not str(path) or not path.parent.is_dir():
            raise UserError(f"storage {url!r}: directory {str(path.parent)!r} does not exist")
        return
    if "://" not in url:
        raise UserError(f"unusable storage URL {mask_url(url)!r}; expected sqlite:///FILE, "
                        "postgresql://USER:PASSWORD@HOST/DB or journal:FILE")
    path = sqlite_path(url)
    if url.startswith("sqlite:") and path is None:
        raise UserError(f"unusable storage URL {url!r}; a SQLite storage is sqlite:///FILE")
    if path is None:
        return
    if str(path) in ("", ":memory:"):
        raise UserError(f"storage {url!r} is not a file: a study must outlive the process")
    if path.is_dir():
        raise UserError(f"storage {url!r} names a directory")
    if not path.parent.is_dir() and not create_default_dir:
        raise UserError(f"storage {url!r}: directory {str(path.parent)!r} does not exist")
    if path.exists() and path.stat().st_size:
        with open(path, "rb") as handle:
            if handle.read(16) != SQLITE_MAGIC:
                raise UserError(f"storage {url!r} is not a SQLite database")


def open_storage(url: str, *, create: bool = True, create_default_dir: bool = False) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url``; with ``create`` False, a SQLite file must already exist."""
    check_storage_url(url, create_default_dir=create_default_dir)
    path = sqlite_path(url)
    if path is not None and not path.exists() and not create:
        raise UserError(f"storage {url!r} does not exist")
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        file = Path(url[len("journal:"):])
        if not file.exists() and not create:
            raise UserError(f"storage {url!r} does not exist")
        return JournalStorage(JournalFileBackend(str(file)))
    if path is not None and create_default_dir:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine_kwargs: dict[str, Any] = {}
    if path is not None:
        engine_kwargs = {"connect_args": {"timeout": 60}}
    else:
        engine_kwargs = {"pool_pre_ping": True}
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_INTERVAL, grace_period=GRACE_PERIOD,
                heartbeat_stale_trial_callback=requeue,
            )
        except Exception as exc:  # SQLAlchemy / driver errors: unreachable host, bad credentials, no driver
            if _creation_race(exc) and attempt < 4:
                time.sleep(0.5 * (attempt + 1))  # another worker is creating the tables right now
                continue
            reason = scrub(" ".join(str(exc).split()), url)[:300]
            raise UserError(f"cannot open storage {mask_url(url)!r}: {reason}") from None
    raise AssertionError("unreachable")


def _creation_race(exc: Exception) -> bool:
    """Workers that create Optuna's tables at the same instant collide on PostgreSQL; a retry sees them."""
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    text = str(exc)
    return isinstance(exc, (IntegrityError, ProgrammingError)) and ("already exists" in text or "duplicate" in text)


def requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue a failed trial's parameters again, so its architecture is still evaluated."""
    if trial.params:
        keep = {k: trial.user_attrs[k] for k in REQUEUE_KEEPS if k in trial.user_attrs}
        study.enqueue_trial(trial.params, user_attrs={**keep, "retry_of": trial.number})


def _fail_and_requeue(study: optuna.Study, trial: FrozenTrial, reason: str) -> bool:
    """Fail a RUNNING trial with ``reason`` and queue its parameters again; False if another worker won."""
    try:
        study._storage.set_trial_user_attr(trial._trial_id, "error", reason)
        if not study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    requeue(study, trial)
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_dead_trials(study: optuna.Study) -> list[int]:
    """Fail and requeue RUNNING trials whose worker is gone; returns their numbers.

    A worker on this host is checked by its pid at once; one elsewhere by Optuna's heartbeat
    (silent for longer than the grace period).
    """
    recovered = []
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker_host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
        if worker_host == host and pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            if _fail_and_requeue(study, trial, f"worker {worker_host}:{pid} died"):
                recovered.append(trial.number)
    if isinstance(study._storage, optuna.storages.RDBStorage) or hasattr(study._storage, "record_heartbeat"):
        before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
        optuna.storages.fail_stale_trials(study)
        after = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
        recovered += sorted(after - before)
    return recovered


def release_own_trials(study: optuna.Study, *, worker: str, reason: str) -> list[int]:
    """Fail and requeue every RUNNING trial this worker holds (on Ctrl-C, wherever it landed)."""
    return [trial.number for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if trial.user_attrs.get("worker") == worker and _fail_and_requeue(study, trial, reason)]


class Heartbeat:
    """Records the heartbeats of the trials in flight (``trial_ids()``) from a thread, while they train."""

    def __init__(self, storage: Any, trial_ids: Callable[[], Iterable[int]],
                 interval: float = HEARTBEAT_INTERVAL) -> None:
        self.storage, self.trial_ids, self.interval = storage, trial_ids, interval
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
        for trial_id in self.trial_ids():
            try:
                self.storage.record_heartbeat(trial_id)
            except Exception:  # a missed beat is retried; the trial itself decides the outcome
                pass

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            self._record()

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
