"""Hostile input around a training run (export, bench, train, predict, report --runs, --resume): every case gets one
line `effnas: error: …`, exit status 2, no traceback, and leaves the folder it ran in byte-identical. One tiny run is
trained per module and copied into each test's folder; the cases run in-process (torch is imported once), the
read-only mounts and the 3-D runs as real processes."""
from __future__ import annotations

import json
import os
import shutil
import sys

import pytest

from effnas.space import presets
from effnas.studies.cli import main
from tests.clirun import assert_user_error
from tests.studies.test_bad_input import can_mount_read_only, run

TINY = "stem_c8 ds_r1_k3_s1_c8 ir_r1_k3_s2_e3_c16 head_c32"
TINY_3D = f"3d {TINY}"
RUN = "runs/train/tiny"
CONFIG, STATE = f"{RUN}/config.json", f"{RUN}/checkpoints/epoch-0001/state.json"
DIGITS = ["--dataset", "digits", "--resolution", "8", "--epochs", "1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A one-epoch run of a tiny network on 8 px digits, and a PNG to predict."""
    folder = tmp_path_factory.mktemp("trained")
    result, _ = run(["train", TINY, *DIGITS, "--name", "tiny"], folder)
    assert result.returncode == 0, result.stderr
    from PIL import Image

    Image.new("RGB", (8, 8)).save(folder / "x.png")
    return folder


@pytest.fixture
def work(trained, tmp_path, monkeypatch):
    """The trained run's folder copied into this test's own, which becomes the current folder."""
    shutil.copytree(trained, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def snapshot(folder) -> dict:
    """test_bad_input's snapshot, with a FIFO named rather than read (reading one waits for a writer) and a
    symbolic link by its target."""
    def content(p):
        if p.is_symlink():
            return b"link to " + os.fsencode(os.readlink(p))
        return b"fifo" if p.is_fifo() else None if p.is_dir() else p.read_bytes()
    return {str(p.relative_to(folder)): content(p) for p in sorted(folder.rglob("*"))}


def edit(path: str, change):
    """A damage: the JSON file at ``path`` replaced by ``change(its value)``."""
    def damage(folder):
        file = folder / path
        file.write_text(json.dumps(change(json.loads(file.read_text()))))
    return damage


def with_keys(**values):
    return edit(CONFIG, lambda config: {**config, **values})


def fifo(folder):
    os.mkfifo(folder / "fifo.pt2")


OTHER_NETWORK = "stem_c8 ds_r1_k3_s1_c8 ir_r1_k3_s2_e3_c24 head_c32"
READERS = {"predict": ["predict", RUN, "x.png"], "export": ["export", RUN, "--format", "pt2"],
           "bench": ["bench", RUN], "resume": ["train", "--resume", RUN],
           "report": ["report", "--runs", "runs/train", "--out", "report"]}
CORRUPT = [
    ("config {}", edit(CONFIG, lambda _: {}), "no 'network'", ("predict", "export", "bench", "resume")),
    ("config [1]", edit(CONFIG, lambda _: [1]), "JSON object", ("predict", "export", "bench", "resume")),
    ("num_classes changed", with_keys(num_classes=7, classes=list("abcdefg")), "does not hold the weights",
     ("predict", "export", "bench")),
    ("network changed", with_keys(network=OTHER_NETWORK), "does not hold the weights", ("predict", "export", "bench")),
    ("network changed, resumed", with_keys(network=OTHER_NETWORK, arch=str(presets.network(OTHER_NETWORK))),
     "does not hold the weights",
     ("resume",)),
    ("mean of 2 values", with_keys(mean=[0.5, 0.5], std=[0.2, 0.2]), "input channels", ("predict", "export")),
    ("classes []", with_keys(classes=[]), "classes", ("predict", "export", "bench", "resume")),
    ("resolution 1e9", with_keys(resolution=1e9), "resolution", ("predict", "export", "bench", "resume")),
    ("settings unknown", with_keys(settings={"bogus": 1}), "unknown setting", ("resume",)),
    ("state.json []", edit(STATE, lambda _: []), "JSON object", ("resume",)),
    ("state.json {}", edit(STATE, lambda _: {}), "no 'epoch'", ("resume",)),
]

CASES = [
    ("export --out /dev/full", ["export", RUN, "--format", "pt2", "--out", "/dev/full"], None, "not a regular file"),
    ("export onnx --out /dev/full", ["export", RUN, "--format", "onnx", "--out", "/dev/full"], None,
     "not a regular file"),
    ("export --out a FIFO", ["export", RUN, "--format", "pt2", "--out", "fifo.pt2"], fifo, "not a regular file"),
    ("export --out the run's weights", ["export", RUN, "--format", "onnx", "--out",
                                        f"{RUN}/checkpoints/epoch-0001/model.safetensors"], None, "inside the run"),
    ("export --out the run's config", ["export", RUN, "--format", "onnx", "--out", f"{RUN}/./config.json"], None,
     "inside the run"),
    ("export timm --out the run's checkpoints", ["export", RUN, "--format", "timm", "--out", f"{RUN}/checkpoints"],
     None, "inside the run"),
    ("export --out a dangling link", ["export", RUN, "--format", "onnx", "--out", "gone.onnx"],
     lambda folder: (folder / "gone.onnx").symlink_to(folder / "nowhere"), "link to nothing"),
    ("export --out a loop of links", ["export", RUN, "--format", "onnx", "--out", "loop.onnx"],
     lambda folder: (folder / "loop.onnx").symlink_to(folder / "loop.onnx"), "--out"),
    ("export pt2 without .pt2", ["export", RUN, "--format", "pt2", "--out", "model.bin"], None, ".pt2"),
    ("export --out /proc", ["export", RUN, "--format", "pt2", "--out", "/proc/x.pt2"], None, "cannot write"),
    ("bench --threads 100000", ["bench", "efficientnet-b0", "--threads", "100000"], None, "--threads"),
    ("bench b7 batch 4096 at 600", ["bench", "efficientnet-b7", "--batch", "4096", "--resolution", "600"], None,
     "free"),
    ("bench --batch 1e9", ["bench", "efficientnet-b0", "--batch", "1000000000"], None, "free"),
    ("bench resnet18 --batch 1e9", ["bench", "resnet18", "--batch", "1000000000"], None, "free"),
    ("bench --num-classes 1e12", ["bench", "efficientnet-b0", "--num-classes", "1000000000000"], None, "free"),
    ("bench RUN --resolution 99999", ["bench", RUN, "--resolution", "99999"], None, "resolution"),
    ("bench --runs 1e9", ["bench", "efficientnet-b0", "--runs", "1000000000"], None, "at most"),
    ("bench --warmup 1e9", ["bench", "efficientnet-b0", "--warmup", "1000000000"], None, "at most"),
    ("train --name of 300 characters", ["train", TINY, *DIGITS, "--name", "n" * 300], None, "at most 255"),
    ("train --out under /proc", ["train", TINY, *DIGITS, "--out", "/proc/train"], None, "cannot write"),
    ("train a 2-D network on volumes", ["train", "efficientnet-b0", "--dataset", "shapes3d", "--resolution", "8"],
     None, "2-D network"),
    ("train volumes --augment crop-flip", ["train", TINY_3D, "--dataset", "shapes3d", "--resolution", "8",
                                           "--augment", "crop-flip"], None, "--augment"),
    *[(f"{reader}: {name}", READERS[reader], damage, fragment)
      for name, damage, fragment, readers in CORRUPT for reader in readers],
]


@pytest.mark.parametrize("name, args, setup, fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_runs_are_one_line_exit_2_and_write_nothing(work, capsys, name, args, setup, fragment):
    if setup is not None:
        setup(work)
    before = snapshot(work)
    status = main(args)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert status == 2, (status, captured.err)
    assert len(lines) == 1 and lines[0].startswith("effnas: error: ") and fragment in lines[0], captured.err
    assert snapshot(work) == before, f"{name}: the folder changed"


def test_a_report_leaves_a_damaged_run_out_with_a_line_and_draws_the_rest(work, capsys):
    """A report is a view: a run it cannot read is left out, said in one line, and the rest is written."""
    edit(CONFIG, lambda _: [1])(work)
    assert main(READERS["report"]) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("effnas: run ") and "JSON object" in lines[0], lines
    assert "Left out" in (work / "report" / "index.html").read_text()


READ_ONLY = [
    ("export --out in a read-only folder", ["export", RUN, "--format", "pt2", "--out", "ro/x.pt2"]),
    ("train --out in a read-only folder", ["train", TINY, *DIGITS, "--out", "ro/train"]),
]


@pytest.mark.skipif(not can_mount_read_only(), reason="needs `unshare -m` (root) for a read-only mount")
@pytest.mark.parametrize("name, args", READ_ONLY, ids=[c[0] for c in READ_ONLY])
def test_read_only_outputs_are_refused_before_any_work(work, name, args):
    (work / "ro").mkdir()
    before = snapshot(work)
    result, seconds = run(args, work, read_only=work / "ro")
    assert_user_error(result, "cannot write")
    assert snapshot(work) == before
    assert seconds < 6, f"{name} took {seconds:.1f} s: the check should come before the work"


def test_pt2_export_writes_only_its_files_and_prints_nothing_on_stderr(work):
    result, _ = run(["export", RUN, "--format", "pt2", "--out", "model.pt2"], work)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert (work / "model.pt2").is_file() and (work / "model.pt2.json").is_file()


def test_volumes_train_bench_and_predict(work):
    """A 3-D network trains on volumes without augmentation (the default there), bench measures it in
    channels_last_3d, and predict, which takes images, refuses it with one line."""
    result, _ = run(["train", TINY_3D, "--dataset", "shapes3d", "--resolution", "8", "--epochs", "1", "--name", "v"],
                    work)
    assert result.returncode == 0, result.stderr
    config = json.loads((work / "runs/train/v/config.json").read_text())
    assert config["settings"]["augment"] == "none" and config["network"].startswith("3d in_c1 ")
    result, _ = run(["bench", "runs/train/v", "--json"], work)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["memory_format"] == "channels_last_3d"
    assert_user_error(run(["predict", "runs/train/v", "x.png"], work)[0], "3-D")


def test_bench_of_a_3d_arch(capsys):
    assert main(["bench", "3d ir_r1_k3_s1_e1_c16", "--resolution", "16", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["memory_format"], result["resolution"]) == ("channels_last_3d", 16)


def test_search_with_latency_in_3d(tmp_path):
    result, _ = run(["search", "--dims", "3", "--objectives", "accuracy,macs,latency_ms", "--trials", "1", "--epochs",
                     "1", "--resolution", "8", "--base", TINY_3D], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


if sys.platform != "linux":  # /dev/full, /proc and FIFOs as used above
    pytestmark = pytest.mark.skip(reason="Linux paths")
