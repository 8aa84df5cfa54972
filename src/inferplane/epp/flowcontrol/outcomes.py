"""Admission outcomes, which the ext_proc server maps to HTTP statuses (reference/epp.md §5, extproc.md §4)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Admitted:
    """Go ahead and schedule. `queued_seconds` is the time spent in the flow-control queue (0 when not queued)."""

    queued_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Rejected:
    """Answer the client with `status` and an OpenAI-style error carrying `message`.

    `reason`: "saturated" (429, sheddable request under saturation), "capacity" (429, queue full), "ttl-expired"
    (503), "cancelled" (503, client went away while queued), "evicted" (429).
    """

    status: int
    message: str
    reason: str


Outcome = Admitted | Rejected
