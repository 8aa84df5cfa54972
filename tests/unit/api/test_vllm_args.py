from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from inferplane.api.vllm_args import parse_vllm_args, vllm_command_args


def test_equals_and_space_forms_and_underscores() -> None:
    args, problems = parse_vllm_args(
        ["org/m", "--port=8100", "--max_model_len", "4k", "-tp", "2", "--enable-prefix-caching", "--dtype=half"]
    )
    assert problems == []
    assert (args.model, args.port, args.max_model_len, args.tensor_parallel_size) == ("org/m", 8100, 4000, 2)
    assert args.enable_prefix_caching is True
    assert args.dtype == "half"
    assert args.port_given


def test_defaults_are_vllms() -> None:
    args, _ = parse_vllm_args([])
    assert (args.port, args.tensor_parallel_size, args.data_parallel_size) == (8000, 1, 1)
    assert args.enable_prefix_caching is None
    assert not args.port_given


def test_served_names_last_wins_and_lora_modules() -> None:
    args, _ = parse_vllm_args(
        [
            "m",
            "--served-model-name",
            "a",
            "b",
            "--served-model-name",
            "c",
            "--enable-lora",
            "--lora-modules",
            "sql=/a",
            '{"name": "chat", "path": "/b"}',
            "--max-loras",
            "2",
        ]
    )
    assert args.served_names == ["c"]
    assert args.lora_names == ["sql", "chat"]
    assert args.enable_lora
    assert args.max_loras == 2


def test_switch_then_positional_model() -> None:
    args, _ = parse_vllm_args(["--enforce-eager", "org/model", "--no-enable-prefix-caching"])
    assert args.model == "org/model"
    assert args.enable_prefix_caching is False


def test_bad_values_are_reported_with_their_index() -> None:
    _, problems = parse_vllm_args(["--port", "http", "--block-size=0", "--gpu-memory-utilization=lots", "--port"])
    assert problems == [
        (0, "--port expects an integer, found 'http'"),
        (2, "--block-size must be at least 1, found 0"),
        (3, "--gpu-memory-utilization expects a number, found 'lots'"),
        (4, "--port needs a value"),
    ]


def test_kv_events_config_json() -> None:
    args, _ = parse_vllm_args(["--kv-events-config", '{"enable_kv_cache_events": true, "publisher": "zmq"}'])
    assert args.kv_events_config == {"enable_kv_cache_events": True, "publisher": "zmq"}


def test_command_lines() -> None:
    assert vllm_command_args(["vllm", "serve"], ["m", "--port", "1"]) == ["m", "--port", "1"]
    assert vllm_command_args([], ["--model", "m"]) == ["--model", "m"]
    assert vllm_command_args(["python3", "-m", "vllm.entrypoints.openai.api_server"], ["--port", "9"]) == [
        "--port", "9"
    ]  # fmt: skip
    script = "ray start --head && \\\n  vllm serve org/m --port 8000 \\\n  --tensor-parallel-size 8 ; echo done"
    assert vllm_command_args(["sh", "-c"], [script]) == ["org/m", "--port", "8000", "--tensor-parallel-size", "8"]
    assert vllm_command_args(["sh", "-c"], ["ray start --address=$(LWS_LEADER_ADDRESS):6379 --block"]) is None
    assert vllm_command_args(["/bin/sleep"], ["10"]) is None


@given(st.lists(st.text(max_size=12), max_size=12))
def test_parser_never_raises(argv: list[str]) -> None:
    args, problems = parse_vllm_args(argv)
    assert args.raw == argv
    assert all(0 <= i < len(argv) for i, _ in problems)
    assert 1 <= args.port <= 65535


@given(st.text(max_size=200))
def test_shell_scripts_never_raise(script: str) -> None:
    result = vllm_command_args(["sh", "-c"], [script])
    assert result is None or isinstance(result, list)
