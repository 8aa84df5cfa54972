"""Cost of reading a model server's /metrics page, hand-written parser vs prometheus_client's parser.

    .venv/bin/python benchmarks/epp_metrics_parse.py [--http]

With --http it also measures the CPU cost of one scrape GET against a real simulator process: aiohttp's
ClientSession (keep-alive) vs the scraper's own keep-alive client (inferplane.epp.datalayer.http_get).

The page imitates vLLM's: the gauges the EPP reads plus the histograms vLLM exports (which dominate the size).
The EPP parses every endpoint's page 20 times a second (--refresh-metrics-interval 50ms).
"""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

from inferplane.epp.datalayer.metrics_parser import parse_metrics

HISTOGRAMS = [
    "vllm:time_to_first_token_seconds", "vllm:time_per_output_token_seconds", "vllm:inter_token_latency_seconds",
    "vllm:e2e_request_latency_seconds", "vllm:request_queue_time_seconds", "vllm:request_inference_time_seconds",
    "vllm:request_prefill_time_seconds", "vllm:request_decode_time_seconds", "vllm:request_prompt_tokens",
    "vllm:request_generation_tokens", "vllm:request_params_max_tokens",
]  # fmt: skip
BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0]
LABELS = 'model_name="meta-llama/Llama-3.1-8B-Instruct",engine="0"'


def vllm_page() -> str:
    lines = []
    for name, value in (("vllm:num_requests_running", 12), ("vllm:num_requests_waiting", 3),
                        ("vllm:kv_cache_usage_perc", 0.42)):  # fmt: skip
        lines += [f"# HELP {name} x", f"# TYPE {name} gauge", f"{name}{{{LABELS}}} {value}"]
    lines += [
        "# HELP vllm:cache_config_info x",
        "# TYPE vllm:cache_config_info gauge",
        'vllm:cache_config_info{block_size="16",cache_dtype="auto",num_cpu_blocks="0",num_gpu_blocks="31250"} 1.0',
        "# HELP vllm:lora_requests_info x",
        "# TYPE vllm:lora_requests_info gauge",
        'vllm:lora_requests_info{max_lora="4",running_lora_adapters="a,b",waiting_lora_adapters=""} 1.7e9',
    ]
    for c in ("vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:prefix_cache_queries_total",
              "vllm:prefix_cache_hits_total"):  # fmt: skip
        lines += [f"# HELP {c} x", f"# TYPE {c} counter", f"{c}{{{LABELS}}} 123456.0"]
    for h in HISTOGRAMS:
        lines += [f"# HELP {h} x", f"# TYPE {h} histogram"]
        for b in [*BUCKETS, "+Inf"]:
            lines.append(f'{h}_bucket{{{LABELS},le="{b}"}} 100.0')
        lines += [f"{h}_count{{{LABELS}}} 100.0", f"{h}_sum{{{LABELS}}} 12.5"]
    return "\n".join(lines) + "\n"


def via_prometheus_client(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        if fam.name in ("vllm:num_requests_waiting", "vllm:num_requests_running", "vllm:kv_cache_usage_perc"):
            out[fam.name] = fam.samples[0].value
    return out


def bench(fn: object, text: str, n: int) -> float:
    assert callable(fn)
    fn(text)
    t0 = time.perf_counter()
    for _ in range(n):
        fn(text)
    return (time.perf_counter() - t0) / n


def main() -> None:
    text = vllm_page()
    hand = bench(parse_metrics, text, 2000)
    ref = bench(via_prometheus_client, text, 50)
    print(f"page: {len(text)} bytes, {text.count(chr(10))} lines")
    print(f"hand-written parse_metrics:       {hand * 1e6:8.1f} µs/page")
    print(f"prometheus_client text parser:    {ref * 1e6:8.1f} µs/page  ({ref / hand:.0f}x slower)")
    print(f"at 20 scrapes/s: hand {hand * 20 * 1e3:.2f} ms CPU per endpoint per second, "
          f"prometheus_client {ref * 20 * 1e3:.1f} ms")  # fmt: skip


def http_clients(n: int = 400) -> None:
    import sys
    from pathlib import Path

    import aiohttp

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.support.procs import INFERPLANE, Proc

    from inferplane.epp.datalayer.http_get import HTTPGetter
    from inferplane.net import LOOPBACK, free_port, http_status

    port = free_port()
    sim = Proc([*INFERPLANE, "sim", "--model", "m", "--host", LOOPBACK, "--port", str(port), "--zero-latency"])
    try:
        sim.wait_ready(lambda: http_status(f"http://{LOOPBACK}:{port}/health/ready") == 200, 60)

        async def run() -> None:
            url = f"http://{LOOPBACK}:{port}/metrics"
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
                for _ in range(2):
                    c0 = time.process_time()
                    for _ in range(n):
                        async with session.get(url) as r:
                            body = await r.read()
                    aio = (time.process_time() - c0) / n
                    getter = HTTPGetter(LOOPBACK, port)
                    c0 = time.process_time()
                    for _ in range(n):
                        _, own = await getter.get(1.0)
                    mine = (time.process_time() - c0) / n
                    getter.close()
                    assert len(own) == len(body) > 0
                    assert getter.connections == 1, getter.connections
                    print(f"scrape GET of a {len(body)}-byte page, CPU per request: aiohttp {aio * 1e6:.0f} µs, "
                          f"http_get {mine * 1e6:.0f} µs ({aio / mine:.1f}x)")  # fmt: skip

        import uvloop

        uvloop.run(run())  # the EPP's loop
    finally:
        sim.stop()


if __name__ == "__main__":
    import sys

    main()
    if "--http" in sys.argv:
        http_clients()
