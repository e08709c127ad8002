"""A report of records another tool wrote, or someone edited: what cannot be read is left out, one line each on
the index page and on stderr, and the rest is drawn. Never a traceback, never a hang on a device or a FIFO."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3

import pytest

from tests.clirun import effnas


@pytest.fixture
def edited(tmp_path, nas_storage, trained_run):
    """A copy of the report tests' study with three trials' records edited (macs a string, accuracy NaN, an
    objective value infinite) and its config attribute made a list; and five run folders: one whole, one whose
    metrics.jsonl is a FIFO, one whose metrics are binary, one whose evaluation.json is a list, one whose
    config.json links to /dev/zero."""
    source = nas_storage[len("sqlite:///"):]
    shutil.copy(source, tmp_path / "s.db")
    with sqlite3.connect(tmp_path / "s.db") as conn:
        study = conn.execute("SELECT study_id FROM studies WHERE study_name = 'small'").fetchone()[0]
        trials = [row[0] for row in conn.execute(
            "SELECT trial_id FROM trials WHERE study_id = ? AND state = 'COMPLETE' ORDER BY number", (study,))]
        assert len(trials) >= 3
        conn.execute("UPDATE trial_user_attributes SET value_json = ? WHERE trial_id = ? AND key = 'macs'",
                     (json.dumps("lots"), trials[0]))
        conn.execute("UPDATE trial_user_attributes SET value_json = 'NaN' WHERE trial_id = ? AND key = 'accuracy'",
                     (trials[1],))
        conn.execute("UPDATE trial_values SET value = NULL, value_type = 'INF_POS' WHERE trial_id = ? AND "
                     "objective = 0", (trials[2],))
        conn.execute("UPDATE study_user_attributes SET value_json = ? WHERE study_id = ? AND key = 'config'",
                     (json.dumps([1, 2, 3]), study))
    conn.close()
    runs = tmp_path / "runs"
    for name in ("whole", "fifo", "binary", "list", "zero"):
        shutil.copytree(trained_run, runs / name)
    (runs / "fifo" / "metrics.jsonl").unlink()
    os.mkfifo(runs / "fifo" / "metrics.jsonl")
    (runs / "binary" / "metrics.jsonl").write_bytes(bytes(range(256)) * 4)
    (runs / "list" / "evaluation.json").write_text("[1, 2]\n")
    (runs / "zero" / "config.json").unlink()
    os.symlink("/dev/zero", runs / "zero" / "config.json")
    return tmp_path


def test_what_cannot_be_read_is_left_out_and_said(edited):
    result = effnas("report", "--storage", f"sqlite:///{edited}/s.db", "--out", str(edited / "r"), "--runs",
                    str(edited / "runs"), timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    said = [line for line in result.stderr.splitlines() if "left out" in line]
    assert all(line.startswith("effnas: ") for line in said)
    for fragment in ("trial", "macs is 'lots'", "accuracy is nan", "objective values", "fifo", "binary",
                     "list", "zero"):
        assert any(fragment in line for line in said), (fragment, said)
    index = (edited / "r" / "index.html").read_text()
    assert "Left out" in index and "macs is &#x27;lots&#x27;" in index
    pages = {p.name for p in (edited / "r").iterdir()}
    assert any(name.startswith("run-whole") for name in pages)  # the readable run is drawn
    assert not any(name.startswith(("run-fifo", "run-binary", "run-list", "run-zero")) for name in pages)
    small = next(name for name in pages if name.startswith("small"))
    assert "Left out" in (edited / "r" / small).read_text()  # the study's page, drawn from its other trials
