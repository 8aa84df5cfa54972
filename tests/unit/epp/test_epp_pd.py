"""Prefill/decode disaggregation: pd-profile-handler, prefill-header-handler, the v0.8 disagg handler."""

from __future__ import annotations

import pytest

from inferplane.epp.scheduling import NoEndpointsAvailable

from .helpers import endpoint, request, scheduler

PD = """
plugins:
- type: prefill-header-handler
- type: prefix-cache-scorer
- type: prefill-filter
- type: decode-filter
- type: max-score-picker
- type: pd-profile-handler
  parameters: {threshold: %d, hashBlockSize: 64%s}
schedulingProfiles:
- name: prefill
  plugins: [{pluginRef: prefill-filter}, {pluginRef: max-score-picker}, {pluginRef: prefix-cache-scorer, weight: 2}]
- name: decode
  plugins: [{pluginRef: decode-filter}, {pluginRef: max-score-picker}, {pluginRef: prefix-cache-scorer, weight: 2}]
"""

P = endpoint(1, labels={"llm-d.ai/role": "prefill"})
D = endpoint(2, labels={"llm-d.ai/role": "decode"})


def test_threshold_zero_always_runs_prefill_and_sets_the_header() -> None:
    s = scheduler(PD % (0, ""))
    r = request("hello " * 50, headers={"x-prefiller-host-port": "6.6.6.6:1"})
    res = s.schedule(r, [P, D])
    assert res.primary_profile_name == "decode"
    assert res.primary.target_endpoints == [D]
    assert res.profile_results["prefill"].target_endpoints == [P]
    assert s.pre_request(r, res) == {"x-prefiller-host-port": "10.0.0.1:8000"}
    assert s.handler.decisions == {"decode-only": 0, "prefill-decode": 1}


def test_threshold_skips_prefill_when_the_uncached_part_is_short() -> None:
    s = scheduler(PD % (100, ""))
    prompt = "x" * 640  # 10 blocks of 64 characters
    first = request(prompt)
    res = s.schedule(first, [P, D])
    s.pre_request(first, res)
    assert "prefill" in res.profile_results  # nothing cached: (1 − 0)·640 ≥ 100
    again = request(prompt)
    res = s.schedule(again, [P, D])
    # 10 blocks matched on the decoder: hit = 9·64/640 = 0.9 → 64 uncached characters < 100.
    assert "prefill" not in res.profile_results
    assert s.pre_request(again, res) == {"x-prefiller-host-port": None}
    assert s.handler.decisions == {"decode-only": 1, "prefill-decode": 1}


def test_no_prefill_endpoints_means_decode_only_and_no_decoders_is_an_error() -> None:
    s = scheduler(PD % (0, ""))
    res = s.schedule(request("hi " * 40), [D])
    assert "prefill" not in res.profile_results
    assert res.primary.target_endpoints == [D]
    with pytest.raises(NoEndpointsAvailable):
        s.schedule(request("hi"), [P])


def test_primary_port_routes_to_rank_zero_and_names_the_rank() -> None:
    s = scheduler(PD % (0, ", primaryPort: 8000"))
    rank = endpoint(2, labels={"llm-d.ai/role": "decode"})
    rank.key = type(rank.key)("10.0.0.2", 8003)
    r = request("hello " * 20)
    res = s.schedule(r, [P, rank])
    assert res.destination_header() == "10.0.0.2:8000"
    headers = s.pre_request(r, res)
    assert headers["x-data-parallel-host-port"] == "10.0.0.2:8003"


V08 = """
apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: prefix-cache-scorer
- type: prefill-filter
- type: decode-filter
- type: max-score-picker
- type: disagg-headers-handler
- type: prefix-based-pd-decider
  parameters: {nonCachedTokens: 16}
- type: disagg-profile-handler
  parameters: {deciders: {prefill: prefix-based-pd-decider}}
schedulingProfiles:
- name: prefill
  plugins: [{pluginRef: prefill-filter}, {pluginRef: max-score-picker}, {pluginRef: prefix-cache-scorer, weight: 2}]
- name: decode
  plugins: [{pluginRef: decode-filter}, {pluginRef: max-score-picker}, {pluginRef: prefix-cache-scorer, weight: 2}]
"""


def test_v08_prefix_based_decider() -> None:
    s = scheduler(V08)
    short = request("tiny prompt")  # 11 characters ≈ 3 tokens < 16
    res = s.schedule(short, [P, D])
    assert "prefill" not in res.profile_results
    long = request("y" * 400)  # 100 tokens uncached
    res = s.schedule(long, [P, D])
    s.pre_request(long, res)
    assert res.profile_results["prefill"].target_endpoints == [P]
    res = s.schedule(request("y" * 400), [P, D])  # now cached on the decoder
    assert "prefill" not in res.profile_results


def test_data_parallel_profile_handler() -> None:
    s = scheduler(
        """
plugins:
- {type: queue-scorer}
- {type: data-parallel-profile-handler, parameters: {primaryPort: 8000}}
schedulingProfiles: [{name: default, plugins: [{pluginRef: queue-scorer}]}]
"""
    )
    rank = endpoint(5)
    rank.key = type(rank.key)("10.0.0.5", 8002)
    r = request()
    res = s.schedule(r, [rank])
    assert res.destination_header() == "10.0.0.5:8000"
    assert s.pre_request(r, res) == {"x-data-parallel-host-port": "10.0.0.5:8002"}


def test_served_endpoint_verifier_header() -> None:
    s = scheduler(
        {
            "plugins": [{"type": "queue-scorer"}, {"type": "destination-endpoint-served-verifier"}],
            "schedulingProfiles": [{"name": "d", "plugins": [{"pluginRef": "queue-scorer"}]}],
        }
    )
    served = endpoint(3)
    assert s.response_received(request(), served) == {"x-conformance-test-served-endpoint": "10.0.0.3:8000"}
