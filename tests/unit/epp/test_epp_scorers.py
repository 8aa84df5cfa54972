"""Metric scorers against the formulas of reference/epp.md §3.1 and §3.3."""

from __future__ import annotations

import base64

import pytest

from inferplane.epp.scheduling import Usage

from .helpers import FakeClock, endpoint, one_scorer, raw_scores, request, scheduler


def test_queue_scorer_min_max() -> None:
    s = scheduler(one_scorer("queue-scorer"))
    eps = [endpoint(1, queue=0), endpoint(2, queue=5), endpoint(3, queue=10)]
    assert raw_scores(s, request(), eps) == [1.0, 0.5, 0.0]


def test_queue_scorer_all_equal_scores_one() -> None:
    s = scheduler(one_scorer("queue-scorer"))
    eps = [endpoint(1, queue=7), endpoint(2, queue=7)]
    assert raw_scores(s, request(), eps) == [1.0, 1.0]


def test_queue_scorer_single_and_empty() -> None:
    s = scheduler(one_scorer("queue-scorer"))
    assert raw_scores(s, request(), [endpoint(1, queue=3)]) == [1.0]
    assert raw_scores(s, request(), []) == []


def test_running_requests_size_scorer() -> None:
    s = scheduler(one_scorer("running-requests-size-scorer"))
    eps = [endpoint(1, running=4), endpoint(2, running=2), endpoint(3, running=0)]
    assert raw_scores(s, request(), eps) == [0.0, 0.5, 1.0]


def test_kv_cache_utilization_scorer() -> None:
    s = scheduler(one_scorer("kv-cache-utilization-scorer"))
    eps = [endpoint(1, kv=0.25), endpoint(2, kv=1.0), endpoint(3, kv=0.0)]
    assert raw_scores(s, request(), eps) == [0.75, 0.0, 1.0]


def test_stale_metrics_are_still_used_by_scorers() -> None:
    # Scorers use the last scraped values; staleness is the saturation detector's concern (§4).
    s = scheduler(one_scorer("kv-cache-utilization-scorer"), clock=FakeClock(10_000.0))
    eps = [endpoint(1, kv=0.5, updated=1.0), endpoint(2, kv=0.1, updated=9_999.9)]
    assert raw_scores(s, request(), eps) == pytest.approx([0.5, 0.9])


def test_lora_affinity_scorer_cases() -> None:
    s = scheduler(one_scorer("lora-affinity-scorer"))
    eps = [
        endpoint(1, active_models={"m": 1}, max_active_models=1),  # running → 1.0
        endpoint(2, active_models={"x": 1}, max_active_models=4),  # room for another → 0.8
        endpoint(3, active_models={"x": 1}, waiting_models={"m": 1}, max_active_models=2),  # waiting, full → 0.6
        endpoint(4, active_models={"x": 1, "y": 1}, max_active_models=2),  # full, absent → 0
    ]
    assert raw_scores(s, request(model="m"), eps) == [1.0, 0.8, 0.6, 0.0]


def test_load_aware_scorer() -> None:
    s = scheduler(one_scorer("load-aware-scorer", {"threshold": 10}))
    eps = [endpoint(1, queue=0), endpoint(2, queue=5), endpoint(3, queue=10), endpoint(4, queue=50)]
    assert raw_scores(s, request(), eps) == [0.5, 0.25, 0.0, 0.0]


def test_token_load_scorer_follows_inflight_tokens() -> None:
    s = scheduler(one_scorer("token-load-scorer", {"queueThresholdTokens": 100}))
    eps = [endpoint(1), endpoint(2)]
    r = request("x" * 200)  # 50 tokens at 4 characters a token
    res = s.schedule(r, eps)
    s.pre_request(r, res)
    busy = res.primary.target_endpoints[0]
    got = raw_scores(s, request(), eps)
    assert got[eps.index(busy)] == pytest.approx(0.5)
    assert got[1 - eps.index(busy)] == 1.0
    s.response_streaming(r, busy, Usage(prompt_tokens=50, completion_tokens=30))
    assert raw_scores(s, request(), eps)[eps.index(busy)] == pytest.approx(0.2)
    s.response_complete(r, busy, Usage(prompt_tokens=50, completion_tokens=40))
    assert raw_scores(s, request(), eps) == [1.0, 1.0]


def test_active_request_scorer_counts_and_expires() -> None:
    clock = FakeClock()
    s = scheduler(one_scorer("active-request-scorer", {"requestTimeout": "10s"}), clock=clock)
    eps = [endpoint(1), endpoint(2), endpoint(3)]
    assert raw_scores(s, request(), eps) == [1.0, 1.0, 1.0]
    reqs = []
    for _ in range(3):
        r = request()
        res = s.schedule(r, eps)
        s.pre_request(r, res)
        reqs.append((r, res.primary.target_endpoints[0]))
    # Least-loaded first: three requests spread over three idle endpoints.
    assert {e.hostport for _, e in reqs} == {e.hostport for e in eps}
    r, e = reqs[0]
    s.response_complete(r, e)
    got = raw_scores(s, request(), eps)
    assert got[eps.index(e)] == 1.0
    assert sorted(got) == [0.0, 0.0, 1.0]
    clock.advance(11)
    assert raw_scores(s, request(), eps) == [1.0, 1.0, 1.0]


def test_session_affinity_scorer_round_trip() -> None:
    s = scheduler(one_scorer("session-affinity-scorer"))
    eps = [endpoint(1), endpoint(2), endpoint(3)]
    first = request()
    headers = s.response_received(first, eps[2])
    token = headers["x-session-token"]
    assert base64.b64decode(token).decode() == "default/pod-3"
    assert raw_scores(s, request(headers={"x-session-token": token}), eps) == [0.0, 0.0, 1.0]
    assert raw_scores(s, request(), eps) == [0.0, 0.0, 0.0]
    assert raw_scores(s, request(headers={"x-session-token": "%%%not-base64"}), eps) == [0.0, 0.0, 0.0]
    for _ in range(5):
        r = request(headers={"x-session-token": token})
        assert s.schedule(r, eps).primary.target_endpoints[0] is eps[2]


def test_no_hit_lru_scorer_spreads_cold_requests() -> None:
    cfg = {
        "plugins": [{"type": "prefix-cache-scorer"}, {"type": "no-hit-lru-scorer"}],
        "schedulingProfiles": [
            {
                "name": "default",
                "plugins": [{"pluginRef": "prefix-cache-scorer", "weight": 1}, {"pluginRef": "no-hit-lru-scorer"}],
            }
        ],
    }
    s = scheduler(cfg)
    eps = [endpoint(i) for i in range(1, 5)]
    chosen = []
    for i in range(4):
        r = request(f"a distinct cold prompt number {i} " * 10)
        res = s.schedule(r, eps)
        s.pre_request(r, res)
        chosen.append(res.primary.target_endpoints[0].hostport)
    # Every cold request goes to an endpoint that has not had one yet.
    assert len(set(chosen)) == 4
    cold = request("yet another unseen prompt " * 10)
    got = raw_scores(s, cold, eps, scorer="no-hit-lru-scorer")
    # All used: the oldest assignment scores highest, (m − j)/(m + 1).
    order = [next(i for i, e in enumerate(eps) if e.hostport == hp) for hp in chosen]
    assert [got[i] for i in order] == pytest.approx([4 / 5, 3 / 5, 2 / 5, 1 / 5])
    # A warm request (a prefix hit somewhere) scores 0.5 everywhere.
    warm = request("a distinct cold prompt number 0 " * 10)
    assert raw_scores(s, warm, eps, scorer="no-hit-lru-scorer") == [0.5] * 4
