"""Endpoint picker through the real Envoy: requests/s at 32 concurrent and added p50 latency at concurrency 1,
`inferplane epp` (default scheduling profile) side by side with a bare ext_proc server that only sets the
destination (benchmarks/epp_bare_extproc.py) on grpc.aio and on inferplane's h2grpc server, in the same body mode,
against zero-latency simulator replicas; `--grpcio` adds the picker on grpc.aio (`--ext-proc-server grpcio`).

    .venv/bin/python benchmarks/epp_envoy_bench.py [--duration 5] [--rounds 2] [--modes MODE ...] [--grpcio]

Load comes from `wrk` (C, apt package `wrk`) with a Lua script that sends ~200-byte non-streaming completions,
each with a distinct prompt, so the load generator is not the bottleneck. CPU seconds per request of every
process are read from /proc to say where the time goes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.envoy import Envoy, start_envoy  # noqa: E402
from tests.support.procs import INFERPLANE, Proc  # noqa: E402

from inferplane.net import LOOPBACK, free_ports, http_status, port_open  # noqa: E402

LUA = r"""
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"model":"m","prompt":"benchmark request %d from thread %s: ' ..
    'tell me a short fact about the sea","max_tokens":1}', counter, tostring(wrk.thread))
  return wrk.format("POST", "/v1/completions", {["Content-Type"] = "application/json"}, body)
end
"""

BODYLESS_CONFIG = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins: [{type: queue-scorer}, {type: kv-cache-utilization-scorer}]
schedulingProfiles:
- name: default
  plugins: [{pluginRef: queue-scorer, weight: 2}, {pluginRef: kv-cache-utilization-scorer, weight: 2}]
"""

GRPCIO = ["--ext-proc-server", "grpcio"]
MODES = {
    "full-duplex (upstream config)": {},
    "buffered, response phases skipped": {
        "request_body_mode": "BUFFERED",
        "response_header_mode": "SKIP",
        "response_body_mode": "NONE",
        "request_trailer_mode": "SKIP",
        "response_trailer_mode": "SKIP",
    },
    # one round trip: Envoy sends headers and body without waiting for the headers answer (BUFFERED waits for it)
    "full-duplex request, response phases skipped": {
        "request_body_mode": "FULL_DUPLEX_STREAMED",
        "response_header_mode": "SKIP",
        "response_body_mode": "NONE",
        "request_trailer_mode": "SEND",  # Envoy requires SEND with a FULL_DUPLEX_STREAMED request body
        "response_trailer_mode": "SKIP",
    },
    "headers-only": {
        "request_body_mode": "NONE",
        "response_header_mode": "SKIP",
        "response_body_mode": "NONE",
        "request_trailer_mode": "SKIP",
        "response_trailer_mode": "SKIP",
    },
}


@contextlib.contextmanager
def bench_rig() -> Iterator[tuple[list[Proc], str]]:
    """What an ext_proc benchmark starts — `procs`, stopped in reverse at exit, even on failure — and the path of
    the wrk Lua script, removed at exit."""
    procs: list[Proc] = []
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)  # noqa: SIM115
    script.write(LUA)
    script.close()
    try:
        yield procs, script.name
    finally:
        for p in reversed(procs):
            p.stop()
        os.unlink(script.name)


def start_sims(procs: list[Proc], n: int) -> tuple[list[Proc], list[str]]:
    """`n` zero-latency simulator replicas on free ports, ready; appended to `procs`. Returns them and their
    `ip:port` endpoints."""
    ports = free_ports(n)
    sims = [
        Proc([*INFERPLANE, "sim", "--model", "m", "--host", LOOPBACK, "--port", str(p), "--zero-latency"])
        for p in ports
    ]
    procs.extend(sims)
    for p, port in zip(sims, ports, strict=True):
        p.wait_ready(lambda port=port: http_status(f"http://{LOOPBACK}:{port}/health/ready") == 200, 60)
    return sims, [f"{LOOPBACK}:{p}" for p in ports]


def stat_cpu_seconds(stat: Path) -> float:
    """User + system CPU seconds from a /proc `stat` file (a process's or one of its threads')."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    return stat_cpu_seconds(Path(f"/proc/{pid}/stat"))


@dataclass
class Run:
    rps: float
    p50_ms: float
    errors: int
    cpu_us: dict[str, float] = field(default_factory=dict)


@dataclass
class WrkResult:
    rps: float
    latency_ms: dict[str, float]  # "p50", "p90", "p99"
    errors: int  # non-2xx/3xx responses and socket errors


def wrk(url: str, script: str, conns: int, threads: int, duration: float) -> WrkResult:
    out = subprocess.run(
        ["wrk", f"-c{conns}", f"-t{threads}", f"-d{max(1, round(duration))}s", "--latency", "-s", script, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = {}
    for q in ("50", "90", "99"):
        m = re.search(rf"\s{q}%\s+([\d.]+)(us|ms|s)", out)
        assert m, out
        latency[f"p{q}"] = float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errs = re.search(r"Socket errors:.*?(\d+).*?(\d+).*?(\d+).*?(\d+)", out)
    errors = (int(bad.group(1)) if bad else 0) + (sum(int(x) for x in errs.groups()) if errs else 0)
    return WrkResult(rps, latency, errors)


def measure(envoy: Envoy, script: str, duration: float, watch: dict[str, int]) -> Run:
    wrk(envoy.url, script, 8, 1, 1.0)  # warm connections and caches
    before = {k: cpu_seconds(pid) for k, pid in watch.items()}
    loaded = wrk(envoy.url, script, 32, 2, duration)
    after = {k: cpu_seconds(pid) for k, pid in watch.items()}
    total = loaded.rps * duration
    cpu_us = {k: (after[k] - before[k]) / total * 1e6 for k in watch}
    single = wrk(envoy.url, script, 1, 1, min(duration, 3.0))
    return Run(loaded.rps, single.latency_ms["p50"], loaded.errors + single.errors, cpu_us)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--modes", nargs="+", choices=sorted(MODES), default=sorted(MODES), metavar="MODE",
                        help="body modes to run (quote the names); all by default")  # fmt: skip
    parser.add_argument("--grpcio", action="store_true", help="also run the picker with --ext-proc-server grpcio")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    with bench_rig() as (procs, script):
        sims, endpoints = start_sims(procs, args.replicas)
        pickers: dict[str, tuple[Proc, int]] = {}
        epp_variants = [("epp", []), ("epp-bodyless", ["--config-text", BODYLESS_CONFIG])]
        if args.grpcio:
            epp_variants += [
                ("epp-grpcio", GRPCIO),
                ("epp-bodyless-grpcio", ["--config-text", BODYLESS_CONFIG, *GRPCIO]),
            ]
        for name, extra in epp_variants:
            g, h, m = free_ports(3)
            p = Proc(
                [*INFERPLANE, "epp", "--pool-name", "bench", "--bind", LOOPBACK, "--endpoints", ",".join(endpoints),
                 "--grpc-port", str(g), "--grpc-health-port", str(h), "--metrics-port", str(m), *extra]
            )  # fmt: skip
            procs.append(p)
            pickers[name] = (p, g)
        (bp,) = free_ports(1)
        bare = Proc([sys.executable, str(REPO / "benchmarks" / "epp_bare_extproc.py"), "--port", str(bp),
                     "--endpoints", ",".join(endpoints)])  # fmt: skip
        procs.append(bare)
        pickers["bare"] = (bare, bp)
        (hp,) = free_ports(1)
        bare_h2 = Proc([sys.executable, str(REPO / "benchmarks" / "epp_bare_extproc.py"), "--port", str(hp),
                        "--endpoints", ",".join(endpoints), "--transport", "h2grpc"])  # fmt: skip
        procs.append(bare_h2)
        pickers["bare-h2"] = (bare_h2, hp)
        for p, port in pickers.values():
            p.wait_ready(lambda port=port: port_open(LOOPBACK, port), 60)
        time.sleep(0.5)  # first scrapes

        sims_watch = {f"sim{i}": p.pid for i, p in enumerate(sims)}
        results: dict[str, list[Run]] = {}

        def run(label: str, ext_proc: int | None, picker: str | None, **mode: str) -> None:
            envoy = start_envoy(endpoints, ext_proc, **mode)
            try:
                watch = {"envoy": envoy.proc.pid, **sims_watch}
                if picker:
                    watch[picker] = pickers[picker][0].pid
                results.setdefault(label, []).append(measure(envoy, script, args.duration, watch))
            finally:
                envoy.stop()

        for _ in range(args.rounds):
            run("Envoy alone (no ext_proc)", None, None)
            for mode_name, mode in MODES.items():
                if mode_name not in args.modes:
                    continue
                run(f"{mode_name}: bare grpc.aio server", pickers["bare"][1], "bare", **mode)
                run(f"{mode_name}: bare h2grpc server", pickers["bare-h2"][1], "bare-h2", **mode)
                epp = "epp-bodyless" if mode_name == "headers-only" else "epp"
                run(f"{mode_name}: inferplane epp", pickers[epp][1], epp, **mode)
                if args.grpcio:
                    run(
                        f"{mode_name}: inferplane epp on grpc.aio", pickers[epp + "-grpcio"][1], epp + "-grpcio", **mode
                    )

        base_p50 = statistics.median(r.p50_ms for r in results["Envoy alone (no ext_proc)"])
        print(f"\n{args.replicas} zero-latency simulator replicas, Envoy --concurrency 2, wrk 32 conns × "
              f"{args.duration:.0f} s, best of {args.rounds} rounds; p50 at 1 connection\n")  # fmt: skip
        print("| configuration | req/s (32 conc.) | ratio to bare grpc.aio | p50 c=1 (ms) | "
              "added p50 vs Envoy alone (ms) | "
              "CPU µs/req: picker / Envoy / simulators | errors |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---|---:|")
        bare_rps: dict[str, float] = {}
        for label, runs in results.items():
            best = max(runs, key=lambda r: r.rps)
            p50 = statistics.median(r.p50_ms for r in runs)
            mode_name = label.split(":")[0]
            if "bare grpc.aio" in label:
                bare_rps[mode_name] = best.rps
            ratio = (
                f"{best.rps / bare_rps[mode_name]:.2f}" if "bare grpc" not in label and mode_name in bare_rps else ""
            )
            picker = next((v for k, v in best.cpu_us.items() if k in pickers), 0.0)
            sims_cpu = sum(v for k, v in best.cpu_us.items() if k.startswith("sim"))
            print(
                f"| {label} | {best.rps:,.0f} | {ratio} | {p50:.2f} | {p50 - base_p50:+.2f} | "
                f"{picker:.0f} / {best.cpu_us['envoy']:.0f} / {sims_cpu:.0f} | {sum(r.errors for r in runs)} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
