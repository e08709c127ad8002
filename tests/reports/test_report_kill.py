"""`effnas report` killed at random moments leaves whole pages: every file is replaced atomically, so the
folder holds the previous report or the new one, and its charts still draw in Chromium."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from effnas.reports.html import safe_name
from tests.clirun import ROOT, effnas
from tests.reports.test_report import CHROMIUM, render

pytestmark = pytest.mark.slow


def whole(out) -> None:
    from plotly.offline import get_plotlyjs

    assert (out / "plotly.min.js").read_bytes() == get_plotlyjs().encode("utf-8")
    for page in out.glob("*.html"):
        assert page.read_text().rstrip().endswith("</html>"), page.name


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_report_killed_at_random_points(nas_storage, tmp_path):
    out = tmp_path / "report"
    args = ["report", "--storage", nas_storage, "--out", str(out)]
    started = time.monotonic()
    assert effnas(*args).returncode == 0
    duration = time.monotonic() - started  # start-up, reading the storage, drawing, writing
    mtime = (out / "plotly.min.js").stat().st_mtime_ns
    rng = random.Random(20261122)
    kills = 0
    for _ in range(4):
        process = subprocess.Popen([sys.executable, "-m", "effnas.studies.cli", *args], cwd=ROOT,
                                   env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.1, 0.9) * duration)  # somewhere inside a run, however fast this machine is
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
        whole(out)
        dom = render(out / safe_name("small"), f"--user-data-dir={tmp_path / 'chromium'}")
        assert "main-svg" in dom.split('id="pareto"', 1)[1]  # the charts draw
    assert kills >= 2
    assert (out / "plotly.min.js").stat().st_mtime_ns == mtime  # never rewritten: it was already the right one
    assert effnas(*args).returncode == 0
    assert not list(out.glob(".*.tmp"))
