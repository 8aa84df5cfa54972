"""Saturation detectors, legacy shedding, the flow controller, model rewrite, the asyncio adapter."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from inferplane.epp.flowcontrol import (
    AdmissionController,
    AdmissionRejected,
    Admitted,
    ModelRewriter,
    ModelRewriteResource,
    Rejected,
    Ticket,
    build_admission_controller,
    resolve_objective,
)
from inferplane.epp.scheduling import CycleState, build_scheduler
from inferplane.epp.scheduling.plugins.load import InflightLoadProducer

from .helpers import FakeClock, config, endpoint, request


def admission(cfg: dict, clock: FakeClock) -> AdmissionController:
    return AdmissionController.from_config(config(cfg), clock=clock)


def test_utilization_detector_formula_staleness_and_mean() -> None:
    clock = FakeClock(1000.0)
    a = admission({}, clock)
    det = a.detector
    fresh = [endpoint(1, queue=5, kv=0.2), endpoint(2, queue=0, kv=0.4)]  # scores 1.0 and 0.5
    assert det.saturation(fresh) == pytest.approx(0.75)
    assert det.saturation([]) == 1.0
    stale = endpoint(3, updated=1000.0 - 0.3)
    never = endpoint(4, updated=0.0)
    assert det.saturation([stale, never]) == 1.0
    assert det.saturation([endpoint(5, queue=0, kv=0.8)]) == pytest.approx(1.0)


def test_utilization_detector_as_filter_is_fail_open() -> None:
    clock = FakeClock(1000.0)
    a = admission({"plugins": [{"type": "utilization-detector", "parameters": {"headroom": 0.2}}]}, clock)
    det = a.detector
    eps = [endpoint(1, queue=6), endpoint(2, queue=7), endpoint(3, kv=0.95), endpoint(4, updated=1.0), endpoint(5)]
    # queue ≤ 5·1.2 = 6 kept, 7 dropped; kv ≤ min(1, 0.96) kept; stale dropped.
    assert [e.name for e in det.filter(CycleState(), request(), eps)] == ["pod-1", "pod-3", "pod-5"]
    assert det.filter(CycleState(), request(), [endpoint(9, queue=99)])[0].name == "pod-9"


def test_legacy_admission_sheds_only_sheddable_requests() -> None:
    clock = FakeClock(1000.0)
    a = admission({}, clock)
    busy = [endpoint(1, queue=10), endpoint(2, kv=0.9)]
    calm = [endpoint(1, queue=1)]
    assert a.admit(request(priority=-1), busy) == Rejected(
        429, "system saturated, sheddable request dropped", "saturated"
    )
    assert isinstance(a.admit(request(priority=0), busy), Admitted)
    assert isinstance(a.admit(request(priority=-1), calm), Admitted)


def test_concurrency_detector_counts_through_the_hooks() -> None:
    clock = FakeClock()
    cfg = config(
        {
            "plugins": [{"type": "concurrency-detector", "parameters": {"maxConcurrency": 2}}],
            "saturationDetector": {"pluginRef": "concurrency-detector"},
        }
    )
    s = build_scheduler(cfg, rng=random.Random(0), clock=clock)
    a = AdmissionController.from_config(cfg, scheduler=s)
    eps = [endpoint(1)]
    reqs = []
    for _ in range(2):
        r = request()
        s.pre_request(r, s.schedule(r, eps))
        reqs.append(r)
    assert a.detector.saturation(eps) == 1.0
    assert isinstance(a.admit(request(priority=-1), eps), Rejected)
    s.response_complete(reqs[0], eps[0])
    assert a.detector.saturation(eps) == 0.5
    assert isinstance(a.admit(request(priority=-1), eps), Admitted)


FC = {
    "featureGates": ["flowControl"],
    "plugins": [{"type": "concurrency-detector", "parameters": {"maxConcurrency": 1}}],
    "saturationDetector": {"pluginRef": "concurrency-detector"},
}


class Harness:
    """Flow control over a concurrency detector whose load the test sets by hand."""

    def __init__(self, extra: dict | None = None) -> None:
        self.clock = FakeClock()
        cfg = config({**FC, **(extra or {})})
        self.s = build_scheduler(cfg, rng=random.Random(0), clock=self.clock)
        self.a = AdmissionController.from_config(cfg, scheduler=self.s)
        self.eps = [endpoint(1)]
        self.inflight = self.s.handle.first(InflightLoadProducer)

    def load(self, n: int) -> None:
        self.inflight.requests[self.eps[0].hostport] = n

    def submit(self, **kw: object) -> Ticket:
        t = self.a.admit(request(**kw), self.eps)  # type: ignore[arg-type]
        assert isinstance(t, Ticket)
        return t

    def drain_one(self) -> list[Ticket]:
        self.load(0)
        out = self.a.pump(self.eps)[:1]
        return out


def test_dispatch_halts_while_saturated_then_fcfs() -> None:
    h = Harness()
    h.load(1)
    tickets = [h.submit(fairness_id="f") for _ in range(3)]
    assert not any(t.done for t in tickets)
    assert h.a.pump(h.eps) == []
    h.load(0)
    h.a.flow.pump(h.eps, max_dispatch=1)
    assert [t.done for t in tickets] == [True, False, False]
    assert isinstance(tickets[0].outcome, Admitted)
    dispatched = h.a.flow.pump(h.eps, max_dispatch=2)
    assert dispatched == tickets[1:]


def test_priority_bands_strict_order() -> None:
    h = Harness()
    h.load(1)
    low = h.submit(priority=-1)
    mid = h.submit(priority=0)
    high = h.submit(priority=5)
    h.load(0)
    order = [h.a.flow.pump(h.eps, max_dispatch=1)[0] for _ in range(3)]
    assert order == [high, mid, low]


def test_round_robin_fairness_across_fairness_ids() -> None:
    h = Harness(
        {"flowControl": {"priorityBands": [{"priority": 0, "fairnessPolicyRef": "round-robin-fairness-policy"}]}}
    )
    h.load(1)
    a = [h.submit(fairness_id="a") for _ in range(3)]
    b = [h.submit(fairness_id="b") for _ in range(2)]
    h.load(0)
    order = [h.a.flow.pump(h.eps, max_dispatch=1)[0] for _ in range(5)]
    assert order == [a[0], b[0], a[1], b[1], a[2]]


def test_global_strict_fairness_is_fcfs_across_flows() -> None:
    h = Harness()
    h.load(1)
    t = [h.submit(fairness_id=f) for f in "abab"]
    h.load(0)
    assert h.a.flow.pump(h.eps) == t


def test_ttl_expiry_is_503_and_capacity_is_429() -> None:
    h = Harness({"flowControl": {"defaultRequestTTL": "2s", "maxRequests": 2}})
    h.load(1)
    t1 = h.submit()
    h.clock.advance(1)
    t2 = h.submit()
    t3 = h.a.admit(request(), h.eps)
    assert isinstance(t3, Ticket)
    assert t3.outcome == Rejected(429, "request rejected by flow control: queue capacity exceeded", "capacity")
    h.clock.advance(1.5)
    h.a.pump(h.eps)
    assert isinstance(t1.outcome, Rejected)
    assert t1.outcome.status == 503
    assert t1.outcome.reason == "ttl-expired"
    assert not t2.done
    assert h.a.flow.count == 1  # the expired request freed its place
    h.submit()


def test_band_byte_limit_and_cancel() -> None:
    h = Harness({"flowControl": {"priorityBands": [{"priority": 0, "maxBytes": 250}]}})
    h.load(1)
    t1 = h.submit(size=200)
    t2 = h.a.admit(request(size=100), h.eps)
    assert isinstance(t2, Ticket)
    assert isinstance(t2.outcome, Rejected)
    assert t2.outcome.status == 429
    h.a.cancel(t1)
    assert isinstance(t1.outcome, Rejected)
    assert t1.outcome.status == 503
    t3 = h.submit(size=200)
    h.load(0)
    assert h.a.pump(h.eps) == [t3]


def test_objective_resolution() -> None:
    objectives = {"critical": 10, "batch": -5, "plain": None}
    assert resolve_objective({"x-gateway-inference-objective": "batch"}, objectives) == ("batch", -5)
    assert resolve_objective({"x-gateway-inference-objective": "plain"}, objectives) == ("plain", 0)
    assert resolve_objective({"x-gateway-inference-objective": "nope"}, objectives) == (None, 0)
    assert resolve_objective({}, objectives) == (None, 0)


def test_model_rewrite_header_rules_and_weights() -> None:
    old = ModelRewriteResource.from_spec(
        "old",
        {"rules": [{"targets": [{"modelRewrite": "generic-old", "weight": 1}]}]},
        created=1,
    )
    new = ModelRewriteResource.from_spec(
        "new",
        {
            "rules": [
                {"targets": [{"modelRewrite": "generic-new"}]},
                {
                    "matches": [{"model": {"type": "Exact", "value": "food-review"}}],
                    "targets": [{"modelRewrite": "v1", "weight": 90}, {"modelRewrite": "v2", "weight": 10}],
                },
            ]
        },
        created=2,
    )
    rw = ModelRewriter([new, old], random.Random(5))
    assert rw.rewrite("x", {"x-gateway-model-name-rewrite": "forced"}).model == "forced"
    # Exact match beats generic rules; the oldest resource wins among generic ones.
    assert rw.rewrite("anything").model == "generic-old"
    counts = Counter(rw.rewrite("food-review").model for _ in range(2000))
    assert set(counts) == {"v1", "v2"}
    assert 0.86 < counts["v1"] / 2000 < 0.94
    d = rw.rewrite("food-review")
    assert d.rewritten
    assert d.source == "new"
    zero = ModelRewriteResource.from_spec(
        "z", {"rules": [{"targets": [{"modelRewrite": "a", "weight": 0}, {"modelRewrite": "b", "weight": 0}]}]}
    )
    zrw = ModelRewriter([zero], random.Random(1))
    assert set(Counter(zrw.rewrite("m").model for _ in range(100))) == {"a", "b"}
    assert not ModelRewriter([]).rewrite("m").rewritten


async def test_async_adapter_waits_and_rejects() -> None:
    clock = FakeClock()
    cfg = config({**FC, "flowControl": {"defaultRequestTTL": "1s"}})
    s = build_scheduler(cfg, rng=random.Random(0), clock=clock)
    eps = [endpoint(1)]
    adm = build_admission_controller(cfg, candidates=lambda: eps, scheduler=s)
    inflight = s.handle.first(InflightLoadProducer)
    assert adm.admit(request(), eps) is None  # nothing queued, not saturated: admitted at once
    inflight.requests[eps[0].hostport] = 1
    waiting = adm.admit(request(), eps)
    assert waiting is not None
    task = asyncio.ensure_future(waiting)
    await asyncio.sleep(0.02)
    assert not task.done()
    inflight.requests[eps[0].hostport] = 0
    await asyncio.wait_for(task, 2)
    inflight.requests[eps[0].hostport] = 1
    expiring = adm.admit(request(), eps)
    assert expiring is not None
    clock.advance(2)
    with pytest.raises(AdmissionRejected) as exc:
        await asyncio.wait_for(expiring, 2)
    assert exc.value.status == 503
    legacy = build_admission_controller(config({}), candidates=lambda: eps)
    with pytest.raises(AdmissionRejected) as exc:
        legacy.admit(request(priority=-1), [endpoint(2, queue=50)])
    assert exc.value.status == 429
    await adm.aclose()


def test_idle_flows_and_bands_are_collected() -> None:
    h = Harness()
    h.load(1)
    t = h.submit(priority=3, fairness_id="tenant")
    band = h.a.flow.bands[3]
    h.load(0)
    assert h.a.pump(h.eps) == [t]
    assert "tenant" in band.flows
    h.clock.advance(301)
    h.a.pump(h.eps)
    assert "tenant" not in band.flows
    h.clock.advance(601)
    h.a.pump(h.eps)
    assert 3 not in h.a.flow.bands


def test_edf_ordering_serves_the_earliest_deadline_first() -> None:
    h = Harness({"flowControl": {"priorityBands": [{"priority": 0, "orderingPolicyRef": "edf-ordering-policy"}]}})
    h.load(1)
    flow = h.a.flow
    assert flow is not None
    late = flow.enqueue(request(fairness_id="f"), ttl=30)
    soon = flow.enqueue(request(fairness_id="f"), ttl=5)
    none = flow.enqueue(request(fairness_id="f"), ttl=0)  # no deadline: after those with one
    h.load(0)
    assert [flow.pump(h.eps, max_dispatch=1)[0] for _ in range(3)] == [soon, late, none]


def test_usage_limit_policy_threshold() -> None:
    h = Harness(
        {
            "plugins": [
                {"type": "concurrency-detector", "parameters": {"maxConcurrency": 4}},
                {"type": "static-usage-limit-policy", "parameters": {"limit": 0.5}},
            ],
            "flowControl": {"usageLimitPolicyPluginRef": "static-usage-limit-policy"},
        }
    )
    h.load(2)  # saturation 0.5: at the limit, nothing dispatches
    t = h.submit()
    assert not t.done
    h.load(1)
    assert h.a.pump(h.eps) == [t]


def test_concurrency_detector_tokens_mode_and_filter() -> None:
    cfg = config(
        {
            "plugins": [
                {
                    "type": "concurrency-detector",
                    "parameters": {"concurrencyMode": "tokens", "maxTokenConcurrency": 100},
                },
                {"type": "queue-scorer"},
            ],
            "saturationDetector": {"pluginRef": "concurrency-detector"},
            "schedulingProfiles": [
                {"name": "d", "plugins": [{"pluginRef": "concurrency-detector"}, {"pluginRef": "queue-scorer"}]}
            ],
        }
    )
    s = build_scheduler(cfg, rng=random.Random(0), clock=FakeClock())
    a = AdmissionController.from_config(cfg, scheduler=s)
    eps = [endpoint(1), endpoint(2)]
    inflight = s.handle.first(InflightLoadProducer)
    inflight.tokens[eps[0].hostport] = 150
    assert a.detector.saturation(eps) == 0.75
    assert s.schedule(request(), eps).primary.target_endpoints == [eps[1]]  # the full one is filtered out
    inflight.tokens[eps[1].hostport] = 100
    # Both full: the filter fails open and keeps every endpoint.
    assert [e.name for e in a.detector.filter(CycleState(), request(), eps)] == ["pod-1", "pod-2"]
