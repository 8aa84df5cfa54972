"""Prefix caching, eviction, queueing and metrics of a real simulator process."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from inferplane.sim.latency import PrefillChunk, RooflineModel, StepBatch
from inferplane.sim.profiles import load_profile
from inferplane.tokenizer import get_tokenizer
from tests.integration.sim.conftest import StartSim

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa", "lambda", "sigma", "omega"]


def prompt_of(tokens: int, salt: int) -> str:
    """English-ish text of exactly `tokens` SimpleTokenizer tokens, distinct per salt."""
    tok = get_tokenizer()
    words = [f"{WORDS[(i * 7 + salt) % len(WORDS)]}{salt}" for i in range(tokens)]
    text = ""
    for w in words:
        if len(tok.encode(text)) >= tokens:
            break
        text += " " + w
    ids = tok.encode(text)[:tokens]
    return tok.decode(ids)


def metrics(url: str) -> dict[str, float]:
    text = urllib.request.urlopen(f"{url}/metrics", timeout=5).read().decode()
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name.endswith("_bucket"):
                continue
            key = s.name + ("" if "finished_reason" not in s.labels else f"[{s.labels['finished_reason']}]")
            out[key] = s.value
    return out


async def stream_ttft(session: aiohttp.ClientSession, url: str, prompt: str, max_tokens: int) -> tuple[float, dict]:
    body = {"prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True, "stream": True}
    body["stream_options"] = {"include_usage": True}
    start = time.monotonic()
    first = None
    usage: dict = {}
    async with session.post(f"{url}/v1/completions", json=body) as resp:
        assert resp.status == 200
        async for line in resp.content:
            if line.startswith(b"data: {"):
                chunk = json.loads(line[6:])
                if first is None and chunk["choices"]:
                    first = time.monotonic() - start
                if chunk.get("usage"):
                    usage = chunk["usage"]
    assert first is not None
    return first, usage


def test_prefix_cache_hit_reports_blocks_and_cuts_ttft(start_sim: StartSim) -> None:
    sim = start_sim("--profile", "h100-llama-8b", "--time-scale", "1")
    prompt = prompt_of(4000, 1)
    n = len(get_tokenizer().encode(prompt))

    async def go() -> list[tuple[float, dict]]:
        async with aiohttp.ClientSession() as s:
            return [await stream_ttft(s, sim.url, prompt, 1) for _ in range(2)]

    before = metrics(sim.url)
    (cold, u1), (warm, u2) = asyncio.run(go())
    after = metrics(sim.url)
    assert u1["prompt_tokens_details"]["cached_tokens"] == 0
    assert u2["prompt_tokens_details"]["cached_tokens"] == (n - 1) // 16 * 16  # whole blocks, as vLLM
    model = RooflineModel(load_profile("h100-llama-8b"))
    expected = [
        model.request_overhead(n) + model.step_time(StepBatch([PrefillChunk(n - c, c, True, True)], num_running=1))
        for c in (0, (n - 1) // 16 * 16)
    ]
    ratio = expected[0] / expected[1]
    assert ratio > 4
    assert cold / warm > min(3.0, ratio * 0.5), (cold, warm, ratio)  # client-side: HTTP on a busy machine
    sim_ttft = after["vllm:time_to_first_token_seconds_sum"] - before["vllm:time_to_first_token_seconds_sum"]
    assert abs(sim_ttft - sum(expected)) / sum(expected) < 0.15, (sim_ttft, expected)
    assert after["vllm:prefix_cache_hits_total"] - before["vllm:prefix_cache_hits_total"] == (n - 1) // 16 * 16
    assert after["vllm:prefix_cache_queries_total"] - before["vllm:prefix_cache_queries_total"] == 2 * n


def test_capacity_for_one_prompt_evicts_the_first(start_sim: StartSim) -> None:
    # 250 blocks of 16 hold one 3,990-token prompt and nothing else
    sim = start_sim("--zero-latency", "--num-gpu-blocks-override", "250", "--max-model-len", "4000")
    a, b = prompt_of(3990, 2), prompt_of(3990, 3)

    def cached(prompt: str) -> int:
        req = urllib.request.Request(
            f"{sim.url}/v1/completions",
            data=json.dumps({"prompt": prompt, "max_tokens": 1}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(json.loads(resp.read())["usage"]["prompt_tokens_details"]["cached_tokens"])

    assert cached(a) == 0
    assert cached(a) > 3900  # still resident
    assert cached(b) == 0
    assert cached(a) == 0  # b evicted every block of a
    assert metrics(sim.url)["vllm:kv_cache_usage_perc"] == 0.0  # nothing running: every block is free


def test_queueing_beyond_max_num_seqs(start_sim: StartSim) -> None:
    sim = start_sim("--profile", "h100-llama-8b", "--max-num-seqs", "2", "--time-scale", "1")
    seen_waiting = []

    async def go() -> list[float]:
        async with aiohttp.ClientSession() as s:
            tasks = [asyncio.create_task(stream_ttft(s, sim.url, prompt_of(200, 10 + i), 40)) for i in range(6)]
            while not all(t.done() for t in tasks):
                async with s.get(f"{sim.url}/metrics") as r:
                    text = await r.text()
                for fam in text_string_to_metric_families(text):
                    if fam.name in ("vllm:num_requests_waiting", "vllm:num_requests_running"):
                        seen_waiting.append((fam.name, fam.samples[0].value))
                await asyncio.sleep(0.02)
            return sorted([(await t)[0] for t in tasks])

    ttfts = asyncio.run(go())
    assert max(v for n, v in seen_waiting if n == "vllm:num_requests_waiting") >= 2
    assert max(v for n, v in seen_waiting if n == "vllm:num_requests_running") == 2
    # 40 tokens x ~7 ms per wave: the last pair waited for two waves
    assert ttfts[-1] > ttfts[0] + 0.3, ttfts


def test_metrics_types_labels_and_movement(start_sim: StartSim) -> None:
    sim = start_sim("--zero-latency", "--gpu-cache-usage-metric", "--served-model-name", "m1")
    text0 = urllib.request.urlopen(f"{sim.url}/metrics").read().decode()
    fams = {f.name: f for f in text_string_to_metric_families(text0)}
    expected_types = {
        "vllm:num_requests_running": "gauge",
        "vllm:num_requests_waiting": "gauge",
        "vllm:kv_cache_usage_perc": "gauge",
        "vllm:gpu_cache_usage_perc": "gauge",
        "vllm:lora_requests_info": "gauge",
        "vllm:cache_config_info": "gauge",
        "vllm:prefix_cache_queries": "counter",
        "vllm:prefix_cache_hits": "counter",
        "vllm:prompt_tokens": "counter",
        "vllm:generation_tokens": "counter",
        "vllm:request_success": "counter",
        "vllm:request_prompt_tokens": "histogram",
        "vllm:request_generation_tokens": "histogram",
        "vllm:request_params_max_tokens": "histogram",
        "vllm:max_num_generation_tokens": "histogram",
        "vllm:time_to_first_token_seconds": "histogram",
        "vllm:time_per_output_token_seconds": "histogram",
        "vllm:inter_token_latency_seconds": "histogram",
        "vllm:request_time_per_output_token_seconds": "histogram",
        "vllm:e2e_request_latency_seconds": "histogram",
        "vllm:request_queue_time_seconds": "histogram",
        "vllm:request_inference_time_seconds": "histogram",
        "vllm:request_prefill_time_seconds": "histogram",
        "vllm:request_decode_time_seconds": "histogram",
    }
    for name, kind in expected_types.items():
        if kind == "counter" and name == "vllm:request_success":
            continue  # no series until a request finishes
        assert fams[name].type == kind, name
        for sample in fams[name].samples:
            if name != "vllm:lora_requests_info":
                assert sample.labels["model_name"] == "m1"
                assert sample.labels["engine"] == "0"
    info = fams["vllm:cache_config_info"].samples[0].labels
    assert info["block_size"] == "16"
    assert int(info["num_gpu_blocks"]) > 1000
    ttft = [s for s in fams["vllm:time_to_first_token_seconds"].samples if s.name.endswith("_bucket")]
    assert [s.labels["le"] for s in ttft][:3] == ["0.001", "0.005", "0.01"]
    assert ttft[-1].labels["le"] == "+Inf"
    req = urllib.request.Request(
        f"{sim.url}/v1/completions",
        data=json.dumps({"prompt": "count me", "max_tokens": 9, "ignore_eos": True}).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(req, timeout=10).read()
    m = metrics(sim.url)
    assert m["vllm:generation_tokens_total"] == 9
    assert m["vllm:request_success_total[length]"] == 1
    assert m["vllm:e2e_request_latency_seconds_count"] == 1
    assert m["vllm:inter_token_latency_seconds_count"] == 8
    assert m["vllm:prompt_tokens_total"] == m["vllm:request_prompt_tokens_sum"] > 0
