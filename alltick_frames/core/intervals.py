"""Bar intervals: AllTick's ``kline_type`` integers and the aliases people type.

======  ==========  =======================================
alias   kline_type  also accepted
======  ==========  =======================================
1m      1           1min, 1T
5m      2           5min
15m     3           15min
30m     4           30min
1h      5           60m, 60min, 1H
2h      6           120m, 2H (FX, crypto and metals only)
4h      7           240m, 4H (FX, crypto and metals only)
1d      8           D, 1D, day, daily
1w      9           W, 1W, week, weekly
1M      10          M, 1mo, month, monthly
======  ==========  =======================================

``m`` is minutes and ``M`` is months, as in pandas.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Interval:
    """One bar size: its canonical alias, AllTick's ``kline_type`` and its nominal length."""

    alias: str
    kline_type: int
    #: Nominal bar length in seconds (a month counts as 31 days: an upper bound).
    seconds: int

    @property
    def stock_ok(self) -> bool:
        """Whether stocks and indices offer this interval (2h and 4h are FX/crypto/metals only)."""
        return self.kline_type not in (6, 7)

    def __str__(self) -> str:
        return self.alias


_MIN, _H, _D = 60, 3600, 86400
INTERVALS: tuple[Interval, ...] = (
    Interval("1m", 1, _MIN),
    Interval("5m", 2, 5 * _MIN),
    Interval("15m", 3, 15 * _MIN),
    Interval("30m", 4, 30 * _MIN),
    Interval("1h", 5, _H),
    Interval("2h", 6, 2 * _H),
    Interval("4h", 7, 4 * _H),
    Interval("1d", 8, _D),
    Interval("1w", 9, 7 * _D),
    Interval("1M", 10, 31 * _D),
)
BY_KLINE_TYPE: dict[int, Interval] = {i.kline_type: i for i in INTERVALS}

_ALIASES: dict[str, int] = {i.alias: i.kline_type for i in INTERVALS}
_ALIASES.update(
    {
        "1min": 1, "1T": 1, "5min": 2, "15min": 3, "30min": 4,
        "60m": 5, "60min": 5, "1H": 5, "120m": 6, "2H": 6, "240m": 7, "4H": 7,
        "D": 8, "1D": 8, "day": 8, "daily": 8,
        "W": 9, "1W": 9, "week": 9, "weekly": 9,
        "M": 10, "1mo": 10, "month": 10, "monthly": 10,
    }
)  # fmt: skip


def parse_interval(value: str | int | Interval) -> Interval:
    """Turn ``"1d"``, ``8`` or an :class:`Interval` into an :class:`Interval`.

    ``value`` may be any integer type (numpy's too); bools and floats are refused. Raises
    ValueError naming the accepted spellings when ``value`` is none of them.
    """
    if isinstance(value, Interval):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if int(value) in BY_KLINE_TYPE:  # numpy's integers too
            return BY_KLINE_TYPE[int(value)]
    elif not isinstance(value, str):
        raise ValueError(
            f"interval must be a string like '1d' or AllTick's kline_type as an int 1..10, "
            f"not {value!r} ({type(value).__name__})"
        )
    else:
        key = value.strip()
        # Only word aliases ignore case: "5M" is five months, never five minutes.
        kline_type = _ALIASES.get(key) or _ALIASES.get(key.lower() if key.isalpha() else key)
        if kline_type is not None:
            return BY_KLINE_TYPE[kline_type]
    accepted = ", ".join(i.alias for i in INTERVALS)
    raise ValueError(
        f"unknown interval {value!r}: use one of {accepted} (m = minute, M = month) "
        "or AllTick's kline_type 1..10"
    )
