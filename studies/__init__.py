"""What a user launches.

- ``config``: StudyConfig, made from one field table (study, training and scaling settings)
- ``storage``: opening Optuna storages safely, masking credentials
- ``runner``: one runner for every study kind (data check, storage, executor, progress, Ctrl-C)
- ``nas``, ``scaling``, ``confirm``: the NAS study; the compound-scaling grid and the family; the confirmation
- ``train``, ``predict``, ``export``, ``bench``: a full training run, inference, export, measured latency
- ``show``, ``report``, ``tables``, ``progress``: what the commands print and write
- ``cli``: parses, calls, prints
"""
from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("effnas")
except metadata.PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"
