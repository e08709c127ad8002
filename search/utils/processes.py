"""Processes of this host: whether one that left a lock, a heartbeat or a cache entry is still alive."""
from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """Whether a process of this host with ``pid`` exists (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
