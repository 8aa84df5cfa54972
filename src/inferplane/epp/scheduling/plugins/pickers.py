"""Pickers (GIE `max-score-picker`, `random-picker`, `weighted-random-picker`; inferplane's `round-robin-picker`).

`maxNumOfEndpoints` > 1 returns fallbacks after the primary; the director joins them with commas into
x-gateway-destination-endpoint.
"""

from __future__ import annotations

from pydantic import Field

from inferplane.epp.framework.interfaces import CycleState, Picker
from inferplane.epp.framework.registry import PluginParams, register
from inferplane.epp.framework.types import Endpoint, LLMRequest, ScoredEndpoint


class PickerParams(PluginParams):
    max_num_of_endpoints: int = Field(default=1, gt=0, alias="maxNumOfEndpoints")


@register("max-score-picker", "picker", PickerParams, needs_body=False)
class MaxScorePicker(Picker):
    """The highest totals first; ties broken at random (upstream shuffles, then stable-sorts)."""

    params: PickerParams

    def pick(self, cycle: CycleState, request: LLMRequest, scored: list[ScoredEndpoint]) -> list[Endpoint]:
        n = self.params.max_num_of_endpoints
        rnd = self.handle.rng.random
        if n == 1:
            # One pass instead of a sort: the same distribution as shuffle + stable sort (uniform among the best).
            best: list[Endpoint] = []
            top = float("-inf")
            for s in scored:
                if s.score > top:
                    top = s.score
                    best = [s.endpoint]
                elif s.score == top:
                    best.append(s.endpoint)
            if len(best) == 1:
                return best
            return [best[int(rnd() * len(best))]]
        keyed = sorted(scored, key=lambda s: (-s.score, rnd()))
        return [s.endpoint for s in keyed[:n]]


@register("random-picker", "picker", PickerParams, needs_body=False)
class RandomPicker(Picker):
    """Uniformly random endpoints, scores ignored."""

    params: PickerParams

    def pick(self, cycle: CycleState, request: LLMRequest, scored: list[ScoredEndpoint]) -> list[Endpoint]:
        n = min(self.params.max_num_of_endpoints, len(scored))
        return [s.endpoint for s in self.handle.rng.sample(scored, n)]


@register("weighted-random-picker", "picker", PickerParams, needs_body=False)
class WeightedRandomPicker(Picker):
    """Weighted sampling without replacement (A-Res: key `U^(1/score)`, highest keys win); uniform when every
    score is ≤ 0. Endpoints scoring ≤ 0 come only after every positive one."""

    params: PickerParams

    def pick(self, cycle: CycleState, request: LLMRequest, scored: list[ScoredEndpoint]) -> list[Endpoint]:
        n = min(self.params.max_num_of_endpoints, len(scored))
        rng = self.handle.rng
        if all(s.score <= 0 for s in scored):
            return [s.endpoint for s in rng.sample(scored, n)]
        keyed = []
        for s in scored:
            u = rng.random()
            key = u ** (1.0 / s.score) if s.score > 0 else -1.0 + u  # non-positive scores sort last, randomly
            keyed.append((key, s.endpoint))
        keyed.sort(key=lambda kv: kv[0], reverse=True)
        return [e for _, e in keyed[:n]]


@register("round-robin-picker", "picker", PickerParams)
class RoundRobinPicker(Picker):
    """inferplane's own (no upstream equivalent): endpoints in address order, one step further per request,
    scores ignored. Used to express a round-robin baseline in benchmarks."""

    params: PickerParams

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._next = 0

    def pick(self, cycle: CycleState, request: LLMRequest, scored: list[ScoredEndpoint]) -> list[Endpoint]:
        ordered = sorted((s.endpoint for s in scored), key=lambda e: (e.key.address, e.key.port))
        n = min(self.params.max_num_of_endpoints, len(ordered))
        start = self._next % len(ordered)
        self._next += 1
        return [ordered[(start + i) % len(ordered)] for i in range(n)]
