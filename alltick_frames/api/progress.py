"""Progress bars for long jobs: tqdm.auto, so notebooks get widgets and terminals get text."""

from __future__ import annotations

import sys
from typing import Any

#: Jobs with fewer calls than this show no bar: it would flash and vanish.
MIN_CALLS = 20


def _interactive() -> bool:
    """True in a terminal or a Jupyter kernel; False in pipes, logs and CI."""
    if "ipykernel" in sys.modules:
        return True
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def _tqdm() -> Any:
    """tqdm's bar class, imported when the first bar is shown (not when the package is)."""
    try:  # notebook widgets need ipywidgets; without it tqdm.auto warns, so use text bars
        import ipywidgets  # noqa: F401
        from tqdm.auto import tqdm
    except ImportError:
        from tqdm import tqdm
    return tqdm


class Progress:
    """Counts finished calls for one job; a no-op when disabled or when the job is small.

    ``enabled`` None means "when interactive": a terminal on stderr, or a notebook.
    """

    def __init__(self, total: int, desc: str, enabled: bool | None = None) -> None:
        show = _interactive() if enabled is None else enabled
        self._bar: Any = (
            _tqdm()(total=total, desc=desc, unit="call", file=sys.stderr, leave=False)
            if show and total >= MIN_CALLS
            else None
        )

    def update(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def grow(self, n: int = 1) -> None:
        """More calls than planned (next pages, retries of left-out items)."""
        if self._bar is not None:
            self._bar.total += n
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
