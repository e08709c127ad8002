"""User-facing errors: the CLI turns these into ``effnas: error: …`` and exit status 2."""
from __future__ import annotations


class UserError(ValueError):
    """Bad input from the user: a flag, a file, a dataset, a storage URL."""
