"""Profile handlers and the P/D header handlers (GIE `single-profile-handler`; llm-d `pd-profile-handler`,
`prefill-header-handler`, and the v0.8 `disagg-profile-handler` with `prefix-based-pd-decider` and
`disagg-headers-handler`), reference/epp.md §3.3–3.4."""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import Field

from inferplane.epp.framework.interfaces import (
    CycleState,
    NoEndpointsAvailable,
    ProfileHandler,
    RequestHooks,
    RequestState,
    SchedulerProfile,
)
from inferplane.epp.framework.registry import Plugin, PluginParams, register
from inferplane.epp.framework.types import Endpoint, EndpointKey, LLMRequest, ProfileRunResult, SchedulingResult
from inferplane.epp.scheduling.plugins.prefix import AVERAGE_CHARACTERS_PER_TOKEN, STATE_KEY, PrefixMatchInfo

PREFILLER_HEADER = "x-prefiller-host-port"
DATA_PARALLEL_HEADER = "x-data-parallel-host-port"


def _done(results: dict[str, ProfileRunResult | None]) -> dict[str, ProfileRunResult]:
    return {k: v for k, v in results.items() if v is not None}


@register("single-profile-handler", "profile-handler", needs_body=False)
class SingleProfileHandler(ProfileHandler):
    """Runs the one profile; its result is the primary."""

    def pick_profiles(
        self,
        cycle: CycleState,
        request: LLMRequest,
        profiles: dict[str, SchedulerProfile],
        results: dict[str, ProfileRunResult | None],
    ) -> list[SchedulerProfile]:
        return [] if results else list(profiles.values())

    def process_results(
        self, cycle: CycleState, request: LLMRequest, results: dict[str, ProfileRunResult | None]
    ) -> SchedulingResult:
        (name, res), *_ = results.items()
        if res is None:
            raise NoEndpointsAvailable(f"no endpoints available for profile {name!r}")
        return SchedulingResult(profile_results={name: res}, primary_profile_name=name)


def _prompt_len(request: LLMRequest, state: RequestState) -> int:
    info: PrefixMatchInfo | None = state.data.get(STATE_KEY)
    if info is not None:
        return info.input_len
    return len(request.body.prompt_text()) if request.body is not None else 0


def _matched_blocks(state: RequestState, endpoint: Endpoint) -> tuple[int, int]:
    """(matched blocks, block size in characters) of the prefix producer for one endpoint."""
    info: PrefixMatchInfo | None = state.data.get(STATE_KEY)
    if info is None:
        return 0, 0
    return info.matches.get(endpoint.hostport, 0), info.block_chars


class PDParams(PluginParams):
    threshold: int = Field(default=0, ge=0)
    hash_block_size: int = Field(default=64, gt=0, alias="hashBlockSize")
    decode_profile: str = Field(default="decode", alias="decodeProfile")
    prefill_profile: str = Field(default="prefill", alias="prefillProfile")
    prefix_plugin_name: str = Field(default="prefix-cache-scorer", alias="prefixPluginName")
    primary_port: int = Field(default=0, ge=0, le=65535, alias="primaryPort")


class _DisaggBase(ProfileHandler, RequestHooks):
    """Shared flow: run decode, decide, maybe run prefill; decode is primary. Counts decisions for the
    `..._pd_decision_total{decision_type}` metric."""

    decode_profile = "decode"
    prefill_profile = "prefill"
    primary_port = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.decisions = {"decode-only": 0, "prefill-decode": 0}

    def wants_prefill(self, request: LLMRequest, decode_pick: Endpoint, state: RequestState) -> bool:
        return True

    def pick_profiles(
        self,
        cycle: CycleState,
        request: LLMRequest,
        profiles: dict[str, SchedulerProfile],
        results: dict[str, ProfileRunResult | None],
    ) -> list[SchedulerProfile]:
        if self.decode_profile not in results:
            return [profiles[self.decode_profile]]
        if self.prefill_profile in results or "_decided" in cycle:
            return []
        cycle["_decided"] = True
        decode = results[self.decode_profile]
        if decode is None:
            return []
        if self.prefill_profile in profiles and self.wants_prefill(
            request, decode.target_endpoints[0], cycle["request_state"]
        ):
            self.decisions["prefill-decode"] += 1
            return [profiles[self.prefill_profile]]
        self.decisions["decode-only"] += 1
        return []

    def process_results(
        self, cycle: CycleState, request: LLMRequest, results: dict[str, ProfileRunResult | None]
    ) -> SchedulingResult:
        done = _done(results)
        decode = done.get(self.decode_profile)
        if decode is None:
            raise NoEndpointsAvailable(f"no endpoints available for profile {self.decode_profile!r}")
        if self.primary_port:
            # Route to the rank-0 port; the chosen rank travels in x-data-parallel-host-port (set in PreRequest).
            cycle["request_state"].data["data-parallel-host-port"] = decode.target_endpoints[0].hostport
            decode = dataclasses.replace(
                decode,
                target_endpoints=[
                    dataclasses.replace(e, key=EndpointKey(e.key.address, self.primary_port))
                    for e in decode.target_endpoints
                ],
            )
            done[self.decode_profile] = decode
        return SchedulingResult(profile_results=done, primary_profile_name=self.decode_profile)

    def pre_request(
        self, request: LLMRequest, result: SchedulingResult, state: RequestState
    ) -> dict[str, str | None] | None:
        if not self.primary_port:
            return None
        return {DATA_PARALLEL_HEADER: state.data.get("data-parallel-host-port")}


@register("pd-profile-handler", "profile-handler", PDParams)
class PDProfileHandler(_DisaggBase):
    """llm-d v0.4: decode first; with `threshold` > 0 skip prefill when the uncached part of the prompt is short:
    `hit = max(matched − 1, 0) · hashBlockSize / len(prompt)`, decode only if `(1 − hit) · len(prompt) < threshold`."""

    params: PDParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.decode_profile = self.params.decode_profile
        self.prefill_profile = self.params.prefill_profile
        self.primary_port = self.params.primary_port

    def wants_prefill(self, request: LLMRequest, decode_pick: Endpoint, state: RequestState) -> bool:
        threshold = self.params.threshold
        if threshold <= 0:
            return True
        n = _prompt_len(request, state)
        if n == 0:
            return False
        matched, _ = _matched_blocks(state, decode_pick)
        hit = max(matched - 1, 0) * self.params.hash_block_size / n
        return (1.0 - hit) * n >= threshold


class PrefixPDDeciderParams(PluginParams):
    non_cached_tokens: int = Field(default=0, ge=0, alias="nonCachedTokens")


@register("prefix-based-pd-decider", "pd-decider", PrefixPDDeciderParams)
class PrefixBasedPDDecider(Plugin):
    """llm-d v0.8: prefill runs when the tokens the decode endpoint has not cached reach `nonCachedTokens`."""

    producer_type = "approx-prefix-cache-producer"
    params: PrefixPDDeciderParams

    def decide(self, request: LLMRequest, decode_pick: Endpoint, state: RequestState) -> bool:
        matched, block_chars = _matched_blocks(state, decode_pick)
        n = _prompt_len(request, state)
        uncached_tokens = max(n - matched * block_chars, 0) / AVERAGE_CHARACTERS_PER_TOKEN
        return uncached_tokens >= self.params.non_cached_tokens


class DisaggParams(PluginParams):
    deciders: dict[str, str] = Field(default_factory=dict)
    decode_profile: str = Field(default="decode", alias="decodeProfile")
    prefill_profile: str = Field(default="prefill", alias="prefillProfile")
    primary_port: int = Field(default=0, ge=0, le=65535, alias="primaryPort")


@register("disagg-profile-handler", "profile-handler", DisaggParams)
class DisaggProfileHandler(_DisaggBase):
    """llm-d v0.8: decode first, then prefill when the configured decider says so (always, without one)."""

    params: DisaggParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.decode_profile = self.params.decode_profile
        self.prefill_profile = self.params.prefill_profile
        self.primary_port = self.params.primary_port

    def wants_prefill(self, request: LLMRequest, decode_pick: Endpoint, state: RequestState) -> bool:
        name = self.params.deciders.get("prefill")
        if not name:
            return True
        decider = self.handle.plugins[name]
        return bool(decider.decide(request, decode_pick, state))


class DataParallelParams(PluginParams):
    primary_port: int = Field(default=0, ge=0, le=65535, alias="primaryPort")


@register("data-parallel-profile-handler", "profile-handler", DataParallelParams)
class DataParallelProfileHandler(SingleProfileHandler, RequestHooks):
    """llm-d: one profile whose pick is a data-parallel rank; the request goes to the pod's `primaryPort` (rank 0,
    which forwards) and `x-data-parallel-host-port` names the chosen rank."""

    params: DataParallelParams

    def process_results(
        self, cycle: CycleState, request: LLMRequest, results: dict[str, ProfileRunResult | None]
    ) -> SchedulingResult:
        result = super().process_results(cycle, request, results)
        port = self.params.primary_port
        if not port:
            return result
        name = result.primary_profile_name
        res = result.primary
        cycle["request_state"].data["data-parallel-host-port"] = res.target_endpoints[0].hostport
        moved = [dataclasses.replace(e, key=EndpointKey(e.key.address, port)) for e in res.target_endpoints]
        return SchedulingResult({name: dataclasses.replace(res, target_endpoints=moved)}, name)

    def pre_request(
        self, request: LLMRequest, result: SchedulingResult, state: RequestState
    ) -> dict[str, str | None] | None:
        if not self.params.primary_port:
            return None
        return {DATA_PARALLEL_HEADER: state.data.get("data-parallel-host-port")}


class PrefillHeaderParams(PluginParams):
    prefill_profile: str = Field(default="prefill", alias="prefillProfile")


@register("prefill-header-handler", "producer", PrefillHeaderParams)
class PrefillHeaderHandler(RequestHooks):
    """PreRequest: `x-prefiller-host-port: <ip>:<port>` of the prefill pick; removed when no prefill ran (so a
    client-supplied value never reaches the decoder)."""

    params: PrefillHeaderParams

    def pre_request(
        self, request: LLMRequest, result: SchedulingResult, state: RequestState
    ) -> dict[str, str | None] | None:
        res = result.profile_results.get(self.params.prefill_profile)
        if res is None or not res.target_endpoints:
            return {PREFILLER_HEADER: None}
        return {PREFILLER_HEADER: res.target_endpoints[0].hostport}


@register("disagg-headers-handler", "producer", PrefillHeaderParams)
class DisaggHeadersHandler(PrefillHeaderHandler):
    """llm-d v0.8 name of the prefill header handler."""
