"""Trading-halt records (``/api/suspension/{exchange}``) -> the suspensions frame.

The service sends bare tickers (``600000``, ``AAPL``), mapped to AllTick's codes, and
exchange-local times as text, read in the exchange's time zone and converted to UTC
(``en/api-reference/stock/suspension.mdx``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from alltick_frames.core.codes import exchange_code
from alltick_frames.frames.common import F64, STRING, UTC_NS, empty_frame

#: Time zone of each exchange's local times.
EXCHANGE_TZ: dict[str, str] = {
    "sse": "Asia/Shanghai",
    "nyse": "America/New_York",
    "nasdaq": "America/New_York",
}

#: The market suffix of each exchange's stocks in AllTick's codes.
EXCHANGE_MARKET: dict[str, str] = {"sse": "SH", "nyse": "US", "nasdaq": "US"}

#: Trading halts, one row per record of ``/api/suspension/{exchange}``:
#:
#: * ``exchange`` (string): ``SSE``, ``NYSE`` or ``NASDAQ``;
#: * ``code`` (string): AllTick's code of the halted stock, the ticker with its market's
#:   suffix (``600000`` on SSE is ``600000.SH``, ``AAPL`` on NYSE or NASDAQ ``AAPL.US``), so
#:   it joins the other frames; NA when the ticker does not spell a code of that market
#:   (see :func:`~alltick_frames.core.codes.exchange_code`);
#: * ``symbol`` (string): the ticker as the service sends it;
#: * ``name`` (string): ``symbolName``; ``reason`` (string): ``haltReason``;
#: * ``period`` (string): ``haltPeriod`` as sent (SSE only; NYSE and NASDAQ send none);
#: * ``halted_at`` (datetime64[ns, UTC]): ``haltDateTime`` (NYSE, NASDAQ), else ``haltDate``
#:   with ``haltTime`` (``haltDate`` may be the date alone);
#: * ``resumes_at`` (datetime64[ns, UTC]): ``resumeDateTime``, else ``resumeDate`` with
#:   ``resumeTime``; NaT while no resumption is announced;
#: * ``published_at`` (datetime64[ns, UTC]): ``publishDate``, when the notice came out;
#: * ``source_exchange`` (string): ``sourceExchange`` (NYSE only);
#: * ``pause_threshold_price`` (float64): ``pauseThresholdPrice`` (NASDAQ only).
#:
#: The service sends exchange-local ``yyyy-MM-dd HH:mm:ss`` text; it is read in the
#: exchange's time zone (:data:`EXCHANGE_TZ`) and converted to UTC. ``null``, ``""`` and
#: unreadable dates become NaT; missing text becomes NA.
SUSPENSION_DTYPES: dict[str, Any] = {
    "exchange": STRING,
    "code": STRING,
    "symbol": STRING,
    "name": STRING,
    "reason": STRING,
    "period": STRING,
    "halted_at": UTC_NS,
    "resumes_at": UTC_NS,
    "published_at": UTC_NS,
    "source_exchange": STRING,
    "pause_threshold_price": F64,
}
SUSPENSION_COLUMNS: list[str] = list(SUSPENSION_DTYPES)

_CLOCK = re.compile(r"^\s*\d{1,2}:\d{2}(:\d{2})?\s*$")


def empty_suspensions() -> pd.DataFrame:
    """A trading-halt DataFrame with no rows and the dtypes of :data:`SUSPENSION_COLUMNS`."""
    return empty_frame(SUSPENSION_DTYPES)


def _local_times(values: pd.Series) -> pd.Series:
    """Naive local datetimes from text like ``2024-01-15 09:30:00`` (NaT when unreadable)."""
    text = values.astype("string").str.strip().replace("", pd.NA)
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
    # A year like -1 or 9999 parses, but lies outside what nanoseconds can hold: NaT too.
    inside = parsed.between(pd.Timestamp.min, pd.Timestamp.max)
    return parsed.where(inside).astype("datetime64[ns]")


def _moment(records: pd.DataFrame, datetime_key: str, date_key: str, time_key: str) -> pd.Series:
    """One naive local moment from a datetime field, else a date and a time field.

    The time field may be a full datetime or a bare clock time (``09:30:00``).
    """
    nat = pd.Series(pd.NaT, index=records.index, dtype="datetime64[ns]")
    full = _local_times(records[datetime_key]) if datetime_key in records else nat
    date = _local_times(records[date_key]) if date_key in records else nat
    if time_key not in records:
        return full.fillna(date)
    time_text = records[time_key].astype("string")
    clock = time_text.where(time_text.str.match(_CLOCK).fillna(False).astype(bool))
    on_date = date.dt.normalize() + pd.to_timedelta(clock.str.strip(), errors="coerce")
    return full.fillna(_local_times(time_text)).fillna(on_date).fillna(date)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def decode_suspensions(records: Sequence[Mapping[str, Any]], exchange: str) -> pd.DataFrame:
    """Decode the records of one trading-halt answer (``SuspensionPage.data``).

    ``exchange`` is ``"sse"``, ``"nyse"`` or ``"nasdaq"`` (case-insensitive): it sets the
    time zone the local times are read in. The columns are described at
    :data:`SUSPENSION_DTYPES`; rows keep the service's order (newest notice first).
    """
    key = exchange.lower()
    if key not in EXCHANGE_TZ:
        raise ValueError(f"exchange must be one of {', '.join(EXCHANGE_TZ)}; got {exchange!r}")
    if not records:
        return empty_suspensions()
    raw = pd.DataFrame.from_records([dict(r) for r in records])

    def text(name: str) -> pd.Series:
        if name not in raw:
            return pd.Series(pd.NA, index=raw.index, dtype=STRING)
        # Records missing a key come out of from_records as NaN: missing, not "nan".
        col = raw[name].map(lambda v: v if isinstance(v, str) or _missing(v) else str(v))
        return col.astype(STRING).str.strip().replace("", pd.NA)

    def utc(moment: pd.Series) -> pd.Series:
        local = moment.dt.tz_localize(EXCHANGE_TZ[key], ambiguous="NaT", nonexistent="NaT")
        return local.dt.tz_convert("UTC").astype(UTC_NS)

    threshold = text("pauseThresholdPrice")
    symbol = text("symbol")
    market = EXCHANGE_MARKET[key]
    codes = {t: exchange_code(t, market) for t in symbol.dropna().unique()}
    df = pd.DataFrame(
        {
            "exchange": pd.Series(key.upper(), index=raw.index, dtype=STRING),
            "code": symbol.map(codes).astype(STRING),
            "symbol": symbol,
            "name": text("symbolName"),
            "reason": text("haltReason"),
            "period": text("haltPeriod"),
            "halted_at": utc(_moment(raw, "haltDateTime", "haltDate", "haltTime")),
            "resumes_at": utc(_moment(raw, "resumeDateTime", "resumeDate", "resumeTime")),
            "published_at": utc(_moment(raw, "publishDateTime", "publishDate", "publishTime")),
            "source_exchange": text("sourceExchange"),
            "pause_threshold_price": pd.to_numeric(threshold, errors="coerce").astype(F64),
        }
    )
    return df.astype(SUSPENSION_DTYPES)
