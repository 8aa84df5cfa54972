"""Simulated TTFT of the H100 8B profile against the H100 calibration table (shared/calibration/h100-hf-eager.json):
a cold 4,096-token prompt (target: within 10 %) and 4,096 cached + 256 new tokens (target: within 15 %).

    .venv/bin/python benchmarks/sim_latency.py [--profile h100-llama-8b] [--repeats 5]

Runs a real simulator process at --time-scale 1 and reads each request's TTFT two ways: the simulator's own
`vllm:time_to_first_token_seconds` histogram (simulated time, what the profile predicts) and the client's wall clock
to the first streamed token (adds HTTP and event-loop delay on this shared machine). Prompts are token-id lists, so
the 4,096-token prefix is exactly 256 blocks of 16.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.procs import INFERPLANE, Proc

from inferplane.net import free_port, http_status
from inferplane.tokenizer import get_tokenizer

CALIBRATION = Path(__file__).resolve().parent.parent.parent / "shared" / "calibration" / "h100-hf-eager.json"


def ttft_sum(url: str) -> float:
    text = urllib.request.urlopen(f"{url}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith("vllm:time_to_first_token_seconds_sum"):
            return float(line.rsplit(" ", 1)[1])
    raise RuntimeError("no TTFT histogram")


def request(url: str, ids: list[int]) -> tuple[float, float, int]:
    """(simulated TTFT, client TTFT, cached tokens) of one streamed request."""
    before = ttft_sum(url)
    body = {"prompt": ids, "max_tokens": 1, "stream": True, "stream_options": {"include_usage": True}}
    req = urllib.request.Request(
        f"{url}/v1/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    start = time.monotonic()
    first = None
    cached = -1
    with urllib.request.urlopen(req, timeout=30) as resp:
        for line in resp:
            if line.startswith(b"data: {"):
                chunk = json.loads(line[6:])
                if first is None and chunk["choices"]:
                    first = time.monotonic() - start
                if chunk.get("usage"):
                    cached = chunk["usage"]["prompt_tokens_details"]["cached_tokens"]
    assert first is not None
    return ttft_sum(url) - before, first, cached


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--profile", default="h100-llama-8b")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    calib = json.loads(CALIBRATION.read_text())["models"]["llama-8b"]
    target_cold = calib["prefill_s"]["4096"]
    target_warm = calib["cached_prefix_prefill_s"]["4096+256"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = Proc(
        [*INFERPLANE, "sim", "--model", "m", "--port", str(port), "--host", "127.0.0.1", "--profile", args.profile]
    )
    rng = random.Random(7)
    vocab = get_tokenizer().encode("the quick brown fox jumps over the lazy dog while caches warm up " * 4)
    cold_sim, cold_wall, warm_sim, warm_wall = [], [], [], []
    try:
        proc.wait_ready(lambda: http_status(f"{url}/health/ready") == 200, timeout=30)
        for _ in range(args.repeats):
            prefix = [rng.choice(vocab) for _ in range(4096)]
            s, w, c = request(url, prefix)
            assert c == 0
            cold_sim.append(s)
            cold_wall.append(w)
            s, w, c = request(url, prefix + [rng.choice(vocab) for _ in range(256)])
            assert c == 4096, c
            warm_sim.append(s)
            warm_wall.append(w)
    finally:
        proc.stop()

    def row(name: str, target: float, sim: list[float], wall: list[float], tol: float) -> dict[str, object]:
        med = statistics.median(sim)
        return {
            "case": name,
            "calibration_ms": round(target * 1e3, 1),
            "simulated_ms": round(med * 1e3, 1),
            "error_pct": round((med / target - 1) * 100, 1),
            "within": f"{tol:.0%}",
            "ok": abs(med / target - 1) <= tol,
            "client_wall_ms": round(statistics.median(wall) * 1e3, 1),
        }

    print(json.dumps(row("cold 4096", target_cold, cold_sim, cold_wall, 0.10)))
    print(json.dumps(row("4096 cached + 256", target_warm, warm_sim, warm_wall, 0.15)))
    print(
        json.dumps(
            {
                "cold/warm ratio simulated": round(statistics.median(cold_sim) / statistics.median(warm_sim), 2),
                "calibration": round(target_cold / target_warm, 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
