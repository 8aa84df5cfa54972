"""`inferplane bench`: measure a running endpoint (or a deployment brought up for the run), and
`inferplane bench compare PATH`: the same load against several routing configurations, side by side."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from inferplane.bench.client import Target
from inferplane.bench.metrics import Slo, parse_duration
from inferplane.bench.report import comparison_table, files_line, print_summary
from inferplane.bench.runner import (
    LoadPlan,
    discover_model,
    parse_stages,
    run_one,
    stages_from_inference_perf,
    write_outputs,
)
from inferplane.bench.workloads import WorkloadSpec, build_workload, load_workload_spec, workload_help
from inferplane.errors import UsageError

DEFAULT_WORKLOAD = "shared-prefix"


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_load_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("workload")
    g.add_argument(
        "--workload",
        default=DEFAULT_WORKLOAD,
        metavar="SPEC",
        help="TYPE[:key=value,...] (shared-prefix, multi-turn, random, trace) or a YAML file "
        "(a workload, or an inference-perf config whose data/load/api sections are used); "
        "e.g. shared-prefix:num_groups=30,num_prompts_per_group=5,system_prompt_len=2000 "
        "(each type's keys are listed at the end)",
    )
    g.add_argument("--models", metavar="M=SHARE,...", help="multi-model mix, e.g. llama=0.7,gemma=0.3")
    g.add_argument("--seed", type=int, default=0, help="workload and arrival seed (default 0)")
    g = p.add_argument_group("load")
    g.add_argument(
        "--concurrency",
        type=_ints,
        default=[],
        metavar="N[,N...]",
        help="closed loop at this many requests in flight (a list makes a ladder)",
    )
    g.add_argument(
        "--rate",
        type=_floats,
        default=[],
        metavar="R[,R...]",
        help="open loop at R requests/s (a list makes a ladder of stages)",
    )
    g.add_argument("--arrivals", choices=("poisson", "constant"), default="poisson")
    g.add_argument("--stages", metavar="YAML", help="explicit stages: '[{rate: 2, duration: 20}, ...]' or a file")
    g.add_argument("--duration", type=_duration, help="per stage (default 30s unless --num-requests)")
    g.add_argument("--num-requests", type=int, help="per stage: stop after this many requests")
    g.add_argument("--warmup", type=_duration, help="a warm-up stage at the first stage's load, excluded")
    g.add_argument("--max-in-flight", type=int, default=4096, help="open loop: cap on requests in flight")
    g.add_argument("--timeout", type=_duration, default=600.0, help="per request (default 600s)")
    g.add_argument(
        "--drain-timeout",
        type=_duration,
        default=120.0,
        help="how long a stage waits for its in-flight requests before cancelling them",
    )
    g = p.add_argument_group("requests")
    g.add_argument("--model", help="model name to request (default: the first of GET /v1/models)")
    g.add_argument("--api", choices=("completion", "chat"), help="default completion (or the config's api.type)")
    g.add_argument("--no-stream", action="store_true", help="non-streaming requests (TTFT = end-to-end)")
    g.add_argument("--header", action="append", default=[], metavar="K:V", help="extra request header")
    g = p.add_argument_group("output")
    g.add_argument("--slo", help="goodput objectives, e.g. ttft=2s,tpot=50ms")
    g.add_argument("--output", "-o", type=Path, help="results directory (default bench-results/<time>)")
    g.add_argument("--label", help="name of this configuration in tables and plots")
    g.add_argument("--no-plots", action="store_true")
    g.add_argument("--progress", choices=("auto", "on", "off"), default="auto", help="live view (auto: on a tty)")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.usage = (
        "inferplane bench [--url URL | PATH] [options]\n"
        "       inferplane bench compare PATH --schedulers a,b,... [--peers sglang-router,vllm-router] [options]\n"
        "       inferplane bench --self-test"
    )
    parser.epilog = workload_help()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "args",
        nargs="*",
        metavar="[compare] PATH",
        help="a deployment directory to bring up for the run, or `compare PATH`",
    )
    parser.add_argument("--url", help="benchmark this running endpoint (gateway, router or model server)")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="measure the load generator's own ceiling against a zero-latency simulator",
    )
    add_load_flags(parser)
    g = parser.add_argument_group("compare")
    g.add_argument(
        "--schedulers",
        default="round-robin,least-request,prefix,precise-prefix",
        help="EndpointPickerConfig names (src/inferplane/bench/schedulers/) or YAML files",
    )
    g.add_argument(
        "--peers",
        default="",
        help="also run these routers in front of the same replicas: "
        "sglang-router, vllm-router (optional extra inferplane[peers])",
    )
    g.add_argument("--profile", help="simulator latency profile for every replica (deployments brought up by bench)")
    g.add_argument("--time-scale", type=float, help="simulator --time-scale (deployments brought up by bench)")
    g.add_argument(
        "--sim-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra simulator flag for every replica, e.g. --sim-arg=--gpu-memory-utilization=0.3",
    )


def load_plan(args: argparse.Namespace, spec: WorkloadSpec) -> LoadPlan:
    explicit: list[dict[str, Any]] = parse_stages(args.stages) if args.stages else []
    arrivals = args.arrivals
    if not (explicit or args.rate or args.concurrency) and spec.load:
        explicit = stages_from_inference_perf(spec.load)
        if spec.load.get("type") in ("poisson", "constant"):
            arrivals = spec.load["type"]
    return LoadPlan(
        concurrency=args.concurrency,
        rates=args.rate,
        arrivals=arrivals,
        stages=explicit,
        duration=args.duration,
        num_requests=args.num_requests,
        warmup=args.warmup,
        trace=spec.workload.type == "trace",
    )


def parse_models(text: str | None) -> dict[str, float] | None:
    if not text:
        return None
    out = {}
    for item in text.split(","):
        name, eq, share = item.partition("=")
        try:
            out[name.strip()] = float(share) if eq else 1.0
        except ValueError:
            raise UsageError(f"--models: {item!r} is not NAME=SHARE") from None
    return out


def workload_from_args(args: argparse.Namespace) -> tuple[WorkloadSpec, Any]:
    spec = load_workload_spec(args.workload)
    models = parse_models(args.models)
    if models:
        spec.workload = spec.workload.model_copy(update={"models": models})
    return spec, build_workload(spec.workload, args.seed)


def make_target(args: argparse.Namespace, url: str, spec: WorkloadSpec, model: str | None = None) -> Target:
    # A multi-model mix names every model it sends, so it needs no GET /v1/models (which a gateway that routes on
    # the body's model may not answer); its first model is only the default for requests without one.
    mix = list(spec.workload.models or ())
    model = (
        args.model
        or spec.server.get("model_name")
        or model
        or (mix[0] if mix else None)
        or asyncio.run(discover_model(url))
    )
    headers = {}
    for h in args.header:
        k, sep, v = h.partition(":")
        if not sep:
            raise UsageError(f"--header {h!r}: expected NAME:VALUE")
        headers[k.strip()] = v.strip()
    return Target(
        base_url=url,
        model=model,
        api=args.api or str(spec.api.get("type", "completion")),
        streaming=not args.no_stream and bool(spec.api.get("streaming", True)),
        ignore_eos=bool(spec.server.get("ignore_eos", True)),
        headers=headers,
    )


def configuration(args: argparse.Namespace, spec: WorkloadSpec, target: Target, stages: Any) -> dict[str, Any]:
    return {
        "workload": spec.workload.model_dump(exclude_none=True),
        "workload_source": spec.source,
        "target": {
            "url": target.base_url,
            "model": target.model,
            "models": list(spec.workload.models or [target.model]),
            "api": target.api,
            "streaming": target.streaming,
        },
        "stages": [s.__dict__ for s in stages],
        "seed": args.seed,
    }


def output_dir(args: argparse.Namespace) -> Path:
    return args.output or Path("bench-results") / time.strftime("%Y%m%d-%H%M%S")


def progress_enabled(args: argparse.Namespace) -> bool:
    return args.progress == "on" or (args.progress == "auto" and sys.stderr.isatty())


def command_line() -> str:
    return "inferplane " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def run(args: argparse.Namespace) -> int:
    # Redirected output (logs, CI) gets a wide table instead of rich's 80-column default squeezing every cell.
    console = Console() if sys.stdout.isatty() else Console(width=220)
    if args.self_test:
        from inferplane.bench.selftest import run_self_test

        duration = 5.0 if args.duration is None else args.duration
        return run_self_test(console, duration, args.output, command_line())
    if args.args[:1] == ["compare"]:
        from inferplane.bench.compare import run_compare

        if len(args.args) != 2:
            raise UsageError("usage: inferplane bench compare PATH --schedulers a,b,...")
        return run_compare(args, Path(args.args[1]), console)
    if len(args.args) > 1:
        raise UsageError(f"unexpected arguments {args.args[1:]}")
    if args.args and args.url:
        raise UsageError("give either --url or a deployment PATH, not both")
    if args.args:
        from inferplane.bench.deployment import bench_deployment

        return bench_deployment(args, Path(args.args[0]), console)
    if not args.url:
        raise UsageError("nothing to benchmark", hint="pass --url http://127.0.0.1:8080 or a deployment directory")
    return bench_url(args, args.url, console)


def run_label(args: argparse.Namespace, spec: WorkloadSpec, target: Target, label: str | None = None) -> str:
    """--label, else the deployment's name or the model, with every model of a multi-model mix."""
    if args.label:
        return str(args.label)
    mix = " + ".join(spec.workload.models or ())
    if label:
        return f"{label}: {mix}" if mix else label
    return mix or target.model


def bench_url(
    args: argparse.Namespace, url: str, console: Console, label: str | None = None, model: str | None = None
) -> int:
    spec, workload = workload_from_args(args)
    stages = load_plan(args, spec).build()
    target = make_target(args, url, spec, model)
    result = run_one(
        run_label(args, spec, target, label),
        target,
        workload,
        stages,
        slo=Slo.parse(args.slo),
        configuration=configuration(args, spec, target, stages),
        progress=progress_enabled(args),
        max_in_flight=args.max_in_flight,
        request_timeout=args.timeout,
        drain_timeout=args.drain_timeout,
    )
    out = output_dir(args)
    files = write_outputs([result], out, command_line(), plots=not args.no_plots)
    print_summary(console, [result])
    console.print(files_line(files, out), markup=False)
    return 0 if result.summary.successes else 1


__all__ = ["add_load_flags", "bench_url", "comparison_table", "configure", "run"]
