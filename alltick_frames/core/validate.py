"""Checks of the arguments people pass, made before any request.

Each check returns the value in its canonical type or raises with the fix in the message:
TypeError for a value of the wrong kind altogether (``codes=None``), ValueError for one of
the right kind but out of range (``timeout=0``). numpy's integers count as whole numbers
everywhere; bools and floats never do, even ``8.0``: a float where a count is expected is
usually a unit mistake, and ``True`` is a bug.
"""

from __future__ import annotations

import math
import numbers
from urllib.parse import urlsplit

__all__ = ["base_url", "is_whole", "seconds", "whole"]


def is_whole(value: object) -> bool:
    """Whether ``value`` is an integer (Python's or numpy's), and not a bool (numpy's bool is
    no :class:`numbers.Integral` at all)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def whole(name: str, value: object, *, low: int = 1, high: int | None = None, fix: str = "") -> int:
    """``value`` as an int ``>= low`` (and ``<= high``), else ValueError naming ``name``.

    ``fix`` ends the message when the value is above ``high`` (what to do instead).
    """
    if not is_whole(value) or int(value) < low:  # type: ignore[call-overload]
        raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}")
    number = int(value)  # type: ignore[call-overload]
    if high is not None and number > high:
        raise ValueError(f"{name}={number:,} is above the most this allows, {high:,}{fix}")
    return number


def seconds(name: str, value: object) -> float:
    """``value`` as a finite, positive number of seconds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number of seconds, e.g. {name}=30, got {value!r}")
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(
            f"{name} must be a finite number of seconds above 0, e.g. {name}=30, got {value!r}"
        )
    return number


def base_url(value: object, source: str = "base_url") -> str:
    """``value`` checked to be an ``http(s)://host[:port]`` URL, without a trailing slash.

    The client adds the paths itself (``/quote-stock-b-api/kline``, ...), so a path, query
    or fragment is a mistake; ``source`` names where the value came from in the message.
    """
    example = "e.g. https://quote.alltick.co, or http://127.0.0.1:8787 for the emulator"
    if not isinstance(value, str):
        raise TypeError(f"{source} must be a URL string ({example}), got {value!r}")
    text = value.strip().rstrip("/")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (reading it validates the port)
    except ValueError as exc:
        raise ValueError(f"{source}={value!r} is not a URL ({exc}); {example}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"{source}={value!r} is not an http:// or https:// URL with a host; {example}"
        )
    if parts.path or parts.query or parts.fragment:
        raise ValueError(
            f"{source}={value!r} must be the scheme and host only ({example}): the client "
            "adds the API paths itself; drop everything after the host"
        )
    return text
