"""Where the cache lives, and whether it can be trusted.

The cache directory is a trust boundary: whoever can write it decides what the store reads
(bars, coverage) and, through the budget ledger beside the bars, how fast your token is
spent. So the directory is created private (mode 0700) and one that other users can write is
refused, unless the caller says the sharing is deliberate (``shared=True``).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

#: The directories under the cache root that the library writes.
SUBDIRS = ("bars", "budget")


class StoreError(OSError):
    """The store on disk cannot be used as asked; the message says why and what to do.

    An OSError, like the file-system trouble it mostly stems from: the command line reports
    it as an error (exit status 1), never as a mistake in the command.
    """


class UnsafeCacheDir(StoreError):
    """The cache directory can be written by other users, and sharing it was not asked for."""


def default_cache_dir() -> Path:
    """The cache root: ``$ALLTICK_CACHE_DIR``, else ``$XDG_CACHE_HOME/alltick-frames``, else
    ``~/.cache/alltick-frames``."""
    explicit = os.environ.get("ALLTICK_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "alltick-frames"


def prepare_root(root: Path, *, shared: bool = False) -> None:
    """Create ``root`` and its ``bars`` directory, private (0700), if they are missing; then,
    unless ``shared``, refuse (:class:`UnsafeCacheDir`) a root or sub-directory that another
    user owns or that group or others may write. OSError when they cannot be created."""
    for path in (root, root / "bars"):
        if not path.is_dir():
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):  # another process was quicker
                path.mkdir(mode=0o700)
    if shared or os.name != "posix":
        return
    for path in (root, *(root / name for name in SUBDIRS)):
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        problem = None
        if info.st_uid != os.getuid():
            problem = f"is owned by another user (uid {info.st_uid})"
        elif info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            problem = f"can be written by other users (mode {stat.filemode(info.st_mode)})"
        if problem:
            raise UnsafeCacheDir(
                f"the cache directory {path} {problem}. Whoever can write it decides what "
                "you read from the cache, and its budget ledger paces your token. Make it "
                f"private (chmod 700 {path}), choose another directory (cache=PATH or "
                "--cache-dir), or share it on purpose (shared_cache=True or --shared-cache)"
            )
