"""`inferplane simulate`: a deployment's pickers and replicas in virtual time, with the bench's workloads and results.

inferplane simulate DEPLOYMENT [--replicas N] --workload ... --rate 2,4,8 --duration 60s -o out/
inferplane simulate compare DEPLOYMENT --schedulers prefix,least-request,round-robin ...
inferplane simulate DEPLOYMENT --find replicas --slo ttft=2s,tpot=50ms --rate 300
inferplane simulate DEPLOYMENT --find rate --slo ttft=2s --replicas 8
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from inferplane.bench.command import (
    add_load_flags,
    command_line,
    configuration,
    load_plan,
    make_target,
    output_dir,
    workload_from_args,
)
from inferplane.bench.compare import resolve_schedulers
from inferplane.bench.loadgen import Stage
from inferplane.bench.metrics import Slo, parse_duration
from inferplane.bench.report import comparison_table, files_line, print_summary
from inferplane.bench.results import RunResult
from inferplane.bench.runner import write_outputs
from inferplane.errors import UsageError
from inferplane.runtime.resources import load, resolve_source, runtime_view
from inferplane.simulate.driver import Hops
from inferplane.simulate.picker import PickerTiming
from inferplane.simulate.planner import SearchResult, find_max_rate, find_min_replicas
from inferplane.simulate.runner import SimulatedRun, simulate_run
from inferplane.simulate.scenario import FleetOptions
from inferplane.simulate.whatif import parse_whatif


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _replicas(text: str) -> int | dict[str, int]:
    """`8` for every model service, or `llama=8,gemma=2`."""
    try:
        if "=" not in text:
            return int(text)
        return {k.strip(): int(v) for k, v in (item.split("=", 1) for item in text.split(",") if item.strip())}
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected N or SERVICE=N,...") from None


def configure(parser: argparse.ArgumentParser) -> None:
    parser.usage = (
        "inferplane simulate [compare] DEPLOYMENT [options]\n"
        "       inferplane simulate DEPLOYMENT --find replicas|rate --slo ttft=2s,... [options]"
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("args", nargs="+", metavar="[compare] DEPLOYMENT", help="a deployment directory or pattern")
    add_load_flags(parser)
    g = parser.add_argument_group("fleet")
    g.add_argument("--replicas", type=_replicas, help="replicas per model service: N, or SERVICE=N,...")
    g.add_argument("--profile", help="simulator latency profile for every replica (default: each service's)")
    g.add_argument(
        "--sim-arg", action="append", default=[], metavar="ARG", help="extra simulator flag for every replica"
    )
    g.add_argument("--epp-config", metavar="FILE", help="EndpointPickerConfig for every pool")
    g.add_argument(
        "--time-scale",
        type=float,
        help="slow every replica down like `inferplane sim --time-scale` (to compare with a bench run at that scale)",
    )
    g.add_argument(
        "--what-if",
        action="append",
        default=[],
        metavar="SPEC",
        help="fail:SERVICE:COUNT@TIME[+RECOVER] or add:SERVICE:COUNT@TIME (repeatable)",
    )
    g = parser.add_argument_group("what lies between (measured defaults, BENCHMARKS.md)")
    g.add_argument("--scrape-interval", type=_duration, default=0.05, help="picker's metrics refresh (default 50ms)")
    g.add_argument("--gateway-latency", type=_duration, default=Hops.gateway, help="Envoy's own added latency")
    g.add_argument("--ext-proc-latency", type=_duration, default=Hops.ext_proc, help="picker round trip over Envoy")
    g.add_argument("--network-latency", type=_duration, default=Hops.network, help="one way, gateway↔replica")
    g.add_argument(
        "--response-phases", action="store_true", help="the picker hears of first tokens (not yet under `up`)"
    )
    g = parser.add_argument_group("planning")
    g.add_argument("--find", choices=("replicas", "rate"), help="search for the fewest replicas / highest rate")
    g.add_argument("--percentile", type=float, default=90.0, help="SLO percentile for --find (default 90)")
    g.add_argument("--price-per-hour", type=float, help="price of one accelerator-hour, for the cost line")
    g = parser.add_argument_group("compare")
    g.add_argument(
        "--schedulers",
        default="round-robin,least-request,prefix",
        help="EndpointPickerConfig names (src/inferplane/bench/schedulers/) or YAML files",
    )


class _Context:
    """What every simulated run of one command shares."""

    def __init__(self, args: argparse.Namespace, path: Path) -> None:
        self.args = args
        self.path = path
        self.spec, self.workload = workload_from_args(args)
        self.stages: list[Stage] = load_plan(args, self.spec).build()
        self.deployment = load(path)
        self.slo = Slo.parse(args.slo)
        self.hops = Hops(args.gateway_latency, args.ext_proc_latency, args.network_latency)
        self.timing = PickerTiming(args.scrape_interval, args.response_phases)
        self.whatifs = [parse_whatif(w) for w in args.what_if]
        view = runtime_view(self.deployment)
        models = [m for s in view.servers for m in (s.served_names or [s.model])]
        if not models:
            raise UsageError(f"{path}: no model service to simulate")
        self.target = make_target(args, "simulated://", self.spec, models[0])

    def run(
        self,
        label: str,
        *,
        epp_config: str | None = None,
        replicas: int | dict[str, int] | None = None,
        stages: Sequence[Stage] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> SimulatedRun:
        args = self.args
        view = runtime_view(self.deployment, epp_config or args.epp_config)
        stages = list(stages if stages is not None else self.stages)
        conf = {**configuration(args, self.spec, self.target, stages), "deployment": str(self.path), **(extra or {})}
        fleet = FleetOptions(
            replicas=replicas if replicas is not None else args.replicas,
            profile=args.profile,
            sim_args=(*args.sim_arg, *(("--time-scale", str(args.time_scale)) if args.time_scale else ())),
            timing=self.timing,
            seed=args.seed,
        )
        return simulate_run(
            label,
            view,
            fleet,
            self.target,
            self.workload,
            stages,
            hops=self.hops,
            slo=self.slo,
            whatifs=self.whatifs,
            configuration=conf,
            seed=args.seed,
            drain_timeout=args.drain_timeout,
        )


def _cost_line(run: SimulatedRun, price: float | None) -> str:
    hours = run.accelerator_seconds / 3600
    line = (
        f"{run.scenario.accelerators()} accelerators × {run.scenario.events.now:.0f} s simulated = "
        f"{hours:.2f} accelerator-hours"
    )
    if price is not None:
        line += f" × {price:g}/h = {hours * price:.2f}"
    return line


def _speed_line(run: SimulatedRun) -> str:
    rate = run.events / run.wall_seconds if run.wall_seconds > 0 else 0.0
    return (
        f"simulated {run.scenario.events.now:.1f} s in {run.wall_seconds:.1f} s wall "
        f"({len(run.scenario.replicas)} replicas, {run.events:,} events, {rate:,.0f} events/s)"
    )


def run(args: argparse.Namespace) -> int:
    console = Console() if sys.stdout.isatty() else Console(width=220)
    compare = args.args[0] == "compare"
    rest = args.args[1:] if compare else args.args
    if len(rest) != 1:
        raise UsageError("usage: inferplane simulate [compare] DEPLOYMENT [options]")
    path = resolve_source(rest[0])
    ctx = _Context(args, path)
    out = output_dir(args) if args.output else Path("simulate-results") / path.name
    if compare:
        return _compare(ctx, console, out)
    if args.find:
        return _find(ctx, console, out)
    label = args.label or f"{path.name} (simulated)"
    sim = ctx.run(label)
    return _finish(console, [sim], out, args)


def _finish(console: Console, runs: Sequence[SimulatedRun], out: Path, args: argparse.Namespace) -> int:
    results = [r.result for r in runs]
    files = write_outputs(results, out, command_line(), plots=not args.no_plots)
    print_summary(console, results)
    if len(results) > 1:
        console.print(comparison_table(results))
    for r in runs:
        console.print(f"{r.result.label}: {_speed_line(r)}", markup=False)
        console.print(f"  cost: {_cost_line(r, args.price_per_hour)}", markup=False)
        for note in r.notes:
            console.print(f"  what-if: {note}", markup=False)
    console.print(files_line(files, out), markup=False)
    return 0 if all(r.summary.successes for r in results) else 1


def _compare(ctx: _Context, console: Console, out: Path) -> int:
    runs = []
    for sched in resolve_schedulers(ctx.args.schedulers):
        console.print(f"[bold]{sched.name}[/bold] (simulated)")
        runs.append(ctx.run(sched.name, epp_config=str(sched.path), extra={"scheduler": sched.name}))
    return _finish(console, runs, out, ctx.args)


def _single_stage(ctx: _Context, rate: float) -> list[Stage]:
    """--find rate probes one open-loop stage (plus the warm-up, if any) at `rate`."""
    duration = ctx.args.duration or 60.0
    stages = [Stage(f"{rate:g}/s", ctx.args.arrivals, rate=rate, duration=duration)]
    if ctx.args.warmup:
        stages.insert(0, Stage("warmup", ctx.args.arrivals, rate=rate, duration=ctx.args.warmup, warmup=True))
    return stages


def _find(ctx: _Context, console: Console, out: Path) -> int:
    args = ctx.args
    if ctx.slo is None:
        raise UsageError("--find needs --slo", hint="e.g. --slo ttft=2s,tpot=50ms")
    search: SearchResult
    runs: list[SimulatedRun] = []

    def probe(label: str, **kw: Any) -> RunResult:
        sim = ctx.run(label, **kw)
        runs.append(sim)
        console.print(f"  {label}: {_speed_line(sim)}", markup=False)
        return sim.result

    if args.find == "replicas":
        if args.replicas is not None and not isinstance(args.replicas, int):
            raise UsageError("--find replicas scales every model service alike; give --replicas N as the start")
        start = args.replicas or 1
        search = find_min_replicas(lambda n: probe(f"{n} replicas", replicas=n), ctx.slo, args.percentile, start=start)
        unit = "replicas per model service"
    else:
        start = (args.rate or [1.0])[0]
        search = find_max_rate(
            lambda r: probe(f"{r:.3g} req/s", stages=_single_stage(ctx, r)), ctx.slo, args.percentile, start=start
        )
        unit = "requests/s"
    for p in search.probes:
        mark = "meets" if p.verdict.met else "misses"
        console.print(f"{p.value:>10.4g}: {mark} the SLO: {p.verdict.describe(ctx.slo, args.percentile)}", markup=False)
    if search.answer is None:
        console.print(f"[red]no value meets the SLO ({ctx.slo}) in the searched range[/red]")
        _finish(console, [runs[-1]], out, args)
        return 1
    best = next(r for r, p in zip(runs, search.probes, strict=True) if p.value == search.answer)
    console.print(f"[bold]answer: {search.answer:g} {unit}[/bold] meet {ctx.slo} at p{args.percentile:g}")
    best.result.configuration["find"] = {
        "what": args.find,
        "answer": search.answer,
        "percentile": args.percentile,
        "probes": [{"value": p.value, "met": p.verdict.met, "observed": p.verdict.observed} for p in search.probes],
    }
    _finish(console, [best], out, args)
    return 0
