"""Opening Optuna storages safely and masking their credentials."""
from __future__ import annotations

import stat
import time
from pathlib import Path
from typing import Any

import optuna

from effnas.search.lifecycle import GRACE_PERIOD, HEARTBEAT_INTERVAL, requeue, whole_line_journal
from effnas.search.utils.files import check_writable
from effnas.space.errors import UserError

SQLITE_MAGIC = b"SQLite format 3\x00"


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***, safe to print, log or store."""
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        if parsed.password:
            return parsed.render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL: mask user:password@ by hand
        pass
    head, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        credentials, _, host = rest.partition("@")
        user = credentials.split(":", 1)[0]
        return f"{head}://{user}:***@{host}" if ":" in credentials else url
    return url


def scrub(text: str, url: str) -> str:
    """``text`` (an error message, say) with the URL's password removed: the whole URL, and the password where
    it stands as a token of its own (``:secret@``, ``password=secret``), never as letters inside other words."""
    import re

    try:
        from sqlalchemy.engine import make_url

        password = make_url(url).password
    except Exception:
        password = None
    text = text.replace(url, mask_url(url))
    if not password:
        return text
    return re.sub(rf"(?<![A-Za-z0-9]){re.escape(str(password))}(?![A-Za-z0-9])", "***", text)


def sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite:///"):
        return None
    return Path(url[len("sqlite:///"):].split("?", 1)[0])


def check_storage_url(url: str, *, write: bool, create_default_dir: bool = False) -> None:
    """Reject a URL that cannot be a persistent storage (or, with ``write``, one effnas cannot write),
    before anything is created."""
    if url.startswith("journal:"):
        path = Path(url[len("journal:"):])
        if not str(path):
            raise UserError(f"storage {url!r}: a journal storage is journal:FILE")
        if path.is_dir():
            raise UserError(f"storage {url!r} names a directory; a journal storage is journal:FILE")
        check_plain_file(path, url)
        if not path.parent.is_dir():
            raise UserError(f"storage {url!r}: directory {str(path.parent)!r} does not exist")
        if path.is_file() and path.stat().st_size:
            check_journal_file(path, url)
        if write:
            check_writable(path, what="storage")
        return
    if "://" not in url:
        raise UserError(f"unusable storage URL {mask_url(url)!r}; expected sqlite:///FILE, "
                        "postgresql://USER:PASSWORD@HOST/DB or journal:FILE")
    path = sqlite_path(url)
    if url.startswith("sqlite:") and path is None:
        raise UserError(f"unusable storage URL {url!r}; a SQLite storage is sqlite:///FILE")
    if path is None:
        return
    if str(path) in ("", ":memory:") or _sqlite_uri(url):
        raise UserError(f"storage {url!r} is not a file: a study must outlive the process (effnas opens "
                        "sqlite:///FILE, not SQLite URI options such as uri=true or mode=memory)")
    if path.is_dir():
        raise UserError(f"storage {url!r} names a directory")
    check_plain_file(path, url)
    if path.parent.exists() and not path.parent.is_dir():
        raise UserError(f"storage {url!r}: {str(path.parent)!r} exists and is not a directory")
    if not path.parent.is_dir() and not create_default_dir:
        raise UserError(f"storage {url!r}: directory {str(path.parent)!r} does not exist")
    if path.exists() and path.stat().st_size:
        check_sqlite_file(path, url)
    if write:
        check_writable(path, what="storage")


def _sqlite_uri(url: str) -> bool:
    """Whether a SQLite URL asks for SQLite's URI file names (``?uri=true``): then its path and options (say
    ``file:x?mode=memory``) open something other than the file it names, such as a database gone at exit."""
    from urllib.parse import parse_qsl

    query = url.partition("?")[2]
    return any(key.lower() in ("uri", "mode", "vfs") for key, _ in parse_qsl(query, keep_blank_values=True))


def check_plain_file(path: Path, url: str) -> None:
    """A storage file is a regular file or a name not yet taken: never a device, a FIFO or a socket (where a
    database would hang, fail at fsync, or leave its ``-journal`` file among the devices), nor a link to
    nothing (which SQLite would follow to make a file elsewhere)."""
    if path.is_symlink() and not path.exists():
        raise UserError(f"storage {url!r} is a symbolic link to nothing; give the file itself")
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):  # a free name (or a parent that is a file: said later)
        return
    except OSError as exc:
        raise UserError(f"storage {url!r} cannot be read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode) and not stat.S_ISDIR(info.st_mode):
        raise UserError(f"storage {url!r} is not a regular file (a device, FIFO or socket); a study is kept in a "
                        "file")


def check_journal_file(path: Path, url: str) -> None:
    """A journal effnas may read and append to: one JSON object per line. Optuna would append to anything and fail
    on its next read. An incomplete last line is a record being written (another worker's append) or one cut by a
    kill mid-write (rare: Optuna writes a record in one locked write); it is looked at again after a second, and
    refused only if the file has not changed -- appended to, it would swallow the next record."""
    import json

    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.endswith(b"\n"):
                    time.sleep(1.0)
                    if path.stat().st_size != size:
                        return  # a live writer is appending: its record is whole by now
                    raise UserError(f"storage {url!r}: line {number} of the journal is incomplete (a writer was "
                                    "killed mid-line?) and has not changed since; remove that line to use it")
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                if not isinstance(record, dict):
                    raise UserError(f"storage {url!r} is not an Optuna journal (line {number} is not a JSON record)")
    except OSError as exc:
        raise UserError(f"storage {url!r} cannot be read: {exc.strerror or exc}") from None


def check_sqlite_file(path: Path, url: str) -> None:
    """A SQLite file effnas may use: Optuna's, or an empty database; never another application's."""
    import sqlite3

    with open(path, "rb") as handle:
        if handle.read(16) != SQLITE_MAGIC:
            raise UserError(f"storage {url!r} is not a SQLite database")
    try:
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        conn.close()
    except sqlite3.DatabaseError as exc:
        raise UserError(f"storage {url!r} is not a readable SQLite database: {exc}") from None
    if tables and not {"studies", "trials"} <= tables:
        shown = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "")
        raise UserError(f"storage {url!r} is another application's SQLite database (tables: {shown}); "
                        "effnas will not add its tables to it")


def open_storage(url: str, *, write: bool, create_default_dir: bool = False) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url``. A reader (``write`` False) needs an existing SQLite or journal file; a
    writer needs one it can write, or a folder in which to create it."""
    check_storage_url(url, write=write, create_default_dir=create_default_dir)
    path = sqlite_path(url)
    if path is not None and not path.exists() and not write:
        raise UserError(f"storage {url!r} does not exist")
    if path is not None and not write and not path.stat().st_size:
        raise UserError(f"storage {url!r} is an empty file: it holds no study")  # a reader creates no tables
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalStorage

        file = Path(url[len("journal:"):])
        if not file.exists() and not write:
            raise UserError(f"storage {url!r} does not exist")
        try:  # the journal is replayed here: records of another shape fail inside Optuna's replay
            return JournalStorage(whole_line_journal(str(file)))
        except (KeyError, AssertionError, TypeError, ValueError, AttributeError, IndexError) as exc:
            detail = f"{type(exc).__name__}: {exc}"[:200]
            raise UserError(f"storage {url!r} is not an Optuna journal: its records do not replay ({detail})") \
                from None
    if path is not None and create_default_dir:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"storage {url!r}: cannot create {str(path.parent)!r} ({exc.strerror or exc})") from None
    engine_kwargs: dict[str, Any] = {}
    if path is not None:
        engine_kwargs = {"connect_args": {"timeout": 60}}
    else:
        engine_kwargs = {"pool_pre_ping": True}
    for attempt in range(8):
        try:
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_INTERVAL, grace_period=GRACE_PERIOD,
                heartbeat_stale_trial_callback=requeue,
            )
        except Exception as exc:  # SQLAlchemy / driver errors: unreachable host, bad credentials, no driver
            if _creation_race(exc) and attempt < 7:
                time.sleep(0.5 * (attempt + 1))  # another worker is creating the tables right now
                continue
            raise UserError(f"cannot open storage {mask_url(url)!r}: {_reason(exc, url)}") from None
    raise AssertionError("unreachable")


def _reason(exc: Exception, url: str) -> str:
    text = scrub(" ".join(str(exc).split()), url)[:300]
    if "Failed to import DB access module" in text or isinstance(exc, ModuleNotFoundError):
        return (f"{text} (the database driver is not installed: for PostgreSQL, "
                "pip install 'effnas[postgres]', which gives SQLAlchemy's default driver, psycopg 3)")
    return text


def _creation_race(exc: Exception) -> bool:
    """Workers that create Optuna's tables at the same instant collide (PostgreSQL and SQLite alike); a retry
    sees the other's tables."""
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    text = str(exc)
    return isinstance(exc, (IntegrityError, ProgrammingError, OperationalError)) and (
        "already exists" in text or "duplicate" in text or "database is locked" in text
        or "UNIQUE constraint failed" in text)
