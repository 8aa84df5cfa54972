"""The virtual clock and its event heap: the only notion of time in a simulation.

Events are callbacks at a virtual time; ties run in the order they were scheduled, so a run is a pure function of
its inputs and seed. Nothing here sleeps, opens a socket or starts a thread.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(order=True, slots=True)
class _Event:
    time: float
    seq: int
    action: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class Handle:
    """What `EventQueue.at` returns: lets the caller cancel an event that has not run yet."""

    __slots__ = ("_event",)

    def __init__(self, event: _Event) -> None:
        self._event = event

    def cancel(self) -> None:
        self._event.cancelled = True


class EventQueue:
    """A min-heap of timed callbacks and the current virtual time (`now`)."""

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list[_Event] = []
        self._seq = 0
        self.processed = 0

    def clock(self) -> float:
        return self.now

    def at(self, time: float, action: Callable[[], None]) -> Handle:
        """Run `action` at virtual `time` (never earlier than now: the past cannot be changed)."""
        self._seq += 1
        event = _Event(max(time, self.now), self._seq, action)
        heapq.heappush(self._heap, event)
        return Handle(event)

    def after(self, delay: float, action: Callable[[], None]) -> Handle:
        return self.at(self.now + delay, action)

    def __len__(self) -> int:
        return len(self._heap)

    def run(self, until: Callable[[], bool] | None = None) -> None:
        """Process events in time order until none is left or `until()` says stop (checked after each event)."""
        heap = self._heap
        while heap:
            event = heapq.heappop(heap)
            if event.cancelled:
                continue
            self.now = event.time
            event.action()
            self.processed += 1
            if until is not None and until():
                return
