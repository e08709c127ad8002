"""What can stop effnas, in every layer; the CLI turns each into one line on stderr and an exit status.

- :class:`UserError`: bad input (an architecture, a flag, a file, a dataset, a storage, a cluster
  address). Raised before anything is written; exit status 2.
- :class:`SearchError`: the work cannot go on (no sample meets the budget, too many trials failed
  in a row); exit status 1.
- :class:`Terminated`: SIGTERM, raised by the CLI's signal handler; exit status 143.
"""
from __future__ import annotations


class UserError(ValueError):
    """Bad input from the user; the message names the bad value and what is allowed."""


class SearchError(RuntimeError):
    """A study that cannot go on."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (what SLURM, Kubernetes and `timeout` send), handled like Ctrl-C wherever it lands: the trials
    in flight are failed and requeued; exit status 143."""
