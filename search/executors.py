"""Where trials run. Every executor takes a TrialPlanner and drives it until the study is done.

``local`` trains in this process. A distributed executor ships each TrialSpec to a worker
instead; the planner stays in the driver, so the study record is identical either way.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from search.objective import Candidate, SearchError, TrialPlanner, run_trial

OnTrial = Callable[[Candidate, str], None]  # (candidate, "complete" | "fail")


class Executor(Protocol):
    name: str

    def run(self, planner: TrialPlanner, *, on_trial: OnTrial, recover: Callable[[], object]) -> None: ...


@dataclass
class LocalExecutor:
    """Trains one trial at a time in this process; waits while other workers finish the last trials."""

    max_failures: int = 5
    poll_seconds: float = 2.0
    name: str = "local"

    def run(self, planner: TrialPlanner, *, on_trial: OnTrial, recover: Callable[[], object]) -> None:
        failures = 0
        while True:
            candidate = planner.next_candidate()
            if candidate is None:
                if planner.done():
                    return
                time.sleep(self.poll_seconds)  # other workers hold the remaining trials
                recover()
                continue
            try:
                with self._beat(planner, candidate):
                    result = run_trial(candidate.spec)
            except Exception as exc:  # the trial fails, the study goes on
                _release_cuda_memory()
                planner.fail(candidate, exc)
                on_trial(candidate, "fail")
                failures += 1
                if failures >= self.max_failures:
                    raise SearchError(f"{failures} trials failed in a row (last: {type(exc).__name__}: {exc}); "
                                      "stopping instead of burning the budget") from None
                continue
            failures = 0
            planner.complete(candidate, result)
            on_trial(candidate, "complete")

    def _beat(self, planner: TrialPlanner, candidate: Candidate):
        from studies.storage import Heartbeat

        return Heartbeat(planner.study._storage, lambda: [candidate.trial._trial_id])


def _release_cuda_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
