"""The framework: profiles → filters → weighted scorers → picker, hooks, state, observer; pickers and filters."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from inferplane.epp.scheduling import NoEndpointsAvailable

from .helpers import endpoint, one_scorer, request, scheduler

TWO_SCORERS = """
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: max-score-picker
  parameters: {maxNumOfEndpoints: %d}
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer, weight: %s}
  - {pluginRef: kv-cache-utilization-scorer, weight: %s}
  - {pluginRef: max-score-picker}
"""


def test_weighted_totals_are_not_normalised() -> None:
    s = scheduler(TWO_SCORERS % (1, 2, 3))
    eps = [endpoint(1, queue=0, kv=0.5), endpoint(2, queue=10, kv=0.0)]
    res = s.schedule(request(), eps)
    assert res.primary.scores == {"10.0.0.1:8000": pytest.approx(2 * 1.0 + 3 * 0.5), "10.0.0.2:8000": 3.0}
    assert res.primary.target_endpoints == [eps[0]]
    assert res.destination_header() == "10.0.0.1:8000"


def test_scores_are_clamped_before_weighting() -> None:
    # KV usage above 1 (a misbehaving server) would give a negative score: it counts as 0.
    s = scheduler(one_scorer("kv-cache-utilization-scorer"))
    res = s.schedule(request(), [endpoint(1, kv=1.7), endpoint(2, kv=-0.5)])
    assert res.primary.scores == {"10.0.0.1:8000": 0.0, "10.0.0.2:8000": 1.0}


def test_max_num_of_endpoints_gives_primary_and_fallbacks() -> None:
    s = scheduler(TWO_SCORERS % (3, 1, 1))
    eps = [endpoint(1, queue=9), endpoint(2, queue=0), endpoint(3, queue=3), endpoint(4, queue=6)]
    res = s.schedule(request(), eps)
    assert [e.key.address for e in res.primary.target_endpoints] == ["10.0.0.2", "10.0.0.3", "10.0.0.4"]
    assert res.destination_header() == "10.0.0.2:8000,10.0.0.3:8000,10.0.0.4:8000"


def test_empty_candidates_and_filters_that_remove_everything() -> None:
    s = scheduler(
        """
plugins: [{type: prefill-filter}, {type: queue-scorer}]
schedulingProfiles: [{name: default, plugins: [{pluginRef: prefill-filter}, {pluginRef: queue-scorer}]}]
"""
    )
    with pytest.raises(NoEndpointsAvailable, match="no endpoints available"):
        s.schedule(request(), [])
    with pytest.raises(NoEndpointsAvailable) as exc:
        s.schedule(request(), [endpoint(1)])
    assert exc.value.status == 429  # upstream: ResourceExhausted "failed to find target endpoint"


def test_max_score_ties_are_broken_at_random_and_seeded() -> None:
    eps = [endpoint(i) for i in range(1, 5)]
    picks = Counter()
    s = scheduler(one_scorer("queue-scorer"), seed=7)
    for _ in range(400):
        picks[s.schedule(request(), eps).primary.target_endpoints[0].hostport] += 1
    assert set(picks) == {e.hostport for e in eps}
    assert min(picks.values()) > 60
    again = scheduler(one_scorer("queue-scorer"), seed=7)
    first = [again.schedule(request(), eps).primary.target_endpoints[0].hostport for _ in range(20)]
    third = scheduler(one_scorer("queue-scorer"), seed=7)
    assert first == [third.schedule(request(), eps).primary.target_endpoints[0].hostport for _ in range(20)]


def test_random_picker_ignores_scores() -> None:
    s = scheduler(one_scorer("queue-scorer", picker="random-picker"), seed=1)
    eps = [endpoint(1, queue=0), endpoint(2, queue=100)]
    picks = Counter(s.schedule(request(), eps).primary.target_endpoints[0].hostport for _ in range(200))
    assert picks["10.0.0.2:8000"] > 60


def test_weighted_random_picker_is_proportional() -> None:
    s = scheduler(one_scorer("kv-cache-utilization-scorer", picker="weighted-random-picker"), seed=3)
    eps = [endpoint(1, kv=0.2), endpoint(2, kv=0.8), endpoint(3, kv=1.0)]  # scores 0.8, 0.2, 0
    picks = Counter(s.schedule(request(), eps).primary.target_endpoints[0].hostport for _ in range(2000))
    assert picks["10.0.0.3:8000"] == 0
    assert 0.75 < picks["10.0.0.1:8000"] / 2000 < 0.85
    # Every score 0 → uniform.
    zero = [endpoint(1, kv=1.0), endpoint(2, kv=1.0)]
    picks = Counter(s.schedule(request(), zero).primary.target_endpoints[0].hostport for _ in range(400))
    assert min(picks.values()) > 150


def test_round_robin_picker_cycles() -> None:
    s = scheduler(one_scorer("queue-scorer", picker="round-robin-picker"))
    eps = [endpoint(3), endpoint(1), endpoint(2)]
    got = [s.schedule(request(), eps).primary.target_endpoints[0].key.address for _ in range(6)]
    assert got == ["10.0.0.1", "10.0.0.2", "10.0.0.3"] * 2


def yaml_float(x: float) -> str:
    """A float as YAML 1.1 reads it back as a float: PyYAML takes `1e-05` for a string, `1.0e-05` for a number."""
    return yaml.safe_dump(float(x)).splitlines()[0]


@settings(max_examples=60, deadline=None)
@given(
    queues=st.lists(st.integers(0, 50), min_size=1, max_size=12),
    kvs=st.lists(st.floats(0, 1), min_size=12, max_size=12),
    n=st.integers(1, 5),
    w1=st.floats(0, 10),
    w2=st.floats(0, 10),
    seed=st.integers(0, 1000),
)
def test_scheduler_properties(queues: list[int], kvs: list[float], n: int, w1: float, w2: float, seed: int) -> None:
    eps = [endpoint(i, queue=q, kv=kvs[i]) for i, q in enumerate(queues)]
    s = scheduler(TWO_SCORERS % (n, yaml_float(w1), yaml_float(w2)), seed=seed)
    res = s.schedule(request(), eps)
    picked = res.primary.target_endpoints
    assert all(any(p is e for e in eps) for p in picked)
    assert len(picked) == min(n, len(eps))
    assert len({p.hostport for p in picked}) == len(picked)
    # The picks are the best totals, and totals are linear in the weights.
    best = sorted(res.primary.scores.values(), reverse=True)
    assert [res.primary.scores[p.hostport] for p in picked] == pytest.approx(best[: len(picked)])
    doubled = scheduler(TWO_SCORERS % (n, yaml_float(2 * w1), yaml_float(2 * w2)), seed=seed).schedule(request(), eps)
    for hp, total in res.primary.scores.items():
        assert doubled.primary.scores[hp] == pytest.approx(2 * total)


def test_observer_receives_plugin_durations() -> None:
    calls = []

    class Obs:
        def plugin_duration(self, point: str, type_: str, name: str, seconds: float) -> None:
            calls.append((point, type_, name))
            assert seconds >= 0

    from inferplane.api.epp_config import default_epp_config
    from inferplane.epp.scheduling import build_scheduler

    s = build_scheduler(default_epp_config(), rng=random.Random(0), observer=Obs())
    r = request("z" * 300)
    res = s.schedule(r, [endpoint(1), endpoint(2)])
    s.pre_request(r, res)
    points = {c[0] for c in calls}
    assert {"ProfilePicker", "Scorer", "Picker", "ProcessProfilesResults", "PrepareData", "PreRequest"} <= points
    assert ("Scorer", "prefix-cache-scorer", "prefix-cache-scorer") in calls


def test_plugin_state_spans_the_request_and_ends_with_it() -> None:
    s = scheduler(one_scorer("prefix-cache-scorer"))
    r = request("q" * 200)
    eps = [endpoint(1)]
    s.prepare_request_data(r, eps)
    assert "prefix-cache-match-info" in s.state.get(r.request_id).data
    res = s.schedule(r, eps)
    s.pre_request(r, res)
    s.response_complete(r, eps[0])
    assert s.state.peek(r.request_id) is None
    assert len(s.state) == 0


def test_filters() -> None:
    prefill = endpoint(1, labels={"llm-d.ai/role": "prefill"})
    decode = endpoint(2, labels={"llm-d.ai/role": "decode"})
    both = endpoint(3, labels={"llm-d.ai/role": "both"})
    none = endpoint(4, labels={"tier": "gold"})
    eps = [prefill, decode, both, none]

    def run(plugin: dict, headers: dict | None = None) -> list[str]:
        name = plugin.get("name", plugin["type"])
        cfg = {"plugins": [plugin], "schedulingProfiles": [{"name": "p", "plugins": [{"pluginRef": name}]}]}
        s = scheduler(cfg)
        prof = s.profiles["p"]
        from inferplane.epp.scheduling import CycleState

        return [e.name for e in prof.filters[0].filter(CycleState(), request(headers=headers), eps)]

    assert run({"type": "decode-filter"}) == ["pod-2", "pod-3", "pod-4"]
    assert run({"type": "prefill-filter"}) == ["pod-1"]
    label = {"label": "llm-d.ai/role", "validValues": ["decode"]}
    assert run({"type": "by-label", "parameters": label}) == ["pod-2"]
    assert run({"type": "by-label", "parameters": {**label, "allowsNoLabel": True}}) == ["pod-2", "pod-4"]
    assert run({"type": "label-selector-filter", "parameters": {"matchLabels": {"tier": "gold"}}}) == ["pod-4"]
    expr = {"matchExpressions": [{"key": "llm-d.ai/role", "operator": "In", "values": ["prefill", "both"]}]}
    assert run({"type": "label-selector-filter", "parameters": expr}) == ["pod-1", "pod-3"]
    assert run({"type": "by-label-selector", "parameters": {"matchLabels": {"tier": "gold"}}}) == ["pod-4"]
    hdr = {"test-epp-endpoint-selection": "10.0.0.2:8000, 10.0.0.4"}
    assert run({"type": "header-based-testing-filter"}, hdr) == ["pod-2", "pod-4"]
    assert run({"type": "header-based-testing-filter"}) == ["pod-1", "pod-2", "pod-3", "pod-4"]


def test_subset_via_header_filter_in_a_full_decision() -> None:
    s = scheduler(
        """
plugins: [{type: header-based-testing-filter}, {type: queue-scorer}]
schedulingProfiles: [{name: d, plugins: [{pluginRef: header-based-testing-filter}, {pluginRef: queue-scorer}]}]
"""
    )
    eps = [endpoint(1, queue=0), endpoint(2, queue=9)]
    r = request(headers={"test-epp-endpoint-selection": "10.0.0.2:8000"})
    assert s.schedule(r, eps).primary.target_endpoints == [eps[1]]
    with pytest.raises(NoEndpointsAvailable):
        s.schedule(request(headers={"test-epp-endpoint-selection": "10.9.9.9"}), eps)


def test_abandoned_request_state_expires() -> None:
    from .helpers import FakeClock

    clock = FakeClock()
    s = scheduler(one_scorer("prefix-cache-scorer"), clock=clock)
    lost = request("never completed " * 10)
    s.schedule(lost, [endpoint(1)])  # the director never calls response_complete for it
    clock.advance(301)
    s.schedule(request(), [endpoint(1)])
    assert s.state.peek(lost.request_id) is None


def test_saturation_detector_used_as_a_filter_in_a_profile() -> None:
    from .helpers import FakeClock

    s = scheduler(
        """
plugins: [{type: utilization-detector}, {type: queue-scorer}]
schedulingProfiles: [{name: d, plugins: [{pluginRef: utilization-detector}, {pluginRef: queue-scorer}]}]
""",
        clock=FakeClock(1000.0),
    )
    stale = endpoint(1, queue=0, updated=900.0)
    busy = endpoint(2, queue=6)
    ok = endpoint(3, queue=4)
    assert s.schedule(request(), [stale, busy, ok]).primary.target_endpoints == [ok]
