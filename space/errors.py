"""The two kinds of failure every layer may raise; the CLI turns them into one line on stderr.

- :class:`UserError`: bad input (an architecture, a flag, a file, a dataset, a storage, a cluster
  address). Raised before anything is written; exit status 2.
- :class:`SearchError`: the work cannot go on (no sample meets the budget, too many trials failed
  in a row); exit status 1.
"""
from __future__ import annotations


class UserError(ValueError):
    """Bad input from the user; the message names the bad value and what is allowed."""


class SearchError(RuntimeError):
    """A study that cannot go on."""
