"""The simulator's /metrics page: byte-identical to prometheus_client's exposition whatever the engine did, readable
by prometheus_client's parser, and served from cached text for every family whose state did not change."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from inferplane.sim.engine import Sequence
from inferplane.sim.metrics import EngineMetrics


def engine(legacy: bool = False) -> tuple[EngineMetrics, dict[str, Any]]:
    state: dict[str, Any] = {"running": 0, "waiting": 0, "kv": 0.0, "loras": ([], [])}
    m = EngineMetrics(
        model_name="org/model",
        engine="1",
        block_size=16,
        num_gpu_blocks=1000,
        max_model_len=4096,
        max_loras=2,
        legacy_gpu_cache_metric=legacy,
    )
    m.bind_state(lambda: state["running"], lambda: state["waiting"], lambda: state["kv"], lambda: state["loras"])
    return m, state


def seq(prompt: int, output: int, cached: int, reason: str, t: float) -> Sequence:
    s = Sequence("r", list(range(prompt)), [], 64, "length", "")
    s.num_cached, s.num_output, s.arrival, s.first_scheduled = cached, output, 0.0, t / 4
    s.first_token_time, s.finish_time, s.finish_reason = t / 2, t, reason
    return s


OPS = st.one_of(
    st.tuples(st.just("state"), st.integers(0, 300), st.integers(0, 10**6), st.floats(0, 1)),
    st.tuples(st.just("admit"), st.integers(1, 5000), st.integers(0, 5000), st.just(0.0)),
    st.tuples(st.just("tokens"), st.integers(1, 64), st.integers(0, 3), st.floats(1e-4, 100)),
    st.tuples(st.just("finish"), st.integers(1, 5000), st.integers(0, 2), st.floats(1e-3, 9000)),
    st.tuples(st.just("preempt"), st.integers(1, 4), st.just(0), st.just(0.0)),
    st.tuples(st.just("lora"), st.integers(0, 2), st.integers(0, 2), st.just(0.0)),
    st.tuples(st.just("scrape"), st.just(0), st.just(0), st.just(0.0)),
)


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(OPS, max_size=30), legacy=st.booleans())
def test_page_is_byte_identical_to_prometheus_client(ops: list[tuple[str, int, int, float]], legacy: bool) -> None:
    m, state = engine(legacy)
    for kind, a, b, x in ops:
        if kind == "state":
            state.update(running=a, waiting=b, kv=x)
        elif kind == "admit":
            m.on_admitted(seq(a, 0, min(b, a), "stop", 1.0))
        elif kind == "tokens":
            m.on_tokens(a, {x: a, x * 2: b} if b else {x: a})
        elif kind == "finish":
            m.on_finished(seq(a, b, 0, ("stop", "length", "abort")[b], x), a)
            m.on_first_token(seq(a, b, 0, "stop", x))
        elif kind == "preempt":
            m.on_preempted(a)
        elif kind == "lora":
            state["loras"] = (["a", "b"][:a], ["c", "d"][:b])
        page = m.exposition()
        assert page == generate_latest(m.registry)
    families = {f.name: f for f in text_string_to_metric_families(m.exposition().decode())}
    assert families["vllm:num_requests_running"].samples[0].value == state["running"]
    assert families["vllm:num_requests_running"].samples[0].labels == {"model_name": "org/model", "engine": "1"}
    assert families["vllm:time_to_first_token_seconds"].type == "histogram"
    assert ("vllm:gpu_cache_usage_perc" in families) == legacy


def test_unchanged_families_are_served_from_cache() -> None:
    m, state = engine()
    m.on_finished(seq(100, 10, 0, "stop", 2.0), 10)
    first = m.exposition()

    def must_not_render() -> Any:
        raise AssertionError("an unchanged family was rendered again")

    for h in m._h.values():  # idle scrapes: no histogram is collected again
        h.collect = must_not_render  # type: ignore[method-assign]
    m.success.collect = must_not_render  # type: ignore[method-assign]
    assert m.exposition() == first
    state["waiting"] = 7  # a scrape-time gauge changed: only its value moves
    page = m.exposition().decode()
    assert 'vllm:num_requests_waiting{engine="1",model_name="org/model"} 7.0\n' in page
    assert len(page) == len(first)


def test_values_move_with_the_engine() -> None:
    m, state = engine()

    def sample(name: str, **labels: str) -> float:
        for fam in text_string_to_metric_families(m.exposition().decode()):
            for s in fam.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return float(s.value)
        raise KeyError(name)

    with pytest.raises(KeyError):  # no series before the first finished request, as prometheus_client's Counter
        sample("vllm:request_success_total")
    m.on_finished(seq(300, 20, 0, "length", 3.0), 20)
    assert sample("vllm:request_success_total", finished_reason="length") == 1
    m.on_finished(seq(300, 20, 0, "stop", 3.0), 20)
    assert sample("vllm:request_success_total", finished_reason="stop") == 1
    assert sample("vllm:e2e_request_latency_seconds_count") == 2
    assert sample("vllm:e2e_request_latency_seconds_bucket", le="5.0") == 2
    assert sample("vllm:e2e_request_latency_seconds_bucket", le="2.5") == 0
    m.on_admitted(seq(400, 0, 128, "stop", 1.0))
    assert sample("vllm:prefix_cache_hits_total") == 128
    state["loras"] = (["sql"], [])
    assert sample("vllm:lora_requests_info", running_lora_adapters="sql") > 0
