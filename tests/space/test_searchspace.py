from __future__ import annotations

import optuna
import pytest

from effnas.space import presets
from effnas.space.arch import ArchSpec
from effnas.space.cost import cost
from effnas.space.errors import UserError
from effnas.space.searchspace import DIMENSIONS, SearchSpace

B0 = presets.get("efficientnet-b0").arch()


def test_b0_is_a_point_of_the_default_space():
    space = SearchSpace.around(B0)
    params = space.base_params()
    assert params is not None
    assert space.arch(params) == B0


def test_default_choices():
    space = SearchSpace.around(B0)
    stage = space.stages[3]
    assert stage.kernel == (3, 5, 7) and stage.expansion == (1, 3, 4, 6) and stage.se == (0, 0.25)
    assert stage.width == (0.75, 1.0, 1.25) and stage.repeats == (2, 4)
    assert space.stages[0].repeats == (1, 2) and space.stages[5].repeats == (3, 4)


def test_suggest_uses_fixed_names_for_every_dimension():
    space = SearchSpace.around(B0)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    names = set()
    for _ in range(5):
        trial = study.ask()
        arch = space.suggest(trial)
        assert ArchSpec.parse(str(arch)) == arch
        names.add(frozenset(trial.params))
        study.tell(trial, 0.0)
    assert names == {frozenset(f"s{i}_{d}" for i in range(7) for d in DIMENSIONS)}


def test_expansion_one_means_depthwise_separable():
    space = SearchSpace.around(B0)
    params = dict(space.base_params())
    params["s3_expansion"] = 1.0
    params["s3_width"] = 1.25
    stage = space.arch(params).stages[3]
    assert stage.block == "ds" and stage.channels == 104 and stage.stride == 2


def test_overrides_every_stage_then_per_stage():
    space = SearchSpace.around(B0, overrides={"kernel": [3, 5]},
                               stage_overrides={2: {"kernel": [7], "repeats": [1, 1]}})
    assert space.stages[0].kernel == (3, 5) and space.stages[2].kernel == (7,) and space.stages[2].repeats == (1, 1)
    assert space.base_params() is None  # B0's stage 2 has two repeats: no longer a point


def test_smallest_is_cheapest():
    space = SearchSpace.around(B0)
    smallest = cost(space.smallest(), 32)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(30):
        trial = study.ask()
        c = cost(space.suggest(trial), 32)
        assert c.macs >= smallest.macs and c.params >= smallest.params
        study.tell(trial, 0.0)


@pytest.mark.parametrize("overrides, stages, message", [
    ({"kernel": [4]}, {}, "odd"),
    ({"colour": [1]}, {}, "unknown key"),
    ({"kernel": 3}, {}, "must be a list"),
    ({"repeats": [3, 1]}, {}, "repeats"),
    ({"width": [0]}, {}, "width"),
    ({"expansion": [0.5]}, {}, "expansion"),
    ({}, {9: {"kernel": [3]}}, "stage 9"),
    ({"se": []}, {}, "at least one"),
])
def test_bad_space_config(overrides, stages, message):
    with pytest.raises(UserError, match=message):
        SearchSpace.around(B0, overrides=overrides, stage_overrides=stages)
