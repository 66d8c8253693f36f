"""Code validation and routing: which base path serves a code, and what it supports.

AllTick serves two families on two base paths, and a code sent to the wrong one fails with
``ret`` 600:

* stocks and market indices, ``SYMBOL.US``, ``NNNN.HK``, ``NNNNNN.SH``, ``NNNNNN.SZ``, go to
  ``/quote-stock-b-api``; their history cannot be paged back (the latest 500 bars only) and
  they have no 2h/4h bars;
* everything else (FX ``EURUSD``, crypto ``BTCUSDT``, metals and energy ``GOLD``, ``Silver``,
  CFD indices) goes to ``/quote-b-api``. FX, precious metals and crypto can be paged back with
  ``kline_timestamp_end``; energy and CFD codes cannot (``en/api-reference/stock/kline.mdx``),
  but their spelling does not say which they are, so the client tries and the answer tells
  (:attr:`CodeInfo.pageable` is only the prior).

Codes are case-sensitive (``Silver`` is not ``SILVER``), so they are never normalised.
"""

from __future__ import annotations

import functools
import re
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

STOCK_PATH = "/quote-stock-b-api"
FOREX_PATH = "/quote-b-api"
DEFAULT_BASE_URL = "https://quote.alltick.co"

_STOCK = re.compile(
    r"^(?:(?P<US>[A-Z0-9][A-Z0-9.\-]{0,14})\.US"
    r"|(?P<HK>[A-Z0-9]{1,8})\.HK"
    r"|(?P<SH>\d{6})\.SH"
    r"|(?P<SZ>\d{6})\.SZ)$"
)
_FOREX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{1,31}$")
_MARKET_SUFFIX = re.compile(r"\.(us|hk|sh|sz)$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """What routing knows about a code from its spelling alone."""

    code: str
    #: ``US``, ``HK``, ``SH`` or ``SZ`` for stocks and market indices, ``None`` otherwise.
    market: str | None

    @property
    def is_stock(self) -> bool:
        return self.market is not None

    @property
    def path(self) -> str:
        """The base path that serves this code."""
        return STOCK_PATH if self.is_stock else FOREX_PATH

    @property
    def pageable(self) -> bool:
        """Whether the client tries to page this code back with ``kline_timestamp_end``.

        Never for stocks and indices, which AllTick documents as not pageable; for the rest
        the first answer to an end time decides (see :class:`~alltick_frames.run.jobs.KlineJob`).
        """
        return not self.is_stock


def classify(code: str) -> CodeInfo:
    """Route one code, raising ValueError with the fix when it is malformed."""
    if type(code) is str:
        return _classify(code)  # remembered: a request of thousands of codes asks again
    if not isinstance(code, str):
        raise ValueError(f"codes must be strings, got {code!r} ({type(code).__name__})")
    return _classify(str(code))


@functools.lru_cache(maxsize=1 << 16)
def _classify(code: str) -> CodeInfo:
    """:func:`classify` of a plain string (a malformed one raises, and is not remembered)."""
    if code != code.strip() or not code:
        raise ValueError(f"code {code!r} is empty or has surrounding spaces")
    match = _STOCK.match(code)
    if match:
        return CodeInfo(code, match.lastgroup)
    suffix = _MARKET_SUFFIX.search(code)
    if suffix:
        market = suffix.group(1).upper()
        hint = {
            "US": "SYMBOL.US in capitals, e.g. AAPL.US",
            "HK": "digits then .HK without zero padding, e.g. 700.HK",
            "SH": "six digits then .SH, e.g. 600416.SH",
            "SZ": "six digits then .SZ, e.g. 000627.SZ",
        }[market]
        raise ValueError(f"malformed {market} code {code!r}: write it as {hint}")
    if _FOREX.match(code):
        return CodeInfo(code, None)
    raise ValueError(
        f"malformed code {code!r}: stocks look like AAPL.US, 700.HK, 600416.SH, 000627.SZ; "
        "FX, crypto and metals are bare, e.g. EURUSD, BTCUSDT, GOLD"
    )


def exchange_code(ticker: str, market: str) -> str | None:
    """AllTick's code for a bare exchange ticker, or None when none fits.

    ``market`` is ``US``, ``HK``, ``SH`` or ``SZ``: ``("600000", "SH") -> "600000.SH"``,
    ``("AAPL", "US") -> "AAPL.US"``, ``("BRK.B", "US") -> "BRK.B.US"``. A ticker already
    ending in the market's suffix is kept as it is. None when the result is not a code of
    that market as :func:`classify` spells them (``("60000", "SH")``, ``("brk/b", "US")``):
    the ticker is then not guessed at.
    """
    suffix = f".{market}"
    code = ticker if ticker.endswith(suffix) else ticker + suffix
    match = _STOCK.match(code)
    return code if match is not None and match.lastgroup == market else None


def validate_codes(codes: str | Iterable[str]) -> list[CodeInfo]:
    """Check a list of codes before any request: none empty, malformed or repeated.

    A single string is taken as one code; any other iterable of strings (a list, a tuple, a
    pandas Series or Index, a numpy array) as the codes. The caller's order is kept.
    """
    if isinstance(codes, str):
        codes = [codes]
    _check_container(codes)
    items = [str(c) if isinstance(c, str) else c for c in codes]  # numpy's str_ -> str
    if not items:
        raise ValueError("no codes given: pass at least one code, e.g. ['AAPL.US', 'EURUSD']")
    infos = [classify(c) for c in items]
    repeated = sorted(c for c, n in Counter(items).items() if n > 1)
    if repeated:
        raise ValueError(f"codes repeated: {repeated}; pass each code once")
    return infos


def _check_container(codes: object) -> None:
    """TypeError, with the fix, for a ``codes`` argument that is not a collection of codes."""
    example = "e.g. ['AAPL.US', 'EURUSD'] or one code as a string"
    pandas = sys.modules.get("pandas")  # a DataFrame can only exist once pandas is imported
    if pandas is not None and isinstance(codes, pandas.DataFrame):
        raise TypeError(
            "codes is a DataFrame: iterating one gives its column names, not codes; pass the "
            "column that holds them, e.g. codes=df['code']"
        )
    if isinstance(codes, Mapping):
        raise TypeError(f"codes is a mapping; pass a list of codes ({example}), e.g. list(d)")
    if isinstance(codes, bytes | bytearray) or not isinstance(codes, Iterable):
        raise TypeError(f"codes must be a code or a list of codes ({example}), got {codes!r}")
