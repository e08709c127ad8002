from __future__ import annotations

import optuna
import pytest

from effnas.search import samplers
from effnas.space import presets
from effnas.space.errors import UserError
from effnas.space.searchspace import SearchSpace


def test_unknown_sampler_lists_names():
    with pytest.raises(UserError, match="nsga2, tpe, random, mnas"):
        samplers.get("cmaes")


@pytest.mark.parametrize("name", list(samplers.SAMPLERS))
def test_every_sampler_samples_every_dimension(name):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    strategy = samplers.get(name)
    space = SearchSpace.around(presets.get("efficientnet-b0").arch())
    study = optuna.create_study(sampler=strategy.make(0, 12), directions=list(strategy.directions))
    archs = set()
    for i in range(12):
        trial = study.ask()
        archs.add(str(space.suggest(trial)))
        study.tell(trial, [float(i % 5), float(i)][: len(strategy.directions)])
    params = [set(t.params) for t in study.trials]
    assert all(p == params[0] for p in params) and len(params[0]) == 35
    assert len(archs) > 6
