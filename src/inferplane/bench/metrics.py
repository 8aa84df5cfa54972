"""Aggregates over request records: pure functions, no I/O.

Definitions follow inference-perf (../reference/benchmarks.md §4.1): throughput counts successful requests over the
measured wall time; the cache-hit rate is Σ cached prompt tokens / Σ prompt tokens over requests whose server
reported `prompt_tokens_details`; goodput counts successful requests that meet every SLO given.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from inferplane.bench.records import RequestRecord, StageInfo
from inferplane.errors import UsageError

PERCENTILES = (50, 90, 99)


@dataclass(frozen=True, slots=True)
class Dist:
    count: int
    mean: float
    p50: float
    p90: float
    p99: float
    min: float
    max: float


def dist(values: Iterable[float]) -> Dist | None:
    """Mean and percentiles (numpy's linear interpolation, as inference-perf and vLLM's bench use)."""
    arr = np.fromiter(values, dtype=float)
    if arr.size == 0:
        return None
    p50, p90, p99 = np.percentile(arr, PERCENTILES)
    return Dist(
        int(arr.size), float(arr.mean()), float(p50), float(p90), float(p99), float(arr.min()), float(arr.max())
    )


_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(us|µs|ms|s|m)?\s*$")
_UNIT = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, None: 1.0}


def parse_duration(text: str) -> float:
    """'2s', '50ms', '250us', '1.5' (seconds), '2m' → seconds."""
    m = _DURATION.match(text)
    if not m:
        raise UsageError(f"{text!r} is not a duration", hint="write it like 2s, 50ms, 250us or 1.5")
    return float(m.group(1)) * _UNIT[m.group(2)]


@dataclass(frozen=True, slots=True)
class Slo:
    """Service-level objectives for goodput; an unset field is not checked."""

    ttft: float | None = None
    tpot: float | None = None
    e2e: float | None = None

    @classmethod
    def parse(cls, text: str | None) -> Slo | None:
        """`ttft=2s,tpot=50ms[,e2e=30s]`."""
        if not text:
            return None
        values: dict[str, float] = {}
        for item in filter(None, (p.strip() for p in text.split(","))):
            key, eq, value = item.partition("=")
            key = key.strip().lower()
            if not eq or key not in cls.__dataclass_fields__:
                raise UsageError(
                    f"--slo: {item!r} is not one of ttft=…, tpot=…, e2e=…", hint="e.g. --slo ttft=2s,tpot=50ms"
                )
            values[key] = parse_duration(value)
        return cls(**values)

    def met(self, r: RequestRecord) -> bool:
        if not r.ok:
            return False
        # A one-token answer has no TPOT, so it cannot miss that objective; TTFT and E2E always exist on success.
        tpot = r.tpot
        checks = ((self.ttft, r.ttft), (self.tpot, 0.0 if tpot is None else tpot), (self.e2e, r.e2e))
        return all(limit is None or (value is not None and value <= limit) for limit, value in checks)

    def __str__(self) -> str:
        parts = [f"{k}={v * 1000:g}ms" for k, v in asdict(self).items() if v is not None]
        return ",".join(parts)


@dataclass(slots=True)
class Summary:
    requests: int
    successes: int
    failures: int
    duration: float
    requests_per_s: float
    input_tokens_per_s: float
    output_tokens_per_s: float
    total_tokens_per_s: float
    ttft: Dist | None
    tpot: Dist | None
    itl: Dist | None
    e2e: Dist | None
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cache_hit_rate: float | None
    goodput_per_s: float | None = None
    goodput_fraction: float | None = None
    replicas: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    rate: float | None = None  # the offered load of the stage, when it had one
    concurrency: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Summary:
        dists = {k: None if data[k] is None else Dist(**data[k]) for k in ("ttft", "tpot", "itl", "e2e")}
        return cls(**{**data, **dists})

    @property
    def hotspot(self) -> float | None:
        """Largest replica share × number of replicas: 1.0 is a perfect split, N means one replica took all."""
        if not self.replicas:
            return None
        total = sum(self.replicas.values())
        return max(self.replicas.values()) * len(self.replicas) / total if total else None


def summarize(records: Sequence[RequestRecord], duration: float, slo: Slo | None = None) -> Summary:
    ok = [r for r in records if r.ok]
    duration = max(duration, 1e-9)
    inp = sum(r.input_tokens for r in ok)
    out = sum(r.output_tokens for r in ok)
    reported = [r for r in ok if r.cached_tokens is not None]
    reported_input = sum(r.input_tokens for r in reported)
    cached = sum(r.cached_tokens or 0 for r in reported)
    good = sum(1 for r in records if slo.met(r)) if slo else None
    errors = Counter(f"{r.status} - {r.error or 'HTTP error'}" for r in records if not r.ok)
    return Summary(
        requests=len(records),
        successes=len(ok),
        failures=len(records) - len(ok),
        duration=duration,
        requests_per_s=len(ok) / duration,
        input_tokens_per_s=inp / duration,
        output_tokens_per_s=out / duration,
        total_tokens_per_s=(inp + out) / duration,
        ttft=dist(r.ttft for r in ok if r.ttft is not None),
        tpot=dist(t for r in ok if (t := r.tpot) is not None),
        itl=dist(x for r in ok for x in r.itl),
        e2e=dist(r.e2e for r in ok if r.e2e is not None),
        input_tokens=inp,
        output_tokens=out,
        cached_tokens=cached,
        cache_hit_rate=cached / reported_input if reported_input else None,
        goodput_per_s=None if good is None else good / duration,
        goodput_fraction=None if good is None or not records else good / len(records),
        replicas=dict(sorted(Counter(r.replica or "?" for r in ok).items())),
        errors=dict(errors),
    )


def summarize_stages(
    records: Sequence[RequestRecord], stages: Sequence[StageInfo], slo: Slo | None = None
) -> dict[str, Summary]:
    """One summary per stage (warm-up included, flagged by its StageInfo), keyed by stage name, in stage order."""
    by_stage: dict[str, list[RequestRecord]] = {s.name: [] for s in stages}
    for r in records:
        by_stage.setdefault(r.stage, []).append(r)
    out = {}
    for s in stages:
        summary = summarize(by_stage[s.name], s.duration, slo)
        summary.rate, summary.concurrency = s.rate, s.concurrency
        out[s.name] = summary
    return out


def summarize_run(records: Sequence[RequestRecord], stages: Sequence[StageInfo], slo: Slo | None = None) -> Summary:
    """The whole run without its warm-up stages; duration is the sum of the measured stages' durations."""
    measured = {s.name for s in stages if not s.warmup}
    duration = sum(s.duration for s in stages if not s.warmup)
    return summarize([r for r in records if r.stage in measured], duration, slo)
