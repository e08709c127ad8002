"""A full disk (a small tmpfs, filled but for a few KB): one `effnas: error:` line, exit 1 (the work had started),
no traceback or abort, and no half-written file: exports, a report, a training run at its checkpoint, and a
study on a journal storage, which then resumes once there is room."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.clirun import effnas
from tests.conftest import ONE_THREAD, TINY

FAST = ["--epochs", "1", "--resolution", "8", "--base", "stem_c8 ds_r1_k3_s1_c8 ir_r1_k3_s2_e3_c16 head_c32"]


def _can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


pytestmark = pytest.mark.skipif(not _can_mount(), reason="needs root to mount a small tmpfs")


@pytest.fixture
def disk(tmp_path):
    """A 1 MB tmpfs at tmp_path/disk; ``fill(free)`` fills it but for ``free`` bytes, ``empty()`` frees it."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode()[:200]}")

    class Disk:
        path = mount
        filler = tmp_path / "disk" / ".filler"

        def fill(self, free: int) -> None:
            with open(self.filler, "wb", buffering=0) as out:  # unbuffered: nothing left to flush at close
                try:
                    while out.write(b"\0" * 4096):
                        pass
                except OSError:
                    pass
            size = self.filler.stat().st_size
            os.truncate(self.filler, max(0, size - free))

        def empty(self) -> None:
            self.filler.unlink(missing_ok=True)

        def files(self) -> set[str]:
            return {str(p.relative_to(mount)) for p in mount.rglob("*") if p != self.filler}

    try:
        yield Disk()
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _disk_full(result) -> None:
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and "terminate called" not in result.stderr
    assert lines and lines[-1].startswith("effnas: error: no space left"), result.stderr[-2000:]


@pytest.mark.parametrize("fmt, out", [("onnx", "m.onnx"), ("pt2", "m.pt2"), ("timm", "timm")])
def test_export_on_a_full_disk(disk, trained_run, fmt, out):
    disk.fill(4096)
    result = effnas("export", str(trained_run), "--format", fmt, "--out", str(disk.path / out), env=ONE_THREAD)
    _disk_full(result)
    assert disk.files() <= {"timm"}  # nothing written, or the timm folder alone, empty
    assert not (disk.path / "timm").exists() or not any((disk.path / "timm").iterdir())


def test_report_on_a_full_disk(disk, tmp_path):
    import optuna

    storage = f"sqlite:///{tmp_path}/s.db"
    optuna.create_study(study_name="s", storage=storage).optimize(lambda trial: trial.suggest_float("x", 0, 1), 3)
    disk.fill(8192)
    result = effnas("report", "--storage", storage, "--out", str(disk.path / "r"), "--runs", "none")
    _disk_full(result)
    assert not [p for p in (disk.path / "r").glob(".*.tmp")]  # no temporary left; pages written are whole


def test_train_on_a_full_disk_at_its_checkpoint(disk):
    disk.fill(12 * 1024)  # room for config.json, not for a checkpoint's weights and moments
    result = effnas("train", TINY, "--dataset", "digits", "--resolution", "16", "--epochs", "2", "--out",
                    str(disk.path), "--name", "r", env=ONE_THREAD)
    _disk_full(result)
    checkpoints = disk.path / "r" / "checkpoints"
    assert not checkpoints.exists() or not any(checkpoints.iterdir())  # no half checkpoint
    assert not (disk.path / "r" / "metrics.jsonl").exists()


def test_a_journal_study_on_a_full_disk_keeps_whole_records_and_resumes(disk):
    journal = disk.path / "j.log"
    args = ["search", "--storage", f"journal:{journal}", "--trials", "3", *FAST]
    disk.fill(8 * 1024)  # the study's first records
    result = effnas(*args, env=ONE_THREAD)
    _disk_full(result)
    text = journal.read_bytes()
    assert text.endswith(b"\n")
    assert all(isinstance(json.loads(line), dict) for line in text.splitlines())  # every record whole
    disk.empty()
    resumed = effnas(*args, env=ONE_THREAD)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    import optuna

    from effnas.studies.storage import open_storage

    study = optuna.load_study(study_name="effnas", storage=open_storage(f"journal:{journal}", write=False))
    assert sum(t.state.name == "COMPLETE" for t in study.trials) == 3


def test_a_full_disk_is_told_from_other_errors():
    import errno

    from effnas.studies.cli import disk_full

    assert disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert disk_full(RuntimeError("unexpected pos 64 vs 0: No space left on device"))
    try:
        try:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        except OSError as inner:
            raise ValueError("while saving") from inner
    except ValueError as outer:
        assert disk_full(outer)
    assert not disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not disk_full(KeyError("macs"))
