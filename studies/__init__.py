"""What a user launches: configuration, the NAS study, the scaling study, and the CLI."""
from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("effnas")
except metadata.PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"
