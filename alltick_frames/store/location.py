"""Where the cache lives."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """The cache root: ``$ALLTICK_CACHE_DIR``, else ``$XDG_CACHE_HOME/alltick-frames``, else
    ``~/.cache/alltick-frames``."""
    explicit = os.environ.get("ALLTICK_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "alltick-frames"
