"""The driver side of a 3-D study, without training: every sampler proposes 3-D architectures, each is
costed in 3-D, the budget prunes on that cost, and the record says ``dims``."""
from __future__ import annotations

from dataclasses import replace

import optuna
import pytest

from effnas.search import record, samplers
from effnas.search.settings import TrainSettings
from effnas.search.trial import Budget, TrialPlanner, TrialTemplate, space_proposer
from effnas.space import presets
from effnas.space.arch import ArchSpec
from effnas.space.cost import cost
from effnas.space.searchspace import SearchSpace

BASE = replace(presets.get("efficientnet-b0").arch(), dims=3, in_channels=1)


def planner_for(strategy: samplers.Strategy, budget: Budget, trials: int) -> TrialPlanner:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=strategy.make(0, trials), directions=list(strategy.directions))
    template = TrialTemplate(dataset="shapes3d", num_classes=5, seed=0, train=TrainSettings())
    return TrialPlanner(study=study, propose=space_proposer(SearchSpace.around(BASE), 16), budget=budget,
                        template=template, n_trials=trials, target_macs=cost(BASE, 16, num_classes=5).macs,
                        objectives=strategy.metric_names)


@pytest.mark.parametrize("name", list(samplers.SAMPLERS))
def test_every_sampler_plans_3d_trials_and_the_budget_prunes_on_3d_cost(name):
    budget = Budget(max_macs=cost(BASE, 16, num_classes=5).macs)  # B0's own 3-D MACs: some samples exceed it
    planner = planner_for(samplers.get(name), budget, trials=10)
    while (candidate := planner.next_candidate()) is not None:
        arch = ArchSpec.parse(candidate.spec.arch)
        assert (arch.dims, arch.in_channels) == (3, 1) and candidate.spec.arch.startswith("3d in_c1 ")
        assert candidate.cost == cost(arch, 16, num_classes=5) and candidate.cost.macs <= budget.max_macs
        planner.complete(candidate, {"accuracy": 0.2 + candidate.cost.macs / 1e9})
    records = record.read_all(planner.study.get_trials())
    done = [r for r in records if r.state == "COMPLETE"]
    pruned = [r for r in records if r.state == "PRUNED"]
    assert len(done) == 10 and all(r.dims == 3 and r.macs <= budget.max_macs for r in done)
    infeasible = [r for r in pruned if r.infeasible]
    assert all(r.infeasible or r.duplicate_of is not None for r in pruned)  # over budget, or measured already
    assert all(r.macs > budget.max_macs and r.dims == 3 for r in infeasible)
    assert len({r.arch for r in done}) > 5
    assert infeasible  # the budget did bite (these seeds sample over-budget architectures)
