"""A warm ``klines()``: the request read from the store in one read, or a few series at a time,
and measured against the calendars for all codes at once, gives exactly the frame and the
completeness table that reading and measuring series by series gives.

Pure (a store in a temporary directory, no server): the client's end to end warm reads are
covered by ``test_cache.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alltick_frames.core import planner
from alltick_frames.core.calendars import calendar_of, newest_bars
from alltick_frames.core.codes import classify
from alltick_frames.core.intervals import parse_interval
from alltick_frames.frames import completeness
from alltick_frames.run import answers
from alltick_frames.store import FIELDS, BarStore
from alltick_frames.store.series import read_frame

DAY = 86_400
#: Wednesday 2024-05-15 15:00 UTC.
NOW = pd.Timestamp("2024-05-15T15:00:00Z").timestamp()
#: Codes of four time zones, of different lengths, one never stored.
CODES = ["AAPL.US", "700.HK", "00005.HK", "600519.SH", "EURUSD", "GOOGL.US", "NOTHING.HK"]


def _bars(stamps: np.ndarray, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = {f: rng.uniform(1, 100, stamps.size) for f in FIELDS}
    return pd.DataFrame({"timestamp": stamps, **values})


@pytest.fixture
def store(tmp_path: Path) -> BarStore:
    """Daily bars of every code but the last, each its calendar's newest 40 (EURUSD with its
    newest one forming), written in two spans so that each series has two chunks."""
    day = parse_interval("1d")
    with BarStore(tmp_path, source="test") as store:
        for k, code in enumerate(CODES[:-1]):
            stamps = newest_bars(calendar_of(classify(code)), day, int(NOW), NOW - DAY, 40)
            mid, top = stamps[20], int(stamps[-1]) + DAY - 1
            store.write(code, "1d", _bars(stamps[:20], k), int(stamps[0]), int(mid) - 1)
            if code == "EURUSD":
                closed, forming = _bars(stamps[20:-1], k + 10), _bars(stamps[-1:], k + 20)
                store.write(code, "1d", closed, int(mid), int(stamps[-1]) - 1, forming=forming,
                            fetched_at=NOW)  # fmt: skip
            else:
                store.write(code, "1d", _bars(stamps[20:], k + 10), int(mid), top)
        yield store


REQUESTS = {
    "range": {"start": int(NOW) - 30 * DAY},
    "range with an end": {"start": int(NOW) - 40 * DAY, "end": int(NOW) - 10 * DAY},
    "count": {"count": 25},
    "count more than stored": {"count": 100},
    "range before any bar": {"start": int(NOW) - 400 * DAY, "end": int(NOW) - 300 * DAY},
}


@pytest.mark.parametrize("ask", list(REQUESTS))
@pytest.mark.parametrize("once", [True, False], ids=["one read", "series at a time"])
def test_a_request_read_at_once_or_in_batches_is_read_frame_exactly(
    store: BarStore, monkeypatch: pytest.MonkeyPatch, ask: str, once: bool
) -> None:
    """The frame of a request read in one read (its arrays made the columns) and the one read
    a series at a time (batches of 1, 2, 4, ... copied into place) are both exactly what
    :func:`read_frame` reads: same bars, order, sessions (four zones) and string columns."""
    if not once:
        monkeypatch.setattr(answers, "READ_ONCE_BARS", 0)
        monkeypatch.setattr(answers, "READ_BATCH", 1)
    req = planner.kline_request(CODES, "1d", now=NOW, **REQUESTS[ask])
    got = answers.read_request(store, req, NOW)
    want = read_frame(store, req)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert ask == "range before any bar" or len(got) > 0


@pytest.mark.parametrize(
    ("values", "counts"),
    [
        (["1d"], [5]),
        (["AAPL.US", "700.HK", "GOOGL.US"], [2, 0, 3]),
        (["00700.HK", "00005.HK"], [3, 1]),
        (["é.HK", "x"], [1, 2]),
    ],
    ids=["one value", "lengths differ", "one length", "not ASCII"],
)
def test_repeated_strings_are_each_value_its_count_of_times(
    values: list[str], counts: list[int]
) -> None:
    column = answers.repeated(values, np.array(counts))
    want = [v for v, c in zip(values, counts, strict=True) for _ in range(c)]
    assert column.tolist() == want
    assert column.dtype == pd.StringDtype("pyarrow")


def test_codes_that_got_exactly_their_calendar_are_measured_as_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Codes of two calendars in turn, some with exactly the bars their calendar expects,
    one a bar short, one with a bar the calendar lacks, one with none: the table and
    failures are those measured code by code (the all-at-once check switched off)."""
    day = parse_interval("1d")
    start = int(NOW) - 20 * DAY
    expect = completeness.Expectations(day, NOW, start=start)
    hk, _ = expect.settled(calendar_of(classify("700.HK")))
    us, _ = expect.settled(calendar_of(classify("AAPL.US")))
    got = {
        "700.HK": hk,
        "00005.HK": hk,
        "AAPL.US": us,
        "00006.HK": np.delete(hk, 3),  # a bar short
        "00011.HK": hk,
        "MSFT.US": np.sort(np.append(us[1:], us[0] + DAY)),  # its first a day late: a Saturday
        "GOOGL.US": us,
    }
    codes = [classify(c) for c in [*got, "00012.HK"]]  # the last got nothing
    data = pd.DataFrame(
        {
            "code": pd.array([c for c, s in got.items() for _ in s], dtype="string[pyarrow]"),
            "timestamp": pd.to_datetime(np.concatenate(list(got.values())), unit="s", utc=True)
            .as_unit("ns"),
        }
    )  # fmt: skip

    def measure() -> completeness.Measured:
        return completeness.measure(data, codes, expect, kline_bars=500)

    fast = measure()
    exact = completeness._exactly_settled(
        completeness._code_runs(data), {c.code: calendar_of(c) for c in codes}, expect
    )
    assert [c for c, ok in exact.items() if ok] == ["700.HK", "00005.HK", "AAPL.US", "00011.HK",
                                                    "GOOGL.US"]  # fmt: skip
    monkeypatch.setattr(completeness, "_exactly_settled", lambda *_: {})
    slow = measure()
    pd.testing.assert_frame_equal(fast.table, slow.table, check_exact=True)
    assert fast.failures == slow.failures and fast.holes == slow.holes
    assert fast.table["missing"].tolist() == [0, 0, 0, 1, 0, 1, 0, hk.size]
    assert fast.table["unexpected"].tolist() == [0, 0, 0, 0, 0, 1, 0, 0]
