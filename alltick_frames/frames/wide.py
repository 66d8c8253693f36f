"""K-line frames reshaped for research code: one field, timestamps down, codes across."""

from __future__ import annotations

import pandas as pd

from alltick_frames.core.intervals import parse_interval
from alltick_frames.frames.common import STRING
from alltick_frames.frames.klines import PRICE_FIELDS


def wide(df: pd.DataFrame, field: str = "close", interval: str | None = None) -> pd.DataFrame:
    """One k-line field as a wide table: index ``timestamp``, one column per code.

    For research code: ``wide(result.data)`` gives closing prices with codes as columns (in
    the order they first appear, i.e. the caller's order after :func:`finalize_klines`),
    NaN where a code has no bar at that time. A frame holding several intervals needs
    ``interval=`` to pick one, since their timestamps do not line up.

    >>> wide(result.data, "volume", interval="1d")  # doctest: +SKIP
    """
    if field not in PRICE_FIELDS:
        raise ValueError(f"field must be one of {', '.join(PRICE_FIELDS)}; got {field!r}")
    present = list(pd.unique(df["interval"].dropna()))
    if interval is not None:
        alias = parse_interval(interval).alias
        if alias not in present and len(df):
            raise ValueError(f"no {alias} bars here; intervals present: {', '.join(present)}")
        df = df[df["interval"] == alias]
    elif len(present) > 1:
        raise ValueError(
            f"the frame holds several intervals ({', '.join(present)}); pick one with "
            f"interval=, e.g. wide(df, {field!r}, interval={present[0]!r})"
        )
    df = df.drop_duplicates(["timestamp", "code"], keep="last")
    out = df.pivot(index="timestamp", columns="code", values=field)
    out = out.reindex(columns=pd.Index(pd.unique(df["code"]), dtype=STRING, name="code"))
    return out.sort_index()
