"""Levers on the ext_proc server's added latency, side by side through the real Envoy: p50/p90 at one connection
and req/s at 32 for several variants of the bare grpc.aio server (benchmarks/epp_bare_extproc.py) and of
`inferplane epp`, BUFFERED request bodies with response phases skipped, rounds interleaved.

    .venv/bin/python benchmarks/epp_envoy_latency.py [--duration 3] [--rounds 2] [--variants NAME ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from tests.support.envoy import start_envoy  # noqa: E402
from tests.support.procs import INFERPLANE, Proc  # noqa: E402

from epp_envoy_bench import BODYLESS_CONFIG, MODES, bench_rig, start_sims, stat_cpu_seconds, wrk  # noqa: E402
from inferplane.net import LOOPBACK, free_ports, port_open  # noqa: E402

BARE = [sys.executable, str(REPO / "benchmarks" / "epp_bare_extproc.py")]
# `inferplane epp` with process settings applied before it starts (for levers not yet in the picker)
EPP_WITH = "import sys; {}; from inferplane.cli import main; sys.argv[0] = 'inferplane'; raise SystemExit(main())"


@dataclass
class Variant:
    server: str  # "none" | "bare" | "epp"
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    envoy: dict[str, Any] = field(default_factory=dict)  # EnvoyConfig options
    mode: str = "buffered, response phases skipped"
    prelude: str = ""  # Python run in the picker's process before `inferplane epp`


VARIANTS: dict[str, Variant] = {
    "envoy alone": Variant("none"),
    "bare": Variant("bare"),
    "bare grpclib": Variant("bare", ["--transport", "grpclib"]),
    "bare h2grpc": Variant("bare", ["--transport", "h2grpc"]),
    "bare h2grpc fd-skip-resp": Variant(
        "bare", ["--transport", "h2grpc"], mode="full-duplex request, response phases skipped"
    ),
    "bare switch 0.5ms": Variant("bare", ["--switch-interval", "0.0005"]),
    "bare asyncio loop": Variant("bare", ["--loop", "asyncio"]),
    "bare opt=latency": Variant("bare", ["--grpc-option", "grpc.optimization_target=latency"]),
    "bare bdp off": Variant("bare", ["--grpc-option", "grpc.http2.bdp_probe=0"]),
    "bare poll=poll": Variant("bare", env={"GRPC_POLL_STRATEGY": "poll"}),
    "bare google_grpc": Variant("bare", envoy={"ext_proc_client": "google_grpc"}),
    "bare picker grpc options": Variant(
        "bare",
        [
            "--grpc-option=grpc.max_receive_message_length=67108864",
            "--grpc-option=grpc.max_send_message_length=67108864",
            "--grpc-option=grpc.so_reuseport=0",
            "--grpc-option=grpc.http2.max_pings_without_data=0",
        ],
    ),
    "bare fd-skip-resp": Variant("bare", mode="full-duplex request, response phases skipped"),
    "epp": Variant("epp"),
    "epp grpcio": Variant("epp", ["--ext-proc-server", "grpcio"]),
    "epp switch 0.5ms": Variant("epp", prelude="sys.setswitchinterval(0.0005)"),
    "epp scrape 1s": Variant("epp", ["--refresh-metrics-interval", "1s"]),
    # the default profile without the prefix producer and scorer: what prefix-aware scheduling costs per request
    "epp queue+kv profile": Variant("epp", ["--config-text", BODYLESS_CONFIG]),
    "epp fd-skip-resp": Variant("epp", mode="full-duplex request, response phases skipped"),
}


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread group of a process: the main thread, other Python threads (grpc.aio's
    completion-queue poller), gRPC's event_engine threads, and the rest."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            comm = (task / "comm").read_text().strip()
            t = stat_cpu_seconds(task / "stat")
        except OSError:
            continue
        group = "main" if task.name == str(pid) else "py-thread" if comm == "python" else comm.split("-")[0]
        group = "event_engine" if group.startswith("event_engine") else group
        out[group] = out.get(group, 0.0) + t
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-c32", action="store_true", help="latency at one connection only")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    with bench_rig() as (procs, script):
        _, endpoints = start_sims(procs, 2)
        servers: dict[str, tuple[Proc | None, int | None]] = {}
        for name in args.variants:
            v = VARIANTS[name]
            env = {**os.environ, **v.env}
            if v.server == "none":
                servers[name] = (None, None)
                continue
            if v.server == "bare":
                (g,) = free_ports(1)
                cmd = [*BARE, "--port", str(g), "--endpoints", ",".join(endpoints), *v.args]
            else:
                g, h, m = free_ports(3)
                head = [sys.executable, "-c", EPP_WITH.format(v.prelude)] if v.prelude else INFERPLANE
                cmd = [*head, "epp", "--pool-name", "bench", "--bind", LOOPBACK,
                       "--endpoints", ",".join(endpoints), "--grpc-port", str(g), "--grpc-health-port", str(h),
                       "--metrics-port", str(m), *v.args]  # fmt: skip
            p = Proc(cmd, env=env)
            procs.append(p)
            servers[name] = (p, g)
        for p, g in servers.values():
            if p is not None:
                p.wait_ready(lambda g=g: port_open(LOOPBACK, g), 60)
        time.sleep(0.5)
        results: dict[str, list[dict[str, float]]] = {}
        for _ in range(args.rounds):
            for name in args.variants:
                p, g = servers[name]
                v = VARIANTS[name]
                envoy = start_envoy(endpoints, g, **(MODES[v.mode] if g else {}), **v.envoy)
                try:
                    wrk(envoy.url, script, 4, 2, 1.0)
                    before1 = thread_cpu(p.pid) if p else {}
                    r = wrk(envoy.url, script, 1, 1, args.duration)
                    after1 = thread_cpu(p.pid) if p else {}
                    out = {**r.latency_ms, "errors": float(r.errors)}
                    out["cpu1_us"] = (sum(after1.values()) - sum(before1.values())) / (r.rps * args.duration) * 1e6
                    if not args.no_c32:
                        before = thread_cpu(p.pid) if p else {}
                        r32 = wrk(envoy.url, script, 32, 2, args.duration)
                        after = thread_cpu(p.pid) if p else {}
                        n = r32.rps * args.duration
                        out["rps"] = r32.rps
                        out["cpu_us"] = (sum(after.values()) - sum(before.values())) / n * 1e6
                        for k in after:
                            out[f"cpu_{k}"] = (after[k] - before.get(k, 0.0)) / n * 1e6
                        out["errors"] += r32.errors
                    results.setdefault(name, []).append(out)
                finally:
                    envoy.stop()
        base = statistics.median(r["p50"] for r in results.get("envoy alone", [{"p50": 0.0}]))
        print(
            "\n| variant | p50 c=1 ms (rounds) | added p50 ms | p90 c=1 ms | req/s c=32 (rounds) "
            "| server CPU µs/req c=32 | server CPU µs/req c=1 | errors |"
        )
        print("|---|---|---:|---|---|---|---|---:|")
        for name, runs in results.items():
            p50s = " / ".join(f"{r['p50']:.2f}" for r in runs)
            p90s = " / ".join(f"{r['p90']:.2f}" for r in runs)
            rps = " / ".join(f"{r['rps']:,.0f}" if "rps" in r else "–" for r in runs)
            cpu = " / ".join(f"{r['cpu_us']:.0f}" if "cpu_us" in r else "–" for r in runs)
            cpu1 = " / ".join(f"{r.get('cpu1_us', 0):.0f}" for r in runs)
            added = statistics.median(r["p50"] for r in runs) - base
            errors = sum(r["errors"] for r in runs)
            print(f"| {name} | {p50s} | {added:+.2f} | {p90s} | {rps} | {cpu} | {cpu1} | {errors:.0f} |")
        print("\nserver CPU µs/req at 32 connections by thread (median over rounds)")
        for name, runs in results.items():
            keys = sorted({k for r in runs for k in r if k.startswith("cpu_") and k != "cpu_us"})
            parts = [f"{k[4:]} {statistics.median(r.get(k, 0.0) for r in runs):.0f}" for k in keys]
            print(f"  {name}: {', '.join(parts)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
