"""inferplane's own cost-model scorer, `predicted-ttft-scorer` (not an upstream GIE or llm-d type).

Why: sglang-router's and vllm-router's `cache_aware` policies (and the llm-d guide's weighted sum of prefix, queue and
KV-use scores) decide between prefix affinity and load balance with fixed thresholds or fixed weights, so they ignore
what a cache miss costs against what a queue costs. This scorer prices both in one currency, prefill-token
equivalents, and prefers the endpoint where the request's first token is predicted to come soonest:

    cost(e) = base
            + pendingWeight x prefill tokens owed on e (requests sent there that have not streamed a first token
              yet, each with the tokens it had to prefill on e when it was sent)
            + missWeight x this request's uncached tokens on e (prompt minus the prefix the approximate index says
              e holds; missWeight > 1 because a miss also stores a second copy of the prefix, which evicts other
              prefixes from a full KV pool: in the virtual-time probe, missWeight 1 lets the misses cascade)
            + runningRequestTokens x requests in flight on e (each makes every engine step, and so the step that
              produces this request's first token, longer: decode reads its KV)
            + waitingRequestTokens x requests waiting in e's engine queue (scraped; they wait for KV space or batch
              room, which a pending-token count does not see)
            + footprintWeight x tokens the index holds for e, only for a prompt no candidate holds any of (new
              prefixes go where the least is held: sglang-router's "smallest tree", as a cost)

and scores `min(cost) / cost(e)`: 1 for the cheapest candidate, in (0, 1] always, decreasing in every cost term.
Alone with `max-score-picker` it picks the predicted-fastest endpoint. With the default parameters a request follows
its cached prefix until the holder's queue costs more than prefilling the whole prompt elsewhere, and a new prefix goes
to the endpoint holding the least, then the least loaded.

The plugin keeps its own per-endpoint accounting from the request hooks (PreRequest → first streamed chunk → end of
the response); entries the response hooks never close expire after `requestTimeout`. The pending term needs the
response phases (the first streamed chunk); where the gateway does not send them (`inferplane up` today), configure
`pendingWeight: 0`, or the term counts every in-flight request's prefill until the request ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field, field_validator

from inferplane.api.epp_config import parse_duration
from inferplane.epp.framework.interfaces import CycleState, RequestHooks, RequestState, Scorer, Usage
from inferplane.epp.framework.registry import PluginParams, register
from inferplane.epp.framework.types import Endpoint, LLMRequest, SchedulingResult
from inferplane.epp.scheduling.plugins.ledger import InflightLedger
from inferplane.epp.scheduling.plugins.load import request_targets
from inferplane.epp.scheduling.plugins.prefix import (
    AVERAGE_CHARACTERS_PER_TOKEN,
    STATE_KEY,
    ApproxPrefixCacheProducer,
    PrefixMatchInfo,
)


class PredictedTTFTParams(PluginParams):
    # Fixed cost of any request (front end, one engine step) in prefill-token equivalents: H100 8B pays ~10 ms of
    # request overhead at ~27 us per prefill token, about 400 tokens. Keeps every cost > 0.
    base_tokens: float = Field(default=400.0, gt=0, alias="baseTokens")
    # One request in flight makes each engine step longer by reading its KV (~2,500 tokens x 128 KiB / 2.8 TB/s
    # ≈ 0.11 ms on H100 8B, ~4 prefill tokens), over the ~2 steps until a first token.
    running_request_tokens: float = Field(default=8.0, ge=0, alias="runningRequestTokens")
    # A request waiting in the engine's own queue (KV full or batch full): it will be prefilled before this one.
    waiting_request_tokens: float = Field(default=300.0, ge=0, alias="waitingRequestTokens")
    # Multipliers of the pending-prefill and uncached-token terms. A miss costs more than its own prefill time: the
    # copy of the prefix it stores evicts other prefixes from a KV pool that is full (missWeight > 1 says so).
    pending_weight: float = Field(default=1.0, ge=0, alias="pendingWeight")
    miss_weight: float = Field(default=4.0, ge=0, alias="missWeight")
    # Per token of the endpoint's footprint in the approximate prefix index (what the EPP has placed there and the
    # index has not aged out), for requests no candidate holds any of: the endpoint holding the least takes the new
    # prefix, so prefix groups spread evenly over the pool (sglang-router's "smallest tree", as a cost).
    footprint_weight: float = Field(default=1.0, ge=0, alias="footprintWeight")
    request_timeout: float = Field(default=600.0, gt=0, alias="requestTimeout")

    @field_validator("request_timeout", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        return parse_duration(v)


@dataclass(frozen=True, slots=True)
class CostTerms:
    """The cost terms of one candidate (token equivalents), separated so that tests and logs can see them."""

    pending_tokens: float
    uncached_tokens: float
    in_flight: int
    decoding: int  # the in-flight requests past their first token: part of `in_flight`, not priced on its own
    waiting: int
    footprint_tokens: int = 0


def predicted_cost(terms: CostTerms, p: PredictedTTFTParams) -> float:
    return (
        p.base_tokens
        + p.pending_weight * terms.pending_tokens
        + p.miss_weight * terms.uncached_tokens
        + p.running_request_tokens * terms.in_flight
        + p.waiting_request_tokens * terms.waiting
        + p.footprint_weight * terms.footprint_tokens
    )


def relative_scores(costs: list[float]) -> list[float]:
    """`min / cost`: the cheapest scores 1, the others in (0, 1), decreasing in cost. Costs must be > 0."""
    if not costs:
        return []
    lo = min(costs)
    return [lo / c for c in costs]


def uncached_tokens(info: PrefixMatchInfo | None, hostport: str, prompt_tokens: int) -> int:
    """Prompt tokens the endpoint must compute: the prompt minus the prefix blocks the approximate index matched."""
    if info is None or not info.hashes:
        return prompt_tokens
    cached_chars = min(info.matches.get(hostport, 0) * info.block_chars, info.input_len)
    return max(prompt_tokens - cached_chars // AVERAGE_CHARACTERS_PER_TOKEN, 0)


@dataclass(slots=True)
class _Prefill:
    tokens: int  # uncached tokens at the decision: the prefill the endpoint owes until the first token
    first_token: bool = False


@register("predicted-ttft-scorer", "scorer", PredictedTTFTParams)
class PredictedTTFTScorer(Scorer, RequestHooks):
    """Scores endpoints by a predicted time to first token (module docstring). Needs the approximate prefix index
    (`approx-prefix-cache-producer`, created automatically when absent) for the per-endpoint match length."""

    category = "Balance"
    producer_type = "approx-prefix-cache-producer"
    params: PredictedTTFTParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ledger: InflightLedger[_Prefill] = InflightLedger()
        self.in_flight = self._ledger.counts
        self.pending_tokens: dict[str, int] = {}
        self.decoding: dict[str, int] = {}
        self._next_expiry = self.handle.clock() + self.params.request_timeout

    # ---- scoring --------------------------------------------------------------------------------------------

    def terms(self, cycle: CycleState, request: LLMRequest, endpoints: list[Endpoint]) -> list[CostTerms]:
        state: RequestState = cycle["request_state"]
        info: PrefixMatchInfo | None = state.data.get(STATE_KEY)
        prompt = _prompt_tokens(info, request)
        index = None
        block_tokens = 0
        # The footprint only places new prefixes: a request that some candidate holds part of follows the match and
        # the load (a footprint difference between two full LRUs must not outweigh a cache hit).
        if self.params.footprint_weight > 0 and info is not None and info.hashes and not info.matches:
            producer = self.handle.first(ApproxPrefixCacheProducer)
            index = producer.index
            block_tokens = info.block_chars // AVERAGE_CHARACTERS_PER_TOKEN
        out = []
        for hp, e in zip(cycle.hostports(endpoints), endpoints, strict=True):
            out.append(
                CostTerms(
                    pending_tokens=self.pending_tokens.get(hp, 0),
                    uncached_tokens=uncached_tokens(info, hp, prompt),
                    in_flight=self.in_flight.get(hp, 0),
                    decoding=self.decoding.get(hp, 0),
                    waiting=e.metrics.waiting_queue_size,
                    footprint_tokens=index.pod_size(hp) * block_tokens if index is not None else 0,
                )
            )
        return out

    def score(self, cycle: CycleState, request: LLMRequest, endpoints: list[Endpoint]) -> list[float]:
        self._expire()
        p = self.params
        return relative_scores([predicted_cost(t, p) for t in self.terms(cycle, request, endpoints)])

    # ---- accounting from the request hooks -------------------------------------------------------------------

    def pre_request(
        self, request: LLMRequest, result: SchedulingResult, state: RequestState
    ) -> dict[str, str | None] | None:
        targets = request_targets(result)
        if not targets:
            return None
        info: PrefixMatchInfo | None = state.data.get(STATE_KEY)
        hps = [e.hostport for e in targets]
        tokens = uncached_tokens(info, hps[0], _prompt_tokens(info, request))
        deadline = self.handle.clock() + self.params.request_timeout
        if self._ledger.add(request.request_id, hps, deadline, _Prefill(tokens)):
            for hp in hps:
                self.pending_tokens[hp] = self.pending_tokens.get(hp, 0) + tokens
        return None

    def response_streaming(
        self, request: LLMRequest, endpoint: Endpoint | None, usage: Usage | None, state: RequestState
    ) -> None:
        entry = self._ledger.entries.get(request.request_id)
        if entry is None or entry.data.first_token:
            return
        entry.data.first_token = True  # the first streamed chunk carries the first token: the prefill is done
        for hp in entry.hostports:
            self.pending_tokens[hp] = max(self.pending_tokens.get(hp, 0) - entry.data.tokens, 0)
            self.decoding[hp] = self.decoding.get(hp, 0) + 1

    def response_complete(
        self, request: LLMRequest, endpoint: Endpoint | None, usage: Usage | None, state: RequestState
    ) -> None:
        self._release(request.request_id)

    def _release(self, request_id: str) -> None:
        entry = self._ledger.release(request_id)
        if entry is None:
            return
        for hp in entry.hostports:
            if entry.data.first_token:
                self.decoding[hp] = max(self.decoding.get(hp, 0) - 1, 0)
            else:
                self.pending_tokens[hp] = max(self.pending_tokens.get(hp, 0) - entry.data.tokens, 0)

    def _expire(self) -> None:
        now = self.handle.clock()
        if now < self._next_expiry:
            return
        for rid in self._ledger.expired(now):
            self._release(rid)
        self._next_expiry = now + min(self.params.request_timeout, 10.0)


def _prompt_tokens(info: PrefixMatchInfo | None, request: LLMRequest) -> int:
    if info is not None:
        return info.input_len // AVERAGE_CHARACTERS_PER_TOKEN
    body = request.body
    return len(body.prompt_text()) // AVERAGE_CHARACTERS_PER_TOKEN if body is not None else 0
