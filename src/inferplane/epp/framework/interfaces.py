"""Extension points of the EPP and the per-request state (GIE `framework/interface/scheduling`).

A scheduling cycle: the profile handler picks profiles; each profile runs its filters (stopping when no endpoint is
left), its weighted scorers (each score clamped to [0, 1], multiplied by its weight, weights not normalised) and its
picker. Request-control hooks (PrepareData, PreRequest, the response hooks) run around the cycle and share a
`RequestState` keyed by request id.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from inferplane.epp.framework.registry import Plugin
from inferplane.epp.framework.types import (
    Endpoint,
    LLMRequest,
    LLMRequestBody,
    ProfileRunResult,
    SchedulingResult,
    ScoredEndpoint,
)

ScorerCategory = Literal["Affinity", "Distribution", "Balance"]


class SchedulingError(Exception):
    """The scheduler could not choose: the ext_proc server answers `status` with an OpenAI-style error.

    Upstream's director wraps any scheduler error as ResourceExhausted "failed to find target endpoint" → 429
    (extproc.md §4, GIE `pkg/epp/requestcontrol/director.go`); 503 is for an empty pool or subset, decided before
    the scheduler runs."""

    status = 429
    error_type = "ResourceExhausted"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NoEndpointsAvailable(SchedulingError):
    """Every candidate was filtered out (or there were none): upstream's "no endpoints available" → 429."""


@dataclass(slots=True)
class Usage:
    """Token usage reported in a response (OpenAI `usage`), as far as it is known so far."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0


class CycleState(dict[str, Any]):
    """Data shared between the plugins of one scheduling cycle (one call of `Scheduler.schedule`)."""

    def hostports(self, endpoints: list[Endpoint]) -> list[str]:
        """`address:port` of each endpoint, built once per endpoint list in a cycle (the framework and several
        scorers key by it; building the string is a measurable share of a 16-endpoint decision)."""
        cached = self.get("_hostports")
        if cached is not None and cached[0] is endpoints:
            hps: list[str] = cached[1]
            return hps
        hps = [e.hostport for e in endpoints]
        self["_hostports"] = (endpoints, hps)
        return hps


@dataclass
class RequestState:
    """Plugin data for one request, from PrepareData through PreRequest to the end of the response."""

    created: float
    data: dict[str, Any] = field(default_factory=dict)
    prepared: bool = False
    result: SchedulingResult | None = None


class PluginState:
    """Request id → `RequestState`. Entries end with `response_complete`; abandoned ones expire after `ttl` s."""

    def __init__(self, clock: Callable[[], float], ttl: float = 300.0) -> None:
        self._clock = clock
        self._ttl = ttl
        self._states: dict[str, RequestState] = {}
        self._next_sweep = clock() + ttl

    def get(self, request_id: str) -> RequestState:
        st = self._states.get(request_id)
        if st is None:
            now = self._clock()
            if now >= self._next_sweep:
                self._sweep(now)
            st = self._states[request_id] = RequestState(created=now)
        return st

    def peek(self, request_id: str) -> RequestState | None:
        return self._states.get(request_id)

    def delete(self, request_id: str) -> None:
        self._states.pop(request_id, None)

    def __len__(self) -> int:
        return len(self._states)

    def _sweep(self, now: float) -> None:
        cutoff = now - self._ttl
        for rid in [r for r, s in self._states.items() if s.created < cutoff]:
            del self._states[rid]
        self._next_sweep = now + self._ttl


class Observer(Protocol):
    """Receives each plugin call's duration; the EPP server turns these into Prometheus histograms."""

    def plugin_duration(self, extension_point: str, plugin_type: str, plugin_name: str, seconds: float) -> None: ...


# ---- extension points -----------------------------------------------------------------------------------------


class Filter(Plugin, ABC):
    role = "filter"

    @abstractmethod
    def filter(self, cycle: CycleState, request: LLMRequest, endpoints: list[Endpoint]) -> list[Endpoint]:
        """The endpoints that stay candidates."""


class Scorer(Plugin, ABC):
    role = "scorer"
    category: ScorerCategory = "Distribution"

    @abstractmethod
    def score(self, cycle: CycleState, request: LLMRequest, endpoints: list[Endpoint]) -> list[float]:
        """One score per endpoint, in order; the framework clamps to [0, 1]."""


class Picker(Plugin, ABC):
    role = "picker"

    @abstractmethod
    def pick(self, cycle: CycleState, request: LLMRequest, scored: list[ScoredEndpoint]) -> list[Endpoint]:
        """The chosen endpoints, best first (primary, then fallbacks)."""


@dataclass
class SchedulerProfile:
    name: str
    filters: list[Filter] = field(default_factory=list)
    scorers: list[tuple[Scorer, float]] = field(default_factory=list)
    picker: Picker | None = None


class ProfileHandler(Plugin, ABC):
    role = "profile-handler"

    @abstractmethod
    def pick_profiles(
        self,
        cycle: CycleState,
        request: LLMRequest,
        profiles: dict[str, SchedulerProfile],
        results: dict[str, ProfileRunResult | None],
    ) -> list[SchedulerProfile]:
        """Profiles to run next; called until it returns none. `results` holds what ran so far (None = failed)."""

    @abstractmethod
    def process_results(
        self, cycle: CycleState, request: LLMRequest, results: dict[str, ProfileRunResult | None]
    ) -> SchedulingResult:
        """Combine the profiles' results and name the primary profile."""


class RequestHooks(Plugin):
    """Request-control hooks; a plugin overrides those it needs (GIE DataProducer, PreRequest, Response*)."""

    def prepare_request_data(self, request: LLMRequest, endpoints: list[Endpoint], state: RequestState) -> None:
        return None

    def pre_request(
        self, request: LLMRequest, result: SchedulingResult, state: RequestState
    ) -> dict[str, str | None] | None:
        """Runs after a decision; may return request headers to set (value None = remove the header)."""
        return None

    def response_received(
        self, request: LLMRequest, endpoint: Endpoint | None, state: RequestState
    ) -> dict[str, str] | None:
        """Response headers arrived; may return response headers to add."""
        return None

    def response_streaming(
        self, request: LLMRequest, endpoint: Endpoint | None, usage: Usage | None, state: RequestState
    ) -> None:
        return None

    def response_complete(
        self, request: LLMRequest, endpoint: Endpoint | None, usage: Usage | None, state: RequestState
    ) -> None:
        return None


class RequestParser(Plugin, ABC):
    """The `parser` extension point: turns a request body into what the scheduler reads (GIE `Parser`)."""

    role = "parser"

    @abstractmethod
    def parse_request(self, body: bytes, path: str) -> LLMRequestBody | None:
        """The parsed body; None when this parser does not look inside bodies (scheduling without prompt data).
        Raises the EPP's request error (400) for a body it cannot accept."""


def now_perf() -> float:
    return time.perf_counter()
