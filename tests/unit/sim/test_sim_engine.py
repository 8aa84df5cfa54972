"""The step engine in virtual time: batching, chunked prefill, prefix reuse, queueing and preemption."""

from __future__ import annotations

from dataclasses import dataclass

from inferplane.sim.engine import Engine, Sequence, Status
from inferplane.sim.kvblocks import BlockManager
from inferplane.sim.latency import RooflineModel, StepBatch, ZeroModel
from inferplane.sim.profiles import load_profile


@dataclass
class Clock:
    t: float = 0.0

    def __call__(self) -> float:
        return self.t


class UnitModel:
    """1 ms per step plus 1 µs per prefill token: easy arithmetic."""

    name = "unit"

    def step_time(self, batch: StepBatch) -> float:
        return 0.001 + 1e-6 * sum(c.new_tokens for c in batch.prefills)

    def request_overhead(self, prompt_tokens: int) -> float:
        return 0.0


def seq(rid: str, prompt: list[int], out: int, clock: Clock) -> Sequence:
    return Sequence(rid, prompt, list(range(out)), out, "length", "m", arrival=clock.t or 1e-9)


def run(engine: Engine, clock: Clock, max_steps: int = 10_000) -> list:
    steps = []
    for _ in range(max_steps):
        step = engine.schedule()
        if step is None:
            break
        clock.t += step.duration
        engine.finish_step(step, clock.t)
        steps.append(step)
    return steps


def make(num_blocks: int = 1000, block_size: int = 16, model=None, **kw) -> tuple[Engine, Clock]:
    clock = Clock()
    eng = Engine(BlockManager(num_blocks, block_size), model or UnitModel(), clock=clock, **kw)
    return eng, clock


def test_single_request_prefill_then_one_token_per_step() -> None:
    eng, clock = make()
    s = seq("a", list(range(100)), 5, clock)
    eng.add(s)
    steps = run(eng, clock)
    assert len(steps) == 5  # prefill step emits token 1, then 4 decode steps
    assert s.finish_reason == "length"
    assert s.num_output == 5
    assert s.first_token_time == steps[0].duration
    assert steps[1].batch.num_decodes == 1
    assert steps[1].batch.decode_context == 100
    assert eng.blocks.usage == 0.0  # released


def test_chunked_prefill_mixes_with_decodes() -> None:
    eng, clock = make(max_num_batched_tokens=64)
    short = seq("s", list(range(10)), 20, clock)
    eng.add(short)
    eng.finish_step(eng.schedule(), 0.001)  # short is decoding now
    long = seq("l", list(range(1000, 1200)), 2, clock)
    eng.add(long)
    step = eng.schedule()
    assert step is not None
    assert step.batch.num_decodes == 1
    assert [c.new_tokens for c in step.batch.prefills] == [63]  # budget 64 minus the decode
    run(eng, clock)
    assert long.num_output == 2
    assert short.num_output == 20


def test_prefix_cache_hit_is_whole_blocks_below_prompt_length() -> None:
    eng, clock = make()
    prompt = list(range(4000))
    first = seq("a", prompt, 1, clock)
    eng.add(first)
    run(eng, clock)
    second = seq("b", prompt, 1, clock)
    eng.add(second)
    steps = run(eng, clock)
    assert first.num_cached == 0
    assert second.num_cached == (4000 - 1) // 16 * 16  # vLLM recomputes at least the last token
    assert steps[0].batch.prefills[0].new_tokens == 4000 - second.num_cached
    assert eng.prefix_hits == second.num_cached
    assert eng.prefix_queries == 8000


def test_cached_ttft_ratio_follows_profile() -> None:
    model = RooflineModel(load_profile("h100-llama-8b"))
    eng, clock = make(model=model)
    prompt = list(range(4000))
    ttft = []
    for rid in ("cold", "warm"):
        s = seq(rid, prompt, 1, clock)
        start = clock.t
        s.arrival = start
        eng.add(s)
        run(eng, clock)
        ttft.append(s.first_token_time - start)
    assert ttft[1] < ttft[0] / 5  # 4,000 cold vs 16 new tokens


def test_max_num_seqs_queues_the_rest() -> None:
    eng, clock = make(max_num_seqs=2)
    seqs = [seq(str(i), list(range(i * 100, i * 100 + 50)), 10, clock) for i in range(5)]
    for s in seqs:
        eng.add(s)
    eng.finish_step(eng.schedule(), 0.001)
    assert len(eng.running) == 2
    assert len(eng.waiting) == 3
    run(eng, clock)
    firsts = [s.first_token_time for s in seqs]
    assert firsts == sorted(firsts)
    assert firsts[4] > firsts[1]


def test_preemption_when_kv_blocks_run_out_then_recompute() -> None:
    eng, clock = make(num_blocks=8, block_size=4)
    a = seq("a", list(range(12)), 12, clock)  # grows to 24 tokens = 6 blocks
    b = seq("b", list(range(100, 112)), 12, clock)
    eng.add(a)
    eng.add(b)
    run(eng, clock)
    assert eng.num_preemptions >= 1
    assert b.num_preemptions >= 1
    assert a.num_preemptions == 0
    assert a.num_output == 12
    assert b.num_output == 12
    assert b.finish_time > a.finish_time


def test_abort_waiting_and_running() -> None:
    eng, clock = make(max_num_seqs=1)
    a, b = seq("a", [1, 2, 3], 50, clock), seq("b", [4, 5, 6], 50, clock)
    eng.add(a)
    eng.add(b)
    step = eng.schedule()
    eng.abort(b)
    assert b.status is Status.FINISHED
    assert b.finish_reason == "abort"
    eng.abort(a)
    out = eng.finish_step(step, 0.001)
    assert a in out.finished
    assert a.finish_reason == "abort"
    assert not eng.has_work
    assert eng.blocks.usage == 0.0


def test_zero_model_is_free() -> None:
    eng, clock = make(model=ZeroModel())
    eng.add(seq("a", list(range(64)), 8, clock))
    run(eng, clock)
    assert clock.t == 0.0


def test_max_loras_keeps_other_adapters_waiting_in_order() -> None:
    eng, clock = make(max_loras=1)
    a1, b1, base, a2 = (seq(n, list(range(i * 50, i * 50 + 20)), 5, clock) for i, n in enumerate("xyzw"))
    a1.lora, b1.lora, a2.lora = "a", "b", "a"
    for s in (a1, b1, base, a2):
        eng.add(s)
    step = eng.schedule()
    assert [s.request_id for s in eng.running] == ["x", "z", "w"]  # adapter b waits: one adapter per batch
    assert [s.request_id for s in eng.waiting] == ["y"]
    clock.t += step.duration
    eng.finish_step(step, clock.t)
    run(eng, clock)
    assert b1.first_token_time > a1.first_token_time
