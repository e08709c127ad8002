"""The study helpers of effnas's Python API: open a study as the commands do, and read its trials' records."""
from __future__ import annotations

from typing import Any

from effnas.search import catalog, record
from effnas.search.record import TrialRecord
from effnas.space.errors import UserError
from effnas.studies.config import DEFAULT_STORAGE
from effnas.studies.storage import mask_url, open_storage


def load_study(name: str, storage: str = DEFAULT_STORAGE) -> Any:
    """The Optuna study ``name`` of the storage URL ``storage`` (read-only use: an existing file is required)."""
    study = catalog.get(open_storage(storage, write=False), name)
    if study is None:
        raise UserError(f"no study {name!r} in {mask_url(storage)}")
    return study


def trials(study: Any) -> list[TrialRecord]:
    """Every trial of ``study`` as effnas's record (accuracy, MACs, params, arch, ...)."""
    return record.read_all(study.get_trials(deepcopy=False))
