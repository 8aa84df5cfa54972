"""Scorers that read the endpoints' scraped metrics (GIE and llm-d, reference/epp.md §3.1, §3.3).

Scores use the last scraped values, stale or not, as upstream does; staleness is the saturation detector's concern.
"""

from __future__ import annotations

from pydantic import Field

from inferplane.epp.framework.interfaces import CycleState, Scorer
from inferplane.epp.framework.registry import PluginParams, register
from inferplane.epp.framework.types import Endpoint, LLMRequest


def min_max_inverted(values: list[float]) -> list[float]:
    """`(max − v)/(max − min)`: the lowest value scores 1, the highest 0; all equal → 1.0 for every endpoint."""
    if not values:
        return []
    hi = max(values)
    lo = min(values)
    if hi == lo:
        return [1.0] * len(values)
    span = hi - lo
    return [(hi - v) / span for v in values]


def min_max(values: list[float]) -> list[float]:
    """`(v − min)/(max − min)`; all equal → 0.0 when all are 0, else 1.0 (nothing to tell them apart)."""
    if not values:
        return []
    hi = max(values)
    lo = min(values)
    if hi == lo:
        return [1.0 if hi > 0 else 0.0] * len(values)
    span = hi - lo
    return [(v - lo) / span for v in values]


@register("queue-scorer", "scorer", needs_body=False)
class QueueScorer(Scorer):
    """Fewer waiting requests (`vllm:num_requests_waiting`) score higher, min–max over the candidates."""

    category = "Distribution"

    def score(self, cycle: CycleState, request: LLMRequest, endpoints: list[Endpoint]) -> list[float]:
        return min_max_inverted([e.metrics.waiting_queue_size for e in endpoints])


@register("running-requests-size-scorer", "scorer", needs_body=False)
class RunningRequestsSizeScorer(Scorer):
    """Fewer running requests (`vllm:num_requests_running`) score higher, min–max over the candidates."""

    category = "Distribution"

    def score(self, cycle: CycleState, request: LLMRequest, endpoints: list[Endpoint]) -> list[float]:
        return min_max_inverted([e.metrics.running_requests_size for e in endpoints])


@register("kv-cache-utilization-scorer", "scorer", needs_body=False, aliases=("kv-cache-scorer",))
class KVCacheUtilizationScorer(Scorer):
    """`1 − KVCacheUsagePercent` (a 0..1 fraction, as vLLM reports it)."""

    category = "Distribution"

    def score(self, cycle: CycleState, request: LLMRequest, endpoints: list[Endpoint]) -> list[float]:
        return [1.0 - e.metrics.kv_cache_usage_percent for e in endpoints]


@register("lora-affinity-scorer", "scorer")
class LoraAffinityScorer(Scorer):
    """1.0 when the adapter is running; 0.8 when another fits; 0.6 when it is waiting to load; else 0."""

    category = "Affinity"

    def score(self, cycle: CycleState, request: LLMRequest, endpoints: list[Endpoint]) -> list[float]:
        model = request.target_model
        out = []
        for e in endpoints:
            m = e.metrics
            if model in m.active_models:
                out.append(1.0)
            elif len(m.active_models) + len(m.waiting_models) < m.max_active_models:
                out.append(0.8)
            elif model in m.waiting_models:
                out.append(0.6)
            else:
                out.append(0.0)
        return out


class LoadAwareParams(PluginParams):
    # llm-d's QueueThresholdDefault; reference/epp.md leaves the default unstated.
    threshold: int = Field(default=128, gt=0)


@register("load-aware-scorer", "scorer", LoadAwareParams, needs_body=False)
class LoadAwareScorer(Scorer):
    """llm-d: an empty queue scores 0.5; otherwise `0.5 · (1 − min(q, threshold)/threshold)`."""

    category = "Distribution"
    params: LoadAwareParams

    def score(self, cycle: CycleState, request: LLMRequest, endpoints: list[Endpoint]) -> list[float]:
        t = self.params.threshold
        out = []
        for e in endpoints:
            q = e.metrics.waiting_queue_size
            out.append(0.5 if q <= 0 else 0.5 * (1.0 - min(q, t) / t))
        return out
