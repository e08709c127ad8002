"""What every executor shares: its protocol and the failed-trials-in-a-row stop."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from effnas.search.trial import Candidate, TrialPlanner
from effnas.space.errors import SearchError

OnTrial = Callable[[Candidate, str], None]  # (candidate, "complete" | "fail")


class Executor(Protocol):
    name: str

    def check(self) -> None:
        """Raise UserError for a setting that cannot work, before anything is written."""

    def threads_note(self) -> str:
        """How the trials' torch threads are chosen, for the study's header line."""

    def run(self, planner: TrialPlanner, *, on_trial: OnTrial, replicate: Any = None) -> None:
        """Drive ``planner`` until the study is done; ``replicate(device)`` makes a planner on the same study
        in another process, for executors that start their own workers."""


@dataclass
class FailureStreak:
    """Failed trials in a row; at ``limit`` the study stops instead of burning its budget."""

    limit: int
    count: int = 0
    last: str = ""

    def failed(self, message: str) -> bool:
        self.count, self.last = self.count + 1, message
        return self.count >= self.limit

    def succeeded(self) -> None:
        self.count = 0

    def error(self) -> SearchError:
        return SearchError(f"{self.count} trials failed in a row (last: {self.last}); stopping instead of burning "
                           "the budget")
