"""The scheduler: runs profiles chosen by the profile handler, and the request-control hooks around a decision."""

from __future__ import annotations

import random
from collections.abc import Callable
from time import perf_counter

from inferplane.epp.framework.capabilities import Flushable
from inferplane.epp.framework.interfaces import (
    CycleState,
    NoEndpointsAvailable,
    Observer,
    PluginState,
    ProfileHandler,
    RequestHooks,
    SchedulerProfile,
    SchedulingError,
    Usage,
)
from inferplane.epp.framework.registry import Plugin, PluginHandle
from inferplane.epp.framework.types import (
    Endpoint,
    LLMRequest,
    ProfileRunResult,
    SchedulingResult,
    ScoredEndpoint,
)


class Scheduler:
    """One per EPP (one per InferencePool). Not thread-safe: the EPP calls it from its event loop."""

    def __init__(
        self,
        *,
        handler: ProfileHandler,
        profiles: dict[str, SchedulerProfile],
        plugins: dict[str, Plugin],
        clock: Callable[[], float],
        observer: Observer | None = None,
        warnings: list[str] | None = None,
        handle: PluginHandle | None = None,
    ) -> None:
        self.handler = handler
        self.profiles = profiles
        self.plugins = plugins
        self.observer = observer
        self.handle = handle or PluginHandle(rng=random.Random(), clock=clock, plugins=plugins)
        self.warnings = list(warnings or [])
        self.state = PluginState(clock)
        hooks = [p for p in plugins.values() if isinstance(p, RequestHooks)]
        # Only the hooks a plugin overrides run, so the hot path skips the no-op defaults.
        base = RequestHooks
        self._prepare = [p for p in hooks if type(p).prepare_request_data is not base.prepare_request_data]
        self._pre = [p for p in hooks if type(p).pre_request is not base.pre_request]
        self._received = [p for p in hooks if type(p).response_received is not base.response_received]
        self._streaming = [p for p in hooks if type(p).response_streaming is not base.response_streaming]
        self._complete = [p for p in hooks if type(p).response_complete is not base.response_complete]
        self._deferred = [p for p in plugins.values() if isinstance(p, Flushable) and isinstance(p, Plugin)]

    # ---- the decision -------------------------------------------------------------------------------------

    def prepare_request_data(self, request: LLMRequest, candidates: list[Endpoint]) -> None:
        """PrepareData plugins (e.g. the prefix producer hashes the prompt and matches it against its index)."""
        st = self.state.get(request.request_id)
        obs = self.observer
        for p in self._prepare:
            if obs is None:
                p.prepare_request_data(request, candidates, st)
            else:
                t0 = perf_counter()
                p.prepare_request_data(request, candidates, st)
                obs.plugin_duration("PrepareData", p.type_name, p.name, perf_counter() - t0)
        st.prepared = True

    def schedule(self, request: LLMRequest, candidates: list[Endpoint]) -> SchedulingResult:
        """Choose endpoints for a request. Raises `NoEndpointsAvailable` (503) when no profile finds any."""
        if not candidates:
            raise NoEndpointsAvailable("no endpoints available: the pool has no candidate endpoints")
        st = self.state.get(request.request_id)
        if not st.prepared:
            self.prepare_request_data(request, candidates)
        cycle = CycleState(request_state=st)
        results: dict[str, ProfileRunResult | None] = {}
        obs = self.observer
        while True:
            t0 = perf_counter()
            todo = self.handler.pick_profiles(cycle, request, self.profiles, results)
            if obs is not None:
                obs.plugin_duration("ProfilePicker", self.handler.type_name, self.handler.name, perf_counter() - t0)
            if not todo:
                break
            for profile in todo:
                try:
                    results[profile.name] = self.run_profile(profile, cycle, request, candidates)
                except NoEndpointsAvailable:
                    results[profile.name] = None
        t0 = perf_counter()
        result = self.handler.process_results(cycle, request, results)
        if obs is not None:
            obs.plugin_duration(
                "ProcessProfilesResults", self.handler.type_name, self.handler.name, perf_counter() - t0
            )
        st.result = result
        return result

    def run_profile(
        self, profile: SchedulerProfile, cycle: CycleState, request: LLMRequest, candidates: list[Endpoint]
    ) -> ProfileRunResult:
        obs = self.observer
        endpoints = candidates
        for f in profile.filters:
            if obs is None:
                endpoints = f.filter(cycle, request, endpoints)
            else:
                t0 = perf_counter()
                endpoints = f.filter(cycle, request, endpoints)
                obs.plugin_duration("Filter", f.type_name, f.name, perf_counter() - t0)
            if not endpoints:
                raise NoEndpointsAvailable(f"no endpoints available: filter {f.name!r} of profile {profile.name!r}")
        n = len(endpoints)
        totals = [0.0] * n
        for scorer, weight in profile.scorers:
            if obs is None:
                scores = scorer.score(cycle, request, endpoints)
            else:
                t0 = perf_counter()
                scores = scorer.score(cycle, request, endpoints)
                obs.plugin_duration("Scorer", scorer.type_name, scorer.name, perf_counter() - t0)
            # Clamp to [0, 1] before weighting, as the upstream framework does; weights are not normalised.
            totals = [
                t + weight * (0.0 if v < 0.0 else 1.0 if v > 1.0 else v) for t, v in zip(totals, scores, strict=True)
            ]
        scored = [ScoredEndpoint(e, t) for e, t in zip(endpoints, totals, strict=True)]
        picker = profile.picker
        if picker is None:
            raise SchedulingError(f"profile {profile.name!r} has no picker")
        if obs is None:
            picked = picker.pick(cycle, request, scored)
        else:
            t0 = perf_counter()
            picked = picker.pick(cycle, request, scored)
            obs.plugin_duration("Picker", picker.type_name, picker.name, perf_counter() - t0)
        if not picked:
            raise NoEndpointsAvailable(f"no endpoints available: picker of profile {profile.name!r} chose none")
        return ProfileRunResult(
            target_endpoints=picked, scores=dict(zip(cycle.hostports(endpoints), totals, strict=True))
        )

    # ---- request-control hooks around the decision --------------------------------------------------------

    def pre_request(self, request: LLMRequest, result: SchedulingResult) -> dict[str, str | None]:
        """PreRequest plugins; returns request headers to set on the upstream request (None = remove)."""
        st = self.state.get(request.request_id)
        st.result = result
        headers: dict[str, str | None] = {}
        obs = self.observer
        for p in self._pre:
            t0 = perf_counter()
            out = p.pre_request(request, result, st)
            if obs is not None:
                obs.plugin_duration("PreRequest", p.type_name, p.name, perf_counter() - t0)
            if out:
                headers.update(out)
        return headers

    def flush_deferred(self) -> None:
        """Work that PreRequest plugins left for after the decision (the prefix index update). Call it once the
        response to the proxy is sent (e.g. `loop.call_soon`); otherwise it runs at the next PrepareData."""
        obs = self.observer
        for p in self._deferred:
            t0 = perf_counter()
            p.flush()
            if obs is not None:
                obs.plugin_duration("PreRequest", p.type_name, p.name, perf_counter() - t0)

    def response_received(self, request: LLMRequest, endpoint: Endpoint | None) -> dict[str, str]:
        """Response headers arrived from `endpoint`; returns response headers to add."""
        st = self.state.get(request.request_id)
        headers: dict[str, str] = {}
        for p in self._received:
            t0 = perf_counter()
            out = p.response_received(request, endpoint, st)
            if self.observer is not None:
                self.observer.plugin_duration("ResponseReceived", p.type_name, p.name, perf_counter() - t0)
            if out:
                headers.update(out)
        return headers

    def response_streaming(self, request: LLMRequest, endpoint: Endpoint | None, usage: Usage | None = None) -> None:
        st = self.state.get(request.request_id)
        for p in self._streaming:
            t0 = perf_counter()
            p.response_streaming(request, endpoint, usage, st)
            if self.observer is not None:
                self.observer.plugin_duration("ResponseStreaming", p.type_name, p.name, perf_counter() - t0)

    def response_complete(self, request: LLMRequest, endpoint: Endpoint | None, usage: Usage | None = None) -> None:
        """The response ended (complete, cancelled or failed): plugins release what they hold for the request."""
        st = self.state.peek(request.request_id)
        if st is not None:
            for p in self._complete:
                t0 = perf_counter()
                p.response_complete(request, endpoint, usage, st)
                if self.observer is not None:
                    self.observer.plugin_duration("ResponseComplete", p.type_name, p.name, perf_counter() - t0)
        self.state.delete(request.request_id)

    def plugin(self, name: str) -> Plugin:
        return self.plugins[name]
