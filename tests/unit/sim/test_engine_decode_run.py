"""A decode run applied at once leaves the engine exactly as step-by-step stepping would (property-tested)."""

from __future__ import annotations

import bisect
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from inferplane.sim.engine import Engine, Sequence
from inferplane.sim.kvblocks import BlockManager
from inferplane.sim.latency import RooflineModel
from inferplane.sim.profiles import load_profile

PROFILE = load_profile("h100-llama-8b")

requests = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=2.0),  # arrival
        st.integers(min_value=1, max_value=300),  # prompt tokens
        st.integers(min_value=1, max_value=120),  # output tokens
        st.integers(min_value=0, max_value=3),  # prefix group
    ),
    min_size=1,
    max_size=25,
)


def _drive(reqs: list[tuple[float, int, int, int]], blocks: int, runs: bool) -> list[tuple[object, ...]]:
    """Arrivals at their times; the engine stepped one step at a time, or in decode runs cut short by arrivals."""
    now = [0.0]
    engine = Engine(BlockManager(blocks, 16), RooflineModel(PROFILE), max_num_seqs=8, clock=lambda: now[0])
    arrivals = sorted((t, i) for i, (t, *_rest) in enumerate(reqs))
    seqs = []
    for i, (_, prompt, output, group) in enumerate(reqs):
        tokens = [1000 * group + k for k in range(prompt // 2)] + [50_000 + 1000 * i + k for k in range(prompt)]
        seqs.append(Sequence(f"r{i}", tokens[:prompt], [7] * output, output, "length", "m"))
    pending = list(arrivals)
    while pending or engine.has_work:
        run = engine.plan_decode_run(10_000) if runs else None
        if run is not None:
            ends = list(itertools.accumulate(run.durations, initial=now[0]))[1:]
            steps = len(ends)
            if pending and pending[0][0] < ends[-1]:
                # an arrival mid-run: the step in progress completes, then the engine sees its queue
                steps = min(bisect.bisect_right(ends, pending[0][0]) + 1, len(ends))
            while pending and pending[0][0] <= ends[steps - 1]:
                t, i = pending.pop(0)
                now[0] = max(now[0], t)
                engine.add(seqs[i])
            now[0] = ends[steps - 1]
            engine.apply_decode_run(run, steps, ends)
            continue
        step = engine.schedule()
        if step is None:
            t, i = pending.pop(0)
            now[0] = max(now[0], t)
            engine.add(seqs[i])
            continue
        end = now[0] + step.duration
        while pending and pending[0][0] <= end:
            t, i = pending.pop(0)
            now[0] = max(now[0], t)
            engine.add(seqs[i])
        now[0] = end
        engine.finish_step(step, end)
    return [
        (s.finish_reason, round(s.first_token_time or 0, 9), round(s.finish_time or 0, 9), s.num_cached, s.num_output)
        for s in seqs
    ]


@settings(max_examples=60, deadline=None)
@given(requests, st.sampled_from([40, 120, 2000]))
def test_decode_runs_give_the_same_token_times_as_stepping(reqs, blocks) -> None:  # type: ignore[no-untyped-def]
    assert _drive(reqs, blocks, runs=True) == _drive(reqs, blocks, runs=False)
