"""Per-request measurements, the raw material of every aggregate, report and plot."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class RequestRecord:
    """One request as the client saw it. Times are seconds; `start` is relative to the start of the run.

    TTFT is the first non-empty output token minus the send time; TPOT is (e2e − TTFT) / (output tokens − 1), as
    inference-perf defines them. Token counts come from the server's `usage` when it sends one.
    """

    start: float
    stage: str = ""
    model: str = ""
    group: str = ""
    status: int = 0  # HTTP status; 0 when no response arrived
    error: str | None = None
    ttft: float | None = None
    e2e: float | None = None
    itl: list[float] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int | None = None  # None: the server sent no prompt_tokens_details
    replica: str = ""
    scheduled: float | None = None  # open loop: when the arrival process wanted it sent

    @property
    def ok(self) -> bool:
        return self.error is None and 200 <= self.status < 300

    @property
    def end(self) -> float | None:
        return None if self.e2e is None else self.start + self.e2e

    @property
    def tpot(self) -> float | None:
        if self.ttft is None or self.e2e is None or self.output_tokens < 2:
            return None
        return (self.e2e - self.ttft) / (self.output_tokens - 1)

    def to_json(self) -> dict[str, Any]:
        # Microsecond precision is far below what a loopback client can measure and keeps results.json small
        # (a streamed answer carries one inter-token latency per token).
        data = asdict(self)
        data["itl"] = [round(x, 6) for x in self.itl]
        for key in ("start", "ttft", "e2e", "scheduled"):
            if data[key] is not None:
                data[key] = round(data[key], 6)
        tpot = self.tpot
        data["tpot"] = None if tpot is None else round(tpot, 6)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RequestRecord:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True, slots=True)
class StageInfo:
    """One stage of a run: its load setting and when it ran (relative seconds)."""

    name: str
    mode: str  # closed | poisson | constant | trace
    rate: float | None = None
    concurrency: int | None = None
    started: float = 0.0
    ended: float = 0.0
    warmup: bool = False

    @property
    def duration(self) -> float:
        return max(self.ended - self.started, 0.0)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StageInfo:
        return cls(**data)
