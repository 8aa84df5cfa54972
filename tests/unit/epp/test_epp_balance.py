"""inferplane's own balance plugins: `load-imbalance-filter` and `inflight-load-scorer` against their formulas, and
the `prefix-balanced` bench configuration that combines them with prefix affinity."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferplane.bench.compare import SCHEDULERS_DIR
from inferplane.epp.framework.types import Endpoint
from inferplane.epp.scheduling import CycleState, Scheduler
from inferplane.epp.scheduling.plugins.balance import overloaded
from inferplane.errors import ConfigError

from .helpers import endpoint, one_scorer, raw_scores, request, scheduler


def loaded(*counts: int) -> list[Endpoint]:
    eps = [endpoint(i + 1) for i in range(len(counts))]
    for e, n in zip(eps, counts, strict=True):
        e.in_flight_requests = n
    return eps


def filter_config(params: dict[str, object] | None = None) -> dict[str, object]:
    plugin: dict[str, object] = {"type": "load-imbalance-filter"}
    if params is not None:
        plugin["parameters"] = params
    return {
        "plugins": [plugin, {"type": "max-score-picker"}],
        "schedulingProfiles": [
            {"name": "default", "plugins": [{"pluginRef": "load-imbalance-filter"}, {"pluginRef": "max-score-picker"}]}
        ],
    }


def run_filter(eps: list[Endpoint], params: dict[str, object] | None = None) -> list[Endpoint]:
    s = scheduler(filter_config(params))
    f = next(iter(s.profiles.values())).filters[0]
    return f.filter(CycleState(), request(), eps)


# ---- load-imbalance-filter ------------------------------------------------------------------------------------


def test_filter_drops_endpoints_over_both_margins() -> None:
    eps = loaded(10, 30, 19, 15)
    # least 10: 30 is 20 over (> 8) and 3x (> 1.5x) → out; 19 is 9 over and 1.9x → out; 15 is 5 over → stays
    assert run_filter(eps, {"absThreshold": 8, "relThreshold": 1.5}) == [eps[0], eps[3]]


def test_filter_needs_both_margins() -> None:
    # 100 vs 80: 20 over (> 8) but only 1.25x (≤ 1.5x) → stays
    eps = loaded(80, 100)
    assert run_filter(eps) == eps
    # 9 vs 0: 9 over (> 8) and above 0 × 1.5 → out; 8 vs 0 is not over the absolute margin → stays
    assert [e.in_flight_requests for e in run_filter(loaded(0, 9))] == [0]
    assert len(run_filter(loaded(0, 8))) == 2


def test_filter_margins_are_strict() -> None:
    # exactly abs over and exactly rel times: not overloaded (sglang's `>` tests)
    eps = loaded(4, 8)
    assert run_filter(eps, {"absThreshold": 4, "relThreshold": 2.0}) == eps
    assert run_filter(loaded(4, 9), {"absThreshold": 4, "relThreshold": 2.0})[0].in_flight_requests == 4


def test_filter_balanced_ties_empty_and_single() -> None:
    eps = loaded(5, 5, 5)
    assert run_filter(eps, {"absThreshold": 0, "relThreshold": 1.0}) == eps
    assert run_filter([]) == []
    one = loaded(1000)
    assert run_filter(one) == one
    # two least-loaded candidates tied: both stay
    tied = loaded(0, 50, 0)
    assert run_filter(tied) == [tied[0], tied[2]]


def test_filter_defaults_and_parameter_errors() -> None:
    eps = loaded(0, 9, 8)
    assert run_filter(eps) == [eps[0], eps[2]]  # defaults: absThreshold 8, relThreshold 1.5
    with pytest.raises(ConfigError, match=r"relThreshold|rel_threshold"):
        scheduler(filter_config({"relThreshold": 0.5}))
    with pytest.raises(ConfigError, match=r"absThreshold|abs_threshold"):
        scheduler(filter_config({"absThreshold": -1}))


@settings(max_examples=200, deadline=None)
@given(
    counts=st.lists(st.integers(0, 200), max_size=12),
    abs_t=st.integers(0, 50),
    rel_t=st.floats(1.0, 4.0, allow_nan=False),
)
def test_filter_property(counts: list[int], abs_t: int, rel_t: float) -> None:
    eps = loaded(*counts)
    kept = run_filter(eps, {"absThreshold": abs_t, "relThreshold": rel_t})
    assert bool(kept) == bool(eps)  # never empties a non-empty list
    assert kept == [e for e in eps if e in kept]  # a subsequence, order kept
    if eps:
        least = min(counts)
        assert all(e in kept for e in eps if e.in_flight_requests == least)
        for e in eps:
            n = e.in_flight_requests
            over = n - least > abs_t and n > least * rel_t
            assert (e not in kept) == over
            assert overloaded(n, least, abs_t, rel_t) == over


# ---- inflight-load-scorer -------------------------------------------------------------------------------------


def test_inflight_scorer_min_max() -> None:
    s = scheduler(one_scorer("inflight-load-scorer"))
    assert raw_scores(s, request(), loaded(2, 6, 10)) == [1.0, 0.5, 0.0]
    assert raw_scores(s, request(), loaded(3, 3)) == [1.0, 1.0]
    assert raw_scores(s, request(), loaded(7)) == [1.0]
    assert raw_scores(s, request(), []) == []


@settings(max_examples=200, deadline=None)
@given(counts=st.lists(st.integers(0, 500), min_size=1, max_size=16))
def test_inflight_scorer_property(counts: list[int]) -> None:
    s = scheduler(one_scorer("inflight-load-scorer"))
    scores = raw_scores(s, request(), loaded(*counts))
    assert all(0.0 <= x <= 1.0 for x in scores)
    assert scores[counts.index(min(counts))] == 1.0
    for i, j in itertools.combinations(range(len(counts)), 2):  # fewer in flight ⇔ higher score
        assert (counts[i] < counts[j]) == (scores[i] > scores[j])
        assert (counts[i] == counts[j]) == (scores[i] == scores[j])


# ---- the prefix-balanced configuration ------------------------------------------------------------------------

PREFIX_BALANCED = (Path(SCHEDULERS_DIR) / "prefix-balanced.yaml").read_text()
GROUP = "You are a helpful assistant for the shipping department. " * 30  # ~1,700 characters


def decide(s: Scheduler, eps: list[Endpoint], prompt: str) -> Endpoint:
    """One decision with the director's accounting: the chosen endpoint's in-flight count goes up."""
    r = request(prompt)
    s.prepare_request_data(r, eps)
    res = s.schedule(r, eps)
    s.pre_request(r, res)
    s.flush_deferred()
    chosen: Endpoint = res.primary.target_endpoints[0]
    chosen.in_flight_requests += 1
    return chosen


def test_prefix_balanced_keeps_affinity_until_the_imbalance_threshold() -> None:
    s = scheduler(PREFIX_BALANCED)
    eps = loaded(0, 0, 0)
    home = decide(s, eps, GROUP + "question 0")
    others = [e for e in eps if e is not home]
    # the group sticks to its replica while it is at most 8 requests ahead of the least loaded
    for i in range(1, 9):
        assert decide(s, eps, GROUP + f"question {i}") is home
    assert [e.in_flight_requests for e in eps] == [9 if e is home else 0 for e in eps]
    # 9 ahead and above 1.5x: the next request of the group spills to a least-loaded replica...
    spill = decide(s, eps, GROUP + "question 9")
    assert spill in others
    # ...which now holds the prefix too: the group keeps to those two (the least loaded of them) while the
    # third replica, idle, takes a prompt of its own
    third = next(e for e in others if e is not spill)
    assert decide(s, eps, GROUP + "question 10") is spill
    assert decide(s, eps, "An unrelated prompt about gardening and tomatoes. " * 30) is third


@settings(max_examples=100, deadline=None)
@given(
    counts=st.lists(st.integers(0, 60), min_size=2, max_size=6),
    warm=st.integers(0, 5),
    group=st.integers(0, 3),
)
def test_prefix_balanced_never_picks_an_overloaded_replica(counts: list[int], warm: int, group: int) -> None:
    """Whatever the prefix index holds, the chosen replica is never over both margins of the least loaded."""
    s = scheduler(PREFIX_BALANCED)
    eps = loaded(*counts)
    for j in range(warm):  # teach the index some groups, without counting them as in flight
        r = request(f"group {j % 4} " * 200)
        s.prepare_request_data(r, eps)
        s.pre_request(r, s.schedule(r, eps))
        s.flush_deferred()
    before = [e.in_flight_requests for e in eps]
    chosen = decide(s, eps, f"group {group} " * 200 + "tail")
    assert not overloaded(chosen.in_flight_requests - 1, min(before), 8, 1.5)
