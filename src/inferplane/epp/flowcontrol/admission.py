"""Admission (reference/epp.md §4–§6): without the `flowControl` gate, shed sheddable requests (priority < 0) with 429
while the pool is saturated; with it, every request goes through the flow controller."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from inferplane.api.epp_config import EndpointPickerConfig
from inferplane.epp.flowcontrol.controller import FlowController, Ticket
from inferplane.epp.flowcontrol.outcomes import Admitted, Rejected
from inferplane.epp.flowcontrol.policies import StaticUsageLimitPolicy
from inferplane.epp.flowcontrol.saturation import SaturationDetector
from inferplane.epp.framework.config import build_plugins
from inferplane.epp.framework.registry import Plugin, PluginHandle, build_plugin
from inferplane.epp.framework.types import Endpoint, LLMRequest
from inferplane.errors import ConfigError

OBJECTIVE_HEADER = "x-gateway-inference-objective"
FAIRNESS_HEADER = "x-gateway-inference-fairness-id"


def is_sheddable(priority: int) -> bool:
    """GIE `IsSheddable`: a negative priority may be dropped under saturation."""
    return priority < 0


def resolve_objective(headers: Mapping[str, str], objectives: Mapping[str, int | None]) -> tuple[str | None, int]:
    """The objective named by `x-gateway-inference-objective` and its priority; absent or unknown → (None, 0)."""
    name = headers.get(OBJECTIVE_HEADER)
    if name is None or name not in objectives:
        return None, 0
    prio = objectives[name]
    return name, 0 if prio is None else prio


class PluginHost(Protocol):
    """What admission shares with the scheduler it runs beside: its plugins and their handle (the scheduler is
    one; flow control needs nothing else of it)."""

    @property
    def plugins(self) -> dict[str, Plugin]: ...
    @property
    def handle(self) -> PluginHandle: ...


class AdmissionController:
    """`admit(request, candidates)` → `Admitted`, `Rejected` (status 429/503) or a flow-control `Ticket` to wait on
    (call `pump(candidates)` on a timer and when load changes; the ticket's callbacks fire with the outcome)."""

    def __init__(self, detector: SaturationDetector, flow: FlowController | None = None) -> None:
        self.detector = detector
        self.flow = flow

    @property
    def flow_control_enabled(self) -> bool:
        return self.flow is not None

    @classmethod
    def from_config(
        cls,
        config: EndpointPickerConfig,
        *,
        scheduler: PluginHost | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] | None = None,
    ) -> AdmissionController:
        """Build from the same config as the scheduler. Pass the scheduler so that the detector and the in-flight
        counters are the scheduler's own instances (the concurrency detector counts through its hooks)."""
        if scheduler is not None:
            plugins = scheduler.plugins
            handle = scheduler.handle
        else:
            handle = PluginHandle(rng=rng or random.Random(), clock=clock or time.monotonic)
            _, plugins, _ = build_plugins(config, handle)
        ref = config.saturation_detector.plugin_ref if config.saturation_detector else "utilization-detector"
        detector = plugins.get(ref)
        if not isinstance(detector, SaturationDetector):
            raise ConfigError(f"saturationDetector.pluginRef: {ref!r} is not a saturation detector")
        flow = None
        if config.has_gate("flowControl"):
            fc = config.flow_control
            from inferplane.api.epp_config import FlowControlConfig

            fc = fc or FlowControlConfig()

            def policy(ref: str | None, default_type: str) -> Plugin:
                name = ref or default_type
                found = plugins.get(name)
                if found is not None:
                    return found
                plugin, _ = build_plugin(name, name, None, handle, where="flowControl: ")
                plugins[name] = plugin
                return plugin

            usage: Any = policy(fc.usage_limit_policy_plugin_ref, "static-usage-limit-policy")
            if not isinstance(usage, StaticUsageLimitPolicy):
                raise ConfigError(f"flowControl.usageLimitPolicyPluginRef: {usage.name!r} is not a usage-limit policy")
            flow = FlowController(fc, detector, policy, handle.clock, usage)
        return cls(detector, flow)

    def admit(self, request: LLMRequest, candidates: list[Endpoint]) -> Admitted | Rejected | Ticket:
        if self.flow is None:
            if is_sheddable(request.priority) and self.detector.saturation(candidates) >= 1.0:
                return Rejected(429, "system saturated, sheddable request dropped", "saturated")
            return Admitted()
        ticket = self.flow.enqueue(request)
        if not ticket.done:
            self.flow.pump(candidates)
        return ticket

    def pump(self, candidates: list[Endpoint]) -> list[Ticket]:
        return self.flow.pump(candidates) if self.flow is not None else []

    def cancel(self, ticket: Ticket) -> None:
        if self.flow is not None:
            self.flow.cancel(ticket)
