"""Percentile, throughput, goodput and cache-hit arithmetic on hand-made records."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferplane.bench.metrics import Slo, dist, parse_duration, summarize, summarize_run, summarize_stages
from inferplane.bench.records import RequestRecord, StageInfo
from inferplane.errors import UsageError


def rec(
    ttft: float,
    e2e: float,
    out: int,
    *,
    inp: int = 100,
    cached: int | None = 0,
    status: int = 200,
    error: str | None = None,
    replica: str = "a",
    stage: str = "s",
    start: float = 0.0,
) -> RequestRecord:
    return RequestRecord(
        start=start,
        stage=stage,
        status=status,
        error=error,
        ttft=ttft,
        e2e=e2e,
        input_tokens=inp,
        output_tokens=out,
        cached_tokens=cached,
        replica=replica,
        itl=[(e2e - ttft) / max(out - 1, 1)] * max(out - 1, 0),
    )


def test_percentiles_use_linear_interpolation() -> None:
    d = dist([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    assert d is not None
    assert d.count == 10
    assert d.mean == pytest.approx(5.5)
    assert d.p50 == pytest.approx(5.5)
    assert d.p90 == pytest.approx(9.1)
    assert d.p99 == pytest.approx(9.91)
    assert (d.min, d.max) == (1.0, 10.0)
    assert dist([]) is None


@given(st.lists(st.floats(min_value=0, max_value=1e4, allow_nan=False), min_size=1, max_size=200))
def test_percentiles_are_ordered_and_bounded(xs: list[float]) -> None:
    d = dist(xs)
    assert d is not None
    eps = 1e-9 * max(1.0, d.max)
    assert d.min - eps <= d.p50 <= d.p90 + eps
    assert d.p90 <= d.p99 + eps
    assert d.p99 <= d.max + eps


def test_tpot_follows_inference_perf() -> None:
    r = rec(ttft=0.5, e2e=2.5, out=11)
    assert r.tpot == pytest.approx(0.2)  # (2.5 - 0.5) / (11 - 1)
    assert rec(ttft=0.5, e2e=0.5, out=1).tpot is None


def test_summary_throughput_cache_hit_and_split() -> None:
    records = [
        rec(0.1, 1.0, 10, inp=100, cached=0, replica="a"),
        rec(0.2, 1.0, 10, inp=100, cached=80, replica="b"),
        rec(0.3, 1.0, 20, inp=200, cached=None, replica="b"),  # no prompt_tokens_details: excluded from hit rate
        rec(0.0, 0.1, 0, status=503, error="no healthy upstream", replica=""),
    ]
    s = summarize(records, duration=2.0)
    assert (s.requests, s.successes, s.failures) == (4, 3, 1)
    assert s.requests_per_s == pytest.approx(1.5)
    assert s.output_tokens_per_s == pytest.approx(20.0)  # 40 tokens / 2 s
    assert s.total_tokens_per_s == pytest.approx(220.0)  # (400 + 40) / 2
    assert s.cache_hit_rate == pytest.approx(80 / 200)
    assert s.replicas == {"a": 1, "b": 2}
    assert s.errors == {"503 - no healthy upstream": 1}
    assert s.ttft is not None
    assert s.ttft.p50 == pytest.approx(0.2)
    assert s.hotspot == pytest.approx(2 * 2 / 3)


def test_goodput_counts_requests_meeting_every_slo() -> None:
    records = [
        rec(1.0, 2.0, 21),  # tpot 50 ms, ttft 1 s: meets
        rec(3.0, 4.0, 21),  # ttft over
        rec(1.0, 4.0, 21),  # tpot 150 ms: over
        rec(0.1, 0.2, 1),  # one token: no TPOT, only TTFT checked
        rec(0.1, 0.2, 5, status=500, error="boom"),  # failed requests never count
    ]
    slo = Slo.parse("ttft=2s,tpot=50ms")
    assert slo == Slo(ttft=2.0, tpot=0.05)
    s = summarize(records, duration=4.0, slo=slo)
    assert s.goodput_per_s == pytest.approx(2 / 4)
    assert s.goodput_fraction == pytest.approx(2 / 5)
    assert summarize(records, 4.0).goodput_per_s is None


def test_stages_and_warmup() -> None:
    stages = [
        StageInfo("warmup", "poisson", rate=1, started=0, ended=10, warmup=True),
        StageInfo("1/s", "poisson", rate=1, started=10, ended=20),
        StageInfo("2/s", "poisson", rate=2, started=20, ended=25),
    ]
    records = (
        [rec(5.0, 6.0, 10, stage="warmup")] + [rec(0.1, 1, 10, stage="1/s")] * 10 + [rec(0.2, 1, 10, stage="2/s")] * 10
    )
    per = summarize_stages(records, stages)
    assert list(per) == ["warmup", "1/s", "2/s"]
    assert per["1/s"].requests_per_s == pytest.approx(1.0)
    assert per["2/s"].requests_per_s == pytest.approx(2.0)
    assert per["2/s"].rate == 2
    run = summarize_run(records, stages)
    assert run.requests == 20  # warm-up excluded
    assert run.duration == pytest.approx(15.0)
    assert run.ttft is not None
    assert run.ttft.max == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("text", "seconds"), [("2s", 2.0), ("50ms", 0.05), ("250us", 250e-6), ("1.5", 1.5), ("2m", 120)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["ttft", "latency=2s", "ttft=fast"])
def test_bad_slo(text: str) -> None:
    with pytest.raises(UsageError):
        Slo.parse(text)


def test_record_json_round_trip() -> None:
    r = rec(0.1, 1.0, 10, cached=40)
    data = r.to_json()
    assert data["tpot"] == pytest.approx(0.1)
    back = RequestRecord.from_json(data)
    assert back.itl == pytest.approx(r.itl, abs=1e-6)
    assert back.ttft == pytest.approx(r.ttft, abs=1e-6)
    assert (back.cached_tokens, back.output_tokens, back.replica) == (40, 10, "a")


@given(
    value=st.floats(min_value=0, max_value=1e5, allow_nan=False).map(lambda v: round(v, 3)),
    unit=st.sampled_from(["us", "ms", "s", "m", ""]),
)
def test_parse_duration_round_trip(value: float, unit: str) -> None:
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "": 1.0}[unit]
    assert parse_duration(f"{value}{unit}") == pytest.approx(value * scale)


@given(st.text(max_size=40))
def test_slo_parser_accepts_or_explains(text: str) -> None:
    message = ""
    slo = None
    try:
        slo = Slo.parse(text)
    except UsageError as exc:
        message = str(exc)
    assert message or slo is None or isinstance(slo, Slo)
    assert not message or "ttft" in message or "duration" in message
