"""Workload errors in the user's terms (unknown keys with the valid ones and a suggestion, no pydantic wording),
length distributions written inline, and the keys listed in `inferplane bench --help`."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferplane.bench.workloads import load_workload_spec
from inferplane.bench.workloads.config import Distribution, RandomConfig
from inferplane.bench.workloads.generators import draw_length
from inferplane.cli import build_parser
from inferplane.errors import ConfigError, UsageError


def error_of(value: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_workload_spec(value)
    message = str(info.value)
    assert "Extra inputs are not permitted" not in message
    assert "Value error," not in message
    assert "function-after" not in message
    assert "constrained-int" not in message
    return message


def test_unknown_key_names_the_section_the_valid_keys_and_the_closest() -> None:
    message = error_of("shared-prefix:num_grops=3,system_prompt_len=100")
    assert (
        "unknown workload key 'num_grops' for shared-prefix; valid keys: num_groups, num_prompts_per_group," in message
    )
    assert "did you mean 'num_groups'?" in message


def test_unknown_key_without_a_close_match_gets_no_suggestion() -> None:
    message = error_of("multi-turn:zzz=1")
    assert "unknown workload key 'zzz' for multi-turn; valid keys: sessions, turns," in message
    assert "did you mean" not in message


def test_unknown_key_inside_a_distribution() -> None:
    message = error_of("random:input_distribution={type: fixed, valeu: 3}")
    assert "unknown workload key 'valeu' for random.input_distribution; valid keys: type, value," in message
    assert "did you mean 'value'?" in message


def test_unknown_type_lists_the_types() -> None:
    message = error_of("shared_prefx")
    assert "unknown workload type 'shared-prefx'; valid types: shared-prefix, multi-turn, random, trace" in message
    assert "did you mean 'shared-prefix'?" in message


def test_random_lengths_inline() -> None:
    spec = load_workload_spec("random:input_len=normal(512,64),output_len=uniform(64,256),num_prompts=20")
    cfg = spec.workload.random
    assert cfg is not None
    assert cfg.input_distribution == Distribution(type="normal", mean=512, std_dev=64, min=256, max=768)
    assert cfg.output_distribution == Distribution(type="uniform", min=64, max=256)
    assert cfg.count == 20
    fixed = load_workload_spec("random:input_len=50,output_len=fixed(7)").workload.random
    assert fixed is not None
    assert fixed.input_distribution.value == 50
    assert fixed.output_distribution.value == 7


def test_shared_prefix_lengths_inline_and_as_text() -> None:
    spec = load_workload_spec("shared-prefix:system_prompt_len=normal(2000,100,1500,2500),question_len=uniform(10,20)")
    cfg = spec.workload.shared_prefix
    assert cfg is not None
    system, question, _ = cfg.lengths()
    assert (system.type, system.mean, system.min, system.max) == ("normal", 2000, 1500, 2500)
    assert (question.type, question.min, question.max) == ("uniform", 10, 20)
    same = RandomConfig.model_validate({"input_len": "normal(512,64)"})
    assert same.input_distribution.mean == 512


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("random:input_len=normal(1,2,3)", r"normal\(\) takes 2 or 4 numbers"),
        ("random:input_len=gamma(1,2)", r"'gamma\(1,2\)' is not a length distribution; write fixed\(N\)"),
        ("random:input_len=uniform(a,b)", r"the arguments of uniform\(\) must be numbers"),
        ("random:input_len=uniform(9,3)", r"min \(9\) is greater than max \(3\)"),
        ("random:input_len=normal(1e400,1)", r"the arguments of normal\(\) must be numbers below 1e9"),
        ("random:input_len=-3", r"input_len is -3; a length is a number ≥ 0"),
        ("random:input_len=3,input_distribution=fixed(4)", r"give either input_len or input_distribution"),
        ("shared-prefix:system_prompt_len=banana", r"shared_prefix\.system_prompt_len: 'banana' is not a length"),
    ],
)
def test_bad_inline_distributions(value: str, message: str) -> None:
    assert re.search(message, error_of(value))


@given(
    kind=st.sampled_from(["fixed", "uniform", "normal", "gamma"]),
    args=st.lists(st.one_of(st.floats(), st.integers(), st.text(max_size=5)), max_size=5),
)
@settings(max_examples=150, deadline=None)
def test_inline_distribution_text_is_a_workload_or_a_clear_error(kind: str, args: list[object]) -> None:
    text = f"random:input_len={kind}({','.join(map(str, args))})"
    message, cfg = "", None
    try:
        cfg = load_workload_spec(text).workload.random
    except (ConfigError, UsageError) as exc:
        message = str(exc)
    assert bool(message) != bool(cfg)
    assert not message or message.startswith("--workload")
    assert cfg is None or cfg.input_distribution.type == kind


@given(lo=st.integers(1, 5000), width=st.integers(0, 5000), seed=st.integers(0, 1000))
@settings(max_examples=60, deadline=None)
def test_inline_uniform_draws_stay_in_bounds(lo: int, width: int, seed: int) -> None:
    cfg = load_workload_spec(f"random:output_len=uniform({lo},{lo + width})").workload.random
    assert cfg is not None
    rng = random.Random(seed)
    assert all(lo <= draw_length(cfg.output_distribution, rng) <= lo + width for _ in range(20))


@given(mean=st.integers(1, 8000), std=st.integers(0, 2000), seed=st.integers(0, 1000))
@settings(max_examples=60, deadline=None)
def test_inline_normal_is_clipped_around_its_mean(mean: int, std: int, seed: int) -> None:
    cfg = load_workload_spec(f"random:input_len=normal({mean},{std})").workload.random
    assert cfg is not None
    dist = cfg.input_distribution
    assert dist.min <= mean <= dist.max  # the default bounds never exclude the mean itself
    rng = random.Random(seed)
    assert all(dist.min <= draw_length(dist, rng) <= dist.max for _ in range(20))


def test_help_lists_every_workload_types_keys() -> None:
    text = _bench_help()
    assert "shared-prefix: num_groups, num_prompts_per_group, system_prompt_len" in text
    assert "multi-turn: sessions, turns," in text
    assert "random: input_len, output_len, input_distribution, output_distribution, num_prompts" in text
    assert "trace: path, speedup" in text
    assert "normal(MEAN,STD_DEV[,MIN,MAX])" in text


def _bench_help() -> str:
    parser = build_parser("bench")
    sub = next(a for a in parser._actions if a.dest == "command")
    return str(sub.choices["bench"].format_help())  # type: ignore[attr-defined]
