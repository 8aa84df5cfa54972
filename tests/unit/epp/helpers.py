"""Builders for endpoints and requests used by the scheduling and flow-control unit tests."""

from __future__ import annotations

import random
from typing import Any

import yaml

from inferplane.api.epp_config import EndpointPickerConfig
from inferplane.epp.framework.types import Endpoint, EndpointKey, LLMRequest, LLMRequestBody, Metrics
from inferplane.epp.scheduling import Scheduler, build_scheduler


class FakeClock:
    """A clock tests move by hand (the scheduler and flow control take any callable)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def endpoint(
    i: int,
    *,
    queue: int = 0,
    running: int = 0,
    kv: float = 0.0,
    labels: dict[str, str] | None = None,
    updated: float = 1000.0,
    **metrics: Any,
) -> Endpoint:
    return Endpoint(
        key=EndpointKey(f"10.0.0.{i}", 8000),
        name=f"pod-{i}",
        labels=labels or {},
        metrics=Metrics(
            waiting_queue_size=queue,
            running_requests_size=running,
            kv_cache_usage_percent=kv,
            update_time=updated,
            **metrics,
        ),
    )


_ids = iter(range(10**9))


def request(
    prompt: str = "hello world",
    *,
    model: str = "m",
    headers: dict[str, str] | None = None,
    priority: int = 0,
    fairness_id: str = "",
    size: int = 100,
    request_id: str | None = None,
    chat: bool = False,
) -> LLMRequest:
    if chat:
        raw: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": prompt}]}
        body = LLMRequestBody(kind="chat", raw=raw)
        from inferplane.epp.framework.types import ChatMessage

        body.messages = [ChatMessage("user", prompt)]
    else:
        body = LLMRequestBody(kind="completions", prompt=prompt, raw={"model": model, "prompt": prompt})
    return LLMRequest(
        request_id=request_id or f"req-{next(_ids)}",
        target_model=model,
        body=body,
        headers=headers or {},
        priority=priority,
        fairness_id=fairness_id,
        request_size_bytes=size,
    )


def config(text: str | dict[str, Any]) -> EndpointPickerConfig:
    data = yaml.safe_load(text) if isinstance(text, str) else text
    return EndpointPickerConfig.model_validate(data)


def scheduler(text: str | dict[str, Any], *, seed: int = 0, clock: FakeClock | None = None) -> Scheduler:
    return build_scheduler(config(text), rng=random.Random(seed), clock=clock or FakeClock())


def one_scorer(type_: str, params: dict[str, Any] | None = None, picker: str = "max-score-picker") -> dict[str, Any]:
    """A config with one scorer (weight 1) and a picker."""
    plugin: dict[str, Any] = {"type": type_}
    if params:
        plugin["parameters"] = params
    return {
        "plugins": [plugin, {"type": picker}],
        "schedulingProfiles": [{"name": "default", "plugins": [{"pluginRef": type_}, {"pluginRef": picker}]}],
    }


def raw_scores(s: Scheduler, req: LLMRequest, eps: list[Endpoint], scorer: str | None = None) -> list[float]:
    """The unweighted scores one scorer of the (single) profile gives, after PrepareData ran."""
    from inferplane.epp.scheduling import CycleState

    s.prepare_request_data(req, eps)
    profile = next(iter(s.profiles.values()))
    plug = next(p for p, _ in profile.scorers if scorer is None or p.name == scorer)
    return plug.score(CycleState(request_state=s.state.get(req.request_id)), req, eps)
