"""inferplane's own load-balance plugins (not upstream GIE or llm-d types): they read the endpoint picker's own count
of requests in flight per endpoint (`Endpoint.in_flight_requests`, kept by the request director from the decision
until the response ends), which is current at every decision, unlike the metrics scraped every 50 ms.

Why: with skewed prefix popularity, pure prefix affinity keeps a hot prefix group on one replica until its scraped
queue is already long. sglang-router's `cache_aware` policy guards against that by switching to the least-loaded
worker while the in-flight load is imbalanced by both an absolute and a relative margin; `load-imbalance-filter`
applies the same two-margin test, but as a filter, so the prefix scorers still choose among the endpoints that are
not overloaded (a hot group spills onto a second replica instead of onto whichever replica is emptiest).
"""

from __future__ import annotations

from pydantic import Field

from inferplane.epp.framework.interfaces import CycleState, Filter, Scorer
from inferplane.epp.framework.registry import NoParams, PluginParams, register
from inferplane.epp.framework.types import Endpoint, LLMRequest


class LoadImbalanceParams(PluginParams):
    abs_threshold: int = Field(default=8, ge=0, alias="absThreshold")
    rel_threshold: float = Field(default=1.5, ge=1.0, alias="relThreshold")


def overloaded(load: int, least: int, abs_threshold: int, rel_threshold: float) -> bool:
    """An endpoint is overloaded when its in-flight count exceeds the least-loaded candidate's by more than
    `abs_threshold` requests AND by more than the factor `rel_threshold` (sglang-router's balance test, applied per
    endpoint rather than to the max)."""
    return load - least > abs_threshold and load > least * rel_threshold


@register("load-imbalance-filter", "filter", LoadImbalanceParams)
class LoadImbalanceFilter(Filter):
    """inferplane's own filter (not upstream): drops the candidates whose in-flight request count (as the endpoint
    picker counts it) exceeds the least-loaded candidate's by more than `absThreshold` (default 8) and more than
    `relThreshold` times (default 1.5). The least-loaded candidates always stay, so the result is never empty
    unless the input is; when the load is balanced every candidate stays."""

    params: LoadImbalanceParams

    def filter(self, cycle: CycleState, request: LLMRequest, endpoints: list[Endpoint]) -> list[Endpoint]:
        if len(endpoints) < 2:
            return endpoints
        least = min(e.in_flight_requests for e in endpoints)
        a, r = self.params.abs_threshold, self.params.rel_threshold
        return [e for e in endpoints if not overloaded(e.in_flight_requests, least, a, r)]


@register("inflight-load-scorer", "scorer", NoParams)
class InflightLoadScorer(Scorer):
    """inferplane's own scorer (not upstream): in-flight requests as the endpoint picker counts them, min-max
    normalised: `(max − n)/(max − min)`, so the least-loaded candidate scores 1 and the most loaded 0; all 1.0 when
    every candidate carries the same load. Unlike llm-d's `active-request-scorer` it keeps no state of its own."""

    category = "Distribution"

    def score(self, cycle: CycleState, request: LLMRequest, endpoints: list[Endpoint]) -> list[float]:
        counts = [e.in_flight_requests for e in endpoints]
        if not counts:
            return []
        lo, hi = min(counts), max(counts)
        if hi == lo:
            return [1.0] * len(counts)
        span = hi - lo
        return [(hi - c) / span for c in counts]
