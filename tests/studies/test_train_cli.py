"""End to end: `effnas train` writes its folder, resumes exactly after SIGKILL, runs DDP under torch's launcher."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time

import optuna
import pytest
import torch
from safetensors.torch import load_file

from effnas.search.training import checkpoint
from effnas.studies.cli import main
from tests.clirun import ROOT, assert_user_error, effnas
from tests.conftest import ONE_THREAD, RUN, TINY

STATE_FILES = (checkpoint.WEIGHTS, checkpoint.EMA_WEIGHTS, checkpoint.OPTIMIZER)


def test_the_run_folder(trained_run):
    files = checkpoint.read_run(trained_run)
    assert [row["epoch"] for row in files.metrics] == [1, 2]
    for row in files.metrics:
        assert {"train_loss", "val_loss", "val_accuracy", "ema_val_accuracy", "images_per_second", "lr"} <= set(row)
    assert files.config["classes"] == [str(d) for d in range(10)] and files.config["resolution"] == 16
    latest = checkpoint.latest_checkpoint(trained_run)
    assert latest.name == "epoch-0002" and sorted(p.name for p in latest.iterdir()) == sorted(
        (*STATE_FILES, checkpoint.STATE))
    evaluation = files.evaluation
    assert evaluation["weights"] == "ema" and evaluation["test"]["count"] == 30
    confusion = torch.tensor(evaluation["validation"]["confusion"])
    assert confusion.sum() == evaluation["validation"]["count"] == 359
    assert confusion.trace() / confusion.sum() == pytest.approx(evaluation["validation"]["accuracy"])
    assert files.metrics[-1]["ema_val_accuracy"] == pytest.approx(evaluation["validation"]["accuracy"], abs=1e-9)


def test_the_same_command_again_trains_nothing(trained_run, capsys):
    before = (trained_run / checkpoint.METRICS).read_text()
    assert main(["train", TINY, *RUN, "--epochs", "2", "--ema-decay", "0.9", "--test",
                 f"folder:{trained_run.parent.parent}", "--out", str(trained_run.parent), "--name", "tiny"]) == 2
    assert "another test" in capsys.readouterr().err  # a different held-out set is another run
    config = checkpoint.read_json(trained_run / checkpoint.CONFIG)["settings"]
    assert main(["train", TINY, *RUN, "--epochs", "2", "--ema-decay", "0.9", "--test", config["test"],
                 "--out", str(trained_run.parent), "--name", "tiny"]) == 0
    assert "Trained" in capsys.readouterr().out
    assert (trained_run / checkpoint.METRICS).read_text() == before


def _tensors(run) -> dict:
    latest = checkpoint.latest_checkpoint(run)
    return {f: load_file(latest / f) for f in STATE_FILES}


@pytest.mark.slow
def test_sigkill_at_a_random_moment_then_the_same_command_ends_with_the_same_weights(tmp_path):
    args = [TINY, *RUN, "--epochs", "5", "--dropout", "0.2", "--drop-path", "0.2", "--ema-decay", "0.99",
            "--name", "r"]
    whole = effnas("train", *args, "--out", str(tmp_path / "whole"), env=ONE_THREAD)
    assert whole.returncode == 0, whole.stderr
    rng = random.Random()
    folder = tmp_path / "killed" / "r"
    env = {**os.environ, "PYTHONPATH": str(ROOT), **ONE_THREAD}
    for delay in (rng.uniform(0.0, 0.4), rng.uniform(0.0, 0.1), 0.0):  # a shorter delay if the run got to its end
        process = subprocess.Popen([sys.executable, "-m", "effnas.studies.cli", "train", *args, "--out",
                                    str(folder.parent)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        target = folder / checkpoint.CHECKPOINTS / f"epoch-{rng.randint(1, 3):04d}"
        while time.time() < deadline and not target.exists() and process.poll() is None:
            time.sleep(0.01)
        time.sleep(delay)
        process.kill()
        process.wait()
        if not (folder / checkpoint.EVALUATION).exists():
            break
        for path in sorted(folder.rglob("*"), reverse=True):  # it finished first: start again from nothing
            path.unlink() if path.is_file() else path.rmdir()
    assert not (folder / checkpoint.EVALUATION).exists(), "never killed before the end"
    resumed = effnas("train", *args, "--out", str(folder.parent), env=ONE_THREAD)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    expected, got = _tensors(tmp_path / "whole" / "r"), _tensors(folder)
    for name in STATE_FILES:
        assert expected[name].keys() == got[name].keys()
        for key in expected[name]:
            assert torch.equal(expected[name][key], got[name][key]), (name, key)
    drop = ("seconds", "images_per_second")
    rows = [[{k: v for k, v in row.items() if k not in drop} for row in checkpoint.read_run(run).metrics]
            for run in (tmp_path / "whole" / "r", folder)]
    assert rows[0] == rows[1]


@pytest.mark.slow
def test_two_gloo_processes_train_the_weights_of_one_process(tmp_path):
    """--devices 2 (DDP, gloo, each rank half of each batch of 64) against one process that splits each batch in
    the same two micro-batches: with batch norm per device that is the same computation, so the weights agree
    to float32 rounding (summation order differs: <= 1e-5 after two epochs; measured ~6e-7) and so do the
    logits (<= 1e-4). The biases of the projection batch norms are left out: each feeds a batch norm through a
    linear conv, so its gradient is zero in exact arithmetic and AdamW turns the float noise in it into steps of
    the learning rate; the next batch norm subtracts them, which the logits check."""
    common = [TINY, *RUN, "--epochs", "2", "--batch-size", "64", "--device", "cpu", "--out", str(tmp_path)]
    two = effnas("train", *common, "--devices", "2", "--name", "two")
    assert two.returncode == 0, two.stderr
    one = effnas("train", *common, "--micro-batches", "2", "--name", "one", env=ONE_THREAD)
    assert one.returncode == 0, one.stderr
    assert [r["world_size"] for r in checkpoint.read_run(tmp_path / "two").metrics] == [2, 2]
    a, b = (load_file(checkpoint.latest_checkpoint(tmp_path / n) / checkpoint.WEIGHTS) for n in ("two", "one"))
    for key in a:
        if a[key].is_floating_point() and "running" not in key and not key.endswith("project.1.bias"):
            assert (a[key] - b[key]).abs().max() <= 1e-5, key
    from effnas.models import build
    from effnas.search.data.kinds import load_dataset
    from effnas.space import presets

    data = load_dataset("digits", resolution=16, seed=0)
    logits = []
    for weights in (a, b):
        model = build(presets.network(TINY), num_classes=10).eval()
        model.load_state_dict(weights)
        with torch.no_grad():
            logits.append(model(data.normalize(data.val_x)))
    assert (logits[0] - logits[1]).abs().max() <= 1e-4


@pytest.mark.slow
def test_from_study_trains_its_trials_on_its_split(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    made = effnas("search", "--study", "s", "--storage", url, "--trials", "2", *RUN, "--base", TINY,
                  "--seed", "3", "--val-fraction", "0.25", env=ONE_THREAD)
    assert made.returncode == 0, made.stderr
    result = effnas("train", "--from-study", "s", "--storage", url, "--trial", "1", "--epochs", "1",
                    "--out", str(tmp_path / "runs"), env=ONE_THREAD)
    assert result.returncode == 0, result.stderr
    config = checkpoint.read_json(tmp_path / "runs" / "s-trial1" / checkpoint.CONFIG)
    study = optuna.load_study(study_name="s", storage=url)
    assert config["arch"] == study.trials[1].user_attrs["arch"] and config["resolution"] == 16
    assert config["split"] == json.loads(study.user_attrs["split"])  # carved exactly as in the study
    assert config["settings"]["seed"] == 3 and config["settings"]["val_fraction"] == 0.25


def test_confirmed_reads_the_confirm_study(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/s.db"
    assert main(["train", "--from-study", "s", "--trial", "confirmed", "--storage", url]) == 2
    assert "does not exist" in capsys.readouterr().err
    optuna.create_study(study_name="s", storage=url)
    assert main(["train", "--from-study", "s", "--trial", "confirmed", "--storage", url]) == 2
    assert "run `effnas confirm --study s` first" in capsys.readouterr().err
    confirm = optuna.create_study(study_name="s-confirm", storage=url)
    for key, value in {"kind": "confirm", "confirmed_baseline": TINY, "confirmed_resolution": 12,
                       "dataset": "digits", "seed": 4}.items():
        confirm.set_user_attr(key, value)
    from effnas.studies.config import load_config
    from effnas.studies.train import plan_train

    plan = plan_train(load_config(overrides={"storage": url, "out": str(tmp_path / "r")}, command="train"),
                      arch=None, from_study="s", trial="confirmed", resume=None)
    assert (str(plan.spec), plan.config.resolution, plan.config.seed) == (str(plan.spec), 12, 4)
    assert plan.folder.name == "s-confirmed" and not plan.folder.exists()


@pytest.mark.parametrize("args, fragment", [
    ([], "give the network to train"),
    (["resnet99"], "unknown preset or reference 'resnet99'"),
    ([TINY, "--from-study", "x"], "not both"),
    ([TINY, "--trial", "3"], "--trial goes with --from-study"),
    ([TINY, "--batch-size", "30", "--devices", "4"], "multiple of --devices x --micro-batches = 4"),
    ([TINY, "--test", "digits"], "held-out"),
    ([TINY, "--augment", "mixup"], "allowed: crop-flip"),
    ([TINY, "--ema-decay", "1.5"], "ema_decay must be < 1"),
    ([TINY, "--dataset", "folder:/nonexistent"], "is not a directory"),
    (["--resume", "nothing-here"], "no training run there"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, fragment):
    assert main(["train", *args, "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("effnas: error: ") and fragment in err[0], err
    assert not (tmp_path / "runs").exists()


def test_a_folder_with_another_run_is_refused(trained_run, capsys):
    assert main(["train", TINY, *RUN, "--epochs", "3", "--out", str(trained_run.parent), "--name", "tiny"]) == 2
    message = capsys.readouterr().err
    assert "another ema_decay, epochs, test;" in message and "--resume" in message


def _locked(folder) -> bool:
    """Whether a process holds a lock on ``folder``, read from /proc/locks (without taking one: a probe that took
    the lock could make the run it watches find its folder in use)."""
    try:
        inode = os.stat(folder).st_ino
        lines = open("/proc/locks").read().splitlines()
    except OSError:
        return False
    return any(len(fields) > 5 and fields[1] == "FLOCK" and fields[5].rsplit(":", 1)[-1] == str(inode)
               for fields in (line.split() for line in lines))


def test_a_second_train_into_a_running_runs_folder_is_refused(tmp_path):
    """Two `effnas train --name same` at once: the second is refused in one line while the first runs, and writes
    nothing; the first ends as if alone."""
    args = ["train", TINY, *RUN, "--epochs", "3", "--out", str(tmp_path), "--name", "same"]
    first = subprocess.Popen([sys.executable, "-m", "effnas.studies.cli", *args], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT),
                                                                     **ONE_THREAD})
    try:
        deadline = time.time() + 120
        while not _locked(tmp_path / "same") and time.time() < deadline and first.poll() is None:
            time.sleep(0.05)
        assert _locked(tmp_path / "same"), "the first run never held its folder"
        second = effnas(*args, env=ONE_THREAD)
        assert_user_error(second, "is in use by another `effnas train`")
        out, err = first.communicate(timeout=300)
    finally:
        first.kill()
    assert first.returncode == 0, err
    assert [row["epoch"] for row in checkpoint.read_run(tmp_path / "same").metrics] == [1, 2, 3]
    assert not _locked(tmp_path / "same")  # the kernel let go with the process
