"""The Ray executor against a real local Ray instance and a real `ray start --head` on loopback (a 2-D and a
3-D study on it)."""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from effnas.search.record import ATTRS
from effnas.space.arch import ArchSpec
from effnas.space.cost import cost
from tests.clirun import assert_user_error, effnas

TINY_BASE = "stem_c8 ds_r1_k3_s1_c8_se0.25 ir_r2_k3_s2_e3_c16 head_c32"
FAST = ["--dataset", "digits", "--epochs", "1", "--resolution", "12", "--base", TINY_BASE]
RAY = str(Path(sys.executable).with_name("ray"))
pytestmark = pytest.mark.slow


def ray_processes() -> list[str]:
    """Live Ray processes. A zombie is left out: it runs nothing, and where a container's PID 1 does not reap
    orphans (CI's), a Ray worker that exited after its raylet stays `<defunct>` however long one waits."""
    result = subprocess.run(["ps", "-eo", "stat=,args="], capture_output=True, text=True)
    return [line for line in result.stdout.splitlines()
            if re.search(r"raylet|gcs_server|ray::", line) and not line.lstrip().startswith("Z")]


def attrs_of(url: str, name: str) -> list[dict]:
    study = optuna.load_study(study_name=name, storage=url)
    return [t.user_attrs for t in study.get_trials(states=(TrialState.COMPLETE,))]


def test_local_ray_records_like_the_local_executor_and_leaves_nothing(tmp_path):
    assert not ray_processes(), "a Ray instance is already running"
    url = f"sqlite:///{tmp_path}/s.db"
    ray = effnas("search", "--executor", "ray", "--study", "ray", "--storage", url, "--trials", "3", *FAST)
    assert ray.returncode == 0, ray.stderr[-3000:]
    local = effnas("search", "--study", "local", "--storage", url, "--trials", "1", *FAST)
    assert local.returncode == 0, local.stderr
    ray_attrs, local_attrs = attrs_of(url, "ray"), attrs_of(url, "local")
    assert len(ray_attrs) == 3
    expected = set(local_attrs[0]) - {"enqueued"}
    for attrs in ray_attrs:
        assert expected <= set(attrs), expected - set(attrs)
    assert not ray_processes()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not shutil.which(RAY) and not Path(RAY).exists(), reason="ray CLI not installed")
def test_study_on_an_existing_head_with_address(tmp_path):
    port = free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token"}  # ray start enables token auth; a joining driver must too
    start = subprocess.run([RAY, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=2",
                            "--include-dashboard=false", "--disable-usage-stats"], capture_output=True, text=True,
                           timeout=180, env=env)
    assert start.returncode == 0, start.stderr[-3000:]
    try:
        url = f"sqlite:///{tmp_path}/s.db"
        result = effnas("search", "--executor", "ray", "--address", f"127.0.0.1:{port}", "--study", "head",
                        "--storage", url, "--trials", "2", "--max-concurrent", "2", *FAST,
                        env={"RAY_AUTH_MODE": "token"})
        assert result.returncode == 0, result.stderr[-3000:]
        assert len(attrs_of(url, "head")) == 2
        assert ray_processes(), "the head we joined must still be running: effnas only disconnects"
        asks_gpu = effnas("search", "--executor", "ray", "--address", f"127.0.0.1:{port}", "--study", "gpu",
                          "--storage", url, "--trials", "1", "--gpus-per-trial", "1", *FAST,
                          env={"RAY_AUTH_MODE": "token"}, timeout=120)
        assert_user_error(asks_gpu, "offer: 2 CPU(s) and 0 GPU(s)")
        assert "gpu" not in optuna.get_all_study_names(url)
        check_a_3d_study(tmp_path, ["--address", f"127.0.0.1:{port}"], env={"RAY_AUTH_MODE": "token"})
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120, env=env)
    assert not ray_processes()


BASE_3D = "3d stem_c8 ds_r1_k3_s1_c8_se0.25 ir_r2_k3_s2_e3_c16 head_c32"


def check_a_3d_study(tmp_path: Path, ray: list[str], env: dict) -> None:
    """A 3-D study on Ray: every trial carries the whole record, dims included, and the exact 3-D cost."""
    url = f"sqlite:///{tmp_path}/s3.db"
    (tmp_path / "s.toml").write_text("[space]\nkernel = [3]\n")
    result = effnas("search", "--executor", "ray", *ray, "--study", "ray3d", "--storage", url, "--trials", "2",
                    "--epochs", "1", "--resolution", "8", "--base", BASE_3D, "--batch-size", "64", "--config",
                    str(tmp_path / "s.toml"), env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    study = optuna.load_study(study_name="ray3d", storage=url)
    assert study.user_attrs["dims"] == 3
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    expected = {name for name, f in ATTRS.items() if f.metadata["when"] in ("asked", "measured")}
    expected -= {"infeasible", "alpha", "beta", "gamma", "width", "depth", "phi", "macs_ratio", "nominal",
                 "nominal_ratio", "replicate"}  # over budget, scaling or confirm only
    expected -= {"duplicate_of", "rung_accuracy", "stopped_at", "crashes", "crash", "latency_ms",
                 "score", "evaluator"}  # when they apply
    assert len(trials) == 2
    for trial in trials:
        attrs = trial.user_attrs
        assert expected <= set(attrs), expected - set(attrs)
        arch = ArchSpec.parse(attrs["arch"])
        assert attrs["dims"] == 3 and (arch.dims, arch.in_channels) == (3, 1)
        assert attrs["macs"] == cost(arch, 8, num_classes=5).macs == trial.values[1]


def test_unreachable_ray_address_is_an_error(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    result = effnas("search", "--executor", "ray", "--address", f"127.0.0.1:{free_port()}", "--study", "x",
                    "--storage", url, "--trials", "1", *FAST, timeout=300)
    assert_user_error(result, "cannot reach the Ray cluster")


def test_a_killed_ray_worker_is_retried_and_recorded(tmp_path):
    """Ray retries a trial whose worker died; the study records it (crashes, crash) on the retried trial."""
    import signal
    import time

    url = f"sqlite:///{tmp_path}/s.db"
    process = subprocess.Popen([sys.executable, "-m", "effnas.studies.cli", "search", "--executor", "ray", "--study",
                                "k", "--storage", url, "--trials", "2", "--dataset", "digits", "--epochs", "12",
                                "--resolution", "16", "--base", TINY_BASE],
                               cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    deadline, victim = time.time() + 180, None
    while time.time() < deadline and victim is None:
        time.sleep(0.5)
        found = subprocess.run(["pgrep", "-f", "ray::ImplicitFunc"], capture_output=True, text=True).stdout.split()
        victim = int(found[0]) if found else None
    assert victim is not None, "no Ray trial process appeared"
    time.sleep(3)  # inside the trial's training (12 epochs: several seconds on any machine)
    os.kill(victim, signal.SIGKILL)
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    study = optuna.load_study(study_name="k", storage=url)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 2
    crashed = [t for t in study.trials if t.user_attrs.get("crashes")]
    assert crashed and crashed[0].user_attrs["crash"]
    assert not ray_processes()


def test_resources_no_node_offers_are_refused_before_anything_is_written(tmp_path):
    """Ray would wait forever for a GPU (or more cores) than any node has; effnas refuses in one line, writes no
    study, and leaves no Ray process behind."""
    import torch

    cases = [["--cpus-per-trial", "4096"]]
    if not torch.cuda.is_available():
        cases.append(["--gpus-per-trial", "1"])
    for asks in cases:
        result = effnas("search", "--executor", "ray", "--storage", f"sqlite:///{tmp_path}/s.db", "--trials", "1",
                        *asks, *FAST, cwd=tmp_path, timeout=120)
        assert_user_error(result, "no node of the Ray cluster offers")
        assert list(tmp_path.iterdir()) == []
    assert not ray_processes()


def test_check_resources_wants_one_node_with_both():
    from effnas.search.executors.ray import check_resources
    from effnas.space.errors import UserError

    nodes = [{"CPU": 8.0, "GPU": 0.0}, {"CPU": 1.0, "GPU": 1.0}]
    check_resources(nodes, cpus=1, gpus=1)
    check_resources(nodes, cpus=8, gpus=0)
    check_resources(nodes, cpus=1, gpus=0.25)
    with pytest.raises(UserError, match=r"offer: 8 CPU\(s\) and 0 GPU\(s\); 1 CPU\(s\) and 1 GPU\(s\)"):
        check_resources(nodes, cpus=2, gpus=1)  # no single node has both
    with pytest.raises(UserError, match="no live node"):
        check_resources([], cpus=1, gpus=0)
