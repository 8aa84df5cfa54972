"""CPU cost of the simulator's `/metrics` page: the endpoint picker scrapes every replica every 50 ms, so an idle
replica pays for 20 scrapes a second.

    .venv/bin/python benchmarks/sim_metrics_cost.py [--scrapes 2000] [--rounds 3]

In process (thread CPU per call, both sides in one run, interleaved): prometheus_client's `generate_latest` over the
engine's registry (the page as it was rendered before) vs `EngineMetrics.exposition()`, for an idle replica (nothing
changed between scrapes) and a busy one (tokens and a finished request between scrapes); the two pages are checked
byte-identical first.

Over HTTP (a real `inferplane sim` process, one keep-alive connection): the simulator process's CPU per GET from
/proc/<pid>/stat, `/metrics` vs `/health` (the aiohttp request floor), so the page's own share is the difference.
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client import generate_latest
from tests.support.procs import INFERPLANE, Proc

from inferplane.net import LOOPBACK, free_port, http_status
from inferplane.sim.engine import Sequence
from inferplane.sim.metrics import EngineMetrics


def engine_metrics() -> tuple[EngineMetrics, list[int]]:
    m = EngineMetrics(
        model_name="meta-llama/Llama-3.1-8B-Instruct",
        engine="0",
        block_size=16,
        num_gpu_blocks=31250,
        max_model_len=8192,
        max_loras=4,
    )
    state = [0]
    m.bind_state(lambda: state[0] % 7, lambda: state[0] % 3, lambda: (state[0] % 100) / 100, lambda: (["a"], []))
    return m, state


def finished_seq(i: int) -> Sequence:
    seq = Sequence(f"r{i}", list(range(500 + i)), [], 64, "length", "")
    seq.num_cached, seq.num_output, seq.first_scheduled = 256, 40, 0.01
    seq.first_token_time, seq.finish_time, seq.finish_reason = 0.05 + i * 1e-4, 1.2 + i * 1e-3, "length"
    return seq


def cpu_per_call(fn: object, n: int, between: object = None) -> float:
    total = 0.0
    for _ in range(n):
        if between is not None:
            between()  # type: ignore[operator]
        t0 = time.thread_time()
        fn()  # type: ignore[operator]
        total += time.thread_time() - t0
    return total / n


def in_process(scrapes: int, rounds: int) -> None:
    m, state = engine_metrics()
    for i in range(300):
        seq = finished_seq(i)
        m.on_admitted(seq)
        m.on_first_token(seq)
        m.on_tokens(8, {0.02: 5, 0.03: 3})
        m.on_finished(seq, 64)
    reference = generate_latest(m.registry)
    mine = m.exposition()
    assert mine == reference, "exposition() must be byte-identical to prometheus_client's"
    print(f"page: {len(mine)} bytes, identical to generate_latest")
    k = [0]

    def busy() -> None:
        k[0] += 1
        state[0] += 1
        m.on_tokens(4, {0.021: 4})
        m.on_finished(finished_seq(k[0] % 50), 64)

    for r in range(rounds):
        row = []
        for label, between in (("idle", None), ("busy", busy)):
            ref = cpu_per_call(lambda: generate_latest(m.registry), scrapes, between)
            new = cpu_per_call(m.exposition, scrapes, between)
            row.append(f"{label}: generate_latest {ref * 1e6:7.1f} µs, exposition() {new * 1e6:6.1f} µs "
                       f"({ref / new:5.1f}x)")  # fmt: skip
        print(f"round {r + 1}: " + "; ".join(row))


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def over_http(scrapes: int, rounds: int) -> None:
    port = free_port()
    argv = [*INFERPLANE, "sim", "--model", "m", "--host", LOOPBACK, "--port", str(port), "--zero-latency"]
    sim = Proc(argv)
    try:
        sim.wait_ready(lambda: http_status(f"http://{LOOPBACK}:{port}/health/ready") == 200, 60)
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
        size = 0
        for r in range(rounds):
            row = []
            for path in ("/health", "/metrics"):
                for _ in range(50):  # warm the connection and the handler
                    conn.request("GET", path)
                    conn.getresponse().read()
                c0 = proc_cpu(sim.pid)
                for _ in range(scrapes):
                    conn.request("GET", path)
                    body = conn.getresponse().read()
                per = (proc_cpu(sim.pid) - c0) / scrapes
                size = max(size, len(body))
                row.append(f"{path} {per * 1e6:6.0f} µs")
            print(f"round {r + 1}: simulator CPU per GET: " + ", ".join(row) + f" ({size}-byte page)")
        conn.close()
    finally:
        sim.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scrapes", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-http", action="store_true")
    args = ap.parse_args()
    print(f"load average: {os.getloadavg()[0]:.1f}")
    in_process(args.scrapes, args.rounds)
    if not args.no_http:
        over_http(args.scrapes, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
