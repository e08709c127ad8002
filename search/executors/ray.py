"""The Ray Tune executor: each trial runs on a Ray worker; the Optuna study stays in the driver.

Ray's stock OptunaSearch tells Optuna only the objective values. Here a Searcher of our own asks the
study through the same TrialPlanner as the local executor (so the budget is checked before anything is
scheduled) and records every field a worker returns, so a trial run under Ray is recorded exactly as
in-process. Workers never touch the storage: a SQLite study works on a cluster too.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from effnas.search import record
from effnas.search.executors.base import FailureStreak, OnTrial
from effnas.search.lifecycle import HEARTBEAT_INTERVAL, Heartbeat
from effnas.search.record import MEASURED
from effnas.search.settings import ExecutorSettings
from effnas.search.trial import Candidate, TrialPlanner, TrialSpec
from effnas.search.worker import run_trial
from effnas.space.errors import UserError

ERROR_KEY = "effnas_error"
_RAY = {"started": False}  # this process's Ray was started or joined by an executor's check() or run()
RUNG_KEYS = ("rung_epochs", "rung_value")  # an intermediate result: the accuracy where the trial is judged


def train_on_worker(config: dict[str, Any]) -> None:
    """The Tune trainable: one TrialSpec in, the measured record fields out (or the error's text).

    Under successive halving it reports its accuracy at each rung; the driver's RungScheduler judges it there
    and stops it through Tune when it should not go on.
    """
    from ray import tune

    from effnas.search.utils import cores, devices
    from effnas.search.utils.cores import CoreMeter

    def report_rung(epochs: int, accuracy: float) -> bool:
        tune.report(dict(zip(RUNG_KEYS, (epochs, accuracy))))
        return True  # were it not to go on, Tune would not have returned from report

    limit = max(1, int(config["cpus"]))  # --cpus-per-trial: a ceiling; fewer for a small network or a busy node
    threads = cores.threads_for(config["macs"], free=CoreMeter(cores=limit).free(), limit=limit)
    devices.set_threads(threads)
    spec = TrialSpec.from_dict(config["spec"])
    try:
        result = run_trial(spec, judge=report_rung if spec.judge_at else None)
    except Exception as exc:  # a deterministic fault (NaN, bad image, OOM): recorded, not retried
        tune.report({ERROR_KEY: f"{type(exc).__name__}: {exc}"[:2000], "done": True})
        return
    tune.report({**result, "threads": threads, "done": True})


def _searcher_class():
    from ray.tune.search import Searcher

    class StudySearcher(Searcher):
        """Asks the Optuna study for each Tune trial and tells it what the worker measured."""

        def __init__(self, planner: TrialPlanner, on_done: Callable[[Candidate, dict | None, str | None], None],
                     cpus: float) -> None:
            super().__init__(metric=None, mode=None)  # it reads the results itself; a zero-cost one has no accuracy
            self.planner, self.on_done, self.cpus = planner, on_done, cpus
            self.live: dict[str, Candidate] = {}
            self.lock = threading.Lock()

        def suggest(self, trial_id: str) -> dict | None:
            candidate = self.planner.next_candidate()
            if candidate is None:
                return Searcher.FINISHED if self.planner.done() and not self.live else None
            with self.lock:
                self.live[trial_id] = candidate
            return {"spec": candidate.spec.to_dict(), "cpus": self.cpus, "macs": candidate.cost.macs}

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            with self.lock:
                candidate = self.live.pop(trial_id, None)
            if candidate is None:
                return
            if error or not result:
                self.on_done(candidate, None, "the Ray trial failed on its worker (retries exhausted)")
            elif ERROR_KEY in result:
                self.on_done(candidate, None, result[ERROR_KEY])
            elif "accuracy" not in result and RUNG_KEYS[0] in result:  # stopped at a rung by the RungScheduler
                self.on_done(candidate, {"stopped_at": int(result[RUNG_KEYS[0]])}, None)
            else:
                self.on_done(candidate, {k: result[k] for k in MEASURED if k in result}, None)

        def __getstate__(self) -> dict:
            """Tune pickles its experiment state; the study, planner and lock stay with this driver."""
            state = dict(self.__dict__)
            for key in ("planner", "on_done", "lock", "live"):
                state.pop(key, None)
            return state

        def __setstate__(self, state: dict) -> None:
            self.__dict__.update(state)
            self.planner, self.on_done, self.live, self.lock = None, None, {}, threading.Lock()

        def live_trials(self) -> list:
            with self.lock:
                return [c.trial for c in self.live.values()]

    return StudySearcher


def _rung_scheduler_class():
    from ray.tune.schedulers import FIFOScheduler, TrialScheduler

    class RungScheduler(FIFOScheduler):
        """Successive halving under Ray: judges a trial where it reports a rung, with the study's planner."""

        def __init__(self, searcher: Any) -> None:
            super().__init__()
            self.searcher = searcher

        def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
            if RUNG_KEYS[0] not in result or self.searcher is None:
                return TrialScheduler.CONTINUE
            with self.searcher.lock:
                candidate = self.searcher.live.get(trial.trial_id)
            if candidate is None:
                return TrialScheduler.CONTINUE
            goes_on = self.searcher.planner.judge(candidate, int(result[RUNG_KEYS[0]]), float(result[RUNG_KEYS[1]]))
            return TrialScheduler.CONTINUE if goes_on else TrialScheduler.STOP

        def __getstate__(self) -> dict:
            return {}

        def __setstate__(self, state: dict) -> None:
            self.searcher = None

    return RungScheduler


def _crash_recorder_class():
    from ray.tune import Callback

    class CrashRecorder(Callback):
        """Ray retries a trial whose worker died (SIGKILL, a lost node) without telling the searcher: record
        each retry on the study's trial, so the study says what happened."""

        def __init__(self, searcher: Any) -> None:
            self.searcher = searcher

        def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            if self.searcher is None:
                return
            with self.searcher.lock:
                candidate = self.searcher.live.get(trial.trial_id)
            if candidate is None:
                return
            error = (trial.get_error() or "the worker died").strip().splitlines()
            try:
                record.write(candidate.trial, {"crashes": int(trial.num_failures), "crash": error[-1][:500]})
            except Exception:  # the record is a courtesy; the retry goes on whatever the storage says
                pass

        def __getstate__(self) -> dict:
            return {}

        def __setstate__(self, state: dict) -> None:
            self.searcher = None

    return CrashRecorder


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast, in one line, when nothing listens at HOST:PORT (Ray itself retries for a minute)."""
    if address in ("auto", "local") or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise UserError(f"--address {address!r}: expected HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise UserError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def _native_stderr_silenced():
    """Ray's C++ core writes a line to the process's stderr as it starts ("Set ray log level from environment
    variable …"), past Python's sys.stderr: file descriptor 2 points at /dev/null meanwhile. Ray's errors still
    come as exceptions."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def check_resources(nodes: list[dict[str, float]], *, cpus: float, gpus: float) -> None:
    """Some node offers ``cpus`` CPUs and ``gpus`` GPUs at once (a trial runs on one node); else one line naming
    what each kind of node offers."""
    if any(node.get("CPU", 0) >= cpus and node.get("GPU", 0) >= gpus for node in nodes):
        return
    offers = sorted({(node.get("CPU", 0), node.get("GPU", 0)) for node in nodes}, reverse=True)
    shown = "; ".join(f"{c:g} CPU(s) and {g:g} GPU(s)" for c, g in offers[:5]) or "no live node"
    raise UserError(f"--cpus-per-trial {cpus:g} --gpus-per-trial {gpus:g}: no node of the Ray cluster offers that "
                    f"(its {len(nodes)} node(s) offer: {shown}); a trial would wait forever")


class _Stop:
    """Tune's stop condition: the trial reported, or the study is stopping (picklable for Tune's state)."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, trial_id: str, result: dict) -> bool:
        return bool(result.get("done")) or (self.event is not None and self.event.is_set())

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.event = None


@dataclass
class RayExecutor:
    address: str | None = None
    gpus_per_trial: float = 0.0
    cpus_per_trial: float = 1.0
    max_concurrent: int | None = None
    max_failures: int = 5  # Ray retries of a crashed worker, and failed trials in a row that stop the study
    name: str = "ray"

    @classmethod
    def from_settings(cls, settings: ExecutorSettings) -> RayExecutor:
        return cls(address=settings.address, gpus_per_trial=settings.gpus_per_trial,
                   cpus_per_trial=settings.cpus_per_trial, max_concurrent=settings.max_concurrent,
                   max_failures=settings.max_failures)

    def threads_note(self) -> str:
        return (f"each Ray trial at most {max(1, int(self.cpus_per_trial))} thread(s) (--cpus-per-trial), fewer "
                "for a small network or a busy node")

    def check(self) -> None:
        """Before anything is written: a cluster named by --address must answer, and some node of the cluster
        (of this machine, for a local instance) must offer what one trial asks for. Ray would wait forever for a
        resource no node has. A local instance is started only where this machine's cores cannot tell (a GPU
        asked for); one started or joined here is the one :meth:`run` uses."""
        if self.address:
            check_reachable(self.address)
        elif self.gpus_per_trial == 0:
            cores = os.cpu_count() or 1
            if self.cpus_per_trial > cores:
                raise UserError(f"--cpus-per-trial {self.cpus_per_trial:g}: no node of the Ray cluster offers it "
                                f"(a local Ray instance has this machine's {cores} CPU(s))")
            return
        self._connect()
        self._check_nodes()

    def _check_nodes(self) -> None:
        """What the cluster's live nodes offer against what a trial asks (a Ray started here for the check is shut
        down again when it is refused)."""
        try:
            check_resources(self._nodes(), cpus=self.cpus_per_trial, gpus=self.gpus_per_trial)
        except UserError:
            if _RAY["started"]:
                import ray

                ray.shutdown()
                _RAY["started"] = False
            raise

    def _connect(self) -> None:
        """Join the cluster at --address, or start a local Ray instance, unless this process is in one already."""
        import ray

        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
        if ray.is_initialized():
            return
        try:
            with _native_stderr_silenced():
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                         logging_level="ERROR", configure_logging=True)
        except Exception as exc:  # Ray raises many kinds here; each is a set-up problem for the user
            reason = " ".join(str(exc).split())[:300]
            where = f"join the Ray cluster at {self.address}" if self.address else "start a local Ray instance"
            raise UserError(f"cannot {where}: {reason} (with token authentication, set RAY_AUTH_MODE=token as "
                            "for any Ray driver; Ray processes left by a killed run: `ray stop --force`)") from None
        _RAY["started"] = True

    @staticmethod
    def _nodes() -> list[dict[str, float]]:
        import ray

        return [dict(node.get("Resources", {})) for node in ray.nodes() if node.get("Alive")]

    def run(self, planner: TrialPlanner, *, on_trial: OnTrial, replicate: Any = None) -> None:
        from ray import tune

        self.check()
        self._connect()
        self._check_nodes()  # the instance Ray started or joined (RAY_ADDRESS, cgroup limits) is the one to fit
        failures = FailureStreak(self.max_failures)
        stop = threading.Event()

        def on_done(candidate: Candidate, result: dict | None, error: str | None) -> None:  # workers: Tune's
            if error is None:
                planner.complete(candidate, result)
                failures.succeeded()
                on_trial(candidate, "stopped" if result.get("stopped_at") is not None else "complete")
                return
            planner.fail(candidate, error)
            on_trial(candidate, "fail")
            if failures.failed(error):
                stop.set()

        searcher = _searcher_class()(planner, on_done, self.cpus_per_trial)
        search_alg = searcher
        if self.max_concurrent:
            from ray.tune.search import ConcurrencyLimiter

            search_alg = ConcurrencyLimiter(searcher, max_concurrent=self.max_concurrent)
        results_dir = tempfile.mkdtemp(prefix="effnas-ray-")
        # the driver beats for every trial in flight on a worker (workers never touch the storage)
        heartbeat = Heartbeat(planner.study, searcher.live_trials, interval=min(HEARTBEAT_INTERVAL, 2))
        try:
            with heartbeat:
                tuner = tune.Tuner(
                    tune.with_resources(train_on_worker, {"cpu": self.cpus_per_trial, "gpu": self.gpus_per_trial}),
                    tune_config=tune.TuneConfig(search_alg=search_alg, num_samples=-1, reuse_actors=True,
                                                scheduler=_rung_scheduler_class()(searcher)),
                    run_config=tune.RunConfig(
                        name="effnas", storage_path=results_dir, verbose=0,
                        failure_config=tune.FailureConfig(max_failures=self.max_failures),
                        stop=_Stop(stop), callbacks=[_crash_recorder_class()(searcher)],
                    ),
                )
                tuner.fit()
        finally:
            stop.set()
            shutil.rmtree(results_dir, ignore_errors=True)
            if _RAY["started"]:  # started or joined by effnas (here or in check()): left as found
                import ray

                ray.shutdown()
                _RAY["started"] = False
        if failures.count >= failures.limit:
            raise failures.error()
