"""Flow-control policies (reference/epp.md §5): which flow of a band goes next (fairness), which request of a flow
goes next (ordering), and whether the pool may take another request (usage limit)."""

from __future__ import annotations

import heapq
import itertools
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from inferplane.epp.framework.registry import Plugin, PluginParams, register
from inferplane.epp.framework.types import LLMRequest

_seq = itertools.count()


@dataclass(eq=False)
class QueueItem:
    """One waiting request. `deadline` is the TTL expiry on the controller's clock (inf when none)."""

    request: LLMRequest
    enqueued: float
    deadline: float
    size: int
    seq: int = field(default_factory=lambda: next(_seq))
    done: bool = False  # dispatched, expired, rejected or cancelled: skipped lazily by the queues
    owner: Any = None  # the controller's ticket for this request


class OrderingPolicy(Plugin, ABC):
    role = "flow-control-policy"

    @abstractmethod
    def new_queue(self) -> FlowQueue:
        """An empty queue of one flow in this policy's order."""


class FlowQueue(ABC):
    """The requests of one flow, in the ordering policy's order; removed items are skipped lazily."""

    @abstractmethod
    def push(self, item: QueueItem) -> None:
        """Add a request."""

    @abstractmethod
    def peek(self) -> QueueItem | None:
        """The next live request, or None."""

    @abstractmethod
    def pop(self) -> QueueItem | None:
        """Remove and return the next live request."""


class FCFSQueue(FlowQueue):
    def __init__(self) -> None:
        self._q: deque[QueueItem] = deque()

    def push(self, item: QueueItem) -> None:
        self._q.append(item)

    def peek(self) -> QueueItem | None:
        q = self._q
        while q and q[0].done:
            q.popleft()
        return q[0] if q else None

    def pop(self) -> QueueItem | None:
        item = self.peek()
        if item is not None:
            self._q.popleft()
        return item


class EDFQueue(FlowQueue):
    """Earliest deadline first; requests without a deadline after those with one, in arrival order."""

    def __init__(self) -> None:
        self._h: list[tuple[float, int, QueueItem]] = []

    def push(self, item: QueueItem) -> None:
        heapq.heappush(self._h, (item.deadline, item.seq, item))

    def peek(self) -> QueueItem | None:
        h = self._h
        while h and h[0][2].done:
            heapq.heappop(h)
        return h[0][2] if h else None

    def pop(self) -> QueueItem | None:
        item = self.peek()
        if item is not None:
            heapq.heappop(self._h)
        return item


@register("fcfs-ordering-policy", "flow-control-policy")
class FCFSOrderingPolicy(OrderingPolicy):
    """First come, first served within a flow (the default)."""

    def new_queue(self) -> FlowQueue:
        return FCFSQueue()


@register("edf-ordering-policy", "flow-control-policy")
class EDFOrderingPolicy(OrderingPolicy):
    """Earliest deadline (TTL expiry) first within a flow."""

    def new_queue(self) -> FlowQueue:
        return EDFQueue()


class FairnessPolicy(Plugin, ABC):
    role = "flow-control-policy"

    @abstractmethod
    def pick(self, flows: dict[str, FlowQueue], state: dict[str, Any]) -> str | None:
        """The fairness id of the flow to serve next among those with a live head, or None."""


@register("global-strict-fairness-policy", "flow-control-policy")
class GlobalStrictFairnessPolicy(FairnessPolicy):
    """One FCFS order across the band: the flow whose head arrived first."""

    def pick(self, flows: dict[str, FlowQueue], state: dict[str, Any]) -> str | None:
        best: tuple[int, str] | None = None
        for fid, q in flows.items():
            head = q.peek()
            if head is not None and (best is None or head.seq < best[0]):
                best = (head.seq, fid)
        return best[1] if best else None


@register("round-robin-fairness-policy", "flow-control-policy")
class RoundRobinFairnessPolicy(FairnessPolicy):
    """Flows take turns (in the order they first appeared), one request each."""

    def pick(self, flows: dict[str, FlowQueue], state: dict[str, Any]) -> str | None:
        order = list(flows)
        if not order:
            return None
        last = state.get("last")
        start = order.index(last) + 1 if last in flows else 0
        for i in range(len(order)):
            fid = order[(start + i) % len(order)]
            if flows[fid].peek() is not None:
                state["last"] = fid
                return fid
        return None


class StaticUsageLimitParams(PluginParams):
    limit: float = Field(default=1.0, gt=0)


@register("static-usage-limit-policy", "flow-control-policy", StaticUsageLimitParams)
class StaticUsageLimitPolicy(Plugin):
    """Dispatch only while the pool's saturation is below `limit` (1.0: the detector's own threshold)."""

    params: StaticUsageLimitParams

    def allows(self, saturation: float, priority: int) -> bool:
        return saturation < self.params.limit
