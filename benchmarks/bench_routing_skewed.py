"""Cache-aware routers under skewed prefix popularity: the headline setup with a Zipf-distributed choice of group.

    .venv/bin/python benchmarks/bench_routing_skewed.py [--rate 4] [--duration 60] [--zipf 1.1] [--out DIR]

Same deployment, profile, KV sizing and time scale as bench_routing_headline.py, but the 30 shared-prefix groups are
not equally popular: group g is chosen with probability proportional to 1 / (g + 1)^s. Pure affinity then piles the
hot groups onto one replica; a router must trade cache hits against load. inference-perf's `shared_prefix` has no
popularity knob, so the requests are written as a trace (JSONL with timestamps from a seeded Poisson process and the
full prompt text) and replayed identically against each configuration with `--workload trace:path=...`.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from bench_routing_headline import compact, compare_argv
from inferplane.bench.metrics import Summary
from inferplane.bench.workloads.text import rng_for, synth_text
from inferplane.cli import main as inferplane

REPO = Path(__file__).resolve().parent.parent


def write_trace(path: Path, *, groups: int, rate: float, duration: float, zipf: float, seed: int) -> int:
    systems = [synth_text(2000, rng_for(seed, "system", g)) for g in range(groups)]
    questions = [[synth_text(300, rng_for(seed, "question", g, p)) for p in range(5)] for g in range(groups)]
    weights = [1.0 / (g + 1) ** zipf for g in range(groups)]
    rng = random.Random(f"{seed}:skewed")
    t, rows = 0.0, []
    while True:
        t += rng.expovariate(rate)
        if t >= duration:
            break
        g = rng.choices(range(groups), weights)[0]
        prompt = systems[g] + "\n" + rng.choice(questions[g])
        rows.append({"timestamp": round(t, 4), "prompt": prompt, "output_len": 200, "session_id": f"group-{g}"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return len(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedulers", default="round-robin,prefix,prefix-balanced,precise-prefix")
    parser.add_argument("--peers", default="sglang-router:cache_aware,vllm-router:cache_aware")
    parser.add_argument("--rate", type=float, default=4.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--zipf", type=float, default=1.1)
    parser.add_argument("--groups", type=int, default=30)
    parser.add_argument("--time-scale", type=float, default=10.0)
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.28)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "routing-skewed")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    trace = args.out / "trace.jsonl"
    n = write_trace(trace, groups=args.groups, rate=args.rate, duration=args.duration, zipf=args.zipf, seed=0)
    print(f"{n} requests over {args.duration:g} s at {args.rate:g} req/s, zipf s={args.zipf:g}", flush=True)
    argv = compare_argv(args, f"trace:path={trace}", "--seed", "0")
    print("inferplane " + " ".join(argv), flush=True)
    sys.argv = ["inferplane", *argv]  # the report records the inferplane command, not this script
    status = inferplane(argv)
    trace.unlink()  # megabytes of prompt text; the command regenerates it
    if (args.out / "results.json").exists():
        compact(args.out)
    print("\n".join(table(args.out)))
    return status


def table(out: Path) -> list[str]:
    """One Markdown row per configuration, the replicas' shares in port order."""
    summary = json.loads((out / "summary.json").read_text())
    rows = [
        "| configuration | TTFT p90 | TTFT p99 | TPOT p90 | E2E p90 | output tok/s | cache hit "
        "| requests per replica |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in summary["runs"]:
        s = Summary.from_json(run["stages"][summary["stage"]])
        if s.ttft is None or s.tpot is None or s.e2e is None:
            rows.append(f"| {run['label']} | no successful request |")
            continue
        split = " / ".join(str(n) for _, n in sorted(s.replicas.items()))
        rows.append(
            f"| {run['label']} | {s.ttft.p90:.3f} s | {s.ttft.p99:.2f} s | {s.tpot.p90 * 1000:.1f} ms | "
            f"{s.e2e.p90:.2f} s | {s.output_tokens_per_s:.0f} | {100 * (s.cache_hit_rate or 0):.1f} % | {split} |"
        )
    return rows


if __name__ == "__main__":
    sys.exit(main())
