"""Trials on this machine without Ray: in this process, or in ``workers`` processes each pinned to a device.

Every worker process runs the same loop against the same storage as a separate ``effnas search`` would, so
the guarantees are the same (exactly N complete, heartbeats, dead workers requeued). A worker dies with its
parent (Linux's parent-death signal), so a killed ``effnas search`` leaves no orphan training on.
"""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from effnas.search import lifecycle
from effnas.search.executors.base import FailureStreak, OnTrial
from effnas.search.lifecycle import Heartbeat
from effnas.search.settings import ExecutorSettings
from effnas.search.trial import TrialPlanner
from effnas.search.utils import cores, devices, signals
from effnas.search.utils.cores import CoreMeter
from effnas.search.worker import run_trial
from effnas.space.errors import SearchError, UserError

PlannerFactory = Callable[[str], TrialPlanner]  # a device -> a planner on the same study, in a worker process


@dataclass
class LocalExecutor:
    max_failures: int = 5
    workers: int = 1
    devices: tuple[str, ...] = ()  # round-robin over the workers; none: each trial's own --device
    threads_per_worker: int | None = None  # torch threads of each worker; default: chosen per trial (cores.py)
    poll_seconds: float = 2.0
    name: str = "local"
    meter: CoreMeter = field(default_factory=CoreMeter, repr=False)

    @classmethod
    def from_settings(cls, settings: ExecutorSettings) -> LocalExecutor:
        return cls(max_failures=settings.max_failures, workers=settings.workers,
                   devices=tuple(settings.worker_devices or ()), threads_per_worker=settings.threads_per_worker)

    def check(self) -> None:
        if self.workers > 1 and self.devices and any(d.startswith("cuda") for d in self.devices):
            count = devices.cuda_count()
            for device in self.devices:
                index = int(device.partition(":")[2] or 0) if device.startswith("cuda") else -1
                if device.startswith("cuda") and index >= count:
                    raise UserError(f"--devices {device}: this machine has {count} CUDA device(s)")

    def thread_limit(self) -> int:
        """Each worker's most threads: --threads-per-worker, else the usable cores shared out."""
        return self.threads_per_worker or max(1, self.meter.cores // self.workers)

    def threads_note(self) -> str:
        if self.threads_per_worker:
            return f"{self.threads_per_worker} thread(s) per worker (--threads-per-worker)"
        return cores.policy_note(free=self.meter.free(), cores=self.meter.cores, limit=self.thread_limit())

    def threads_for(self, macs: float) -> int:
        """The threads a trial of ``macs`` MACs per sample trains with (and sets them)."""
        threads = self.threads_per_worker or cores.threads_for(macs, free=self.meter.free(),
                                                                limit=self.thread_limit())
        devices.set_threads(threads)
        return threads

    def run(self, planner: TrialPlanner, *, on_trial: OnTrial, replicate: PlannerFactory | None = None) -> None:
        if self.workers > 1 and replicate is not None:
            self._pool(planner, on_trial=on_trial, replicate=replicate)
        else:
            self.loop(planner, on_trial=on_trial)

    def loop(self, planner: TrialPlanner, *, on_trial: OnTrial) -> None:
        failures = FailureStreak(self.max_failures)
        while True:
            candidate = planner.next_candidate()
            if candidate is None:
                if planner.done():
                    return
                time.sleep(self.poll_seconds)  # other workers hold the remaining trials
                planner.recover()
                continue
            try:
                with Heartbeat(planner.study, lambda trial=candidate.trial: [trial]):
                    judge = (lambda epochs, accuracy, c=candidate: planner.judge(c, epochs, accuracy))
                    threads = self.threads_for(candidate.cost.macs)
                    result = {**run_trial(candidate.spec, judge=judge if candidate.spec.judge_at else None),
                              "threads": threads}
            except Exception as exc:  # the trial fails, the study goes on
                devices.release_cuda_memory()
                planner.fail(candidate, exc)
                on_trial(candidate, "fail")
                if failures.failed(f"{type(exc).__name__}: {exc}"):
                    raise failures.error() from None
                continue
            failures.succeeded()
            planner.complete(candidate, result)
            on_trial(candidate, "stopped" if result.get("stopped_at") is not None else "complete")

    def _pool(self, planner: TrialPlanner, *, on_trial: OnTrial, replicate: PlannerFactory) -> None:
        """Start the workers, show their progress, requeue what a dead one held, and stop them on Ctrl-C."""
        context = multiprocessing.get_context("spawn")
        turns = self.devices or ("",)
        processes = [context.Process(target=_worker_main, name=f"effnas-worker-{i}", daemon=False,
                                     args=(replicate, turns[i % len(turns)], self.threads_per_worker,
                                           self.thread_limit(), self.max_failures))
                     for i in range(self.workers)]
        for process in processes:
            process.start()
        try:
            while any(p.is_alive() for p in processes):
                time.sleep(self.poll_seconds)
                planner.recover()
                on_trial(None, "poll")
        except KeyboardInterrupt:
            for process in processes:
                if process.is_alive():
                    os.kill(process.pid, signal.SIGTERM)  # each fails and requeues what it holds
            for process in processes:
                process.join(timeout=60)
            raise
        codes = [p.exitcode for p in processes]
        planner.recover()
        on_trial(None, "poll")
        if 2 in codes:
            raise UserError("a worker refused its set-up (see its message above)")
        if not planner.done():
            raise SearchError(f"the workers stopped before the study was done (exit codes {codes}); the same command "
                              "resumes it")


def _worker_main(replicate: PlannerFactory, device: str, threads: int | None, limit: int, max_failures: int) -> None:
    """One worker process: the same loop as a lone ``effnas search``, on its own device and threads."""
    parent = os.getppid()
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: die (cleanly) with the parent
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        sys.exit(143)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and tells each worker
    signals.install(sigint=False)
    planner = None
    try:
        planner = replicate(device)
        executor = LocalExecutor(max_failures=max_failures, threads_per_worker=threads,
                                 meter=CoreMeter(cores=limit))  # its share of the cores
        executor.loop(planner, on_trial=lambda candidate, outcome: None)
    except KeyboardInterrupt:
        if planner is not None:
            lifecycle.release_own_trials(planner.study, reason="terminated (SIGTERM)")
        sys.exit(143)
    except UserError as exc:
        print(f"effnas: error: {' '.join(str(exc).split())}", file=sys.stderr)
        sys.exit(2)
    except SearchError as exc:
        print(f"effnas: error: {' '.join(str(exc).split())}", file=sys.stderr)
        sys.exit(1)


