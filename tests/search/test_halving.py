"""Multi-objective successive halving: who goes on at a rung, and that judging a trial changes nothing of it."""
from __future__ import annotations

import pytest
import torch

from effnas.models import build
from effnas.search.data.kinds import load_dataset
from effnas.search.halving import Rungs, goes_on, nondominated_order, rung_accuracies
from effnas.search.settings import TrainSettings
from effnas.search.training.loop import train_and_evaluate
from effnas.space.arch import ArchSpec
from effnas.space.errors import UserError

TINY = ArchSpec.parse("stem_c8 ds_r1_k3_s1_c8_se0.25 ir_r2_k3_s2_e3_c16 head_c32")


def test_the_first_result_at_a_rung_goes_on():
    assert goes_on([], (0.1, 1e9), eta=3)


def test_a_cheap_model_is_not_stopped_by_expensive_ones():
    expensive = [(0.95, 9e6), (0.94, 8e6), (0.93, 7e6), (0.92, 6e6), (0.91, 5e6)]
    assert goes_on(expensive, (0.50, 1e5), eta=3)  # nothing at least as cheap dominates it
    assert not goes_on(expensive, (0.50, 9e6), eta=3)  # as costly and worse than all: stopped


def test_top_third_goes_on():
    recorded = [(0.9 - 0.01 * i, 1e6) for i in range(8)]  # one cost: a pure accuracy ranking
    assert goes_on(recorded, (0.95, 1e6), eta=3)
    assert goes_on(recorded, (0.885, 1e6), eta=3)  # third of nine: place 2
    assert not goes_on(recorded, (0.865, 1e6), eta=3)  # fifth of nine: place 4 > 9 / 3


def test_nondominated_order_front_by_front_spread_within():
    points = [(0.9, 10), (0.8, 5), (0.85, 7), (0.7, 10), (0.6, 4)]
    order = nondominated_order(points)
    assert set(order[:4]) == {0, 1, 2, 4} and order[-1] == 3  # (0.7, 10) is dominated by (0.9, 10)
    assert order[0] == 0  # the most accurate leads its front


@pytest.mark.parametrize("epochs, eta, message", [((3, 1), 3, "increase"), ((), 3, "epoch counts"), ((1, 3), 1, "eta"),
                                                    ((5,), 3, "two rungs"), ((0,), 3, "epoch counts"),
                                                    ((1, 10**9), 3, "epoch counts")])
def test_bad_rungs(epochs, eta, message):
    with pytest.raises(UserError, match=message):
        Rungs(epochs, eta)


def test_judging_a_trial_on_the_way_changes_nothing_of_it():
    data = load_dataset("digits", resolution=12, seed=0)
    settings = TrainSettings(epochs=2, batch_size=64)

    def run(judge):
        torch.manual_seed(3)
        model = build(TINY, num_classes=10)
        return train_and_evaluate(model, data, settings, torch.device("cpu"), seed=3, judge_at=(1,), judge=judge)

    plain, judged = run(None), run(lambda epochs, accuracy: True)
    assert plain.accuracy == judged.accuracy and judged.stopped_at is None
    assert set(judged.rung_accuracy) == {1, 2}
    stopped = run(lambda epochs, accuracy: False)
    assert stopped.stopped_at == 1 and set(stopped.rung_accuracy) == {1}
    assert stopped.accuracy == judged.rung_accuracy[1]


def test_rung_accuracies_round_trip():
    from effnas.search.halving import encode

    assert rung_accuracies(encode({3: 0.5, 1: 0.25})) == {1: 0.25, 3: 0.5} and rung_accuracies(None) == {}
