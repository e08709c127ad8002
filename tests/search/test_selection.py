from __future__ import annotations

import pytest

from effnas.search.record import TrialRecord
from effnas.search.selection import (
    choose_baseline,
    choose_triple,
    hypervolume,
    hypervolume_history,
    mnas_reward,
    most_accurate,
    pareto_front,
    pareto_mask,
)


def rec(number: int, accuracy: float | None, macs: int, state: str = "COMPLETE", **attrs) -> TrialRecord:
    return TrialRecord(number=number, state=state, choices={}, datetime_start=None, datetime_complete=None,
                       accuracy=accuracy, macs=macs, **attrs)


def test_mnas_reward():
    assert mnas_reward(0.8, 400e6, 400e6) == pytest.approx(0.8)
    assert mnas_reward(0.8, 800e6, 400e6) == pytest.approx(0.8 * 2 ** -0.07)


def test_pareto_mask():
    accuracy = [0.9, 0.8, 0.85, 0.7, 0.9]
    macs = [10, 5, 12, 5, 10]
    assert pareto_mask(accuracy, macs) == [True, True, False, False, True]


def test_hypervolume_of_one_and_two_points():
    assert hypervolume([0.5], [50], max_macs=100) == pytest.approx(0.25)
    assert hypervolume([0.5, 0.8], [50, 75], max_macs=100) == pytest.approx(0.25 + 0.3 * 0.25)
    assert hypervolume([0.5], [150], max_macs=100) == 0.0


def test_hypervolume_history_never_falls():
    history = hypervolume_history([0.2, 0.5, 0.4, 0.9], [10, 30, 5, 90], max_macs=100)
    assert all(a <= b for a, b in zip(history, history[1:]))


def test_front_ignores_unfinished_trials_and_sorts_by_cost():
    records = [rec(0, 0.9, 100), rec(1, 0.8, 50), rec(2, 0.95, 10, state="PRUNED"), rec(3, None, 5, state="RUNNING"),
               rec(4, 0.7, 60)]
    assert [r.number for r in pareto_front(records)] == [1, 0]


def test_baseline_is_the_front_trial_with_the_best_reward_not_the_most_accurate():
    # 0.90 at 4x the target loses to 0.89 at the target: 0.90 * 4^-0.07 = 0.817
    records = [rec(0, 0.90, 400), rec(1, 0.89, 100), rec(2, 0.50, 10)]
    assert choose_baseline(records, target_macs=100).number == 1
    assert most_accurate(records).number == 0
    assert choose_baseline([], target_macs=100) is None


def test_ties_go_to_the_earlier_trial():
    records = [rec(3, 0.8, 100), rec(1, 0.8, 100)]
    assert choose_baseline(records, target_macs=100).number == 1
    assert most_accurate(records).number == 1


def test_the_triple_choice_only_looks_at_the_grid_and_averages_seeds():
    records = [rec(0, 0.7, 100, alpha=1.2, beta=1.1, gamma=1.15, role="grid", macs_ratio=1.0),
               rec(1, 0.9, 100, alpha=1.0, beta=1.0, gamma=1.4, role="family", macs_ratio=1.0),
               rec(2, 0.8, 100, alpha=1.0, beta=1.2, gamma=1.2, macs_ratio=1.0),
               rec(3, 0.5, 100, alpha=1.0, beta=1.2, gamma=1.2, macs_ratio=1.0)]  # a second seed: mean 0.65
    chosen = choose_triple(records, target_macs=100)
    assert (chosen.alpha, chosen.numbers) == (1.2, (0,))
    runner_up = choose_triple(records[2:], target_macs=100)
    assert runner_up.n == 2 and runner_up.accuracy == pytest.approx(0.65) and runner_up.accuracy_sd > 0
