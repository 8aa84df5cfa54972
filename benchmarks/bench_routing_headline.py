"""The routing headline: prefix-aware routing against round robin and the peer routers' cache-aware policies.

    .venv/bin/python benchmarks/bench_routing_headline.py [--rates 4,6,8] [--duration 40] [--seed N] [--out DIR]
    .venv/bin/python benchmarks/bench_routing_headline.py --table DIR [DIR ...]   # per-run Markdown table

Pattern 3 (deployments/pattern3-caching: three Llama-3.1-8B replicas with prefix caching) on the simulator's H100
8B profile, a shared-prefix workload (30 groups x 5 prompts, 2,000-token system prompts, 300-token questions,
200-token outputs) and a Poisson ladder of rates, run by `inferplane bench compare` for the scheduler configurations
and, when installed, sglang-router and vllm-router (cache_aware and round_robin) in front of identical replicas.

The replicas' KV cache is sized (`--gpu-memory-utilization`) so that the workload's resident set is about 73 % of
the pool's KV capacity, the ratio of llm-d's 73-capacity benchmark: each replica can hold about a third of the
prefixes, so only routing that keeps each group on one replica avoids re-prefilling. With the default 0.90 every
replica would hold every prefix after one pass and any routing would look alike.

The simulated H100 runs ten times slower than real time (`--time-scale 10`): at real speed round robin saturates near
30 requests/s of 2,300-token prompts with 200-token streamed answers, more than two shared CPU cores can push through
Envoy, the picker and three simulator processes. Every latency in the results is therefore 10x the H100 figure and
every rate a tenth of it; ratios between configurations are unaffected.

Prints the comparison and checks the target for `--headline` (default `predicted-ttft`): TTFT p90 at least 5x lower
than `round-robin` at the highest common rate, and lower TTFT p90 and higher output tokens/s than each peer's
cache-aware policy. The other inferplane configurations that ran are reported beside it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from inferplane.bench.metrics import Summary
from inferplane.bench.report import highest_common_stage
from inferplane.bench.results import RunResult
from inferplane.cli import main as inferplane

REPO = Path(__file__).resolve().parent.parent


def compare_argv(args: argparse.Namespace, workload: str, *load: str) -> list[str]:
    """`inferplane bench compare` of pattern 3 on the H100 8B profile with the routing benchmarks' KV sizing and
    time scale (shared by this script and bench_routing_skewed.py); `load` adds rates, durations and the seed."""
    return [
        "bench", "compare", str(REPO / "deployments" / "pattern3-caching"),
        "--schedulers", args.schedulers,
        "--peers", args.peers,
        "--profile", "h100-llama-8b",
        "--time-scale", str(args.time_scale),
        "--sim-arg=--gpu-memory-utilization=" + str(args.gpu_memory_utilization),
        "--workload", workload,
        *load,
        "--progress", "off",
        "--output", str(args.out),
    ]  # fmt: skip


def command(args: argparse.Namespace) -> list[str]:
    workload = (
        f"shared-prefix:num_groups={args.groups},num_prompts_per_group=5,system_prompt_len=2000,"
        "question_len=300,output_len=200"
    )
    load = ["--rate", args.rates, "--duration", str(args.duration), "--warmup", str(args.warmup)]
    return compare_argv(args, workload, *load, "--seed", str(args.seed))


def compact(out: Path) -> None:
    """Keep the per-stage aggregates (summary.json) and drop the per-request files (megabytes each) and router
    logs; the command regenerates them."""
    index = json.loads((out / "results.json").read_text())
    runs = [RunResult.read(out / name) for name in index["runs"]]
    summary = {
        "stage": highest_common_stage(runs),
        "runs": [
            {
                "label": r.label,
                "inferplane_version": r.version,
                "configuration": {k: v for k, v in r.configuration.items() if k != "epp_config"},
                "stages": {name: s.to_json() for name, s in r.per_stage.items()},
            }
            for r in runs
        ],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    for name in index["runs"]:
        (out / name).unlink()
    (out / "results.json").unlink()
    shutil.rmtree(out / "logs", ignore_errors=True)


def check(out: Path, headline: str = "predicted-ttft") -> tuple[bool, list[str]]:
    """The targets for the `headline` configuration (the others that ran are reported beside it, not checked)."""
    summary = json.loads((out / "summary.json").read_text())
    stage = summary["stage"]
    by_label = {r["label"]: Summary.from_json(r["stages"][stage]) for r in summary["runs"]}
    lines = [f"highest common stage: {stage}"]
    ok = True
    rr = by_label.get("round-robin")
    if headline not in by_label:
        return False, [*lines, f"{headline} did not run"]
    others = [n for n in by_label if n not in (headline, "round-robin") and "router" not in n]
    for name in [headline, *others]:
        mine = by_label.get(name)
        if mine is None or not mine.ttft:
            continue
        checked = name == headline
        if rr and rr.ttft:
            ratio = rr.ttft.p90 / mine.ttft.p90
            lines.append(f"round-robin / {name} TTFT p90: {rr.ttft.p90:.3f} s / {mine.ttft.p90:.3f} s = {ratio:.1f}x")
            ok &= ratio >= 5.0 or not checked
        for label, s in by_label.items():
            if "cache_aware" in label and s.ttft:
                beats = mine.ttft.p90 < s.ttft.p90 and mine.output_tokens_per_s > s.output_tokens_per_s
                verdict = "beats" if beats else "DOES NOT beat"
                lines.append(
                    f"{name} vs {label}: TTFT p90 {mine.ttft.p90:.3f} vs {s.ttft.p90:.3f} s, output tok/s "
                    f"{mine.output_tokens_per_s:.0f} vs {s.output_tokens_per_s:.0f} -> {verdict}"
                )
                ok &= beats or not checked
    return ok, lines


def runs_table(dirs: list[Path]) -> list[str]:
    """Markdown: one row per (run, configuration), TTFT p90 / output tokens/s / cache hit at every stage."""
    summaries = [json.loads((d / "summary.json").read_text()) for d in dirs]
    stages = [n for n in summaries[0]["runs"][0]["stages"] if n != "warmup"]
    lines = [
        "| run | configuration | " + " | ".join(stages) + " |",
        "|---|---|" + "---|" * len(stages),
    ]
    for d, summary in zip(dirs, summaries, strict=True):
        for r in summary["runs"]:
            cells = []
            for name in stages:
                st = r["stages"].get(name)
                if st is None or not st["ttft"]:
                    cells.append("–")
                    continue
                cells.append(
                    f"{st['ttft']['p90']:.3f} s / {st['output_tokens_per_s']:.0f} / {100 * st['cache_hit_rate']:.0f} %"
                )
            lines.append(f"| {d.name} | {r['label']} | " + " | ".join(cells) + " |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedulers", default="round-robin,prefix-balanced,predicted-ttft")
    parser.add_argument("--headline", default="predicted-ttft", help="the configuration the targets are checked for")
    parser.add_argument("--peers", default="sglang-router:cache_aware,vllm-router:cache_aware")
    parser.add_argument("--rates", default="4,6,8")
    parser.add_argument("--time-scale", type=float, default=10.0, help="simulated GPU this many times slower")
    parser.add_argument("--duration", type=float, default=40.0)
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--groups", type=int, default=30)
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.28)
    parser.add_argument("--seed", type=int, default=0, help="workload and arrivals (the same for every configuration)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "routing-headline")
    parser.add_argument("--check-only", action="store_true", help="only re-check an existing results directory")
    parser.add_argument("--keep-records", action="store_true", help="keep the per-request results files")
    parser.add_argument("--table", type=Path, nargs="+", help="print a Markdown table of these results directories")
    args = parser.parse_args()
    if args.table:
        print("\n".join(runs_table(args.table)))
        return 0
    if not args.check_only:
        argv = command(args)
        print("inferplane " + " ".join(argv), flush=True)
        sys.argv = ["inferplane", *argv]  # the report records the inferplane command, not this script
        status = inferplane(argv)
        if status not in (0, 1):
            return status
    if (args.out / "results.json").exists() and not args.keep_records:
        compact(args.out)
    ok, lines = check(args.out, args.headline)
    print("\n".join(lines))
    print("target met" if ok else "target NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
