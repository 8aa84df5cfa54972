"""The narrow seam between the protocol side of the EPP and the pure scheduling / flow-control packages.

Everything the server needs from `inferplane.epp.scheduling` and `inferplane.epp.flowcontrol` is built here, so
the director and the ext_proc server depend only on small protocols (director.SchedulerPort, director.Admit,
the configured `RequestParser`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from inferplane.api.epp_config import EndpointPickerConfig
from inferplane.epp.datalayer.datastore import Datastore
from inferplane.epp.datalayer.kvevents import KVEventBatch
from inferplane.epp.flowcontrol import AdmissionController, Admitted, Outcome, Rejected, Ticket
from inferplane.epp.framework.capabilities import KVEventsConsumer
from inferplane.epp.framework.config import needs_body as config_needs_body
from inferplane.epp.framework.config import parser_of
from inferplane.epp.framework.interfaces import RequestParser
from inferplane.epp.framework.types import Endpoint, LLMRequest
from inferplane.epp.metrics import EppMetrics
from inferplane.epp.request_errors import EppError, ErrorCode
from inferplane.epp.scheduling import Scheduler, build_scheduler

log = logging.getLogger(__name__)


def needs_body(config: EndpointPickerConfig, has_model_rewrites: bool = False) -> bool:
    """Whether the EPP must see request bodies under this configuration (prefix affinity, token counts, the model
    name for LoRA affinity, model rewrites): `needs_body` on each plugin's registration. The local gateway uses this
    to choose the ext_proc body mode."""
    return has_model_rewrites or config_needs_body(config)


def build_scheduler_for(config: EndpointPickerConfig, metrics: EppMetrics, rng: random.Random) -> Scheduler:
    """The pool's scheduler; the builder returns its warnings, and the EPP logs each once here."""
    scheduler = build_scheduler(config, rng=rng, observer=metrics)
    for warning in scheduler.warnings:
        log.warning("EndpointPickerConfig: %s", warning)
    return scheduler


def request_parser(config: EndpointPickerConfig, scheduler: Scheduler) -> RequestParser:
    """The configured `parser` plugin (`openai-parser` by default), built with the scheduler's plugins."""
    return parser_of(config, scheduler.plugins)


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
    config: EndpointPickerConfig, datastore: Datastore, metrics: EppMetrics, scheduler: Scheduler
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


def kv_events_settings(scheduler: Scheduler) -> KVEventsSettings | None:
    """The first plugin that takes KV events names the socket; None when no plugin wants them."""
    for p in scheduler.plugins.values():
        if not isinstance(p, KVEventsConsumer):
            continue
        cfg = p.kv_events_config
        return KVEventsSettings(
            zmq_endpoint=str(cfg.zmq_endpoint),
            topic_filter=str(cfg.topic_filter),
            discover_pods=bool(cfg.discover_pods),
            socket_port=int((cfg.pod_discovery_config or {}).get("socketPort", 5557)),
        )
    return None


def kv_event_sink(scheduler: Scheduler) -> Callable[[str, KVEventBatch], None] | None:
    """The precise-prefix index's ingestion hook, if the configuration has a plugin that takes KV events."""
    handlers = [p.on_kv_events for p in scheduler.plugins.values() if isinstance(p, KVEventsConsumer)]
    if not handlers:
        return None

    def sink(hostport: str, batch: KVEventBatch) -> None:
        for h in handlers:
            h(hostport, batch)

    return sink
