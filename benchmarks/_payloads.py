"""Realistic AllTick response bodies for the decoding benchmark (and for tests that want bulk).

Bodies follow alltick-api.md §3.1/§3.2 byte for byte in spirit: every number a JSON string,
bars oldest first, ``timestamp`` in Unix seconds, the envelope's ``ret``/``msg``/``trace``
around ``data``. Prices walk randomly from a per-code start so the strings have realistic
lengths ("136.421", "18734.5").
"""

from __future__ import annotations

import random

import orjson

_DAY = 86_400
_START = 1_600_000_000 - 1_600_000_000 % _DAY


def _bars(rng: random.Random, n: int, step: int, start: int) -> list[dict[str, str]]:
    price = rng.uniform(5, 2_000)
    bars = []
    for i in range(n):
        open_ = price
        close = max(0.01, open_ * (1 + rng.gauss(0, 0.02)))
        high = max(open_, close) * (1 + abs(rng.gauss(0, 0.005)))
        low = min(open_, close) * (1 - abs(rng.gauss(0, 0.005)))
        volume = rng.randint(0, 5_000_000)
        bars.append(
            {
                "timestamp": str(start + i * step),
                "open_price": f"{open_:.3f}",
                "close_price": f"{close:.3f}",
                "high_price": f"{high:.3f}",
                "low_price": f"{low:.3f}",
                "volume": str(volume),
                "turnover": f"{volume * close:.2f}",
            }
        )
        price = close
    return bars


def _code(i: int) -> str:
    return f"{i:04d}.HK" if i % 2 else f"SYM{i}.US"


def kline_bodies(n_bodies: int = 200, bars_per_body: int = 500, seed: int = 1) -> list[bytes]:
    """``n_bodies`` successful ``/kline`` bodies of daily bars, one code each."""
    rng = random.Random(seed)
    out = []
    for i in range(n_bodies):
        data = {
            "code": _code(i),
            "kline_type": 8,
            "kline_list": _bars(rng, bars_per_body, _DAY, _START),
        }
        out.append(orjson.dumps({"ret": 200, "msg": "ok", "trace": f"t{i}", "data": data}))
    return out


def batch_kline_bodies(
    n_bodies: int = 200, groups_per_body: int = 250, bars_per_group: int = 2, seed: int = 2
) -> list[bytes]:
    """``n_bodies`` successful ``/batch-kline`` bodies, each answering ``groups_per_body``
    (code, kline_type) groups with ``bars_per_group`` bars (1m and 1d alternately)."""
    rng = random.Random(seed)
    out = []
    for b in range(n_bodies):
        groups = []
        for g in range(groups_per_body):
            kline_type, step = (1, 60) if g % 2 else (8, _DAY)
            groups.append(
                {
                    "code": _code(b * groups_per_body + g),
                    "kline_type": kline_type,
                    "kline_data": _bars(rng, bars_per_group, step, _START),
                }
            )
        data = {"kline_list": groups}
        out.append(orjson.dumps({"ret": 200, "msg": "ok", "trace": f"b{b}", "data": data}))
    return out
