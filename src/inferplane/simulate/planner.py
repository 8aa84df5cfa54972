"""Planning answers by search over simulated runs: the fewest replicas, or the highest rate, that meet an SLO.

A run meets the SLO when, over its measured stages, the chosen percentile (p90 by default) of TTFT, TPOT and E2E is
within the objectives, failed requests counting as misses. Both searches assume monotonicity (more replicas never
hurt, more load never helps), first growing geometrically to bracket the answer, then bisecting.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from inferplane.bench.metrics import Slo
from inferplane.bench.results import RunResult


@dataclass(frozen=True)
class Verdict:
    met: bool
    observed: dict[str, float | None]

    def describe(self, slo: Slo, percentile: float) -> str:
        parts = []
        for key in ("ttft", "tpot", "e2e"):
            limit = getattr(slo, key)
            if limit is None:
                continue
            value = self.observed.get(key)
            shown = "∞ (failures)" if value is None or math.isinf(value) else f"{value:.3f}s"
            parts.append(f"{key} p{percentile:g} {shown} (≤ {limit:g}s)")
        return ", ".join(parts)


def verdict(result: RunResult, slo: Slo, percentile: float = 90.0) -> Verdict:
    measured = {s.name for s in result.measured_stages}
    records = [r for r in result.records if r.stage in measured]
    observed: dict[str, float | None] = {}
    met = bool(records)
    for key in ("ttft", "tpot", "e2e"):
        limit = getattr(slo, key)
        if limit is None:
            continue
        values = [(getattr(r, key) if getattr(r, key) is not None else 0.0) if r.ok else math.inf for r in records]
        # nearest rank, not interpolation: failures are infinite and must not turn the percentile into NaN
        value = float(np.percentile(np.array(values, dtype=float), percentile, method="higher")) if values else None
        observed[key] = value
        met = met and value is not None and value <= limit
    return Verdict(met, observed)


@dataclass
class Probe:
    value: float
    verdict: Verdict
    result: RunResult


@dataclass
class SearchResult:
    answer: float | None  # None: no value in the searched range meets the SLO
    probes: list[Probe] = field(default_factory=list)


def find_min_replicas(
    run: Callable[[int], RunResult], slo: Slo, percentile: float = 90.0, start: int = 1, limit: int = 4096
) -> SearchResult:
    """The fewest replicas (per model service) that meet `slo`."""
    out = SearchResult(None)
    cache: dict[int, Verdict] = {}

    def ok(n: int) -> bool:
        if n not in cache:
            result = run(n)
            cache[n] = verdict(result, slo, percentile)
            out.probes.append(Probe(n, cache[n], result))
        return cache[n].met

    lo, hi = 0, max(1, start)  # invariant once bracketed: lo fails (0 always does), hi meets
    while not ok(hi):
        lo = hi
        if hi >= limit:
            return out
        hi = min(hi * 2, limit)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    out.answer = hi
    return out


def find_max_rate(
    run: Callable[[float], RunResult],
    slo: Slo,
    percentile: float = 90.0,
    start: float = 1.0,
    precision: float = 0.05,
    limit: float = 1e6,
) -> SearchResult:
    """The highest request rate that meets `slo`, to within `precision` (relative)."""
    out = SearchResult(None)

    def ok(rate: float) -> bool:
        result = run(rate)
        v = verdict(result, slo, percentile)
        out.probes.append(Probe(rate, v, result))
        return v.met

    rate = max(start, 1e-3)
    if ok(rate):
        lo = rate
        hi = rate * 2
        while ok(hi):
            lo = hi
            if hi >= limit:
                out.answer = lo
                return out
            hi *= 2
    else:
        hi = rate
        lo = rate / 2
        while not ok(lo):
            hi = lo
            if lo < 1e-3:
                return out
            lo /= 2
    while (hi - lo) / lo > precision:
        mid = (lo + hi) / 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    out.answer = lo
    return out
