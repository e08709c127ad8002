"""Trials in this process, one at a time; waits while other workers finish the last trials."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from search.executors.base import FailureStreak, OnTrial
from search.lifecycle import Heartbeat
from search.trial import TrialPlanner
from search.worker import run_trial


@dataclass
class LocalExecutor:
    max_failures: int = 5
    poll_seconds: float = 2.0
    name: str = "local"

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> LocalExecutor:
        return cls(max_failures=settings.get("max_failures", 5))

    def check(self) -> None:
        pass

    def run(self, planner: TrialPlanner, *, on_trial: OnTrial) -> None:
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
                    result = run_trial(candidate.spec, judge=judge if candidate.spec.judge_at else None)
            except Exception as exc:  # the trial fails, the study goes on
                _release_cuda_memory()
                planner.fail(candidate, exc)
                on_trial(candidate, "fail")
                if failures.failed(f"{type(exc).__name__}: {exc}"):
                    raise failures.error() from None
                continue
            failures.succeeded()
            planner.complete(candidate, result)
            on_trial(candidate, "stopped" if result.get("stopped_at") is not None else "complete")


def _release_cuda_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
