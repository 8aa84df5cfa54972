"""Simulator streaming throughput: tokens/s over N concurrent SSE streams against one `inferplane sim` process with
the zero-latency profile (the simulator must never be the bottleneck of a gateway benchmark).

    .venv/bin/python benchmarks/sim_throughput.py [--streams 128] [--seconds 10] [--max-tokens 512]

Reports wall-clock tokens/s and tokens per CPU-second of the simulator process (from /proc: user + system time),
which is what "on one core" means on a shared machine. The load client is a small aiohttp loop in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.procs import INFERPLANE, Proc

from inferplane.net import free_port, http_status


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_stream(session: aiohttp.ClientSession, url: str, max_tokens: int) -> int:
    body = {
        "model": "sim",
        "prompt": "Benchmark the simulator streaming path with a short prompt.",
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    tokens = 0
    async with session.post(url, json=body) as resp:
        resp.raise_for_status()
        async for line in resp.content:
            if line.startswith(b'data: {"id"') and b'"usage"' in line:
                tokens = json.loads(line[6:])["usage"]["completion_tokens"]
    return tokens


async def load(port: int, streams: int, seconds: float, max_tokens: int) -> tuple[int, float, int]:
    url = f"http://127.0.0.1:{port}/v1/completions"
    deadline = time.monotonic() + seconds
    total = 0
    requests = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal total, requests
        while time.monotonic() < deadline:
            n = await one_stream(session, url, max_tokens)  # await first: `total += await` would lose updates
            total += n
            requests += 1

    conn = aiohttp.TCPConnector(limit=streams)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=120)) as session:
        start = time.monotonic()
        await asyncio.gather(*(worker(session) for _ in range(streams)))
        return total, time.monotonic() - start, requests


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--streams", type=int, default=128)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--max-tokens", type=int, default=512)
    args = ap.parse_args()
    port = free_port()
    argv = [*INFERPLANE, "sim", "--model", "sim", "--port", str(port), "--host", "127.0.0.1", "--zero-latency"]
    argv += ["--max-num-seqs", str(max(256, args.streams))]
    proc = Proc(argv)
    try:
        proc.wait_ready(lambda: http_status(f"http://127.0.0.1:{port}/health/ready") == 200, timeout=30)
        cpu0 = cpu_seconds(proc.pid)
        total, wall, requests = asyncio.run(load(port, args.streams, args.seconds, args.max_tokens))
        cpu = cpu_seconds(proc.pid) - cpu0
    finally:
        proc.stop()
    print(
        json.dumps(
            {
                "streams": args.streams,
                "requests": requests,
                "tokens": total,
                "wall_s": round(wall, 2),
                "tokens_per_s": round(total / wall),
                "sim_cpu_s": round(cpu, 2),
                "tokens_per_sim_cpu_s": round(total / cpu) if cpu else None,
                "sim_cpu_share": round(cpu / wall, 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
