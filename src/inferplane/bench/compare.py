"""`inferplane bench compare PATH`: one deployment, several routing configurations, the same load, one table.

Each configuration gets a fresh deployment (cold caches, identical simulated replicas: same profile, same seed,
same flags), brought up through the runtime's Python API with an EndpointPickerConfig override. Peer routers run in
front of the replicas of a fresh deployment too, so they see exactly the replicas inferplane's picker saw; the
deployment's own gateway and picker idle meanwhile.
"""

from __future__ import annotations

import argparse
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from inferplane.bench.command import (
    command_line,
    configuration,
    load_plan,
    make_target,
    output_dir,
    progress_enabled,
    workload_from_args,
)
from inferplane.bench.metrics import Slo
from inferplane.bench.peers import PeerRouter, resolve_peers
from inferplane.bench.procs import started
from inferplane.bench.report import comparison_table, files_line, print_summary
from inferplane.bench.results import RunResult
from inferplane.bench.runner import run_one, write_outputs
from inferplane.errors import UsageError
from inferplane.net import free_port

SCHEDULERS_DIR = Path(__file__).parent / "schedulers"


@dataclass(frozen=True)
class SchedulerChoice:
    name: str
    path: Path


def builtin_schedulers() -> list[str]:
    return sorted(p.stem for p in SCHEDULERS_DIR.glob("*.yaml"))


def resolve_schedulers(names: str) -> list[SchedulerChoice]:
    """Built-in names (src/inferplane/bench/schedulers/NAME.yaml) or paths to EndpointPickerConfig files."""
    out = []
    for name in filter(None, (n.strip() for n in names.split(","))):
        path = Path(name)
        if path.suffix in (".yaml", ".yml"):
            if not path.is_file():
                raise UsageError(f"--schedulers: {path} does not exist")
            out.append(SchedulerChoice(path.stem, path))
        elif (SCHEDULERS_DIR / f"{name}.yaml").is_file():
            out.append(SchedulerChoice(name, SCHEDULERS_DIR / f"{name}.yaml"))
        else:
            raise UsageError(
                f"--schedulers: unknown configuration {name!r}",
                hint=f"built in: {', '.join(builtin_schedulers())}; or give an EndpointPickerConfig YAML file",
            )
    if not out:
        raise UsageError("--schedulers: give at least one configuration")
    return out


@contextmanager
def deployment(path: Path, args: argparse.Namespace, state_dir: Path, epp_config: Path | None) -> Iterator[Any]:
    """The deployment up on a free port with identical simulated replicas, down again on exit."""
    from inferplane.runtime.runtime import run_deployment

    options: dict[str, Any] = {"port": 0, "sim_args": ("--seed", str(args.seed), *args.sim_arg)}
    if args.profile:
        options["profile"] = args.profile
    if args.time_scale:
        options["time_scale"] = args.time_scale
    if epp_config is not None:
        options["epp_config_override"] = str(epp_config)
    with run_deployment(str(path), state_dir=str(state_dir), **options) as rt:
        yield rt


def kv_events_received(rt: Any) -> float | None:
    """KV events the deployment's endpoint pickers received (None when no picker answered). A precise-prefix
    configuration whose pickers got none routed on load alone: said out loud rather than left to a silent zero."""
    total, answered = 0.0, False
    for pool in rt.running_plan.pools.values():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{pool.epp_metrics_port}/metrics", timeout=2) as resp:
                text = resp.read().decode()
        except OSError:
            continue
        answered = True
        for family in text_string_to_metric_families(text):
            if family.name == "inferplane_epp_kv_events":
                total += sum(sample.value for sample in family.samples if sample.name.endswith("_total"))
    return total if answered else None


def served_model(rt: Any) -> str | None:
    """The deployment's first served model (asked of the plan, not of a router that may still be registering)."""
    models = rt.running_plan.models
    return str(models[0]) if models else None


@contextmanager
def peer_router(peer: PeerRouter, policy: str, worker_urls: list[str], log_dir: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    name = f"{peer.name}-{policy}"
    # Ready when it answers the model list through a worker: /health can be up before the workers are registered.
    with started(name, peer.argv(port, worker_urls, policy), log_dir, url + "/v1/models", timeout=90.0):
        yield url


def run_compare(args: argparse.Namespace, path: Path, console: Console) -> int:
    if args.url:
        raise UsageError("compare brings the deployment up itself; drop --url")
    if not path.exists():
        raise UsageError(
            f"{path} does not exist", hint="give a deployment directory, e.g. deployments/pattern3-caching"
        )
    schedulers = resolve_schedulers(args.schedulers)
    peers, skipped = resolve_peers(args.peers)
    for message in skipped:
        console.print(f"[yellow]{message}[/yellow]")
    spec, workload = workload_from_args(args)
    stages = load_plan(args, spec).build()
    slo = Slo.parse(args.slo)
    out = output_dir(args)
    results: list[RunResult] = []

    def bench(label: str, url: str, model: str | None, extra: dict[str, Any]) -> None:
        target = make_target(args, url, spec, model)
        conf = {**configuration(args, spec, target, stages), "deployment": str(path), **extra}
        console.print(f"[bold]{label}[/bold]: {url}")
        results.append(
            run_one(
                label,
                target,
                workload,
                stages,
                slo=slo,
                configuration=conf,
                progress=progress_enabled(args),
                max_in_flight=args.max_in_flight,
                request_timeout=args.timeout,
                drain_timeout=args.drain_timeout,
            )
        )

    with tempfile.TemporaryDirectory(prefix="inferplane-compare-") as tmp:
        for i, sched in enumerate(schedulers):
            with deployment(path, args, Path(tmp) / f"run-{i}", sched.path) as rt:
                epp_config = sched.path.read_text()
                bench(sched.name, rt.base_url, served_model(rt), {"scheduler": sched.name, "epp_config": epp_config})
                if "precise-prefix-cache-scorer" in epp_config:
                    events = kv_events_received(rt)
                    results[-1].configuration["kv_events_received"] = events
                    if not events:
                        console.print(
                            f"[yellow]{sched.name}: the endpoint picker received no KV events, so the precise "
                            "prefix index stayed empty and this configuration routed on load alone[/yellow]"
                        )
        for j, (peer, policies) in enumerate(peers):
            for policy in policies:
                with (
                    deployment(path, args, Path(tmp) / f"peer-{j}-{policy}", None) as rt,
                    peer_router(peer, policy, rt.endpoint_urls(), out / "logs") as url,
                ):
                    bench(
                        peer.label(policy),
                        url,
                        served_model(rt),
                        {"peer": peer.name, "peer_version": peer.version(), "policy": policy},
                    )

    files = write_outputs(results, out, command_line(), plots=not args.no_plots)
    print_summary(console, results)
    console.print(comparison_table(results))
    console.print(files_line(files, out), markup=False)
    return 0 if all(r.summary.successes for r in results) else 1
