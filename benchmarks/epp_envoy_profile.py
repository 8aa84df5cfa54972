"""Where the endpoint picker's time goes under load through the real Envoy: `py-spy` (pip install py-spy; not a
project dependency) samples `inferplane epp` while `wrk` drives 32 connections (or `--connections`) of ~200-byte
completions in the given body mode, then prints the functions by own and inclusive share of the samples.

    .venv/bin/python benchmarks/epp_envoy_profile.py [--mode buffered|full-duplex|headers-only] [--seconds 8]
        [--connections 32]
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from tests.support.envoy import start_envoy  # noqa: E402
from tests.support.procs import INFERPLANE, Proc  # noqa: E402

from epp_envoy_bench import BODYLESS_CONFIG, LUA, MODES, start_sims, wrk  # noqa: E402
from inferplane.net import LOOPBACK, free_ports, port_open  # noqa: E402

MODE_NAMES = {"full-duplex": "full-duplex (upstream config)", "buffered": "buffered, response phases skipped",
              "headers-only": "headers-only"}  # fmt: skip


def summarize(raw: Path, top: int) -> None:
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        count = int(n)
        total += count
        frames = stack.split(";")
        own[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
    print(f"{total} samples")
    print("\nown time:")
    for f, n in own.most_common(top):
        print(f"  {100 * n / total:5.1f} %  {f}")
    print("\ninclusive:")
    for f, n in incl.most_common(top):
        print(f"  {100 * n / total:5.1f} %  {f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mode", choices=sorted(MODE_NAMES), default="buffered")
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--connections", type=int, default=32, help="wrk connections (1: the added-latency case)")
    args = ap.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    procs: list[Proc] = []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "req.lua"
        script.write_text(LUA)
        raw = Path(tmp) / "epp.txt"
        try:
            _, endpoints = start_sims(procs, 2)
            g, h, m = free_ports(3)
            extra = ["--config-text", BODYLESS_CONFIG] if args.mode == "headers-only" else []
            epp = Proc([*INFERPLANE, "epp", "--pool-name", "bench", "--bind", LOOPBACK, "--endpoints",
                        ",".join(endpoints), "--grpc-port", str(g), "--grpc-health-port", str(h),
                        "--metrics-port", str(m), *extra])  # fmt: skip
            procs.append(epp)
            epp.wait_ready(lambda: port_open(LOOPBACK, g), 60)
            time.sleep(0.5)
            envoy = start_envoy(endpoints, g, **MODES[MODE_NAMES[args.mode]])
            try:
                wrk(envoy.url, str(script), 8, 1, 1.0)
                rec = subprocess.Popen(
                    [spy, "record", "--pid", str(epp.pid), "--format", "raw", "--rate", "250", "--nonblocking",
                     "--duration", str(args.seconds), "--output", str(raw)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                time.sleep(0.5)
                res = wrk(envoy.url, str(script), args.connections, min(2, args.connections), args.seconds)
                rps, errors = res.rps, res.errors
                rec.wait(timeout=args.seconds + 30)
            finally:
                envoy.stop()
            print(f"{args.mode}: {rps:,.0f} req/s at {args.connections} connections, {errors} errors")
            summarize(raw, args.top)
        finally:
            for p in reversed(procs):
                p.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
