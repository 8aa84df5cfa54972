"""Workload generators match their configuration: lengths, sharing, determinism under a seed."""

from __future__ import annotations

import asyncio
import json
import statistics
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferplane.bench.workloads import (
    RequestSpec,
    WorkloadConfig,
    build_workload,
    load_workload_spec,
)
from inferplane.bench.workloads.base import RequestSource
from inferplane.bench.workloads.text import synth_text, token_counter
from inferplane.errors import ConfigError, UsageError

COUNT = token_counter()


def take(source: RequestSource, n: int) -> list[RequestSpec]:
    async def go() -> list[RequestSpec]:
        out = []
        for _ in range(n):
            spec = await source.next()
            assert spec is not None
            out.append(spec)
            source.done(spec, "reply text " * 3)
        return out

    return asyncio.run(go())


def shared_prefix(**kw: object) -> WorkloadConfig:
    return WorkloadConfig.model_validate({"type": "shared_prefix", "shared_prefix": kw})


@given(n=st.integers(min_value=1, max_value=600), seed=st.integers(0, 10_000))
@settings(max_examples=40, deadline=None)
def test_synth_text_hits_the_token_budget(n: int, seed: int) -> None:
    import random

    text = synth_text(n, random.Random(seed))
    # whole words: the budget is never exceeded, and at most one word short of it
    assert n - 2 <= COUNT(text) <= n


def test_shared_prefix_groups_share_exactly_their_system_prompt() -> None:
    cfg = shared_prefix(num_groups=4, num_prompts_per_group=3, system_prompt_len=120, question_len=30, output_len=17)
    specs = take(build_workload(cfg, seed=7).source(), 12)
    by_group: dict[str, list[RequestSpec]] = {}
    for s in specs:
        by_group.setdefault(s.group, []).append(s)
    assert sorted(len(v) for v in by_group.values()) == [3, 3, 3, 3]
    systems = {g: {s.messages[0].content for s in v} for g, v in by_group.items()}
    assert all(len(v) == 1 for v in systems.values())  # one system prompt per group
    assert len({next(iter(v)) for v in systems.values()}) == 4  # and distinct across groups
    for s in specs:
        assert abs(COUNT(s.messages[0].content) - 120) <= 2
        assert abs(COUNT(s.messages[1].content) - 30) <= 2
        assert s.output_tokens == 17
        assert s.input_tokens == COUNT(s.messages[0].content) + COUNT(s.messages[1].content)
        assert s.prompt.startswith(s.messages[0].content + "\n")
    assert len({s.messages[1].content for s in specs}) == 12  # every question distinct


def test_shared_prefix_is_deterministic_under_seed_and_interleaves_groups() -> None:
    cfg = shared_prefix(num_groups=5, num_prompts_per_group=4, system_prompt_len=40, question_len=10)
    a = take(build_workload(cfg, seed=3).source(), 20)
    b = take(build_workload(cfg, seed=3).source(), 20)
    c = take(build_workload(cfg, seed=4).source(), 20)
    assert a == b
    assert [s.prompt for s in a] != [s.prompt for s in c]
    groups = [s.group for s in a]
    assert groups != sorted(groups)  # shuffled, not group after group


def test_list_source_cycles_each_pass_covering_every_prompt() -> None:
    cfg = shared_prefix(num_groups=2, num_prompts_per_group=3, system_prompt_len=10, question_len=5)
    specs = take(build_workload(cfg, seed=1).source(), 12)
    first, second = specs[:6], specs[6:]
    assert Counter(s.prompt for s in first) == Counter(s.prompt for s in second)
    assert len(set(s.prompt for s in first)) == 6


def test_inference_perf_num_unique_system_prompts_alias() -> None:
    cfg = shared_prefix(num_unique_system_prompts=3, num_prompts_per_group=2, system_prompt_len=10, question_len=5)
    specs = take(build_workload(cfg, seed=0).source(), 6)
    assert len({s.group for s in specs}) == 3


@pytest.mark.parametrize(
    ("dist", "check"),
    [
        ({"type": "fixed", "value": 64}, lambda xs: set(xs) == {64}),
        ({"type": "uniform", "min": 10, "max": 30}, lambda xs: min(xs) >= 10 and max(xs) <= 30 and len(set(xs)) > 8),
        (
            {"mean": 100, "std_dev": 20, "min": 80, "max": 200},  # inference-perf style: clipped normal
            lambda xs: min(xs) >= 80 and max(xs) <= 200 and 95 <= statistics.mean(xs) <= 112,
        ),
    ],
)
def test_random_output_lengths_follow_the_distribution(dist: dict[str, object], check: object) -> None:
    cfg = WorkloadConfig.model_validate(
        {
            "type": "random",
            "random": {
                "num_prompts": 300,
                "input_distribution": {"type": "fixed", "value": 20},
                "output_distribution": dist,
            },
        }
    )
    specs = take(build_workload(cfg, seed=11).source(), 300)
    assert callable(check)
    assert check([s.output_tokens for s in specs])
    assert all(18 <= s.input_tokens <= 20 for s in specs)


def test_multi_turn_history_grows_and_sessions_interleave() -> None:
    cfg = WorkloadConfig.model_validate(
        {"type": "multi-turn", "multi-turn": {"sessions": 3, "turns": 2, "system_prompt_len": 30, "turn_len": 10}}
    )
    specs = take(build_workload(cfg, seed=5).source(), 9)
    # round-robin over sessions: s0 s1 s2 s0 s1 s2, then three fresh sessions
    assert [s.group for s in specs] == [f"session-{i}" for i in (0, 1, 2, 0, 1, 2, 3, 4, 5)]
    first, second = specs[0], specs[3]
    assert [m.role for m in first.messages] == ["system", "user"]
    assert [m.role for m in second.messages] == ["system", "user", "assistant", "user"]
    assert second.messages[:2] == first.messages  # the history is a prefix of the next turn
    assert second.messages[2].content == "reply text " * 3
    assert second.input_tokens > first.input_tokens


def test_multi_turn_source_waits_while_every_session_is_in_flight() -> None:
    cfg = WorkloadConfig.model_validate({"type": "multi_turn", "multi_turn": {"sessions": 1, "turns": 3}})

    async def go() -> bool:
        source = build_workload(cfg, seed=0).source()
        spec = await source.next()
        assert spec is not None
        waiting = asyncio.ensure_future(source.next())
        await asyncio.sleep(0.01)
        blocked = not waiting.done()
        source.done(spec, "answer")
        nxt = await asyncio.wait_for(waiting, 1)
        return blocked and nxt is not None and nxt.group == spec.group

    assert asyncio.run(go())


def test_model_mix_shares(tmp_path: Path) -> None:
    cfg = WorkloadConfig.model_validate(
        {
            "type": "random",
            "random": {
                "num_prompts": 2000,
                "input_distribution": {"type": "fixed", "value": 4},
                "output_distribution": {"type": "fixed", "value": 4},
            },
            "models": {"a": 3, "b": 1},
        }
    )
    specs = take(build_workload(cfg, seed=2).source(), 2000)
    share_a = sum(s.model == "a" for s in specs) / len(specs)
    assert 0.71 <= share_a <= 0.79


def test_shared_prefix_mix_assigns_one_model_per_group() -> None:
    cfg = WorkloadConfig.model_validate(
        {
            "type": "shared_prefix",
            "shared_prefix": {"num_groups": 20, "num_prompts_per_group": 3, "system_prompt_len": 5, "question_len": 5},
            "models": {"a": 1, "b": 1},
        }
    )
    specs = take(build_workload(cfg, seed=2).source(), 60)
    per_group: dict[str, set[str | None]] = {}
    for s in specs:
        per_group.setdefault(s.group, set()).add(s.model)
    assert all(len(m) == 1 for m in per_group.values())
    assert {m for ms in per_group.values() for m in ms} == {"a", "b"}


def test_trace_replay_keeps_times_order_and_models(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    rows = [
        {"timestamp": 10.5, "input_len": 50, "output_len": 8, "model": "m1"},
        {"timestamp": 10.0, "prompt": "hello there world", "output_len": 4},
        {"timestamp": 12.0, "input_length": 20, "output_length": 2},
    ]
    trace.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    cfg = WorkloadConfig.model_validate({"type": "trace", "trace": {"path": str(trace), "speedup": 2}})
    source = build_workload(cfg, seed=0).source()
    assert source.timed
    specs = take(source, 3)
    assert [s.at for s in specs] == [0.0, 0.25, 1.0]
    assert specs[0].prompt == "hello there world"
    assert specs[1].model == "m1"
    assert abs(specs[1].input_tokens - 50) <= 2
    assert [s.output_tokens for s in specs] == [4, 8, 2]
    assert asyncio.run(source.next()) is None  # a trace plays once


def test_trace_errors_name_the_line(tmp_path: Path) -> None:
    trace = tmp_path / "bad.jsonl"
    trace.write_text('{"timestamp": 0, "input_len": 5, "output_len": 2}\n{"timestamp": 1, "output_len": 2}\n')
    cfg = WorkloadConfig.model_validate({"type": "trace", "trace": {"path": str(trace)}})
    with pytest.raises(ConfigError, match=r"bad\.jsonl:2: .*needs `prompt` or `input_len`"):
        build_workload(cfg, seed=0)


def test_inline_and_file_specs(tmp_path: Path) -> None:
    spec = load_workload_spec("shared-prefix:num_groups=3,system_prompt_len=100")
    assert spec.workload.shared_prefix is not None
    assert spec.workload.shared_prefix.num_groups == 3
    assert spec.workload.shared_prefix.system_prompt_len == 100
    f = tmp_path / "ip.yaml"
    f.write_text(
        "load: {type: poisson, stages: [{rate: 2, duration: 5}]}\n"
        "api: {type: chat, streaming: true}\n"
        "server: {type: vllm, model_name: m, ignore_eos: true}\n"
        "data:\n  type: shared_prefix\n  shared_prefix: {num_groups: 2, num_prompts_per_group: 2,"
        " system_prompt_len: 10, question_len: 5, output_len: 3}\n"
    )
    ip = load_workload_spec(str(f))
    assert ip.workload.type == "shared_prefix"
    assert ip.load["stages"] == [{"rate": 2, "duration": 5}]
    assert ip.api["type"] == "chat"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("shared-prefix:num_grops=3", r"unknown workload key 'num_grops' for shared-prefix; valid keys: num_groups,"),
        ("shared-prefix:num_groups=0", r"shared_prefix\.num_groups: Input should be greater than or equal to 1"),
        ("chatbot", r"unknown workload type 'chatbot'; valid types: shared-prefix, multi-turn, random, trace"),
        ("trace", r"a trace workload needs `trace: \{path: FILE.jsonl\}`"),
        ("random:input_distribution={type: fixed}", r"a fixed distribution needs `value`"),
    ],
)
def test_bad_workloads_get_a_clear_message(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_workload_spec(value)


def test_inline_item_without_equals_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not KEY=VALUE"):
        load_workload_spec("random:num_prompts")


@given(st.text(max_size=60))
@settings(max_examples=150, deadline=None)
def test_workload_spec_parser_never_crashes(text: str) -> None:
    """Any --workload text is a workload or one of inferplane's own errors, never a traceback."""
    if Path(text.split(":")[0]).exists():  # an existing path would be read as a file
        return
    message, kind = "", ""
    try:
        kind = load_workload_spec(text).workload.type
    except (ConfigError, UsageError) as exc:
        message = str(exc)
    assert bool(message) != bool(kind)
    assert not kind or kind in ("shared_prefix", "multi_turn", "random", "trace")


def test_inference_perf_07_shared_prefix_form() -> None:
    cfg = shared_prefix(
        num_unique_system_prompts=2,
        num_users_per_system_prompt=3,
        system_prompt_len={"type": "uniform", "min": 50, "max": 60},
        question_len=20,
        output_len={"mean": 10, "std_dev": 3, "min": 5, "max": 15},
    )
    specs = take(build_workload(cfg, seed=9).source(), 6)
    assert len({s.group for s in specs}) == 2
    assert all(48 <= COUNT(s.messages[0].content) <= 60 for s in specs)
    assert all(5 <= s.output_tokens <= 15 for s in specs)
    assert len({s.output_tokens for s in specs}) > 1
    with pytest.raises(ConfigError, match="enable_multi_turn_chat"):
        load_workload_spec("shared-prefix:enable_multi_turn_chat=true")
