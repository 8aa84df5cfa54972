"""inferplane's own `predicted-ttft-scorer`: the cost arithmetic, the accounting it keeps from the request hooks, the
decisions of the `predicted-ttft` bench configuration, and properties of its scores."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferplane.bench.compare import SCHEDULERS_DIR
from inferplane.epp.framework.interfaces import Usage
from inferplane.epp.framework.types import Endpoint, LLMRequest
from inferplane.epp.scheduling import CycleState, Scheduler
from inferplane.epp.scheduling.plugins.cost import (
    CostTerms,
    PredictedTTFTParams,
    PredictedTTFTScorer,
    predicted_cost,
    relative_scores,
)
from inferplane.errors import ConfigError

from .helpers import FakeClock, endpoint, one_scorer, raw_scores, request, scheduler

GROUP_A = "You are the shipping department's assistant; answer in one line. " * 32  # 2,112 characters
GROUP_B = "An assistant for gardeners: tomatoes, beans, soil and the weather. " * 32
PREDICTED_TTFT = (Path(SCHEDULERS_DIR) / "predicted-ttft.yaml").read_text()


def params(**kw: Any) -> PredictedTTFTParams:
    return PredictedTTFTParams.model_validate(kw)


def scorer_of(s: Scheduler) -> PredictedTTFTScorer:
    plugin = s.plugin("predicted-ttft-scorer")
    assert isinstance(plugin, PredictedTTFTScorer)
    return plugin


def eps3() -> list[Endpoint]:
    return [endpoint(i + 1) for i in range(3)]


def decide(s: Scheduler, eps: list[Endpoint], prompt: str) -> tuple[LLMRequest, Endpoint]:
    r = request(prompt)
    s.prepare_request_data(r, eps)
    res = s.schedule(r, eps)
    s.pre_request(r, res)
    s.flush_deferred()
    return r, res.primary.target_endpoints[0]


# ---- arithmetic ------------------------------------------------------------------------------------------------


def test_cost_adds_every_term_with_its_weight() -> None:
    t = CostTerms(pending_tokens=1000, uncached_tokens=300, in_flight=10, decoding=6, waiting=2, footprint_tokens=4000)
    p = params(
        baseTokens=400,
        runningRequestTokens=8,
        waitingRequestTokens=300,
        missWeight=4,
        pendingWeight=1,
        footprintWeight=0.5,
    )
    # 400 + 1000 + 4·300 + 8·10 + 300·2 + 0.5·4000 (requests decoding are in flight: no term of their own)
    assert predicted_cost(t, p) == pytest.approx(400 + 1000 + 1200 + 80 + 600 + 2000)
    assert predicted_cost(CostTerms(0, 0, 0, 0, 0), p) == 400  # an idle endpoint holding the whole prompt


def test_relative_scores() -> None:
    assert relative_scores([400.0, 800.0, 1600.0]) == [1.0, 0.5, 0.25]
    assert relative_scores([500.0, 500.0]) == [1.0, 1.0]
    assert relative_scores([]) == []


def test_parameter_errors() -> None:
    with pytest.raises(ConfigError, match=r"baseTokens|base_tokens"):
        scheduler(one_scorer("predicted-ttft-scorer", {"baseTokens": 0}))
    with pytest.raises(ConfigError, match=r"missWeight|miss_weight"):
        scheduler(one_scorer("predicted-ttft-scorer", {"missWeight": -1}))


# ---- terms seen by the scorer ----------------------------------------------------------------------------------


def test_uncached_tokens_follow_the_prefix_index() -> None:
    s = scheduler(one_scorer("predicted-ttft-scorer", {"footprintWeight": 0}))
    eps = eps3()
    _, home = decide(s, eps, GROUP_A + "question one")
    r = request(GROUP_A + "question two")
    s.prepare_request_data(r, eps)
    terms = scorer_of(s).terms(CycleState(request_state=s.state.get(r.request_id)), r, eps)
    prompt = len(GROUP_A + "question two") // 4
    for e, t in zip(eps, terms, strict=True):
        if e is home:
            # the shared blocks are cached; only the tail after the last whole 64-character block is not
            assert 0 < t.uncached_tokens < 16
        else:
            assert t.uncached_tokens == prompt


def test_accounting_pending_then_decoding_then_released() -> None:
    s = scheduler(one_scorer("predicted-ttft-scorer"))
    sc = scorer_of(s)
    eps = eps3()
    r, home = decide(s, eps, GROUP_A)
    hp = home.hostport
    owed = len(GROUP_A) // 4  # cold: the whole prompt
    assert (sc.pending_tokens[hp], sc.in_flight[hp], sc.decoding.get(hp, 0)) == (owed, 1, 0)
    s.response_streaming(r, home, Usage(prompt_tokens=owed, completion_tokens=1))
    assert (sc.pending_tokens[hp], sc.in_flight[hp], sc.decoding[hp]) == (0, 1, 1)
    s.response_streaming(r, home, Usage(prompt_tokens=owed, completion_tokens=2))  # later chunks change nothing
    assert (sc.pending_tokens[hp], sc.in_flight[hp], sc.decoding[hp]) == (0, 1, 1)
    s.response_complete(r, home)
    assert (sc.pending_tokens[hp], sc.in_flight[hp], sc.decoding[hp]) == (0, 0, 0)
    s.response_complete(r, home)  # idempotent
    assert sc.in_flight[hp] == 0


def test_a_request_that_never_streams_releases_its_pending_tokens() -> None:
    s = scheduler(one_scorer("predicted-ttft-scorer"))
    sc = scorer_of(s)
    eps = eps3()
    r, home = decide(s, eps, GROUP_A)
    s.response_complete(r, home)  # an error before the first token
    assert (sc.pending_tokens[home.hostport], sc.in_flight[home.hostport]) == (0, 0)


def test_entries_expire_after_the_request_timeout() -> None:
    clock = FakeClock()
    s = scheduler(one_scorer("predicted-ttft-scorer", {"requestTimeout": "30s"}), clock=clock)
    sc = scorer_of(s)
    eps = eps3()
    _, home = decide(s, eps, GROUP_A)
    clock.advance(29)
    decide(s, eps, GROUP_B)
    assert sc.in_flight[home.hostport] >= 1
    clock.advance(20)  # the first request is 49 s old, the second 20 s
    decide(s, eps, "x" * 100)
    assert sum(sc.in_flight.values()) == 2  # the expired one is gone; the second and the third remain
    assert sc.pending_tokens[home.hostport] <= len(GROUP_B) // 4


# ---- decisions of the predicted-ttft configuration -------------------------------------------------------------


def test_group_follows_its_prefix_under_moderate_load() -> None:
    s = scheduler(PREDICTED_TTFT)
    eps = eps3()
    r0, home = decide(s, eps, GROUP_A + "question 0")
    s.response_streaming(r0, home, None)
    # 40 more requests of the group (in flight, streaming) stay on the replica that holds the prefix: a miss
    # elsewhere costs 4 x 530 tokens, 40 requests in flight cost 320
    for i in range(1, 41):
        r, chosen = decide(s, eps, GROUP_A + f"question {i}")
        assert chosen is home
        s.response_streaming(r, chosen, None)


def test_new_prefix_goes_to_the_least_loaded_smallest_replica() -> None:
    s = scheduler(PREDICTED_TTFT)
    eps = eps3()
    _, a = decide(s, eps, GROUP_A)  # cold and pending on a
    _, b = decide(s, eps, GROUP_B)
    assert b is not a  # a owes a whole prefill: a new prefix goes elsewhere
    _, c = decide(s, eps, "A third assistant, for astronomers and their telescopes. " * 36)
    assert c not in (a, b)


def test_spills_when_the_holders_engine_queue_is_long() -> None:
    s = scheduler(PREDICTED_TTFT)
    eps = eps3()
    r, home = decide(s, eps, GROUP_A)
    s.response_streaming(r, home, None)
    # the prompt is ~530 tokens: a miss elsewhere costs 4 x 530 = 2,120; home's footprint costs 0.5 x 530
    home.metrics.waiting_queue_size = 5
    assert decide(s, eps, GROUP_A + "q")[1] is home  # 5 queued: 1,500 + 265 < 2,120
    home.metrics.waiting_queue_size = 40
    assert decide(s, eps, GROUP_A + "q2")[1] is not home  # 12,000 > 2,120: a cold prefill elsewhere is sooner


def test_footprint_places_new_prefixes_only() -> None:
    s = scheduler(PREDICTED_TTFT)
    eps = eps3()
    a, b, c = eps
    sc = scorer_of(s)
    # the index holds five groups on a (routed there by an earlier picker run), nothing on b and c
    producer = s.plugin("approx-prefix-cache-producer")
    for g in range(5):
        r = request(f"group {g} system prompt. " * 100)
        s.prepare_request_data(r, [a])
        s.pre_request(r, s.schedule(r, [a]))
        s.flush_deferred()
        s.response_complete(r, a)
    assert producer.index.pod_size(a.hostport) > 0 == producer.index.pod_size(b.hostport)
    assert sum(sc.in_flight.values()) == 0
    # a prompt of a group a holds stays on a, however much more a holds than the others
    assert decide(s, eps, "group 3 system prompt. " * 100 + "a new question")[1] is a
    # a prompt nobody holds goes to a replica holding nothing
    assert decide(s, eps, "a brand new assistant persona. " * 80)[1] in (b, c)


# ---- properties ------------------------------------------------------------------------------------------------

terms_st = st.builds(
    CostTerms,
    pending_tokens=st.integers(0, 200_000),
    uncached_tokens=st.integers(0, 20_000),
    in_flight=st.integers(0, 500),
    decoding=st.integers(0, 500),
    waiting=st.integers(0, 200),
    footprint_tokens=st.integers(0, 500_000),
)


def weight(hi: float) -> st.SearchStrategy[float]:
    """0 (the term off) or a weight large enough that a one-unit change shows in a float sum."""
    return st.one_of(st.just(0.0), st.floats(0.01, hi))


params_st = st.builds(
    PredictedTTFTParams,
    base_tokens=st.floats(1.0, 5000.0),
    running_request_tokens=weight(100.0),
    waiting_request_tokens=weight(5000.0),
    miss_weight=weight(20.0),
    pending_weight=weight(5.0),
    footprint_weight=weight(2.0),
)


@settings(max_examples=300, deadline=None)
@given(terms=st.lists(terms_st, max_size=12), p=params_st)
def test_scores_in_unit_interval_and_cheapest_scores_one(terms: list[CostTerms], p: PredictedTTFTParams) -> None:
    costs = [predicted_cost(t, p) for t in terms]
    scores = relative_scores(costs)
    assert len(scores) == len(terms)
    assert all(0.0 < x <= 1.0 for x in scores)
    if costs:
        assert scores[costs.index(min(costs))] == 1.0
    for i, j in itertools.combinations(range(len(costs)), 2):  # cheaper ⇔ higher score
        assert (costs[i] < costs[j]) == (scores[i] > scores[j])


FIELDS = ["pending_tokens", "uncached_tokens", "in_flight", "decoding", "waiting", "footprint_tokens"]


@settings(max_examples=300, deadline=None)
@given(t=terms_st, p=params_st, field=st.sampled_from(FIELDS), more=st.integers(1, 10_000))
def test_cost_is_monotonic_in_every_term(t: CostTerms, p: PredictedTTFTParams, field: str, more: int) -> None:
    bigger = CostTerms(**{f: getattr(t, f) + (more if f == field else 0) for f in FIELDS})
    assert predicted_cost(bigger, p) >= predicted_cost(t, p)
    # strictly, whenever the term has a positive weight
    weight = {
        "pending_tokens": p.pending_weight,
        "uncached_tokens": p.miss_weight,
        "in_flight": p.running_request_tokens,
        "waiting": p.waiting_request_tokens,
        "footprint_tokens": p.footprint_weight,
    }.get(field)
    if weight is not None and weight > 0:
        assert predicted_cost(bigger, p) > predicted_cost(t, p)


@settings(max_examples=100, deadline=None)
@given(
    loads=st.lists(st.tuples(st.integers(0, 50_000), st.integers(0, 300), st.integers(0, 100)), max_size=8),
)
def test_scorer_scores_and_orders_by_load(loads: list[tuple[int, int, int]]) -> None:
    """Through the plugin: a cold prompt (every endpoint misses) scores by pending tokens, in-flight requests and
    engine queue; scores in (0, 1]; more load never scores higher; no candidates, no scores."""
    s = scheduler(one_scorer("predicted-ttft-scorer", {"footprintWeight": 0}))
    sc = scorer_of(s)
    eps = [endpoint(i + 1, queue=q) for i, (_, _, q) in enumerate(loads)]
    for e, (pending, flying, _) in zip(eps, loads, strict=True):
        sc.pending_tokens[e.hostport] = pending
        sc.in_flight[e.hostport] = flying
    scores = raw_scores(s, request("cold prompt " * 50), eps)
    assert len(scores) == len(eps)
    assert all(0.0 < x <= 1.0 for x in scores)
    if eps:
        assert max(scores) == 1.0
    for i, j in itertools.combinations(range(len(loads)), 2):
        if all(a <= b for a, b in zip(loads[i], loads[j], strict=True)):
            assert scores[i] >= scores[j]
    assert raw_scores(s, request("another"), []) == []
