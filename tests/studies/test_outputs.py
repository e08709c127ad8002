"""An output path is never an effnas file the output did not make (a storage, a run's files, the image cache) nor
an input of the same command: one line, exit 2, every file of the folder as it was."""
from __future__ import annotations

import shutil

import optuna
import pytest

from tests.clirun import assert_user_error, effnas
from tests.conftest import ONE_THREAD, TINY
from tests.studies.test_bad_input import snapshot


@pytest.fixture
def folder(tmp_path, trained_run):
    """runs/train/a and runs/train/b (two runs), s.db (a SQLite study), j.log (a journal study) and copies of
    both under .csv names, as a user's folder might hold them."""
    for name in ("a", "b"):
        shutil.copytree(trained_run, tmp_path / "runs" / "train" / name)
    optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path}/s.db").optimize(lambda t: 0.0, n_trials=1)
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    journal = JournalStorage(JournalFileBackend(str(tmp_path / "j.log")))
    optuna.create_study(study_name="j", storage=journal).optimize(lambda t: 0.0, n_trials=1)
    shutil.copy(tmp_path / "s.db", tmp_path / "s.csv")
    shutil.copy(tmp_path / "j.log", tmp_path / "j.csv")
    return tmp_path


WEIGHTS = "runs/train/b/checkpoints/epoch-0002/model.safetensors"
CASES = [
    ("onnx over a study database", ["export", "runs/train/a", "--format", "onnx", "--out", "s.db"], "SQLite database"),
    ("onnx over a journal", ["export", "runs/train/a", "--format", "onnx", "--out", "j.log"], "Optuna journal"),
    ("onnx over another run's weights", ["export", "runs/train/a", "--format", "onnx", "--out", WEIGHTS],
     "inside the training run"),
    ("pt2 into another run's export folder", ["export", "runs/train/a", "--format", "pt2", "--out",
                                              "runs/train/b/export/m.pt2"], "inside the training run"),
    ("timm into another run's folder", ["export", "runs/train/a", "--format", "timm", "--out", "runs/train/b"],
     "inside the training run"),
    ("onnx whose sidecar is a study", ["export", "runs/train/a", "--format", "onnx", "--out", "s"], "SQLite database"),
    ("report --export over its own SQLite storage", ["report", "--storage", "sqlite:///s.csv", "--export", "s.csv"],
     "is the storage"),
    ("report --export over its own journal", ["report", "--storage", "journal:j.csv", "--export", "j.csv"],
     "is the storage"),
    ("report --export over another storage", ["report", "--storage", "sqlite:///s.db", "--export", "j.csv"],
     "Optuna journal"),
    ("report --export into a run", ["report", "--storage", "sqlite:///s.db", "--export", "runs/train/a/t.csv"],
     "inside the training run"),
    ("report --out a run folder", ["report", "--storage", "sqlite:///s.db", "--out", "runs/train/a"],
     "inside the training run"),
    ("train into another run's folder", ["train", TINY, "--dataset", "digits", "--resolution", "16", "--out",
                                         "runs/train/a", "--name", "x"], "inside the training run"),
    ("train into the image cache", ["train", TINY, "--dataset", "digits", "--resolution", "16", "--out", "cache"],
     "image cache"),
]


@pytest.mark.parametrize("name, args, fragment", CASES, ids=[c[0] for c in CASES])
def test_an_output_never_replaces_what_effnas_did_not_make_for_it(folder, name, args, fragment):
    (folder / "s").with_name("s.json").write_bytes((folder / "s.db").read_bytes())  # the sidecar of --out s
    before = snapshot(folder)
    result = effnas(*args, cwd=folder, env={**ONE_THREAD, "EFFNAS_CACHE": str(folder / "cache")})
    assert_user_error(result, fragment)
    assert snapshot(folder) == before, f"{name}: the folder changed"


def test_an_earlier_output_of_the_same_kind_is_replaced(folder):
    """What the output made before (last time's CSV) is what it may replace."""
    for _ in range(2):
        result = effnas("report", "--storage", "sqlite:///s.db", "--export", "t.csv", "--out", "r", cwd=folder)
        assert result.returncode == 0, result.stderr
    assert (folder / "t.csv").read_text().startswith("study,")
