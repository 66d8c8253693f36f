"""The price path: a latent log-price for every code at every real moment, with random access.

Each code has a latent log-price ``x(t)`` defined for every real ``t``::

    x(t) = sum over scales L of  a_L * lerp(n_L(k), n_L(k + 1), t/L - k),   k = floor(t/L)

where ``n_L(k)`` is uniform noise drawn from a 64-bit hash of (code, L, k) and the scales run
from 15 seconds to about 2 years in steps of 4. The amplitudes grow like ``sqrt(L)``, so the
path moves like a random walk at every scale up to months, yet any single ``x(t)`` costs 12
pairs of hashes; because the sum is bounded, prices wander around ``base_price`` instead of
drifting off over the decades. The price is ``base_price * exp(x(t))``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from alltick_frames.emulator.catalogue import Instrument
from alltick_frames.emulator.sessions import DAY, YEAR

_SCALES = 15.0 * 4.0 ** np.arange(12)  # 15 s ... about 2 years
_LONG = 30 * DAY
_SQRT3 = math.sqrt(3.0)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_SHIFTS = (np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11))


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, in place on a uint64 array (wrapping multiplication intended)."""
    z ^= z >> _SHIFTS[0]
    z *= _MUL1
    z ^= z >> _SHIFTS[1]
    z *= _MUL2
    z ^= z >> _SHIFTS[2]
    return z


def _bits53(z: np.ndarray) -> np.ndarray:
    """Hash uint64 keys ``z`` (consumed) to floats uniform on [0, 2**53)."""
    return (_mix(z) >> _SHIFTS[3]).view(np.int64).astype(np.float64)


def _keys(k: np.ndarray, seed: np.uint64) -> np.ndarray:
    z = k.astype(np.uint64)
    z *= _GOLDEN
    z += seed
    return z


@lru_cache(maxsize=4096)
def _octaves(seed: int, vol: float) -> tuple[tuple[np.uint64, ...], tuple[float, ...]]:
    """Per-scale seeds and amplitudes of one code's path."""
    keys = _keys(np.arange(1, len(_SCALES) + 1), np.uint64(seed))
    seeds = tuple(_mix(keys))
    # Long scales are damped for very volatile codes, so prices stay within sane bounds.
    vols = np.where(_SCALES < _LONG, vol, min(vol, 0.3) * 0.5)
    amps = 0.6 * vols * np.sqrt(_SCALES / YEAR)
    return seeds, tuple(amps.tolist())


def prices(inst: Instrument, t: np.ndarray) -> np.ndarray:
    """The price of ``inst`` at every Unix time in ``t`` (any shape, not empty)."""
    seeds, amps = _octaves(inst.seed, inst.vol)
    flat = np.asarray(t, dtype=np.float64).ravel()
    lo, hi = float(flat.min()), float(flat.max())
    total = np.zeros_like(flat)
    for scale, seed, amp in zip(_SCALES.tolist(), seeds, amps, strict=True):
        x = flat / scale
        k = np.floor(x)
        f = x - k
        kmin = math.floor(lo / scale)
        width = math.floor(hi / scale) - kmin + 2
        if width <= flat.size:
            # Coarse scales: hash each grid point once, then look the points up.
            table = _bits53(_keys(np.arange(kmin, kmin + width), seed))
            idx = (k - kmin).astype(np.intp)
            v0, v1 = table[idx], table[idx + 1]
        else:
            z0 = _keys(k, seed)
            z1 = z0 + _GOLDEN
            v0, v1 = _bits53(z0), _bits53(z1)
        v1 -= v0
        v1 *= f
        v1 += v0
        v1 *= amp
        total += v1
    # Each noise value was u * 2**53 with u uniform on [0, 1); map it to [-sqrt 3, sqrt 3).
    logp = total * (2 * _SQRT3 / 2.0**53) - _SQRT3 * sum(amps)
    return (inst.base_price * np.exp(logp)).reshape(np.shape(t))


def price_at(inst: Instrument, t: float) -> float:
    return float(prices(inst, np.array([t]))[0])


def bar_uniforms(inst: Instrument, kline_type: int, starts: np.ndarray) -> np.ndarray:
    """Three hashed uniforms per bar (wick up, wick down, volume), shape (3, n)."""
    keys = _keys(np.arange(3)[:, None] * 16 + kline_type, np.uint64(inst.seed))
    keys = _mix(keys) + _keys(starts[None, :], np.uint64(0))
    return _bits53(keys) / 2.0**53
