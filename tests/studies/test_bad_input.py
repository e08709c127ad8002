"""Hostile input: every case gets one line `effnas: error: …`, exit status 2, no traceback, within a bounded
time, and leaves the folder it ran in byte-identical (no file created, changed or removed)."""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.clirun import ROOT, assert_user_error

TINY = "stem_c8 ds_r1_k3_s1_c8 ir_r1_k3_s2_e3_c16 head_c32"
FAST = ["--epochs", "1", "--resolution", "8", "--base", TINY]


def snapshot(folder: Path) -> dict[str, bytes | str | None]:
    """Every file's bytes and every folder under ``folder`` (None for a folder); a link, FIFO or device by what
    it is (reading a FIFO would wait for a writer)."""
    found: dict[str, bytes | str | None] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            value: bytes | str | None = f"link to {os.readlink(path)}"
        elif path.is_dir():
            value = None
        elif path.is_file():
            value = path.read_bytes()
        else:
            value = f"special file, mode {path.lstat().st_mode:o}"
        found[str(path.relative_to(folder))] = value
    return found


def fifo(name: str):
    return lambda folder: os.mkfifo(folder / name)


def link(name: str, target: str):
    return lambda folder: os.symlink(target, folder / name)


def can_mount_read_only() -> bool:
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True) if shutil.which("unshare") else None
    return probe is not None and probe.returncode == 0


def run(args: list[str], cwd: Path, *, read_only: Path | None = None, timeout: float = 120):
    """The real command in ``cwd``; with ``read_only``, that folder is mounted read-only for it (as a folder a
    user cannot write looks to any process, root included)."""
    command = [sys.executable, "-m", "effnas.studies.cli", *args]
    if read_only is not None:
        mount = f"mount --bind {read_only} {read_only} && mount -o remount,ro,bind {read_only} {read_only}"
        command = ["unshare", "-m", "sh", "-c", f'{mount} && exec "$@"', "sh", *command]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.monotonic()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return result, time.monotonic() - start


def foreign_sqlite(folder: Path) -> None:
    with sqlite3.connect(folder / "notes.db") as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.execute("INSERT INTO notes VALUES ('my data')")
    conn.close()


def huge_png(folder: Path) -> None:
    from PIL import Image

    for name, size in (("a", (20000, 20000)), ("b", (8, 8)), ("c", (8, 8))):
        (folder / "imgs" / name).mkdir(parents=True)
        Image.new("RGB", size).save(folder / "imgs" / name / "x.png")


def study_file(text: str):
    return lambda folder: (folder / "study.toml").write_text(text)


def write_file(name: str, data: bytes):
    return lambda folder: (folder / name).write_bytes(data)


def plain_file(name: str):
    return lambda folder: (folder / name).write_text("not a folder\n")


def existing_study(folder: Path) -> None:
    """A real effnas SQLite file, to be opened read-only for a new study."""
    import optuna

    optuna.create_study(study_name="old", storage=f"sqlite:///{folder}/ro.db")


CASES = [
    ("seed 2**32", ["search", "--seed", "4294967296"], None, "seed"),
    ("seed 2**70", ["search", "--seed", str(2**70)], None, "seed"),
    ("resolution 100000", ["search", "--resolution", "100000"], None, "resolution"),
    ("kernel 99999", ["search", "--config", "study.toml"], study_file("[space]\nkernel = [99999]\n"), "kernel"),
    ("config /dev/zero", ["search", "--config", "/dev/zero"], None, "not a regular file"),
    ("journal on a folder", ["search", "--storage", "journal:/tmp"], None, "directory"),
    ("runs is a file", ["search", *FAST], plain_file("runs"), "not a directory"),
    ("another application's SQLite", ["search", "--storage", "sqlite:///notes.db", *FAST], foreign_sqlite,
     "another application"),
    ("20000x20000 PNG", ["search", "--dataset", "folder:imgs", "--storage", "sqlite:///x.db", *FAST], huge_png,
     "too large"),
    ("folder:/proc/self", ["search", "--dataset", "folder:/proc/self", "--storage", "sqlite:///x.db", *FAST], None,
     "no images"),
    ("show --width 1e300", ["show", "efficientnet-b0", "--width", "1e300"], None, "width"),
    ("family --phi 100", ["family", "--baseline", "efficientnet-b0", "--alpha", "1.2", "--beta", "1.1", "--gamma",
                          "1.15", "--phi", "100"], None, "phi"),
    ("scale --step 1e-6", ["scale", "--baseline", "efficientnet-b0", "--dry-run", "--step", "1e-6"], None, "points"),
    ("scale --max-coef 1e9", ["scale", "--baseline", "efficientnet-b0", "--dry-run", "--max-coef", "1e9"], None,
     "max_coef"),
    ("report --out /proc/x", ["report", "--storage", "sqlite:///ro.db", "--out", "/proc/x"], existing_study,
     "--out"),
    ("report --export /proc/self", ["report", "--storage", "sqlite:///ro.db", "--out", "r", "--export",
                                    "/proc/self/x.csv"], existing_study, "--export"),
    ("postgres without its driver", ["search", "--storage", "postgresql+pg8000://u:hunter2@127.0.0.1:1/db", *FAST],
     None, "driver"),
    ("a one-letter password masks no letters of the message", ["search", "--storage", "mysql://u:p@127.0.0.1:1/x",
                                                               *FAST], None, "import DB access module"),
    ("journal of garbage", ["search", "--storage", "journal:j.log", *FAST], write_file("j.log", b'{"bad json\n'),
     "not an Optuna journal"),
    ("journal cut mid-line", ["report", "--storage", "journal:j.log"], write_file("j.log", b'{"op_code": 0}\n{"op'),
     "incomplete"),
    ("report on an empty file", ["report", "--storage", "sqlite:///empty.db"], write_file("empty.db", b""),
     "empty file"),
    ("epochs 1e9", ["search", "--epochs", "1000000000"], None, "epochs"),
    ("trials 1e12", ["search", "--trials", "1000000000000"], None, "trials"),
    ("one rung", ["search", "--rungs", "5"], None, "two rungs"),
    ("a rung of 1e9 epochs", ["search", "--rungs", "1,1000000000"], None, "rungs"),
    ("kernel [[3]]", ["search", "--config", "study.toml"], study_file("[space]\nkernel = [[3]]\n"), "numbers"),
    ("journal:/dev/null", ["search", "--storage", "journal:/dev/null", *FAST], None, "not a regular file"),
    ("journal:/dev/full", ["search", "--storage", "journal:/dev/full", *FAST], None, "not a regular file"),
    ("journal on a FIFO", ["search", "--storage", "journal:j.fifo", *FAST], fifo("j.fifo"), "not a regular file"),
    ("report of a journal FIFO", ["report", "--storage", "journal:j.fifo"], fifo("j.fifo"), "not a regular file"),
    ("SQLite file linked to a device", ["search", "--storage", "sqlite:///s.db", *FAST], link("s.db", "/dev/null"),
     "not a regular file"),
    ("SQLite on a FIFO", ["report", "--storage", "sqlite:///s.db"], fifo("s.db"), "not a regular file"),
    ("SQLite link to nothing", ["search", "--storage", "sqlite:///s.db", *FAST], link("s.db", "gone/none.db"),
     "link to nothing"),
    ("journal of {}", ["search", "--storage", "journal:j.log", *FAST], write_file("j.log", b"{}\n"),
     "do not replay"),
    ("report of a journal of {}", ["report", "--storage", "journal:j.log"], write_file("j.log", b"{}\n"),
     "do not replay"),
    ("journal with an unknown op code", ["search", "--storage", "journal:j.log", *FAST],
     write_file("j.log", b'{"op_code": 99, "worker_id": "w"}\n'), "do not replay"),
    ("report of a journal with an unknown op code", ["report", "--storage", "journal:j.log"],
     write_file("j.log", b'{"op_code": 99, "worker_id": "w"}\n'), "do not replay"),
    ("journal record missing its fields", ["report", "--storage", "journal:j.log"],
     write_file("j.log", b'{"op_code": 0, "worker_id": "w"}\n'), "do not replay"),
    ("SQLite in-memory URI", ["search", "--storage", "sqlite:///file:mem?mode=memory&uri=true", *FAST], None,
     "outlive the process"),
]


@pytest.mark.parametrize("name, args, setup, fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, name, args, setup, fragment):
    if setup is not None:
        setup(tmp_path)
    before = snapshot(tmp_path)
    result, seconds = run(args, tmp_path)
    assert_user_error(result, fragment)
    assert "hunter2" not in result.stderr
    assert snapshot(tmp_path) == before, f"{name}: the folder changed"
    assert seconds < 60, f"{name} took {seconds:.0f} s"


READ_ONLY = [
    ("current folder not writable", ["search", *FAST], None, "cannot write"),
    ("read-only SQLite file, new study", ["search", "--study", "new", "--storage", "sqlite:///ro.db", *FAST],
     existing_study, "cannot write"),
    ("report --out under a read-only folder", ["report", "--storage", "sqlite:///ro.db", "--out", "sub/report"],
     existing_study, "cannot write"),
]


@pytest.mark.skipif(not can_mount_read_only(), reason="needs `unshare -m` (root) for a read-only mount")
@pytest.mark.parametrize("name, args, setup, fragment", READ_ONLY, ids=[c[0] for c in READ_ONLY])
def test_read_only_folders(tmp_path, name, args, setup, fragment):
    if setup is not None:
        setup(tmp_path)
    before = snapshot(tmp_path)
    result, _ = run(args, tmp_path, read_only=tmp_path)
    assert_user_error(result, fragment)
    assert snapshot(tmp_path) == before
