"""What `inferplane up` adds in front of the model servers: Envoy + endpoint picker (pattern 3), and Envoy + body-based
router + endpoint picker (pattern 2), against the same simulator replicas reached directly.

Both sides run in one process, interleaved round by round (direct, gateway, direct, gateway, ...), closed loop at a
fixed concurrency, streaming and not, against zero-latency simulators so that every millisecond measured is transport
and routing. Reported: requests/s, p50/p99 end-to-end latency (and time to first token when streaming), and what the
gateway adds.

    .venv/bin/python benchmarks/runtime_overhead.py --duration 5 --rounds 2 --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from inferplane.runtime import Runtime

PROMPT = "Summarise the benefits of prefix caching for a shared system prompt in two sentences."


@dataclass
class Sample:
    latencies: list[float] = field(default_factory=list)
    ttfts: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    def add(self, other: Sample) -> None:
        self.latencies += other.latencies
        self.ttfts += other.ttfts
        self.errors += other.errors
        self.seconds += other.seconds

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


async def one(session: aiohttp.ClientSession, url: str, model: str, stream: bool, out: Sample) -> None:
    body = {"model": model, "prompt": PROMPT, "max_tokens": 16, "stream": stream}
    start = time.perf_counter()
    try:
        async with session.post(url + "/v1/completions", json=body) as resp:
            if resp.status != 200:
                await resp.read()
                out.errors += 1
                return
            if not stream:
                await resp.read()
            else:
                first = None
                async for line in resp.content:
                    if first is None and line.startswith(b"data: {"):
                        first = time.perf_counter() - start
                out.ttfts.append(first if first is not None else float("nan"))
    except aiohttp.ClientError:
        out.errors += 1
        return
    out.latencies.append(time.perf_counter() - start)


async def closed_loop(targets: list[tuple[str, str]], stream: bool, concurrency: int, duration: float) -> Sample:
    """`concurrency` workers, each sending back to back for `duration` seconds; targets are (base URL, model),
    taken round robin (direct: one per replica; gateway: one per model)."""
    out = Sample()
    cycle = itertools.cycle(targets)
    deadline = time.perf_counter() + duration
    limit = aiohttp.TCPConnector(limit=concurrency * 2)
    async with aiohttp.ClientSession(connector=limit, timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def worker() -> None:
            n = 0
            while time.perf_counter() < deadline and n < 100_000:
                url, model = next(cycle)
                await one(session, url, model, stream, out)
                n += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        out.seconds = time.perf_counter() - start
    return out


def measure(rt: Runtime, args: argparse.Namespace) -> list[dict[str, object]]:
    plan = rt.running_plan
    direct = [(f"http://{c.endpoint}", c.served_names[0]) for c in plan.servers()]
    gateway = [(rt.base_url, m) for m in plan.models]
    rows = []
    for stream in (False, True):
        sides = {"direct": Sample(), "gateway": Sample()}
        asyncio.run(closed_loop(gateway, stream, args.concurrency, 1.0))  # warm connections and caches
        for _ in range(args.rounds):
            for side, targets in (("direct", direct), ("gateway", gateway)):
                sides[side].add(asyncio.run(closed_loop(targets, stream, args.concurrency, args.duration)))
        d, g = sides["direct"], sides["gateway"]
        row: dict[str, object] = {"stream": stream}
        for name, s in sides.items():
            row[name] = {
                "rps": round(s.rps, 1),
                "p50_ms": round(pct(s.latencies, 50) * 1000, 2),
                "p99_ms": round(pct(s.latencies, 99) * 1000, 2),
                "ttft_p50_ms": round(pct(s.ttfts, 50) * 1000, 2) if stream else None,
                "errors": s.errors,
                "requests": len(s.latencies),
            }
        row["added_p50_ms"] = round((pct(g.latencies, 50) - pct(d.latencies, 50)) * 1000, 2)
        row["added_p99_ms"] = round((pct(g.latencies, 99) - pct(d.latencies, 99)) * 1000, 2)
        row["rps_ratio"] = round(g.rps / d.rps, 3) if d.rps else None
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--patterns", default="pattern3-caching,pattern2-multimodel")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per side per round")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    results = {}
    for pattern in args.patterns.split(","):
        with tempfile.TemporaryDirectory() as tmp, Runtime(pattern, port=0, state_dir=tmp, profile="zero") as rt:
            chain = "Envoy + BBR + EPP" if rt.running_plan.bbr_address else "Envoy + EPP"
            results[pattern] = {"chain": chain, "rows": measure(rt, args)}
    print("| pattern | through | streaming | direct req/s | gateway req/s | ratio | direct p50 / p99 ms | "
          "gateway p50 / p99 ms | added p50 / p99 ms | TTFT p50 direct / gateway ms | errors |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for pattern, res in results.items():
        for row in res["rows"]:  # type: ignore[attr-defined]
            d, g = row["direct"], row["gateway"]
            ttft = f"{d['ttft_p50_ms']} / {g['ttft_p50_ms']}" if row["stream"] else "-"
            print(
                f"| {pattern} | {res['chain']} | {'yes' if row['stream'] else 'no'} | {d['rps']} | {g['rps']} | "
                f"{row['rps_ratio']} | {d['p50_ms']} / {d['p99_ms']} | {g['p50_ms']} / {g['p99_ms']} | "
                f"{row['added_p50_ms']} / {row['added_p99_ms']} | {ttft} | {d['errors']} / {g['errors']} |"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
