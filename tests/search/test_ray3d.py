"""A 3-D study on a local Ray instance: every trial carries the whole record, dims included, and the exact
3-D cost; the Ray instance is gone afterwards."""
from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from search.record import ATTRS
from space.arch import ArchSpec
from space.cost import cost
from tests.clirun import effnas
from tests.search.test_ray_executor import ray_processes

BASE = "3d stem_c8 ds_r1_k3_s1_c8_se0.25 ir_r2_k3_s2_e3_c16 head_c32"
pytestmark = pytest.mark.slow


def test_a_3d_study_on_ray_records_every_field(tmp_path):
    assert not ray_processes(), "a Ray instance is already running"
    url = f"sqlite:///{tmp_path}/s.db"
    (tmp_path / "s.toml").write_text("[space]\nkernel = [3]\n")
    result = effnas("search", "--executor", "ray", "--study", "ray", "--storage", url, "--trials", "2", "--epochs",
                    "1", "--resolution", "8", "--base", BASE, "--batch-size", "64", "--config",
                    str(tmp_path / "s.toml"))
    assert result.returncode == 0, result.stderr[-3000:]
    study = optuna.load_study(study_name="ray", storage=url)
    assert study.user_attrs["dims"] == 3
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    expected = {name for name, f in ATTRS.items() if f.metadata["when"] in ("asked", "measured")}
    expected -= {"infeasible", "alpha", "beta", "gamma", "width", "depth", "phi", "macs_ratio", "nominal",
                 "nominal_ratio", "replicate"}  # over budget, scaling or confirm only
    expected -= {"duplicate_of", "rung_accuracy", "stopped_at", "crashes", "crash", "latency_ms"}  # when they apply
    assert len(trials) == 2
    for trial in trials:
        attrs = trial.user_attrs
        assert expected <= set(attrs), expected - set(attrs)
        arch = ArchSpec.parse(attrs["arch"])
        assert attrs["dims"] == 3 and (arch.dims, arch.in_channels) == (3, 1)
        assert attrs["macs"] == cost(arch, 8, num_classes=5).macs == trial.values[1]
    assert not ray_processes()
