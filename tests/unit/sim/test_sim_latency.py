"""Latency profiles and models: calibration agreement, roofline shape, upstream calculators."""

from __future__ import annotations

import json

import pytest

from inferplane.errors import ConfigError
from inferplane.sim.latency import (
    PrefillChunk,
    RooflineModel,
    StepBatch,
    UpstreamLatency,
    UpstreamModel,
    ZeroModel,
    build_latency_model,
)
from inferplane.sim.profiles import default_profile_name, load_profile, profile_names
from tests.conftest import SHARED

CALIB = json.loads((SHARED / "calibration" / "h100-hf-eager.json").read_text())["models"]["llama-8b"]


def ttft(model: RooflineModel, new: int, cached: int) -> float:
    chunk = PrefillChunk(new, cached, True, True)
    return model.request_overhead(new + cached) + model.step_time(StepBatch([chunk], num_running=1))


def test_h100_8b_matches_calibration() -> None:
    m = RooflineModel(load_profile("h100-llama-8b"))
    cold = ttft(m, 4096, 0)
    assert cold == pytest.approx(CALIB["prefill_s"]["4096"], rel=0.10)
    warm = ttft(m, 256, 4096)
    assert warm == pytest.approx(CALIB["cached_prefix_prefill_s"]["4096+256"], rel=0.15)
    assert ttft(m, 8192, 0) == pytest.approx(CALIB["prefill_s"]["8192"], rel=0.10)


def test_decode_is_bandwidth_bound_not_eager() -> None:
    m = RooflineModel(load_profile("h100-llama-8b"))
    b1 = m.step_time(StepBatch(num_decodes=1, decode_context=1024, num_running=1))
    b128 = m.step_time(StepBatch(num_decodes=128, decode_context=128 * 1024, num_running=128))
    eager_b1 = CALIB["decode_step_s_ctx1024"]["1"]
    assert 0.0054 < b1 < eager_b1 / 2  # above the 16 GB / 3 TB/s bound, well below eager
    assert 0.010 < b128 < 0.016  # README: ≈ 11 ms bandwidth bound for 128 x 1,024 context


@pytest.mark.parametrize("name", profile_names())
def test_every_profile_loads_and_is_monotone(name: str) -> None:
    p = load_profile(name)
    assert p.source.strip()
    m = build_latency_model(p)
    if isinstance(m, ZeroModel):
        assert m.step_time(StepBatch([PrefillChunk(1000, 0, True, True)])) == 0.0
        return
    small = m.step_time(StepBatch([PrefillChunk(100, 0, True, True)], num_running=1))
    big = m.step_time(StepBatch([PrefillChunk(2000, 0, True, True)], num_running=1))
    assert 0 < small < big
    assert p.num_gpu_blocks(16, 0.9) > 0


def test_h200_decodes_faster_than_h100_and_moe_reads_fewer_bytes_at_batch_1() -> None:
    d = StepBatch(num_decodes=1, decode_context=1024, num_running=1)
    assert RooflineModel(load_profile("h200-llama-8b")).step_time(d) < RooflineModel(
        load_profile("h100-llama-8b")
    ).step_time(d)
    moe = load_profile("h200-mixtral-8x7b").model
    assert moe.decode_weight_bytes(1) < 0.5 * moe.weight_bytes
    assert moe.decode_weight_bytes(256) == pytest.approx(moe.weight_bytes, rel=1e-3)


def test_profile_selection_and_errors() -> None:
    assert default_profile_name("h100", "meta-llama/Llama-3.1-8B-Instruct") == "h100-llama-8b"
    assert default_profile_name("h200", "mistralai/Mixtral-8x7B-Instruct-v0.1") == "h200-mixtral-8x7b"
    assert default_profile_name("h100", "Qwen/Qwen3-0.6B") == "h100-gemma-2b"
    assert default_profile_name("tpu-v5e", "google/gemma-2b") == "tpu-v5e-gemma-2b"
    assert default_profile_name("l4", "Qwen/Qwen2.5-32B") == "l4-llama-8b"  # nearest the L4 has
    with pytest.raises(ConfigError, match="unknown latency profile"):
        load_profile("b200-llama-8b")
    with pytest.raises(ConfigError, match="no latency profile for accelerator"):
        default_profile_name("b200", "x-8b")


def test_profile_validation_names_file_and_field(tmp_path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text(
        "name: x\ndescription: d\nsource: s\naccelerator: h100\nmodel: llama-8b\n"
        "efficiency: {prefill_mfu: 2, attention_mfu: 0.8, decode_mfu: 0.5}\n"
        "overheads: {step_s: 0, request_s: 0, tokenize_per_token_s: 0}\n"
    )
    with pytest.raises(ConfigError, match=r"p\.yaml: efficiency\.prefill_mfu"):
        load_profile(str(bad))


def test_upstream_per_token_with_load_factor() -> None:
    cfg = UpstreamLatency(
        calculator="per-token",
        prefill_overhead=0.030,
        prefill_time_per_token=0.00025,
        inter_token_latency=0.012,
        time_factor_under_load=2.0,
    )
    m = UpstreamModel(cfg, max_num_seqs=16)
    assert m.load_factor(1) == 1.0
    assert m.load_factor(16) == 2.0
    assert m.load_factor(6) == pytest.approx(1 + 5 / 15)
    one = StepBatch([PrefillChunk(1000, 0, True, True)], num_running=1)
    assert m.step_time(one) == pytest.approx(0.030 + 0.25)
    full = StepBatch([PrefillChunk(1000, 200, True, True)], num_decodes=15, num_running=16)
    assert m.step_time(full) == pytest.approx((0.030 + 0.25) * 2.0)
    assert m.step_time(StepBatch(num_decodes=3, num_running=16)) == pytest.approx(0.024)


def test_upstream_constant_and_legacy_selection() -> None:
    m = UpstreamModel(UpstreamLatency(time_to_first_token=2.0, inter_token_latency=1.0), max_num_seqs=5)
    assert m.constant  # legacy: time-to-first-token set → constant
    assert m.step_time(StepBatch([PrefillChunk(10, 0, True, False)], num_running=1)) == 0.0
    assert m.step_time(StepBatch([PrefillChunk(10, 10, False, True)], num_running=1)) == 2.0
    remote = StepBatch([PrefillChunk(100, 0, True, True, remote=True)], num_running=1)
    t = UpstreamModel(UpstreamLatency(calculator="per-token", kv_cache_transfer_time_per_token=0.001), 5)
    assert t.step_time(remote) == pytest.approx(0.1)


def test_jitter_is_clamped_and_seeded() -> None:
    cfg = UpstreamLatency(calculator="constant", time_to_first_token=1.0, time_to_first_token_std_dev=0.9)
    a = [UpstreamModel(cfg, 4, seed=1).step_time(StepBatch([PrefillChunk(1, 0, True, True)], num_running=1))]
    b = [UpstreamModel(cfg, 4, seed=1).step_time(StepBatch([PrefillChunk(1, 0, True, True)], num_running=1))]
    assert a == b
    m = UpstreamModel(cfg, 4, seed=2)
    samples = [m.step_time(StepBatch([PrefillChunk(1, 0, True, True)], num_running=1)) for _ in range(500)]
    assert min(samples) >= 0.3
    assert max(samples) <= 1.7
