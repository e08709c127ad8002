"""Opening Optuna storages safely and masking their credentials."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import optuna

from search.lifecycle import GRACE_PERIOD, HEARTBEAT_INTERVAL, requeue
from space.errors import UserError

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
    """``text`` (an error message, say) with the URL's password removed."""
    try:
        from sqlalchemy.engine import make_url

        password = make_url(url).password
    except Exception:
        password = None
    text = text.replace(url, mask_url(url))
    return text.replace(password, "***") if password else text


def sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite:///"):
        return None
    return Path(url[len("sqlite:///"):].split("?", 1)[0])


def check_storage_url(url: str, *, create_default_dir: bool = False) -> None:
    """Reject a URL that cannot be a persistent storage, before anything is created."""
    if url.startswith("journal:"):
        path = Path(url[len("journal:"):])
        if not str(path) or not path.parent.is_dir():
            raise UserError(f"storage {url!r}: directory {str(path.parent)!r} does not exist")
        return
    if "://" not in url:
        raise UserError(f"unusable storage URL {mask_url(url)!r}; expected sqlite:///FILE, "
                        "postgresql://USER:PASSWORD@HOST/DB or journal:FILE")
    path = sqlite_path(url)
    if url.startswith("sqlite:") and path is None:
        raise UserError(f"unusable storage URL {url!r}; a SQLite storage is sqlite:///FILE")
    if path is None:
        return
    if str(path) in ("", ":memory:"):
        raise UserError(f"storage {url!r} is not a file: a study must outlive the process")
    if path.is_dir():
        raise UserError(f"storage {url!r} names a directory")
    if not path.parent.is_dir() and not create_default_dir:
        raise UserError(f"storage {url!r}: directory {str(path.parent)!r} does not exist")
    if path.exists() and path.stat().st_size:
        with open(path, "rb") as handle:
            if handle.read(16) != SQLITE_MAGIC:
                raise UserError(f"storage {url!r} is not a SQLite database")


def open_storage(url: str, *, create: bool = True, create_default_dir: bool = False) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url``; with ``create`` False, a SQLite file must already exist."""
    check_storage_url(url, create_default_dir=create_default_dir)
    path = sqlite_path(url)
    if path is not None and not path.exists() and not create:
        raise UserError(f"storage {url!r} does not exist")
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        file = Path(url[len("journal:"):])
        if not file.exists() and not create:
            raise UserError(f"storage {url!r} does not exist")
        return JournalStorage(JournalFileBackend(str(file)))
    if path is not None and create_default_dir:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine_kwargs: dict[str, Any] = {}
    if path is not None:
        engine_kwargs = {"connect_args": {"timeout": 60}}
    else:
        engine_kwargs = {"pool_pre_ping": True}
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_INTERVAL, grace_period=GRACE_PERIOD,
                heartbeat_stale_trial_callback=requeue,
            )
        except Exception as exc:  # SQLAlchemy / driver errors: unreachable host, bad credentials, no driver
            if _creation_race(exc) and attempt < 4:
                time.sleep(0.5 * (attempt + 1))  # another worker is creating the tables right now
                continue
            reason = scrub(" ".join(str(exc).split()), url)[:300]
            raise UserError(f"cannot open storage {mask_url(url)!r}: {reason}") from None
    raise AssertionError("unreachable")


def _creation_race(exc: Exception) -> bool:
    """Workers that create Optuna's tables at the same instant collide on PostgreSQL; a retry sees them."""
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    text = str(exc)
    return isinstance(exc, (IntegrityError, ProgrammingError)) and ("already exists" in text or "duplicate" in text)
