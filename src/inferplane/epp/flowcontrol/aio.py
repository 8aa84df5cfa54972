"""asyncio adapter for the EPP process: turns flow-control tickets into awaitables and pumps the queue on a timer.
The decisions stay in the pure `AdmissionController`; this only waits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from inferplane.api.epp_config import EndpointPickerConfig
from inferplane.epp.flowcontrol.admission import AdmissionController
from inferplane.epp.flowcontrol.controller import Ticket
from inferplane.epp.flowcontrol.outcomes import Rejected
from inferplane.epp.framework.types import Endpoint, LLMRequest

PUMP_INTERVAL_S = 0.005


class AdmissionRejected(Exception):
    """Raised by `AsyncAdmission.admit`: answer the client with `status` (429 or 503) and `message`."""

    def __init__(self, rejected: Rejected) -> None:
        super().__init__(rejected.message)
        self.status = rejected.status
        self.message = rejected.message
        self.reason = rejected.reason


class AsyncAdmission:
    def __init__(
        self,
        controller: AdmissionController,
        candidates: Callable[[], list[Endpoint]],
        pump_interval: float = PUMP_INTERVAL_S,
    ) -> None:
        self.controller = controller
        self.candidates = candidates
        self.pump_interval = pump_interval
        self._pump_task: asyncio.Task[None] | None = None

    def admit(self, request: LLMRequest, candidates: list[Endpoint]) -> Awaitable[None] | None:
        """None when admitted now; raises `AdmissionRejected`; an awaitable while queued (it raises
        `AdmissionRejected` on TTL expiry or capacity eviction, and cancels the ticket if the caller is cancelled)."""
        result = self.controller.admit(request, candidates)
        if isinstance(result, Rejected):
            raise AdmissionRejected(result)
        if isinstance(result, Ticket):
            if isinstance(result.outcome, Rejected):
                raise AdmissionRejected(result.outcome)
            if result.outcome is None:
                return self._wait(result)
        return None

    async def _wait(self, ticket: Ticket) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()

        def done(t: Ticket) -> None:
            if not fut.done():
                fut.set_result(t.outcome)

        ticket.add_done_callback(done)
        self._ensure_pump()
        try:
            outcome = await fut
        except asyncio.CancelledError:
            self.controller.cancel(ticket)
            raise
        if isinstance(outcome, Rejected):
            raise AdmissionRejected(outcome)

    def _ensure_pump(self) -> None:
        if self._pump_task is None or self._pump_task.done():
            self._pump_task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        flow = self.controller.flow
        while flow is not None and flow.count > 0:
            self.controller.pump(self.candidates())
            if flow.count > 0:
                await asyncio.sleep(self.pump_interval)

    def saturation(self) -> float:
        return self.controller.detector.saturation(self.candidates())

    async def aclose(self) -> None:
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task


def build_admission_controller(
    config: EndpointPickerConfig,
    *,
    candidates: Callable[[], list[Endpoint]],
    scheduler: Any = None,
    clock: Callable[[], float] | None = None,
) -> AsyncAdmission:
    """The EPP's admission: the pure controller from `config`, sharing the scheduler's plugins, behind the asyncio
    adapter. `candidates()` returns the pool's current endpoints (for the pump's saturation checks)."""
    return AsyncAdmission(AdmissionController.from_config(config, scheduler=scheduler, clock=clock), candidates)
