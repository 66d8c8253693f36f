"""The learned guard on its own: cold start, the latencies' bound, widening on a rejection
our pace explains, slow narrowing, and the fixed guard ``guard=`` asks for."""

from __future__ import annotations

import pytest

from alltick_frames.budget import Budget
from alltick_frames.budget.guard import (
    CEILING,
    COLD,
    FLOOR,
    MIN_SAMPLES,
    NARROW,
    FixedGuard,
    LearnedGuard,
)


def fed(guard: LearnedGuard, latencies: list[float]) -> LearnedGuard:
    for latency in latencies:
        guard.observe(latency)
    return guard


def test_cold_until_measured_then_bounded_by_the_latencies_spread() -> None:
    guard = LearnedGuard()
    assert guard.value == COLD and guard.spread() is None
    fed(guard, [0.010] * (MIN_SAMPLES - 1))
    assert guard.value == COLD  # not enough measured yet
    fed(guard, [0.010])
    assert guard.value == FLOOR  # no spread at all: the floor
    jittery = fed(LearnedGuard(), [0.001 * ((i * 17) % 41) for i in range(100)])  # 0..40 ms
    assert jittery.spread() == pytest.approx(0.038, abs=0.002)
    assert 1.5 * 0.034 <= jittery.value <= 1.5 * 0.040  # the lowest bound it has measured


def test_a_rejection_widens_by_half_up_to_one_step_past_the_measured_bound() -> None:
    guard = fed(LearnedGuard(), [0.005] * 20)  # quiet: the floor
    guard.on_rejected()
    assert guard.value == pytest.approx(1.5 * FLOOR)
    guard.on_rejected()  # again at that width: not the spread's doing
    assert guard.value == pytest.approx(1.5 * FLOOR)
    guard.observe(0.005)  # the latencies' bound does not undo the widening
    assert guard.value == pytest.approx(1.5 * FLOOR)
    assert guard.info() == {
        "guard": round(1.5 * FLOOR, 6),
        "learned": True,
        "latency_spread": 0.0,
        "rejections": 2,
    }


def test_an_unmeasured_guard_widens_to_the_ceiling_at_most() -> None:
    guard = LearnedGuard()
    for _ in range(10):
        guard.on_rejected()
    assert guard.value == CEILING


def test_accepted_calls_narrow_slowly_towards_the_floor() -> None:
    guard = LearnedGuard()
    guard.on_accepted()
    assert guard.value == pytest.approx(COLD - (COLD - FLOOR) * NARROW)
    for _ in range(10_000):
        guard.on_accepted()
    assert guard.value == pytest.approx(FLOOR, abs=1e-4)


def test_a_fixed_guard_never_moves_but_reports_the_spread() -> None:
    guard = FixedGuard(0.05)
    for latency in (0.01, 0.02, 0.03):
        guard.observe(latency)
    guard.on_rejected()
    guard.on_accepted()
    assert guard.value == 0.05
    assert guard.info()["latency_spread"] == pytest.approx(0.02)
    with pytest.raises(ValueError, match="guard"):
        FixedGuard(-1)
    with pytest.raises(ValueError):
        LearnedGuard(floor=0.2, cold=0.1)


def test_budgets_learn_unless_told() -> None:
    assert Budget("basic").margin.learned and Budget("basic").guard == COLD
    fixed = Budget("basic", guard=0.04)
    assert not fixed.margin.learned and fixed.guard == 0.04
    assert "guard=LearnedGuard(0.100)" in repr(Budget("basic"))
