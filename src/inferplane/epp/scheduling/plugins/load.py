"""Scorers that keep their own state from the request hooks (reference/epp.md §3.1, §3.3): in-flight load,
active requests, session affinity, cold-request spreading."""

from __future__ import annotations

import base64
import binascii
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from pydantic import Field, field_validator

from inferplane.api.epp_config import parse_duration
from inferplane.epp.framework.interfaces import CycleState, RequestHooks, RequestState, Scorer, Usage
from inferplane.epp.framework.registry import NoParams, PluginParams, register
from inferplane.epp.framework.types import Endpoint, LLMRequest, SchedulingResult
from inferplane.epp.scheduling.plugins.ledger import InflightLedger
from inferplane.epp.scheduling.plugins.prefix import AVERAGE_CHARACTERS_PER_TOKEN, STATE_KEY, PrefixMatchInfo

SESSION_HEADER = "x-session-token"


def request_targets(result: SchedulingResult | None) -> list[Endpoint]:
    """The endpoints a request occupies: the primary pick of every profile that ran (prefill and decode)."""
    if result is None:
        return []
    return [r.target_endpoints[0] for r in result.profile_results.values() if r is not None and r.target_endpoints]


def estimate_tokens(request: LLMRequest) -> int:
    body = request.body
    if body is None:
        return 0
    chars = len(body.prompt) if body.prompt is not None else len(body.prompt_text())
    return (chars + AVERAGE_CHARACTERS_PER_TOKEN - 1) // AVERAGE_CHARACTERS_PER_TOKEN


@dataclass(slots=True)
class _Inflight:
    endpoints: list[str]
    tokens: int


@register("inflight-load-producer", "producer")
class InflightLoadProducer(RequestHooks):
    """EPP-side in-flight requests and tokens per endpoint, from PreRequest until the response ends.
    Token load is the prompt estimate (4 characters a token) plus the tokens generated so far."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requests: dict[str, int] = {}
        self.tokens: dict[str, int] = {}
        self._by_request: dict[str, _Inflight] = {}

    def pre_request(
        self, request: LLMRequest, result: SchedulingResult, state: RequestState
    ) -> dict[str, str | None] | None:
        if request.request_id in self._by_request:
            return None
        hps = [e.hostport for e in request_targets(result)]
        tok = estimate_tokens(request)
        for hp in hps:
            self.requests[hp] = self.requests.get(hp, 0) + 1
            self.tokens[hp] = self.tokens.get(hp, 0) + tok
        self._by_request[request.request_id] = _Inflight(hps, tok)
        return None

    def response_streaming(
        self, request: LLMRequest, endpoint: Endpoint | None, usage: Usage | None, state: RequestState
    ) -> None:
        rec = self._by_request.get(request.request_id)
        if rec is None or usage is None or not usage.prompt_tokens:
            return
        new = usage.prompt_tokens + usage.completion_tokens
        delta = new - rec.tokens
        if delta:
            for hp in rec.endpoints:
                self.tokens[hp] = self.tokens.get(hp, 0) + delta
            rec.tokens = new

    def response_complete(
        self, request: LLMRequest, endpoint: Endpoint | None, usage: Usage | None, state: RequestState
    ) -> None:
        rec = self._by_request.pop(request.request_id, None)
        if rec is None:
            return
        for hp in rec.endpoints:
            self.requests[hp] = max(self.requests.get(hp, 0) - 1, 0)
            self.tokens[hp] = max(self.tokens.get(hp, 0) - rec.tokens, 0)

    def total_requests(self, endpoints: list[Endpoint]) -> int:
        return sum(self.requests.get(e.hostport, 0) for e in endpoints)

    def total_tokens(self, endpoints: list[Endpoint]) -> int:
        return sum(self.tokens.get(e.hostport, 0) for e in endpoints)


class TokenLoadParams(PluginParams):
    queue_threshold_tokens: int = Field(default=4_194_304, gt=0, alias="queueThresholdTokens")


@register("token-load-scorer", "scorer", TokenLoadParams)
class TokenLoadScorer(Scorer):
    """`1 − min(inflightTokens, T)/T` with in-flight tokens from `inflight-load-producer`."""

    category = "Distribution"
    producer_type = "inflight-load-producer"
    params: TokenLoadParams

    def score(self, cycle: CycleState, request: LLMRequest, endpoints: list[Endpoint]) -> list[float]:
        producer = self.handle.first(InflightLoadProducer)
        t = self.params.queue_threshold_tokens
        tokens = producer.tokens
        return [1.0 - min(tokens.get(hp, 0), t) / t for hp in cycle.hostports(endpoints)]


class ActiveRequestParams(PluginParams):
    request_timeout: float = Field(default=120.0, alias="requestTimeout")

    @field_validator("request_timeout", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        return parse_duration(v)


@register("active-request-scorer", "scorer", ActiveRequestParams, needs_body=False)
class ActiveRequestScorer(Scorer, RequestHooks):
    """llm-d: requests in flight per endpoint as the EPP counts them (entries expire after `requestTimeout`);
    `(max − count)/max`, idle endpoints 1.0."""

    category = "Distribution"
    params: ActiveRequestParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ledger: InflightLedger[None] = InflightLedger()
        self.counts = self._ledger.counts

    def score(self, cycle: CycleState, request: LLMRequest, endpoints: list[Endpoint]) -> list[float]:
        if self._ledger.entries:
            for rid in self._ledger.expired(self.handle.clock()):
                self._ledger.release(rid)
        counts = [self.counts.get(hp, 0) for hp in cycle.hostports(endpoints)]
        hi = max(counts, default=0)
        if hi == 0:
            return [1.0] * len(endpoints)
        return [(hi - c) / hi for c in counts]

    def pre_request(
        self, request: LLMRequest, result: SchedulingResult, state: RequestState
    ) -> dict[str, str | None] | None:
        hps = [e.hostport for e in request_targets(result)]
        self._ledger.add(request.request_id, hps, self.handle.clock() + self.params.request_timeout, None)
        return None

    def response_complete(
        self, request: LLMRequest, endpoint: Endpoint | None, usage: Usage | None, state: RequestState
    ) -> None:
        self._ledger.release(request.request_id)


def session_token(endpoint: Endpoint) -> str:
    """base64(`namespace/pod`); endpoints without a pod name use their address:port."""
    return base64.b64encode(f"{endpoint.namespace}/{endpoint.name or endpoint.hostport}".encode()).decode()


@register("session-affinity-scorer", "scorer", NoParams, needs_body=False)
class SessionAffinityScorer(Scorer, RequestHooks):
    """The endpoint named by the request's `x-session-token` scores 1.0, others 0; responses carry the token of the
    endpoint that served them."""

    category = "Affinity"

    def score(self, cycle: CycleState, request: LLMRequest, endpoints: list[Endpoint]) -> list[float]:
        token = request.headers.get(SESSION_HEADER)
        if not token:
            return [0.0] * len(endpoints)
        try:
            wanted = base64.b64decode(token, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return [0.0] * len(endpoints)
        return [1.0 if f"{e.namespace}/{e.name or e.hostport}" == wanted else 0.0 for e in endpoints]

    def response_received(
        self, request: LLMRequest, endpoint: Endpoint | None, state: RequestState
    ) -> dict[str, str] | None:
        return {SESSION_HEADER: session_token(endpoint)} if endpoint is not None else None


class NoHitLRUParams(PluginParams):
    prefix_plugin_name: str = Field(default="prefix-cache-scorer", alias="prefixPluginName")
    lru_size: int = Field(default=1024, gt=0, alias="lruSize")


@register("no-hit-lru-scorer", "scorer", NoHitLRUParams)
class NoHitLRUScorer(Scorer, RequestHooks):
    """llm-d: spreads cold requests (no prefix hit on any candidate). Endpoints never given a cold request score 1.0;
    the others by how long ago they got one, oldest highest, `(m − j)/(m + 1)` for the j-th oldest of m. Warm requests
    score 0.5 everywhere, leaving the choice to the other scorers."""

    category = "Distribution"
    producer_type = "approx-prefix-cache-producer"
    params: NoHitLRUParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lru: OrderedDict[str, None] = OrderedDict()  # oldest cold assignment first

    @staticmethod
    def _cold(state: RequestState) -> bool:
        info: PrefixMatchInfo | None = state.data.get(STATE_KEY)
        return info is None or not info.matches

    def score(self, cycle: CycleState, request: LLMRequest, endpoints: list[Endpoint]) -> list[float]:
        if not self._cold(cycle["request_state"]):
            return [0.5] * len(endpoints)
        hps = cycle.hostports(endpoints)
        candidates = set(hps)
        used = [hp for hp in self.lru if hp in candidates]
        m = len(used)
        rank = {hp: j for j, hp in enumerate(used)}
        out = []
        for hp in hps:
            j = rank.get(hp)
            out.append(1.0 if j is None else (m - j) / (m + 1))
        return out

    def pre_request(
        self, request: LLMRequest, result: SchedulingResult, state: RequestState
    ) -> dict[str, str | None] | None:
        if not self._cold(state) or not result.primary.target_endpoints:
            return None
        hp = result.primary.target_endpoints[0].hostport
        self.lru.pop(hp, None)
        self.lru[hp] = None
        while len(self.lru) > self.params.lru_size:
            self.lru.popitem(last=False)
        return None
