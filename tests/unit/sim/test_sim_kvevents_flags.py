"""KV-event wire encoding (vLLM's msgpack arrays) and the vLLM / llm-d-inference-sim flag surface."""

from __future__ import annotations

import argparse

import msgpack
import pytest

from inferplane.errors import UsageError
from inferplane.sim import command
from inferplane.sim.kvevents import AllBlocksCleared, BlockRemoved, BlockStored, decode_batch, encode_batch
from inferplane.sim.kvpublisher import offset_endpoint, parse_kv_events_config
from tests.conftest import SHARED


def test_event_batch_is_vllm_positional_msgpack() -> None:
    events = [BlockStored([11, 12], None, [1, 2, 3, 4], 2), BlockRemoved([9]), AllBlocksCleared()]
    raw = msgpack.unpackb(encode_batch(1.5, events, data_parallel_rank=3))
    assert raw[0] == 1.5
    assert raw[2] == 3
    assert raw[1][0] == ["BlockStored", [11, 12], None, [1, 2, 3, 4], 2, None, "GPU"]
    assert raw[1][1] == ["BlockRemoved", [9], "GPU"]
    assert raw[1][2] == ["AllBlocksCleared"]
    assert len(msgpack.unpackb(encode_batch(0.0, events))) == 2  # no rank → [ts, events]
    _ts, decoded, rank = decode_batch(encode_batch(2.0, events, 1))
    assert decoded == events
    assert rank == 1


def test_kv_events_config_parsing() -> None:
    cfg = parse_kv_events_config(
        '{"enable_kv_cache_events":true,"publisher":"zmq","endpoint":"tcp://epp:5557","topic":"kv@1.2.3.4@m"}'
    )
    assert cfg.enabled
    assert cfg.endpoint == "tcp://epp:5557"
    assert cfg.topic == "kv@1.2.3.4@m"
    assert not parse_kv_events_config(None).enabled
    with pytest.raises(UsageError, match="not valid JSON"):
        parse_kv_events_config("{nope")
    with pytest.raises(UsageError, match="unknown field"):
        parse_kv_events_config('{"enable_kv_cache_events": true, "endpont": "x"}')
    assert offset_endpoint("tcp://*:5557", 2) == "tcp://*:5559"
    assert offset_endpoint("ipc:///tmp/x", 2) == "ipc:///tmp/x"


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(exit_on_error=False)
    command.configure(p)
    return p.parse_args(argv)


def test_vllm_args_from_a_deployment_are_accepted() -> None:
    argv = [
        "serve",
        "Qwen/Qwen3-0.6B",
        "--host=0.0.0.0",
        "--port",
        "8200",
        "--block-size",
        "64",
        "--prefix-caching-hash-algo",
        "sha256_cbor_64bit",
        "--enforce-eager",
        "--kv-transfer-config",
        '{"kv_connector":"NixlConnector", "kv_role":"kv_both"}',
        "--kv-events-config",
        '{"enable_kv_cache_events":true,"publisher":"zmq","endpoint":"tcp://x:5557","topic":"kv@1.2.3.4@q"}',
        "--no-enable-prefix-caching",
        "--disable-uvicorn-access-log",
        "--tensor-parallel-size=1",
        "--max-model-len",
        "4096",
        "-O",
        "3",
    ]
    cfg = command.resolve(parse(argv))
    assert cfg.model == "Qwen/Qwen3-0.6B"
    assert cfg.port == 8200
    assert cfg.block_size == 64
    assert cfg.enable_prefix_caching is False
    assert cfg.kv_events.enabled
    assert cfg.max_model_len == 4096
    assert cfg.profile.name == "h100-gemma-2b"


def test_unknown_flag_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse(["--model", "m", "--no-such-flag", "1"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


def test_upstream_sim_config_yaml(tmp_path) -> None:
    args = parse(["--config", str(SHARED / "schemas/llmd/inference-sim_8b-h100-balanced-per-token.yaml")])
    cfg = command.resolve(args)
    assert cfg.model == "meta-llama/Llama-3.1-8B-Instruct"
    assert cfg.max_num_seqs == 16
    assert cfg.upstream.calculator == "per-token"
    assert cfg.upstream.prefill_time_per_token == pytest.approx(250e-6)
    assert cfg.upstream.inter_token_latency == pytest.approx(0.012)
    cfg2 = command.resolve(parse(["--config", str(SHARED / "schemas/llmd/inference-sim_config.yaml"), "--port", "1"]))
    assert cfg2.port == 1
    assert cfg2.names == ["model1", "model2"]
    assert [m.name for m in cfg2.lora_modules] == ["lora1", "lora2"]
    assert cfg2.upstream.time_to_first_token == 2.0
    bad = tmp_path / "c.yaml"
    bad.write_text("model: m\nnot-a-flag: 3\n")
    with pytest.raises(UsageError, match="unknown key"):
        command.resolve(parse(["--config", str(bad)]))


def test_resolution_errors_are_clear() -> None:
    with pytest.raises(UsageError, match="no model"):
        command.resolve(parse([]))
    with pytest.raises(UsageError, match="needs 512 KV blocks"):
        command.resolve(parse(["--model", "m", "--num-gpu-blocks-override", "10", "--max-model-len", "8192"]))
    with pytest.raises(UsageError, match="leaves no memory"):
        command.resolve(parse(["--model", "m", "--profile", "h100-mixtral-8x7b", "--tensor-parallel-size", "1"]))
    with pytest.raises(UsageError, match="failure-types"):
        command.resolve(parse(["--model", "m", "--failure-types", "nope"]))
    with pytest.raises(UsageError, match="not a duration"):
        command.resolve(parse(["--model", "m", "--inter-token-latency", "fast"]))
