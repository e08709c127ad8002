"""Ctrl-C and SIGTERM land at a safe point: never inside a database write (which left SQLite's write lock held
and hung the clean-up), at once anywhere else."""
from __future__ import annotations

import os
import signal
import sqlite3
import time
import traceback

import optuna
import pytest
from sqlalchemy import event

from effnas.search.utils import signals
from effnas.space.errors import Terminated


@pytest.fixture
def safe_point_handlers():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signals._state.update(pending=None, since=None, timer=None, raised=(None, 0.0))
    signals.install()
    yield
    for s, handler in before.items():
        signal.signal(s, handler)


@pytest.mark.parametrize("sent, raised", [
    ([signal.SIGTERM], Terminated), ([signal.SIGINT], KeyboardInterrupt),
    ([signal.SIGTERM, signal.SIGTERM], Terminated),  # a process group's SIGTERM and the parent's: one request
    ([signal.SIGINT, signal.SIGTERM], Terminated),  # SIGTERM outranks a waiting Ctrl-C
])
def test_a_signal_inside_a_write_waits_for_the_write_to_commit(tmp_path, safe_point_handlers, sent, raised):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/s.db")
    study = optuna.create_study(storage=storage)
    times = []

    @event.listens_for(storage.engine, "before_cursor_execute")
    def signal_mid_statement(*args):  # runs inside SQLAlchemy, in the middle of the write's transaction
        if not times:
            times.append(time.monotonic())
            for signum in sent:
                os.kill(os.getpid(), signum)
                time.sleep(0.1)
            time.sleep(0.3)  # the signals arrive here, inside the storage

    with pytest.raises(raised) as caught:
        study.set_user_attr("written", 1)
        time.sleep(5)  # the deferred signal lands here, once the write has returned
    assert times and time.monotonic() - times[0] < 2
    frames = [frame.filename for frame in traceback.extract_tb(caught.tb)]
    assert not any("sqlalchemy" in f or "optuna" in f for f in frames), frames  # raised outside the storage
    time.sleep(1.2)  # nothing else arrives: the signals were one request
    assert optuna.load_study(study_name=study.study_name, storage=f"sqlite:///{tmp_path}/s.db").user_attrs == {
        "written": 1}
    with sqlite3.connect(tmp_path / "s.db", timeout=1) as conn:  # no write lock left behind
        conn.execute("BEGIN IMMEDIATE")


def test_a_signal_elsewhere_raises_at_once(safe_point_handlers):
    start = time.monotonic()
    with pytest.raises(Terminated):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert time.monotonic() - start < 1


def test_an_ignored_sigint_stays_ignored():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # nohup, or a shell's `cmd &`
        signals.install()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
