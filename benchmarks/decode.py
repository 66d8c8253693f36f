"""Decoding speed: alltick_frames.frames beside a naive pandas decoder, on the same payloads.

Run ``python benchmarks/decode.py`` (``--quick`` for a smaller run). It builds realistic
AllTick bodies (every number a JSON string, as AllTick sends them), checks that both
decoders produce the same bars, then prints bars per second for each and the ratio:

* naive: per body ``json.loads`` -> ``pd.DataFrame(records)`` -> ``astype(float)``, then
  one ``concat`` (what most client code does); it has no ``session`` column;
* ours: :func:`~alltick_frames.frames.decode_kline_bodies` /
  :func:`~alltick_frames.frames.decode_batch_kline_bodies` over all bodies in one call (each
  bar's trading ``session`` dated too, which the naive decoder does not do);
* ours with the bar checks every job applies (:mod:`alltick_frames.frames.checks`);
* ours as the runner uses it: :func:`~alltick_frames.core.wire.parse_envelope` on every body
  (to read ``ret``), then the decoder and the checks over batches of 128 bodies (the most a
  job decodes together: it decodes smaller batches only when the decode thread would
  otherwise be idle);
* ours one body per call, to show why bodies should be decoded in batches.

``--alternatives`` also times the other designs that were measured before choosing this one
(orjson with per-field lists, numpy's string->float cast, and the orjson parse alone, the
floor for any orjson-based design).

Timings are the best of several runs, so other load on the machine shows up less.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _payloads import batch_kline_bodies, kline_bodies

from alltick_frames import frames
from alltick_frames.core import wire
from alltick_frames.core.intervals import BY_KLINE_TYPE
from alltick_frames.frames import checks
from alltick_frames.run.jobs import DECODE_BATCH

_NUMERIC = {
    "open_price": "open",
    "high_price": "high",
    "low_price": "low",
    "close_price": "close",
    "volume": "volume",
    "turnover": "turnover",
}
RUNNER_BATCH = DECODE_BATCH  # the most bodies a job decodes together
#: The naive decoder's columns: the k-line frame's but the session, which it cannot date.
_NAIVE_COLUMNS = [c for c in frames.KLINE_COLUMNS if c != "session"]


def _naive_frame(records: list[dict], code: object, kline_type: object) -> pd.DataFrame:
    df = pd.DataFrame(records)
    df = df.rename(columns=_NUMERIC)
    df[list(_NUMERIC.values())] = df[list(_NUMERIC.values())].astype(float)
    df["timestamp"] = pd.to_datetime(df["timestamp"].astype("int64"), unit="s", utc=True)
    df["code"] = code
    df["interval"] = (
        df.pop("kline_type").map(lambda k: BY_KLINE_TYPE[k].alias)
        if kline_type is None
        else BY_KLINE_TYPE[kline_type].alias
    )
    return df[_NAIVE_COLUMNS]


def naive_kline(bodies: Sequence[bytes]) -> pd.DataFrame:
    """The decoder most client code has: one DataFrame per body, cast with astype."""
    parts = []
    for body in bodies:
        data = json.loads(body)["data"]
        parts.append(_naive_frame(data["kline_list"], data["code"], data["kline_type"]))
    return pd.concat(parts, ignore_index=True)


def naive_batch(bodies: Sequence[bytes]) -> pd.DataFrame:
    """The same for /batch-kline: groups flattened to records, one DataFrame per body."""
    parts = []
    for body in bodies:
        groups = json.loads(body)["data"]["kline_list"]
        records = [
            {**bar, "code": g["code"], "kline_type": g["kline_type"]}
            for g in groups
            for bar in g["kline_data"]
        ]
        df = pd.DataFrame(records)
        parts.append(_naive_frame(records, df["code"].to_numpy(), None))
    return pd.concat(parts, ignore_index=True)


def checked(decode: Callable[[Sequence[bytes]], pd.DataFrame]) -> Callable:
    """Decode, then keep the bars :func:`~alltick_frames.frames.checks.check_bars` believes
    (as every job does); the payloads are plausible, so every bar is kept."""

    def run(bodies: Sequence[bytes]) -> pd.DataFrame:
        data = decode(bodies)
        keep = checks.check_bars(data, checks.latest_start(time.time())).keep
        assert keep.all()
        return data

    return run


def as_runner(decode: Callable[[Sequence[bytes]], pd.DataFrame]) -> Callable:
    """Read every envelope (the runner needs ret), then decode and check in batches of 128."""

    def run(bodies: Sequence[bytes]) -> pd.DataFrame:
        ok = [b for b in bodies if wire.parse_envelope(b).ok]
        batches = [ok[i : i + RUNNER_BATCH] for i in range(0, len(ok), RUNNER_BATCH)]
        return pd.concat([checked(decode)(batch) for batch in batches], ignore_index=True)

    return run


def one_by_one(decode: Callable[[Sequence[bytes]], pd.DataFrame]) -> Callable:
    def run(bodies: Sequence[bytes]) -> pd.DataFrame:
        return pd.concat([decode([b]) for b in bodies], ignore_index=True)

    return run


def orjson_lists(bodies: Sequence[bytes], cast: str = "arrow") -> pd.DataFrame:
    """Alternative: orjson, one Python list per field, then one vectorised cast per field."""
    codes: list[str] = []
    stamps: list[str] = []
    fields: dict[str, list[str]] = {k: [] for k in _NUMERIC}
    for body in bodies:
        data = orjson.loads(body)["data"]
        bars = data["kline_list"]
        codes.extend([data["code"]] * len(bars))
        stamps.extend([b["timestamp"] for b in bars])
        for key, values in fields.items():
            values.extend([b[key] for b in bars])
    out = {"code": pd.array(codes, dtype=frames.STRING)}
    out["timestamp"] = pd.to_datetime(np.array(stamps).astype(np.int64), unit="s", utc=True)
    for key, values in fields.items():
        if cast == "arrow":
            out[_NUMERIC[key]] = pa.array(values, pa.string()).cast(pa.float64()).to_numpy()
        else:
            out[_NUMERIC[key]] = np.array(values).astype(np.float64)
    return pd.DataFrame(out)


def alternatives(bodies: list[bytes], repeat: int) -> None:
    n_bars = sum(len(orjson.loads(b)["data"]["kline_list"]) for b in bodies)
    print(f"\nalternatives considered, /kline, {n_bars:,} bars:")
    designs = [
        ("orjson.loads alone, no frame (the floor)", lambda: [orjson.loads(b) for b in bodies]),
        ("orjson + per-field lists + Arrow cast", lambda: orjson_lists(bodies)),
        ("orjson + per-field lists + numpy cast", lambda: orjson_lists(bodies, "numpy")),
        ("ours: Arrow read_json, all bodies as NDJSON", lambda: frames.decode_kline_bodies(bodies)),
    ]
    for name, fn in designs:
        seconds = best_time(fn, repeat)
        print(f"  {name:<56} {seconds:>8.3f} {n_bars / seconds / 1e6:>9.2f} M bars/s")


def best_time(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def same_bars(ours: pd.DataFrame, naive: pd.DataFrame) -> None:
    """Both decoders must agree bar for bar, or the comparison means nothing."""
    assert len(ours) == len(naive), (len(ours), len(naive))
    assert (ours["code"].to_numpy(dtype=object) == naive["code"].to_numpy(dtype=object)).all()
    assert (
        ours["interval"].to_numpy(dtype=object) == naive["interval"].to_numpy(dtype=object)
    ).all()
    assert (ours["timestamp"].to_numpy() == naive["timestamp"].to_numpy()).all()
    for col in _NUMERIC.values():
        assert np.array_equal(ours[col].to_numpy(), naive[col].to_numpy(), equal_nan=True), col


def bench(
    title: str,
    bodies: list[bytes],
    naive: Callable[[Sequence[bytes]], pd.DataFrame],
    ours: Callable[[Sequence[bytes]], pd.DataFrame],
    repeat: int,
) -> tuple[float, float]:
    """Print the table; return the speed-ups of ours alone and with the checks."""
    n_bars = len(ours(bodies))
    same_bars(ours(bodies), naive(bodies))
    megabytes = sum(map(len, bodies)) / 1e6
    print(f"\n{title}: {n_bars:,} bars in {len(bodies)} bodies ({megabytes:.1f} MB)")
    print(f"  {'decoder':<52} {'seconds':>8} {'M bars/s':>9} {'vs naive':>9}")
    t_naive = best_time(lambda: naive(bodies), repeat)
    rows = [
        ("naive: json.loads -> DataFrame -> astype, per body", t_naive),
        ("ours: all bodies in one call", best_time(lambda: ours(bodies), repeat)),
        ("ours + the bar checks, all bodies in one call", best_time(
            lambda: checked(ours)(bodies), repeat)),
        (
            f"ours as the runner: envelopes + batches of {RUNNER_BATCH}, checked",
            best_time(lambda: as_runner(ours)(bodies), repeat),
        ),
        ("ours, one body per call", best_time(lambda: one_by_one(ours)(bodies), repeat)),
    ]  # fmt: skip
    for name, seconds in rows:
        rate = n_bars / seconds / 1e6
        print(f"  {name:<52} {seconds:>8.3f} {rate:>9.2f} {t_naive / seconds:>8.1f}x")
    return t_naive / rows[1][1], t_naive / rows[2][1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20k bars instead of 100k")
    parser.add_argument("--repeat", type=int, default=None, help="runs per decoder (best kept)")
    parser.add_argument(
        "--alternatives", action="store_true", help="also time the designs not chosen"
    )
    args = parser.parse_args(argv)
    n_bodies = 40 if args.quick else 200
    repeat = args.repeat or (3 if args.quick else 5)

    print(f"pandas {pd.__version__}, pyarrow {pa.__version__}; best of {repeat} runs")
    kline_ratio = bench(
        "/kline, daily bars, 500 per body",
        kline_bodies(n_bodies, 500),
        naive_kline,
        frames.decode_kline_bodies,
        repeat,
    )
    batch_ratio = bench(
        "/batch-kline, 250 groups x 2 bars per body",
        batch_kline_bodies(n_bodies, 250, 2),
        naive_batch,
        frames.decode_batch_kline_bodies,
        repeat,
    )
    if args.alternatives:
        alternatives(kline_bodies(n_bodies, 500), repeat)
    target = 3.0
    print(
        f"\nspeed-up, all bodies in one call: /kline {kline_ratio[0]:.1f}x, "
        f"/batch-kline {batch_ratio[0]:.1f}x; with the bar checks: /kline "
        f"{kline_ratio[1]:.1f}x, /batch-kline {batch_ratio[1]:.1f}x (target >= {target:.0f}x)"
    )
    return 0 if min(kline_ratio[1], batch_ratio[1]) >= target else 1


if __name__ == "__main__":
    raise SystemExit(main())
