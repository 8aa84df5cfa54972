"""The flow controller (gate `flowControl`, reference/epp.md §5): priority bands, flows by fairness id, bounded
queues, TTL expiry, and a dispatch loop that halts while the pool is saturated.

Pure and clock-driven: the EPP calls `enqueue` per request and `pump(candidates)` whenever something may have
changed (a timer tick, a metrics refresh, a finished response); tickets resolve through callbacks.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from inferplane.api.epp_config import FlowControlConfig, PriorityBandConfig
from inferplane.epp.flowcontrol.outcomes import Admitted, Outcome, Rejected
from inferplane.epp.flowcontrol.policies import (
    FairnessPolicy,
    FlowQueue,
    OrderingPolicy,
    QueueItem,
    StaticUsageLimitPolicy,
)
from inferplane.epp.flowcontrol.saturation import SaturationDetector
from inferplane.epp.framework.types import Endpoint, LLMRequest
from inferplane.errors import ConfigError

DEFAULT_BAND_MAX_BYTES = 1_000_000_000  # 1 GB per band
DEFAULT_FLOW_ID = "default-flow"
FLOW_IDLE_GC_S = 300.0
BAND_IDLE_GC_S = 600.0
INF = float("inf")


class Ticket:
    """A queued request's claim; `outcome` is set once (dispatched, rejected, expired or cancelled)."""

    def __init__(self, item: QueueItem, band: _Band | None) -> None:
        self.item = item
        self.band = band
        self.outcome: Outcome | None = None
        self.flow_id = DEFAULT_FLOW_ID
        self._callbacks: list[Callable[[Ticket], None]] = []

    @property
    def request(self) -> LLMRequest:
        return self.item.request

    @property
    def done(self) -> bool:
        return self.outcome is not None

    def add_done_callback(self, fn: Callable[[Ticket], None]) -> None:
        if self.outcome is not None:
            fn(self)
        else:
            self._callbacks.append(fn)

    def _resolve(self, outcome: Outcome) -> None:
        if self.outcome is not None:
            return
        self.outcome = outcome
        self.item.done = True
        for fn in self._callbacks:
            fn(self)
        self._callbacks.clear()


@dataclass
class _Band:
    priority: int
    max_bytes: int
    max_requests: int | None
    ordering: OrderingPolicy
    fairness: FairnessPolicy
    flows: dict[str, FlowQueue] = field(default_factory=dict)
    flow_idle_since: dict[str, float] = field(default_factory=dict)
    fairness_state: dict[str, Any] = field(default_factory=dict)
    count: int = 0
    bytes: int = 0
    idle_since: float = 0.0


class FlowController:
    def __init__(
        self,
        config: FlowControlConfig,
        detector: SaturationDetector,
        policy: Callable[[str | None, str], Any],
        clock: Callable[[], float],
        usage_limit: StaticUsageLimitPolicy | None = None,
    ) -> None:
        """`policy(ref, default_type)` returns the policy plugin a band names (or the default type)."""
        self.config = config
        self.detector = detector
        self.clock = clock
        self.usage_limit = usage_limit
        self._policy = policy
        self.bands: dict[int, _Band] = {}
        for b in config.priority_bands:
            assert b.priority is not None  # checked by FlowControlConfig
            self.bands[b.priority] = self._new_band(b.priority, b)
        self._deadlines: list[tuple[float, int, Ticket]] = []
        self.count = 0
        self.bytes = 0
        self.ttl = config.default_request_ttl
        self._next_gc = 0.0

    def _new_band(self, priority: int, spec: PriorityBandConfig | None) -> _Band:
        tmpl = spec or self.config.default_priority_band or PriorityBandConfig()
        ordering = self._policy(tmpl.ordering_policy_ref, "fcfs-ordering-policy")
        fairness = self._policy(tmpl.fairness_policy_ref, "global-strict-fairness-policy")
        if not isinstance(ordering, OrderingPolicy):
            raise ConfigError(f"flowControl: orderingPolicyRef {tmpl.ordering_policy_ref!r} is not an ordering policy")
        if not isinstance(fairness, FairnessPolicy):
            raise ConfigError(f"flowControl: fairnessPolicyRef {tmpl.fairness_policy_ref!r} is not a fairness policy")
        return _Band(
            priority=priority,
            max_bytes=tmpl.max_bytes if tmpl.max_bytes is not None else DEFAULT_BAND_MAX_BYTES,
            max_requests=tmpl.max_requests,
            ordering=ordering,
            fairness=fairness,
            idle_since=self.clock(),
        )

    # ---- queueing ---------------------------------------------------------------------------------------------

    def enqueue(self, request: LLMRequest, ttl: float | None = None) -> Ticket:
        """Queue a request; the ticket is already rejected (429) when a capacity limit would be exceeded."""
        now = self.clock()
        ttl = self.ttl if ttl is None else ttl
        size = max(request.request_size_bytes, 0)
        item = QueueItem(request, now, now + ttl if ttl else INF, size)
        band = self.bands.get(request.priority)
        if band is None:
            band = self.bands[request.priority] = self._new_band(request.priority, None)
        ticket = Ticket(item, band)
        item.owner = ticket
        cfg = self.config
        full = (
            (cfg.max_requests is not None and self.count + 1 > cfg.max_requests)
            or (cfg.max_bytes is not None and self.bytes + size > cfg.max_bytes)
            or (band.max_requests is not None and band.count + 1 > band.max_requests)
            or band.bytes + size > band.max_bytes
        )
        if full:
            ticket._resolve(Rejected(429, "request rejected by flow control: queue capacity exceeded", "capacity"))
            return ticket
        fid = request.fairness_id or DEFAULT_FLOW_ID
        q = band.flows.get(fid)
        if q is None:
            q = band.flows[fid] = band.ordering.new_queue()
        band.flow_idle_since.pop(fid, None)
        q.push(item)
        ticket.flow_id = fid
        band.count += 1
        band.bytes += size
        self.count += 1
        self.bytes += size
        if item.deadline < INF:
            heapq.heappush(self._deadlines, (item.deadline, item.seq, ticket))
        ticket.add_done_callback(self._release)
        return ticket

    def _release(self, ticket: Ticket) -> None:
        band = ticket.band
        if band is None:
            return
        band.count -= 1
        band.bytes -= ticket.item.size
        self.count -= 1
        self.bytes -= ticket.item.size
        q = band.flows.get(ticket.flow_id)
        if q is not None and q.peek() is None:
            band.flow_idle_since.setdefault(ticket.flow_id, self.clock())
        if band.count == 0:
            band.idle_since = self.clock()

    def cancel(self, ticket: Ticket) -> None:
        """The client went away while queued (→ 503 if anyone still looks)."""
        ticket._resolve(Rejected(503, "request cancelled while queued in flow control", "cancelled"))

    # ---- dispatch -----------------------------------------------------------------------------------------

    def pump(self, candidates: list[Endpoint], max_dispatch: int | None = None) -> list[Ticket]:
        """Expire what is past its TTL (503), then dispatch in band / fairness / ordering order while the pool is
        not saturated, consulting the detector before every dispatch. Returns the dispatched tickets."""
        now = self.clock()
        dl = self._deadlines
        while dl and dl[0][0] <= now:
            _, _, t = heapq.heappop(dl)
            t._resolve(Rejected(503, "request timed out in the flow-control queue (TTL expired)", "ttl-expired"))
        out: list[Ticket] = []
        while self.count > 0 and (max_dispatch is None or len(out) < max_dispatch):
            saturation = self.detector.saturation(candidates)
            allowed = self.usage_limit.allows(saturation, 0) if self.usage_limit else saturation < 1.0
            if not allowed:
                break
            ticket = self._pop_next()
            if ticket is None:
                break
            ticket._resolve(Admitted(queued_seconds=now - ticket.item.enqueued))
            out.append(ticket)
        self._gc(now)
        return out

    def _pop_next(self) -> Ticket | None:
        for prio in sorted(self.bands, reverse=True):
            band = self.bands[prio]
            if band.count <= 0:
                continue
            fid = band.fairness.pick(band.flows, band.fairness_state)
            if fid is None:
                continue
            item = band.flows[fid].pop()
            if item is not None:
                ticket: Ticket = item.owner
                return ticket
        return None

    def _gc(self, now: float) -> None:
        # At most once a second: the scan is over every flow, and pump runs per request.
        if now < self._next_gc:
            return
        self._next_gc = now + 1.0
        for prio in list(self.bands):
            band = self.bands[prio]
            for fid, q in list(band.flows.items()):
                if q.peek() is None:
                    since = band.flow_idle_since.setdefault(fid, now)
                    if now - since >= FLOW_IDLE_GC_S:
                        del band.flows[fid]
                        band.flow_idle_since.pop(fid, None)
            configured = any(b.priority == prio for b in self.config.priority_bands)
            if band.count == 0 and not configured and now - band.idle_since >= BAND_IDLE_GC_S:
                del self.bands[prio]
