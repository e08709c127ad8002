"""The studies of a storage, by kind: the names a NAS study's companions take, finding and opening one, and which
trial ``--trial N|baseline|confirmed`` names. Every command and every report page looks studies up here.

A NAS study NAME (kind ``nas``) has companions named after it: ``NAME-scaling`` (the compound-coefficient grid,
kind ``scaling``), ``NAME-family`` (the trained family, ``family``) and ``NAME-confirm`` (the longer retraining
of its best, ``confirm``). A study's kind is its ``kind`` attribute, written last when it is created.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from effnas.search import record, selection
from effnas.search.record import TrialRecord
from effnas.space.errors import UserError

if TYPE_CHECKING:
    import optuna

NAS, SCALING, FAMILY, CONFIRM = "nas", "scaling", "family", "confirm"
SUFFIXES = {SCALING: "-scaling", FAMILY: "-family", CONFIRM: "-confirm"}
NOUNS = {NAS: "a NAS study", SCALING: "a scaling study", FAMILY: "a family study", CONFIRM: "a confirmation"}


def companion(name: str, kind: str) -> str:
    """The name of NAS study ``name``'s companion of ``kind``: ``NAME-scaling``, ``NAME-family``, ``NAME-confirm``."""
    return name + SUFFIXES[kind]


def kind_of(study: optuna.Study) -> str | None:
    return study.user_attrs.get("kind")


def require_kind(study: optuna.Study, kind: str, *, name: str | None = None, advice: str = "") -> optuna.Study:
    """``study`` when it is of ``kind``; else one line naming what it is."""
    if kind_of(study) != kind:
        tail = f": {advice}" if advice else ""
        raise UserError(f"study {name or study.study_name!r} is a {kind_of(study)} study, not {NOUNS[kind]}{tail}")
    return study


def write_record(study: optuna.Study, attrs: dict[str, Any], *,
                 before_kind: Callable[[optuna.Study], None] | None = None) -> None:
    """A new study's attributes, ``kind`` last (after ``before_kind``, e.g. enqueuing the base architecture): a
    worker joining the study waits for its kind, so it never reads a half-written record."""
    for key, value in attrs.items():
        if key != "kind":
            study.set_user_attr(key, value)
    if before_kind is not None:
        before_kind(study)
    study.set_user_attr("kind", attrs["kind"])


def get(storage: Any, name: str) -> optuna.Study | None:
    """The study ``name`` of ``storage``, or None where it holds none of that name."""
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None


def present(storage: Any) -> set[str]:
    """The names of the studies ``storage`` holds."""
    import optuna

    return set(optuna.get_all_study_names(storage))


def find(storage: Any, name: str, kind: str) -> optuna.Study | None:
    """A study of ``kind``: ``name`` itself, or the companion of the NAS study ``name``."""
    names = present(storage)
    for candidate in (name, companion(name, kind)):
        if candidate in names:
            study = get(storage, candidate)
            if study is not None and kind_of(study) == kind:
                return study
    return None


def chosen_baseline(study: optuna.Study, *, target_macs: float | None = None) -> TrialRecord:
    """The NAS study's chosen baseline (see :func:`search.selection.choose_baseline`)."""
    target = target_macs or study.user_attrs.get("target_macs")
    best = selection.choose_baseline(record.read_all(study.get_trials(deepcopy=False)), target_macs=target)
    if best is None:
        raise UserError(f"study {study.study_name!r} has no complete trial")
    return best


def trial_of(study: optuna.Study, which: str) -> TrialRecord:
    """The trial ``--trial`` names in ``study``: ``baseline`` (a NAS study's chosen baseline) or a number."""
    if which == "baseline":
        if kind_of(study) != NAS:
            raise UserError(f"--trial baseline needs a NAS study; {study.study_name!r} is a {kind_of(study)} "
                            "study: give a trial number")
        return chosen_baseline(study)
    if which.isdigit():
        matches = [t for t in study.get_trials(deepcopy=False) if t.number == int(which)]
        if not matches or matches[0].state.name != "COMPLETE":
            raise UserError(f"study {study.study_name!r} has no complete trial {which}")
        return record.read(matches[0])
    raise UserError(f"--trial {which!r}: expected a trial number, baseline or confirmed")


def confirmed_baseline(storage: Any, name: str) -> tuple[str, int, int] | None:
    """(arch, resolution, NAS trial) of NAME's confirmed baseline, when NAME-confirm has one."""
    study = get(storage, companion(name, CONFIRM))
    attrs = study.user_attrs if study is not None else {}
    if attrs.get("confirmed_baseline") is None:
        return None
    return attrs["confirmed_baseline"], int(attrs["confirmed_resolution"]), int(attrs["confirmed_trial"])
