"""Resident memory of one `inferplane sim --replicas N` process (default 16), idle and after traffic to every
replica, for each profile given (the KV block count differs per profile).

    .venv/bin/python benchmarks/sim_memory.py [--replicas 16] [--profiles zero h200-gemma-2b]
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.procs import INFERPLANE, Proc

from inferplane.net import free_consecutive_ports, http_status


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def measure(profile: str, replicas: int) -> dict[str, object]:
    port = free_consecutive_ports(replicas)
    argv = [*INFERPLANE, "sim", "--model", "m", "--port", str(port), "--host", "127.0.0.1"]
    argv += ["--profile", profile, "--replicas", str(replicas), "--time-scale", "0.001"]
    proc = Proc(argv)
    try:
        for i in range(replicas):
            proc.wait_ready(lambda i=i: http_status(f"http://127.0.0.1:{port + i}/health/ready") == 200, timeout=60)
        idle = rss_mb(proc.pid)
        prompt = "a shared system prompt for every replica " * 100
        for i in range(replicas):
            for k in range(5):
                body = json.dumps({"prompt": f"{prompt} {k}", "max_tokens": 64, "ignore_eos": True}).encode()
                req = urllib.request.Request(
                    f"http://127.0.0.1:{port + i}/v1/completions", body, {"Content-Type": "application/json"}
                )
                urllib.request.urlopen(req, timeout=30).read()
            urllib.request.urlopen(f"http://127.0.0.1:{port + i}/metrics", timeout=10).read()
        return {
            "profile": profile,
            "replicas": replicas,
            "rss_idle_mb": round(idle),
            "rss_after_mb": round(rss_mb(proc.pid)),
        }
    finally:
        proc.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--replicas", type=int, default=16)
    ap.add_argument("--profiles", nargs="+", default=["zero", "h100-llama-8b", "h200-gemma-2b"])
    args = ap.parse_args()
    for profile in args.profiles:
        print(json.dumps(measure(profile, args.replicas)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
