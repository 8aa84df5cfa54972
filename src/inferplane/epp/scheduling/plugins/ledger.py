"""Requests in flight per endpoint, as the picker's request hooks see them (PreRequest until the response ends),
with a deadline per request so that entries whose end the gateway never reports (response phases skipped, a lost
stream) do not count forever. Shared by the plugins that keep their own in-flight view."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class Entry(Generic[T]):
    hostports: list[str]
    deadline: float
    data: T


@dataclass
class InflightLedger(Generic[T]):
    """`counts[hostport]`: requests in flight there; `entries[request id]`: where each one runs and what the owning
    plugin keeps about it (`data`)."""

    entries: dict[str, Entry[T]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, request_id: str, hostports: list[str], deadline: float, data: T) -> bool:
        """Record a request (False, and nothing changes, when it is already recorded: PreRequest can run twice)."""
        if request_id in self.entries:
            return False
        self.entries[request_id] = Entry(hostports, deadline, data)
        for hp in hostports:
            self.counts[hp] = self.counts.get(hp, 0) + 1
        return True

    def release(self, request_id: str) -> Entry[T] | None:
        """Forget a finished request; returns its entry (None when unknown or already released)."""
        entry = self.entries.pop(request_id, None)
        if entry is not None:
            for hp in entry.hostports:
                self.counts[hp] = max(self.counts.get(hp, 0) - 1, 0)
        return entry

    def expired(self, now: float) -> list[str]:
        """Ids of the requests whose deadline has passed (the caller releases them, with its own bookkeeping)."""
        return [rid for rid, e in self.entries.items() if e.deadline <= now]
