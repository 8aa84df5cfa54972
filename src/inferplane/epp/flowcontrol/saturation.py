"""Saturation detectors (reference/epp.md §4): pool saturation for admission and flow control, and the same rule as a
filter that drops saturated endpoints (fail-open: if every endpoint would go, none does)."""

from __future__ import annotations

from abc import abstractmethod
from typing import Literal

from pydantic import Field, field_validator

from inferplane.api.epp_config import parse_duration
from inferplane.epp.framework.capabilities import InflightCounts
from inferplane.epp.framework.interfaces import CycleState, Filter
from inferplane.epp.framework.registry import PluginParams, register
from inferplane.epp.framework.types import Endpoint, LLMRequest


class SaturationDetector(Filter):
    """`saturation(endpoints)` ≥ 1.0 means the pool is saturated."""

    @abstractmethod
    def saturation(self, endpoints: list[Endpoint]) -> float:
        """Pool saturation; 1.0 or more is saturated."""

    def is_saturated(self, endpoints: list[Endpoint]) -> bool:
        return self.saturation(endpoints) >= 1.0


class UtilizationParams(PluginParams):
    queue_depth_threshold: int = Field(default=5, gt=0, alias="queueDepthThreshold")
    kv_cache_util_threshold: float = Field(default=0.8, gt=0, le=1, alias="kvCacheUtilThreshold")
    metrics_staleness_threshold: float = Field(default=0.2, alias="metricsStalenessThreshold")
    headroom: float = Field(default=0.0, ge=0)

    @field_validator("metrics_staleness_threshold", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        return parse_duration(v)


@register(
    "utilization-detector", "saturation-detector", UtilizationParams, also=("filter",), needs_body=False, implicit=True
)
class UtilizationDetector(SaturationDetector):
    """Endpoint score `max(queue / queueDepthThreshold, kv / kvCacheUtilThreshold)`, stale or missing metrics 1.0;
    pool saturation is the mean (no endpoints: 1.0)."""

    params: UtilizationParams

    def _stale(self, e: Endpoint, now: float) -> bool:
        m = e.metrics
        return m.update_time <= 0 or now - m.update_time > self.params.metrics_staleness_threshold

    def endpoint_score(self, e: Endpoint, now: float) -> float:
        if self._stale(e, now):
            return 1.0
        p = self.params
        m = e.metrics
        return max(m.waiting_queue_size / p.queue_depth_threshold, m.kv_cache_usage_percent / p.kv_cache_util_threshold)

    def saturation(self, endpoints: list[Endpoint]) -> float:
        if not endpoints:
            return 1.0
        now = self.handle.clock()
        return sum(self.endpoint_score(e, now) for e in endpoints) / len(endpoints)

    def filter(self, cycle: CycleState, request: LLMRequest, endpoints: list[Endpoint]) -> list[Endpoint]:
        p = self.params
        now = self.handle.clock()
        q_max = p.queue_depth_threshold * (1 + p.headroom)
        kv_max = min(1.0, p.kv_cache_util_threshold * (1 + p.headroom))
        kept = [
            e
            for e in endpoints
            if not self._stale(e, now)
            and e.metrics.waiting_queue_size <= q_max
            and e.metrics.kv_cache_usage_percent <= kv_max
        ]
        return kept or endpoints


class ConcurrencyParams(PluginParams):
    concurrency_mode: Literal["requests", "tokens"] = Field(default="requests", alias="concurrencyMode")
    max_concurrency: int = Field(default=100, gt=0, alias="maxConcurrency")
    max_token_concurrency: int = Field(default=1_000_000, gt=0, alias="maxTokenConcurrency")
    headroom: float = Field(default=0.0, ge=0)


@register(
    "concurrency-detector", "saturation-detector", ConcurrencyParams, also=("filter",), needs_body=False, implicit=True
)
class ConcurrencyDetector(SaturationDetector):
    """Saturation `Σ in-flight / Σ capacity` over the endpoints, in requests or tokens, counted by the
    `inflight-load-producer` through the PreRequest and response hooks."""

    params: ConcurrencyParams
    producer_type = "inflight-load-producer"

    _producer: InflightCounts | None = None

    def _load(self, e: Endpoint) -> tuple[int, int]:
        producer = self._producer
        if producer is None:
            # Found on first use (the builder adds the producer after its consumers) and kept: a Protocol
            # isinstance per endpoint and decision would cost more than the rest of the check.
            producer = self._producer = self.handle.first(InflightCounts)
        if self.params.concurrency_mode == "tokens":
            return producer.tokens.get(e.hostport, 0), self.params.max_token_concurrency
        return producer.requests.get(e.hostport, 0), self.params.max_concurrency

    def saturation(self, endpoints: list[Endpoint]) -> float:
        if not endpoints:
            return 1.0
        load = cap = 0
        for e in endpoints:
            used, limit = self._load(e)
            load += used
            cap += limit
        return load / cap

    def filter(self, cycle: CycleState, request: LLMRequest, endpoints: list[Endpoint]) -> list[Endpoint]:
        factor = 1 + self.params.headroom
        kept = []
        for e in endpoints:
            used, limit = self._load(e)
            if used < limit * factor:
                kept.append(e)
        return kept or endpoints
