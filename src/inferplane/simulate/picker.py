"""The production endpoint picker, driven in virtual time.

The scheduler and its plugins are the ones `inferplane epp` runs (built by `build_scheduler` from the pool's
EndpointPickerConfig, same code, no fork); the clock and the random source are the simulation's. What lies between
the picker and the replicas is modelled, not run:

* the data layer scrapes every replica's `/metrics` every `scrape_interval` (the picker's 50 ms default), so the
  scorers see the queue, running count and KV usage as of the last scrape, not the live values;
* the picker's own in-flight ledger (requests it sent and has not seen finish) is exact, as in the real director;
* without response phases (what `inferplane up` configures today) the picker hears of a request only when its
  ext_proc stream ends, at the last byte of the response.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from inferplane.epp.framework.interfaces import SchedulingError
from inferplane.epp.framework.types import Endpoint, EndpointKey, LLMRequest, Metrics
from inferplane.epp.openai_parser import parse_request_body
from inferplane.epp.scheduling import build_scheduler
from inferplane.epp.scheduling.scheduler import Scheduler
from inferplane.simulate.fleet import VirtualReplica


@dataclass(frozen=True)
class PickerTiming:
    """What the picker's view of the fleet lags by."""

    scrape_interval: float = 0.05
    response_phases: bool = False  # whether the picker hears of the first token (inferplane up: not yet)


@dataclass
class Routed:
    """A decision: where the request goes, and the picker's request object for the response hooks."""

    replica: VirtualReplica
    request: LLMRequest
    endpoint: Endpoint


@dataclass(eq=False)
class VirtualPicker:
    """One pool's endpoint picker over the pool's replicas."""

    pool: str
    scheduler: Scheduler
    replicas: list[VirtualReplica]
    timing: PickerTiming
    clock: Callable[[], float]
    endpoints: list[Endpoint] = field(default_factory=list)
    _by_endpoint: dict[int, VirtualReplica] = field(default_factory=dict)
    _last_scrape: float = -1.0
    decisions: int = 0
    failures: int = 0

    def __post_init__(self) -> None:
        self.sync_endpoints()

    def sync_endpoints(self) -> None:
        """Endpoints follow the replicas that are up (discovery); kept objects keep their plugin state."""
        known = {id(r): ep for ep, r in ((ep, self._by_endpoint[id(ep)]) for ep in self.endpoints)}
        self.endpoints = []
        self._by_endpoint = {}
        for i, r in enumerate(self.replicas):
            if not r.up:
                continue
            ep = known.get(id(r))
            if ep is None:
                ep = Endpoint(
                    EndpointKey(f"10.0.{i // 250}.{i % 250 + 1}", r.cfg.port),
                    name=r.name,
                    metrics=Metrics(cache_block_size=r.cfg.block_size, cache_num_gpu_blocks=r.num_gpu_blocks),
                )
            self.endpoints.append(ep)
            self._by_endpoint[id(ep)] = r
        self._last_scrape = -1.0

    def _scrape(self, now: float) -> None:
        """Bring every endpoint's metrics to the last scrape instant at or before `now` (one pass per interval)."""
        interval = self.timing.scrape_interval
        tick = math.floor(now / interval) * interval if interval > 0 else now
        if tick == self._last_scrape:
            return
        self._last_scrape = tick
        for ep in self.endpoints:
            state = self._by_endpoint[id(ep)].state_at(tick)
            m = ep.metrics
            m.waiting_queue_size = state.waiting
            m.running_requests_size = state.running
            m.kv_cache_usage_percent = state.kv_usage
            m.update_time = tick

    def pick(self, request_id: str, body: dict[str, object], path: str) -> Routed | None:
        """The director's steps 5-8 for one request: PrepareData, schedule, PreRequest; None when it failed."""
        now = self.clock()
        self._scrape(now)
        raw = json.dumps(body).encode()
        parsed = parse_request_body(raw, path)
        req = LLMRequest(
            request_id=request_id,
            target_model=str(body.get("model", "")),
            body=parsed,
            request_size_bytes=len(raw),
        )
        candidates = [ep for ep in self.endpoints if ep.ready]
        if not candidates:
            self.failures += 1
            return None
        try:
            self.scheduler.prepare_request_data(req, candidates)
            result = self.scheduler.schedule(req, candidates)
        except SchedulingError:
            self.failures += 1
            return None
        ep = result.primary.target_endpoints[0]
        ep.in_flight_requests += 1
        ep.in_flight_tokens += len(parsed.prompt_text()) // 4
        self.scheduler.pre_request(req, result)
        self.scheduler.flush_deferred()
        self.decisions += 1
        return Routed(self._by_endpoint[id(ep)], req, ep)

    def first_token(self, routed: Routed) -> None:
        if self.timing.response_phases:
            self.scheduler.response_streaming(routed.request, routed.endpoint)

    def finished(self, routed: Routed) -> None:
        ep = routed.endpoint
        ep.in_flight_requests = max(0, ep.in_flight_requests - 1)
        body = routed.request.body
        tokens = len(body.prompt_text()) // 4 if body is not None else 0
        ep.in_flight_tokens = max(0, ep.in_flight_tokens - tokens)
        self.scheduler.response_complete(routed.request, ep)


def build_picker(
    pool: str,
    config: object,
    replicas: list[VirtualReplica],
    timing: PickerTiming,
    clock: Callable[[], float],
    seed: int,
) -> VirtualPicker:
    from inferplane.api.epp_config import EndpointPickerConfig, default_epp_config

    cfg = config if isinstance(config, EndpointPickerConfig) else default_epp_config()
    scheduler = build_scheduler(cfg, rng=random.Random(seed), clock=clock)
    return VirtualPicker(pool, scheduler, replicas, timing, clock)
