"""Run the real ``effnas`` entry point in a subprocess, as a user would."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def effnas(*args: str, cwd: str | os.PathLike | None = None, timeout: float = 600,
           env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "effnas.studies.cli", *args], cwd=cwd or ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def assert_user_error(result: subprocess.CompletedProcess, fragment: str = "") -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("effnas: error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert fragment in lines[0], lines[0]


def kill_when(process: subprocess.Popen, ready, *, timeout: float = 240, every: float = 0.3,
              after: float = 0.0) -> None:
    """SIGKILL ``process`` ``after`` seconds once ``ready()`` holds (polled every ``every`` seconds; an error
    from it, a study not there yet, counts as not ready); the process must still be running then."""
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        time.sleep(every)
        try:
            if ready():
                time.sleep(after)
                break
        except Exception:  # the study or its tables may not exist yet
            continue
    assert process.poll() is None, "the command ended before the kill point"
    process.send_signal(signal.SIGKILL)
    process.wait()
