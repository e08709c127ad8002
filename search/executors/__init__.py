"""Where trials run. Every executor takes a TrialPlanner and drives it until the study is done.

``local`` trains in this process; ``ray`` ships each TrialSpec to a Ray Tune worker. The planner stays
in the driver either way, so the study record is identical.
"""
from __future__ import annotations

from typing import Any

from search.executors.base import Executor
from space.errors import UserError


def make_executor(name: str, **settings: Any) -> Executor:
    """The executor called ``name``, configured by its own settings (each ignores the others')."""
    from search.executors.local import LocalExecutor
    from search.executors.ray import RayExecutor

    executors = {"local": LocalExecutor, "ray": RayExecutor}
    if name not in executors:
        raise UserError(f"unknown executor {name!r}; available: {', '.join(executors)}")
    return executors[name].from_settings(settings)
