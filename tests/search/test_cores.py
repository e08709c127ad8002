"""Threads for the machine as it is (search.utils.cores): a busy core is not free, this process's own work is not
another's, a small network takes one thread, and the user's ceiling wins."""
from __future__ import annotations

import multiprocessing
import time

from effnas.search.utils import cores
from effnas.search.utils.cores import SMALL_MACS, CoreMeter, threads_for, usable_cores


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_a_core_another_process_keeps_busy_is_not_free(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # a ceiling of 1 would hide what is free
    meter = CoreMeter()
    meter.free()  # the first look samples for a moment
    spinner = multiprocessing.get_context("spawn").Process(target=_spin, args=(3.0,))
    spinner.start()
    try:
        time.sleep(1.0)  # the spinner starts
        meter.free()
        time.sleep(1.0)
        busy = meter.free()
    finally:
        spinner.join()
    assert busy <= meter.cores - 0.5, busy


def test_this_process_s_own_work_is_not_taken_for_another_s(monkeypatch):
    """The arithmetic, on scripted /proc/stat and process-time readings of a 2-core machine over 1 s."""
    readings = iter([(10.0, 100.0), (11.0, 102.0), (13.0, 104.0)])  # (busy, total) seconds of all CPUs
    own = iter([5.0, 6.0, 7.0])  # this process's CPU seconds
    monkeypatch.setattr(cores, "_busy_and_total", lambda cpus: next(readings))
    monkeypatch.setattr(cores.time, "process_time", lambda: next(own))
    monkeypatch.setattr(cores.time, "sleep", lambda seconds: None)
    meter = CoreMeter(cores=2, cpus={0, 1})
    assert meter.free() == 2.0  # 1 s busy, all of it this process's: both cores free for it
    assert meter.free() == 1.0  # 2 s busy, 1 s of it another process's: one core free


def test_threads_for_small_and_large_networks():
    assert threads_for(SMALL_MACS - 1, free=8.0) == 1  # a small network: one thread, even with 8 free cores
    assert threads_for(SMALL_MACS, free=2.0) == 2
    assert threads_for(10 * SMALL_MACS, free=1.55) == 2  # rounded to the nearest core
    assert threads_for(10 * SMALL_MACS, free=1.33) == 1  # a competitor sharing our 2 cores with our 2 threads
    assert threads_for(10 * SMALL_MACS, free=0.2) == 1  # never none
    assert threads_for(10 * SMALL_MACS, free=8.0, limit=3) == 3  # --threads-per-worker / --cpus-per-trial


def test_omp_num_threads_is_a_ceiling(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert usable_cores() == 1 and CoreMeter().cores == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
    assert usable_cores() >= 1


def test_the_header_note_says_the_policy():
    note = cores.policy_note(free=1.0, cores=2, limit=2)
    assert "now 1.0 of 2" in note and "--threads-per-worker" in note
