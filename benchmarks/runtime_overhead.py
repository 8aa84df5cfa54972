"""What `inferplane up` adds in front of the model servers: Envoy + endpoint picker (pattern 3), and Envoy + body-based
router + endpoint picker (pattern 2), against the same simulator replicas reached directly.

Both sides run in one process, interleaved round by round (direct, gateway, direct, gateway, ...), closed loop at a
fixed concurrency, streaming and not, against zero-latency simulators so that every millisecond measured is transport
and routing. Reported: requests/s, p50/p99 end-to-end latency (and time to first token when streaming), and what the
gateway adds.

    .venv/bin/python benchmarks/runtime_overhead.py --duration 5 --rounds 2 --concurrency 32

`--hops` instead splits the gateway's cost hop by hop: beside the running Envoy, more Envoys start from the generated
bootstrap with one processor taken out (without the body-based router, the client sends X-Gateway-Model-Name itself;
without the endpoint picker, Envoy's fallback round robin chooses), all on the same pickers, router and simulators,
interleaved round by round with the direct side (non-streaming):

    .venv/bin/python benchmarks/runtime_overhead.py --hops --concurrency 1 --duration 3 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from inferplane.gateway import EnvoyProcess, find_envoy_binary
from inferplane.net import free_port
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


@dataclass(frozen=True)
class Target:
    url: str
    model: str
    headers: tuple[tuple[str, str], ...] = ()


async def one(session: aiohttp.ClientSession, target: Target, stream: bool, out: Sample) -> None:
    body = {"model": target.model, "prompt": PROMPT, "max_tokens": 16, "stream": stream}
    start = time.perf_counter()
    try:
        async with session.post(target.url + "/v1/completions", json=body, headers=dict(target.headers)) as resp:
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


async def closed_loop(targets: list[Target], stream: bool, concurrency: int, duration: float) -> Sample:
    """`concurrency` workers, each sending back to back for `duration` seconds; targets are taken round robin
    (direct: one per replica; gateway: one per model)."""
    out = Sample()
    cycle = itertools.cycle(targets)
    deadline = time.perf_counter() + duration
    limit = aiohttp.TCPConnector(limit=concurrency * 2)
    async with aiohttp.ClientSession(connector=limit, timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def worker() -> None:
            n = 0
            while time.perf_counter() < deadline and n < 100_000:
                await one(session, next(cycle), stream, out)
                n += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        out.seconds = time.perf_counter() - start
    return out


def measure(rt: Runtime, args: argparse.Namespace) -> list[dict[str, object]]:
    plan = rt.running_plan
    direct = [Target(f"http://{c.endpoint}", c.served_names[0]) for c in plan.servers()]
    gateway = [Target(rt.base_url, m) for m in plan.models]
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


def summary(s: Sample) -> dict[str, Any]:
    return {
        "rps": round(s.rps, 1),
        "p50_ms": round(pct(s.latencies, 50) * 1000, 2),
        "p99_ms": round(pct(s.latencies, 99) * 1000, 2),
        "errors": s.errors,
        "requests": len(s.latencies),
    }


# ------------------------------------------------------------------------------------------ hop by hop

Mutation = Callable[[dict[str, Any]], None]


def _connection_managers(bootstrap: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for listener in bootstrap["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for f in chain["filters"]:
                yield f["typed_config"]


def without_bbr(bootstrap: dict[str, Any]) -> None:
    """No body-based router; the client's own X-Gateway-Model-Name is trusted instead."""
    for hcm in _connection_managers(bootstrap):
        hcm["http_filters"] = [f for f in hcm["http_filters"] if not f["name"].endswith("/bbr")]
        for ext in hcm.get("early_header_mutation_extensions", []):
            mutations = ext["typed_config"]["mutations"]
            ext["typed_config"]["mutations"] = [m for m in mutations if "model-name" not in m["remove"]]


def without_pickers(bootstrap: dict[str, Any]) -> None:
    """No endpoint picker: the pool cluster's fallback round robin chooses."""
    for hcm in _connection_managers(bootstrap):
        hcm["http_filters"] = [f for f in hcm["http_filters"] if "/pool/" not in f["name"]]
        for vhost in hcm["route_config"]["virtual_hosts"]:
            for route in vhost["routes"]:
                route.pop("typed_per_filter_config", None)


def variants(has_bbr: bool) -> dict[str, tuple[Mutation, ...]]:
    out: dict[str, tuple[Mutation, ...]] = {}
    if has_bbr:
        out["Envoy + EPP (client sends the model header)"] = (without_bbr,)
        out["Envoy + BBR (round robin, no picker)"] = (without_pickers,)
        out["Envoy only"] = (without_bbr, without_pickers)
    else:
        out["Envoy only (round robin, no picker)"] = (without_pickers,)
    return out


@contextmanager
def variant_gateway(rt: Runtime, workdir: Path, mutations: tuple[Mutation, ...]) -> Iterator[str]:
    """One more Envoy from the running deployment's bootstrap, changed by `mutations`, on a free port; it reads the
    same EDS files, so it reaches the same replicas and pickers. Yields its base URL."""
    bootstrap = json.loads(Path(rt.running_plan.envoy_config).read_text())
    config = copy.deepcopy(bootstrap)
    for mutate in mutations:
        mutate(config)
    port = free_port()
    for listener in config["static_resources"]["listeners"]:
        listener["address"]["socket_address"]["port_value"] = port
    config["admin"]["address"]["socket_address"]["port_value"] = 0
    workdir.mkdir(parents=True)
    (workdir / "envoy.yaml").write_text(json.dumps(config))
    with EnvoyProcess(find_envoy_binary(None), workdir) as envoy:
        envoy.wait_ready()
        yield f"http://127.0.0.1:{port}"


def hops(rt: Runtime, args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    plan = rt.running_plan
    chain = "Envoy + BBR + EPP" if plan.bbr_address else "Envoy + EPP"
    sides: dict[str, list[Target]] = {
        "direct": [Target(f"http://{c.endpoint}", c.served_names[0]) for c in plan.servers()],
        f"{chain} (as generated)": [Target(rt.base_url, m) for m in plan.models],
    }
    with ExitStack() as stack:
        for i, (name, mutations) in enumerate(variants(plan.bbr_address is not None).items()):
            url = stack.enter_context(variant_gateway(rt, workdir / f"variant-{i}", mutations))
            own_header = without_bbr in mutations
            sides[name] = [Target(url, m, (("X-Gateway-Model-Name", m),) if own_header else ()) for m in plan.models]
        for targets in sides.values():
            asyncio.run(closed_loop(targets, False, args.concurrency, 1.0))  # warm connections and caches
        samples = {name: Sample() for name in sides}
        for _ in range(args.rounds):
            for name, targets in sides.items():
                samples[name].add(asyncio.run(closed_loop(targets, False, args.concurrency, args.duration)))
    base = pct(samples["direct"].latencies, 50)
    rows = []
    for name, sample in samples.items():
        row = {"through": name, **summary(sample)}
        row["added_p50_ms"] = round((pct(sample.latencies, 50) - base) * 1000, 2)
        rows.append(row)
    return rows


def print_hops(results: dict[str, list[dict[str, Any]]], concurrency: int) -> None:
    print(f"| pattern | through (concurrency {concurrency}, non-streaming) | req/s | p50 / p99 ms | "
          "added p50 ms vs direct | errors |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for pattern, rows in results.items():
        for r in rows:
            print(
                f"| {pattern} | {r['through']} | {r['rps']} | {r['p50_ms']} / {r['p99_ms']} | {r['added_p50_ms']} | "
                f"{r['errors']} |"
            )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--patterns", default="pattern3-caching,pattern2-multimodel")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per side per round")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--hops", action="store_true", help="split the gateway's cost hop by hop (see above)")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    if args.hops:
        by_pattern = {}
        for pattern in args.patterns.split(","):
            with tempfile.TemporaryDirectory() as tmp, Runtime(pattern, port=0, state_dir=tmp, profile="zero") as rt:
                by_pattern[pattern] = hops(rt, args, Path(tmp) / "variants")
        print_hops(by_pattern, args.concurrency)
        if args.json:
            args.json.write_text(json.dumps(by_pattern, indent=2))
        return 0
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
