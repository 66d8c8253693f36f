"""K-line frames reshaped for research code: one field, sessions or times down, codes across."""

from __future__ import annotations

from typing import Literal

import pandas as pd

from alltick_frames.core.intervals import parse_interval
from alltick_frames.frames.common import STRING
from alltick_frames.frames.klines import PRICE_FIELDS

#: Intervals whose bars line up across markets by their session date, not their timestamp.
SESSION_INTERVALS = frozenset({"1d", "1w", "1M"})


def wide(
    df: pd.DataFrame,
    field: str = "close",
    interval: str | None = None,
    on: Literal["session", "timestamp"] | None = None,
) -> pd.DataFrame:
    """One k-line field as a wide table: one row per session (or bar time), one column per
    code.

    For research code: ``wide(result.data)`` gives closing prices with codes as columns (in
    the order they first appear, i.e. the caller's order after :func:`finalize_klines`),
    NaN where a code has no bar. Day, week and month bars are indexed by ``session``, the
    exchange-local trading date: AAPL's bar (04:00Z), 700.HK's (16:00Z the evening before)
    and EURUSD's (00:00Z) of the same trading day share one row. Intraday bars are indexed by
    ``timestamp``. ``on="timestamp"`` (or ``"session"``) chooses explicitly. A frame holding
    several intervals needs ``interval=`` to pick one, since their rows do not line up.

    >>> wide(result.data, "volume", interval="1d")  # doctest: +SKIP
    """
    if field not in PRICE_FIELDS:
        raise ValueError(f"field must be one of {', '.join(PRICE_FIELDS)}; got {field!r}")
    if on not in (None, "session", "timestamp"):
        raise ValueError(f"on must be 'session' or 'timestamp'; got {on!r}")
    present = list(pd.unique(df["interval"].dropna()))
    if interval is not None:
        alias = parse_interval(interval).alias
        if alias not in present and len(df):
            raise ValueError(f"no {alias} bars here; intervals present: {', '.join(present)}")
        df = df[df["interval"] == alias]
        present = [alias]
    elif len(present) > 1:
        raise ValueError(
            f"the frame holds several intervals ({', '.join(present)}); pick one with "
            f"interval=, e.g. wide(df, {field!r}, interval={present[0]!r})"
        )
    if on is None:
        on = "session" if present and present[0] in SESSION_INTERVALS else "timestamp"
    df = df.drop_duplicates([on, "code"], keep="last")
    out = df.pivot(index=on, columns="code", values=field)
    out = out.reindex(columns=pd.Index(pd.unique(df["code"]), dtype=STRING, name="code"))
    return out.sort_index()
