"""The virtual clock and the planning searches: pure logic, property-tested."""

from __future__ import annotations

import itertools
import math

from hypothesis import given
from hypothesis import strategies as st

from inferplane.bench.metrics import Slo
from inferplane.bench.records import RequestRecord, StageInfo
from inferplane.bench.results import RunResult
from inferplane.simulate.events import EventQueue
from inferplane.simulate.planner import find_max_rate, find_min_replicas, verdict


@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), max_size=200))
def test_events_run_in_time_order_and_ties_in_scheduling_order(times: list[float]) -> None:
    q = EventQueue()
    ran: list[tuple[float, int]] = []
    for i, t in enumerate(times):
        q.at(t, lambda t=t, i=i: ran.append((q.now, i)))
    q.run()
    assert [now for now, _ in ran] == sorted(times)
    for (t1, i1), (t2, i2) in itertools.pairwise(ran):
        if t1 == t2:
            assert i1 < i2
    assert q.processed == len(times)


def test_a_cancelled_event_does_not_run_and_the_past_cannot_be_scheduled() -> None:
    q = EventQueue()
    ran: list[str] = []
    handle = q.at(5.0, lambda: ran.append("cancelled"))
    q.at(1.0, lambda: (ran.append("first"), q.at(0.5, lambda: ran.append(f"late at {q.now}"))))
    handle.cancel()
    q.run()
    assert ran == ["first", "late at 1.0"]


def _result(ttfts: list[float | None]) -> RunResult:
    records = [
        RequestRecord(
            start=float(i),
            stage="s",
            status=200 if t is not None else 0,
            ttft=t,
            e2e=(t or 0) + 1,
            error=None if t is not None else "reset",
            output_tokens=10,
        )
        for i, t in enumerate(ttfts)
    ]
    return RunResult("r", records, [StageInfo("s", "poisson", 1.0, None, 0.0, 100.0)], {}, 0)


def test_verdict_uses_the_percentile_and_counts_failures_as_misses() -> None:
    slo = Slo(ttft=1.0)
    assert verdict(_result([0.5] * 95 + [5.0] * 5), slo, 90).met
    assert not verdict(_result([0.5] * 85 + [5.0] * 15), slo, 90).met
    failed = verdict(_result([0.5] * 85 + [None] * 15), slo, 90)
    assert not failed.met
    assert math.isinf(failed.observed["ttft"] or 0.0)


@given(st.integers(min_value=1, max_value=3000), st.integers(min_value=1, max_value=64))
def test_find_min_replicas_finds_the_threshold_of_any_monotone_fleet(threshold: int, start: int) -> None:
    calls: list[int] = []

    def run(n: int) -> RunResult:
        calls.append(n)
        return _result([0.1 if n >= threshold else 9.0] * 10)

    found = find_min_replicas(run, Slo(ttft=1.0), start=start)
    assert found.answer == threshold
    assert len(calls) == len(set(calls)), "a replica count is simulated at most once"
    assert len(calls) <= 2 * math.ceil(math.log2(max(threshold, start))) + 3


def test_find_min_replicas_says_none_when_the_limit_does_not_meet() -> None:
    found = find_min_replicas(lambda n: _result([9.0] * 10), Slo(ttft=1.0), limit=16)
    assert found.answer is None
    assert [p.value for p in found.probes] == [1, 2, 4, 8, 16]


@given(st.floats(min_value=0.05, max_value=5000), st.floats(min_value=0.01, max_value=1000))
def test_find_max_rate_brackets_the_capacity_within_the_precision(capacity: float, start: float) -> None:
    found = find_max_rate(lambda r: _result([0.1 if r <= capacity else 9.0] * 10), Slo(ttft=1.0), start=start)
    assert found.answer is not None
    assert found.answer <= capacity
    assert found.answer >= capacity / 1.05 * 0.999
