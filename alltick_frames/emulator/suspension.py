"""The trading-halt service (``/api/suspension/{sse,nyse,nasdaq}``), with its own envelope.

Records are synthetic and deterministic for a given market ``now``: each calendar week of the
past year holds zero to two halts per exchange, drawn by hash from the catalogue's stocks of
that exchange (``.SH`` codes for SSE; NYSE- and NASDAQ-listed ``.US`` codes). A record appears
once its ``publishDate`` has passed; a halt whose resumption lies after ``now`` has empty
(``""``) resume fields: the docs allow null or "", and AllTick's OpenAPI types them as strings.

As the docs' examples show them (``en/api-reference/stock/suspension.mdx``; official
``http_interface/get_suspension_query.md``):

* ``symbol`` is the bare ticker, ``600416`` or ``AAPL``, not AllTick's code ``600416.SH``;
* times are the exchange's local time as ``yyyy-MM-dd HH:mm:ss``, but ``haltDate`` and
  ``resumeDate`` are the date alone (``2024-01-15``) in about half of the records, as in every
  example, and the full date and time in the others, as the notes' format says;
* SSE records have ``haltPeriod``; NYSE and NASDAQ records have none, and carry
  ``haltDateTime``, ``resumeDateTime`` and ``sourceExchange`` (NASDAQ also
  ``pauseThresholdPrice``) instead.

The service does not page ("All interfaces do not support pagination and return the full data
for the most recent year"): :func:`page` returns everything unless asked to page (the
emulator's ``suspension_paging`` switch).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from alltick_frames.emulator.catalogue import CATALOGUE, STOCK, Instrument, stable_hash

EXCHANGES: dict[str, tuple[str, str]] = {
    # name in the URL: (exchange of the listed stocks, time zone)
    "sse": ("SSE", "Asia/Shanghai"),
    "nyse": ("NYSE", "America/New_York"),
    "nasdaq": ("NASDAQ", "America/New_York"),
}
_WEEK = 7 * 86_400
_FORMAT = "%Y-%m-%d %H:%M:%S"
_DATE = "%Y-%m-%d"

_SSE_REASONS = (
    "Pending announcement of major matters",
    "Planning major asset restructuring",
    "Abnormal fluctuation in share price",
    "Shareholders' general meeting",
    "Suspected information leakage",
)
_US_REASONS = (
    ("LUDP", "Volatility trading pause (LULD)"),
    ("T1", "News pending"),
    ("T2", "News released"),
    ("H10", "SEC trading suspension"),
    ("T12", "Additional information requested"),
)


@lru_cache(maxsize=4)
def _listed(exchange: str) -> tuple[Instrument, ...]:
    return tuple(
        inst
        for inst in CATALOGUE.values()
        if inst.asset_class == STOCK and inst.exchange == exchange
    )


def records(name: str, now: float) -> list[dict[str, object]]:
    """All halt records of the past year published by ``now``, newest ``publishDate`` first."""
    exchange, tz = EXCHANGES[name]
    zone = ZoneInfo(tz)
    stocks = _listed(exchange)
    out: list[tuple[float, dict[str, object]]] = []
    this_week = math.floor(now / _WEEK)
    for week in range(this_week - 52, this_week + 1):
        for j in range(stable_hash(name, week) % 3):
            h = stable_hash(name, week, j)
            record = _record(name, stocks[h % len(stocks)], week, h, zone)
            published, resume, body = record
            if published > now or published < now - 365 * 86_400:
                continue
            if resume is None or resume > now:
                for key in ("resumeDate", "resumeTime", "resumeDateTime"):
                    if key in body:
                        body[key] = ""
            out.append((published, body))
    out.sort(key=lambda item: item[0], reverse=True)
    return [body for _, body in out]


def _record(
    name: str, inst: Instrument, week: int, h: int, zone: ZoneInfo
) -> tuple[float, float | None, dict[str, object]]:
    day = datetime.fromtimestamp(week * _WEEK, zone).date() + timedelta(days=(h >> 8) % 7)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    dates = _DATE if (h >> 44) % 2 else _FORMAT  # haltDate and resumeDate
    symbol = inst.code.rsplit(".", 1)[0]
    if name == "sse":
        halt = datetime(day.year, day.month, day.day, 9, 30, tzinfo=zone)
        published = halt - timedelta(days=1 + (h >> 12) % 2, hours=15)
        days = 1 + (h >> 16) % 8
        resume: datetime | None = None if (h >> 20) % 7 == 0 else halt + timedelta(days=days)
        body: dict[str, object] = {
            "symbol": symbol,
            "symbolName": inst.name_cn or inst.name,
            "haltReason": _SSE_REASONS[(h >> 24) % len(_SSE_REASONS)],
            "haltDate": halt.strftime(dates),
            "haltTime": "09:30:00",
            "haltPeriod": "until further notice" if resume is None else f"{days} day(s)",
            "resumeDate": "" if resume is None else resume.strftime(dates),
            "resumeTime": "" if resume is None else "09:30:00",
            "publishDate": published.strftime(_FORMAT),
        }
    else:
        minute = 9 * 60 + 35 + (h >> 12) % 380
        halt = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=zone)
        code, reason = _US_REASONS[(h >> 24) % len(_US_REASONS)]
        pause = timedelta(minutes=5 + (h >> 16) % 6) if code == "LUDP" else None
        if pause is None and (h >> 20) % 5:
            pause = timedelta(minutes=30 + (h >> 28) % 240)
        resume = None if pause is None else halt + pause
        published = halt
        body = {
            "symbol": symbol,
            "symbolName": inst.name,
            "haltReason": f"{code}: {reason}",
            "haltDate": halt.strftime(dates),
            "haltTime": halt.strftime("%H:%M:%S"),
            "resumeDate": "" if resume is None else resume.strftime(dates),
            "resumeTime": "" if resume is None else resume.strftime("%H:%M:%S"),
            "publishDate": published.strftime(_FORMAT),
            "haltDateTime": halt.strftime(_FORMAT),
            "resumeDateTime": "" if resume is None else resume.strftime(_FORMAT),
            "sourceExchange": inst.exchange,
        }
        if name == "nasdaq":
            body["pauseThresholdPrice"] = (
                f"{inst.base_price * (0.9 + ((h >> 36) % 20) / 100):.2f}" if code == "LUDP" else ""
            )
    return published.timestamp(), None if resume is None else resume.timestamp(), body


def page(
    all_records: list[dict[str, object]], page_no: int | None, size: int | None, stamp: str
) -> dict[str, object]:
    """The service's envelope: every record, or with ``page_no`` or ``size`` (the paging
    switch) one page of them plus ``totalPages``, ``currentPage`` and ``currentSize``."""
    body: dict[str, object] = {"success": True, "timestamp": stamp, "totalCount": len(all_records)}
    if page_no is None and size is None:
        body["data"] = all_records
        return body
    page_no = page_no or 1
    size = size or 10
    chunk = all_records[(page_no - 1) * size : page_no * size]
    body.update(
        totalPages=math.ceil(len(all_records) / size),
        currentPage=page_no,
        currentSize=len(chunk),
        data=chunk,
    )
    return body
