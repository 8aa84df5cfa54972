"""The narrow seam between the protocol side of the EPP and the pure scheduling / flow-control packages.

Everything the server needs from `inferplane.epp.scheduling` and `inferplane.epp.flowcontrol` is built here, so
the director and the ext_proc server depend only on small protocols (director.SchedulerPort, director.Admit).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from inferplane.api.epp_config import EndpointPickerConfig
from inferplane.epp.datalayer.datastore import Datastore
from inferplane.epp.datalayer.kvevents import KVEventBatch
from inferplane.epp.director import SchedulerPort
from inferplane.epp.flowcontrol import AdmissionController, Admitted, Outcome, Rejected, Ticket
from inferplane.epp.metrics import EppMetrics
from inferplane.epp.request_errors import EppError, ErrorCode
from inferplane.epp.scheduling import build_scheduler
from inferplane.epp.scheduling.types import Endpoint, LLMRequest

log = logging.getLogger(__name__)

# Plugin types that decide from headers and scraped metrics alone: a configuration made only of these lets the
# gateway skip sending the request body (request_body_mode NONE, the fastest ext_proc mode).
BODYLESS_PLUGIN_TYPES = frozenset(
    {
        "queue-scorer",
        "kv-cache-utilization-scorer",
        "kv-cache-scorer",
        "running-requests-size-scorer",
        "load-aware-scorer",
        "active-request-scorer",
        "session-affinity-scorer",
        "max-score-picker",
        "random-picker",
        "weighted-random-picker",
        "single-profile-handler",
        "decode-filter",
        "prefill-filter",
        "by-label",
        "by-label-selector",
        "label-selector-filter",
        "header-based-testing-filter",
        "utilization-detector",
        "concurrency-detector",
        "metrics-data-source",
        "core-metrics-extractor",
        "passthrough-parser",
    }
)


def needs_body(config: EndpointPickerConfig, has_model_rewrites: bool = False) -> bool:
    """Whether the EPP must see request bodies under this configuration (prefix affinity, token counts, the model
    name for LoRA affinity, model rewrites). The local gateway uses this to choose the ext_proc body mode."""
    if has_model_rewrites:
        return True
    return any(p.type not in BODYLESS_PLUGIN_TYPES for p in config.plugins)


def build_scheduler_for(config: EndpointPickerConfig, metrics: EppMetrics, rng: random.Random) -> SchedulerPort:
    scheduler: Any = build_scheduler(config, rng=rng, observer=metrics)
    for warning in getattr(scheduler, "warnings", ()):
        log.warning("EndpointPickerConfig: %s", warning)
    return scheduler


class Admission:
    """Adapts the flow-control package's AdmissionController (Admitted | Rejected | Ticket) to the director's
    `admit` coroutine. Queued tickets are pumped every few milliseconds while anything is queued: that is when
    saturation may have dropped, and when TTLs expire."""

    PUMP_INTERVAL = 0.005

    def __init__(self, controller: AdmissionController, datastore: Datastore, metrics: EppMetrics) -> None:
        self.controller = controller
        self.datastore = datastore
        self.metrics = metrics
        self._pump_task: asyncio.Task[None] | None = None

    async def admit(self, request: LLMRequest, candidates: list[Endpoint]) -> None:
        out = self.controller.admit(request, candidates)
        if isinstance(out, Ticket):
            out = await self._wait(out)
        if isinstance(out, Rejected):
            raise EppError(_REJECT_CODES.get(out.status, ErrorCode.INTERNAL), out.message)

    async def _wait(self, ticket: Ticket) -> Outcome:
        flow = self.controller.flow
        t0 = time.monotonic()
        if not ticket.done:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

            def wake(_t: Ticket) -> None:
                if not fut.done():
                    fut.set_result(None)

            ticket.add_done_callback(wake)
            self._ensure_pump()
            try:
                await fut
            except asyncio.CancelledError:  # the client went away while queued
                self.controller.cancel(ticket)
                raise
        outcome = ticket.outcome
        assert outcome is not None
        req = ticket.request
        reason = "dispatched" if isinstance(outcome, Admitted) else outcome.reason
        self.metrics.flow_queue_duration.labels(
            req.fairness_id, str(req.priority), reason, self.datastore.pool_name, req.target_model, req.target_model
        ).observe(time.monotonic() - t0)
        if flow is not None:
            self.metrics.flow_queue_size.set(flow.count)
            self.metrics.flow_queue_bytes.set(flow.bytes)
        return outcome

    def _ensure_pump(self) -> None:
        if self._pump_task is None or self._pump_task.done():
            self._pump_task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        flow = self.controller.flow
        while flow is not None and flow.count > 0:
            self.controller.pump(self.datastore.ready_endpoints())
            self.metrics.flow_queue_size.set(flow.count)
            self.metrics.flow_queue_bytes.set(flow.bytes)
            await asyncio.sleep(self.PUMP_INTERVAL)

    def saturation(self) -> float:
        return float(self.controller.detector.saturation(self.datastore.ready_endpoints()))


_REJECT_CODES = {
    429: ErrorCode.RESOURCE_EXHAUSTED,
    503: ErrorCode.SERVICE_UNAVAILABLE,
    500: ErrorCode.INTERNAL,
}


def build_admission(
    config: EndpointPickerConfig, datastore: Datastore, metrics: EppMetrics, scheduler: Any
) -> Admission:
    controller = AdmissionController.from_config(config, scheduler=scheduler)
    return Admission(controller, datastore, metrics)


@dataclass(frozen=True)
class KVEventsSettings:
    """Where KV events come from, from the precise-prefix scorer's `kvEventsConfig` (kv-events.md §3)."""

    zmq_endpoint: str = "tcp://*:5557"
    topic_filter: str = "kv@"
    discover_pods: bool = False
    socket_port: int = 5557


def kv_events_settings(scheduler: Any) -> KVEventsSettings | None:
    """The first plugin that takes KV events names the socket; None when no plugin wants them."""
    for p in getattr(scheduler, "plugins", {}).values():
        cfg = getattr(p, "kv_events_config", None)
        if cfg is None or not callable(getattr(p, "on_kv_events", None)):
            continue
        pod_cfg = getattr(cfg, "pod_discovery_config", {}) or {}
        return KVEventsSettings(
            zmq_endpoint=str(getattr(cfg, "zmq_endpoint", "tcp://*:5557")),
            topic_filter=str(getattr(cfg, "topic_filter", "kv@")),
            discover_pods=bool(getattr(cfg, "discover_pods", False)),
            socket_port=int(pod_cfg.get("socketPort", 5557)),
        )
    return None


def kv_event_sink(scheduler: Any) -> Callable[[str, KVEventBatch], None] | None:
    """The precise-prefix index's ingestion hook, if the configuration has a plugin that takes KV events."""
    handlers = [
        p.on_kv_events for p in getattr(scheduler, "plugins", {}).values() if callable(getattr(p, "on_kv_events", None))
    ]
    if not handlers:
        return None

    def sink(hostport: str, batch: KVEventBatch) -> None:
        for h in handlers:
            h(hostport, batch)

    return sink
