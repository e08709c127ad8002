"""Where trials run. Every executor takes a TrialPlanner and drives it until the study is done.

``local`` trains in this process; ``ray`` ships each TrialSpec to a Ray Tune worker. The planner stays
in the driver either way, so the study record is identical. :data:`EXECUTORS` is the registry; each entry
imports its module when it is made, so reading the names (``--help``, a study file's check) loads neither.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from effnas.space.errors import UserError

if TYPE_CHECKING:
    from effnas.search.executors.base import Executor
    from effnas.search.settings import ExecutorSettings


def _local() -> type[Executor]:
    from effnas.search.executors.local import LocalExecutor

    return LocalExecutor


def _ray() -> type[Executor]:
    from effnas.search.executors.ray import RayExecutor

    return RayExecutor


EXECUTORS: dict[str, Callable[[], type[Executor]]] = {"local": _local, "ray": _ray}


def make_executor(name: str, settings: ExecutorSettings) -> Executor:
    """The executor called ``name``, configured by the executor settings (each reads its own)."""
    if name not in EXECUTORS:
        raise UserError(f"unknown executor {name!r}; available: {', '.join(EXECUTORS)}")
    return EXECUTORS[name]().from_settings(settings)
