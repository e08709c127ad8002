"""Files written through a temporary name get the mode a plain open() or mkdir() would have given them."""
import os
import stat
import tempfile
from pathlib import Path

from effnas.search.utils.files import made_plainly, temporary_beside, write_atomic


def umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_writes_and_renamed_temporaries_are_readable_as_plain_files(tmp_path):
    write_atomic(tmp_path / "a.json", "{}")
    handle, temporary = temporary_beside(tmp_path / "b.pt2", suffix=".pt2")
    os.close(handle)
    os.replace(temporary, tmp_path / "b.pt2")
    for name in ("a.json", "b.pt2"):
        assert mode(tmp_path / name) == 0o666 & ~umask(), name


def test_a_temporary_folder_renamed_into_place_is_readable_as_a_plain_folder(tmp_path):
    folder = made_plainly(Path(tempfile.mkdtemp(dir=tmp_path)))
    os.rename(folder, tmp_path / "entry")
    assert mode(tmp_path / "entry") == 0o777 & ~umask()
