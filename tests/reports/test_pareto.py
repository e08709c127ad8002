from __future__ import annotations

import pytest

from reports.pareto import hypervolume, hypervolume_history, pareto_mask


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
