"""`inferplane epp`: the endpoint picker for one InferencePool, with the flags the upstream manifests pass.

Upstream spellings (`--poolName`, `--configFile`, `--grpcPort`, `-v=4`, ...) are accepted beside inferplane's.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from inferplane.api.diagnostics import DiagnosticsError
from inferplane.api.epp_config import EndpointPickerConfig, default_epp_config, parse_duration
from inferplane.api.positions import parse_yaml
from inferplane.api.validation import validate
from inferplane.epp.datalayer.datastore import Objective
from inferplane.epp.datalayer.discovery import DiscoverySource, StaticDiscovery, parse_endpoints
from inferplane.epp.datalayer.endpoints_file import EndpointsFile, FileDiscovery
from inferplane.epp.extproc import BUFFERED, FULL_DUPLEX, NONE
from inferplane.epp.extproc_port import add_ext_proc_server_argument
from inferplane.epp.intree import register_in_tree_plugins
from inferplane.epp.tls import ServingCert, load_cert_dir, self_signed
from inferplane.errors import ConfigError, UsageError

log = logging.getLogger(__name__)

BODY_MODES = {"full-duplex": FULL_DUPLEX, "buffered": BUFFERED, "none": NONE}


def configure(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("--pool-name", "--poolName", dest="pool_name", required=True, help="the InferencePool this EPP serves")
    a("--pool-namespace", "--poolNamespace", dest="pool_namespace", default="default")
    cfg = parser.add_mutually_exclusive_group()
    cfg.add_argument("--config-file", "--configFile", dest="config_file", help="EndpointPickerConfig YAML file")
    cfg.add_argument("--config-text", "--configText", dest="config_text", help="EndpointPickerConfig as YAML text")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--endpoints", help="static endpoints: host:port,host:port,...")
    src.add_argument(
        "--endpoints-file",
        dest="endpoints_file",
        help="a JSON/YAML endpoint list that is re-read whenever it is replaced (the local runtime's push)",
    )
    a("--discovery", choices=("static", "kubernetes"), default=None, help="where endpoints come from")
    a("--grpc-port", "--grpcPort", dest="grpc_port", type=int, default=9002)
    a("--grpc-health-port", "--grpcHealthPort", dest="grpc_health_port", type=int, default=9003)
    a("--metrics-port", "--metricsPort", dest="metrics_port", type=int, default=9090)
    a(
        "--refresh-metrics-interval",
        "--refreshMetricsInterval",
        dest="refresh_metrics_interval",
        default="50ms",
        help="how often each endpoint's /metrics is scraped (Go duration, default 50ms)",
    )
    a("--kv-events-bind", dest="kv_events_bind", help="ZMQ endpoint to bind for KV events, e.g. tcp://*:5557")
    a(
        "--kv-events-connect",
        dest="kv_events_connect",
        action="append",
        default=[],
        help="per-pod mode: a model server's ZMQ publisher to connect to (repeatable)",
    )
    # Upstream defaults to true. inferplane defaults to true in a cluster (`--discovery kubernetes`, where the
    # gateways expect TLS to the extension; deploy/epp.py) and to false otherwise, because the local runtime's
    # Envoy reaches the picker over plaintext loopback.
    a(
        "--secure-serving",
        "--secureServing",
        dest="secure_serving",
        default=None,
        choices=("true", "false"),
        help="serve TLS on the ext_proc port (default: true with --discovery kubernetes, as upstream; else false)",
    )
    a(
        "--cert-path",
        "--certPath",
        dest="cert_path",
        help="directory with tls.crt and tls.key for --secure-serving; without it a self-signed certificate is "
        "generated at start, as upstream does",
    )
    a("--bind", default="0.0.0.0", help="address to listen on (127.0.0.1 for local runs)")
    a(
        "--body-mode",
        dest="body_mode",
        choices=tuple(BODY_MODES),
        default="full-duplex",
        help="request body mode assumed when Envoy does not announce one (Envoy >= 1.33 does)",
    )
    add_ext_proc_server_argument(parser)
    a("--seed", type=int, default=None, help="seed the scheduler's random tie-breaks (tests, benchmarks)")
    a("-v", "--v", dest="log_verbosity", type=int, nargs="?", const=1, default=0, help="log verbosity (upstream -v=N)")


def load_config(args: argparse.Namespace) -> EndpointPickerConfig:
    if args.config_file:
        path = Path(args.config_file)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"--config-file {path}: {exc.strerror or exc}") from None
        return parse_config(text, str(path))
    if args.config_text:
        return parse_config(args.config_text, "--config-text")
    return default_epp_config()


def parse_config(text: str, file: str) -> EndpointPickerConfig:
    docs, problems = parse_yaml(text, file)
    docs = [d for d in docs if d.data is not None]
    if not problems and len(docs) != 1:
        raise ConfigError(f"{file}: expected one EndpointPickerConfig document, found {len(docs)}")
    config = None
    if docs:
        config, more = validate(EndpointPickerConfig, docs[0].data, docs[0])
        problems.extend(more)
    if any(p.severity == "error" for p in problems) or config is None:
        raise DiagnosticsError(problems)
    for p in problems:
        log.warning("%s", p.format())
    return config


def serving_cert_for(args: argparse.Namespace) -> ServingCert | None:
    """The ext_proc port's certificate, or None for plaintext: `--cert-path`, else one generated at start (upstream's
    behaviour). `--secure-serving` defaults to true in a cluster (`--discovery kubernetes`), false elsewhere."""
    secure = args.secure_serving == "true" if args.secure_serving else args.discovery == "kubernetes"
    if not secure:
        if args.cert_path:
            raise UsageError("--cert-path is only read with --secure-serving true", hint="add --secure-serving true")
        return None
    return load_cert_dir(Path(args.cert_path)) if args.cert_path else self_signed()


def build_discovery(
    args: argparse.Namespace,
    on_extras: Callable[[EndpointsFile], None] | None = None,
    on_objectives: Callable[[list[Objective]], None] | None = None,
) -> DiscoverySource:
    mode = args.discovery or ("static" if (args.endpoints or args.endpoints_file) else None)
    if mode == "kubernetes":
        if args.endpoints or args.endpoints_file:
            raise UsageError("--discovery kubernetes cannot be combined with --endpoints or --endpoints-file")
        try:
            from inferplane.epp.datalayer.kubernetes import (  # type: ignore[import-not-found,unused-ignore]
                KubernetesDiscovery,
            )
        except ImportError as exc:
            raise UsageError(
                f"--discovery kubernetes is not available in this build ({exc})",
                hint="give the endpoints with --endpoints or --endpoints-file",
            ) from None

        def objectives(specs: Mapping[str, Any]) -> None:
            # the watch runs in its own threads: build the new table there, swap it in with one assignment
            if on_objectives is not None:
                on_objectives([Objective(name=o.name, priority=int(o.priority)) for o in specs.values()])

        source: DiscoverySource = KubernetesDiscovery(args.pool_name, args.pool_namespace, on_objectives=objectives)
        return source
    if args.endpoints_file:
        return FileDiscovery(Path(args.endpoints_file), on_extras=on_extras)
    if args.endpoints:
        return StaticDiscovery(parse_endpoints(args.endpoints))
    raise UsageError(
        "no endpoints: give --endpoints host:port,..., --endpoints-file PATH or --discovery kubernetes",
        hint="for example: inferplane epp --pool-name p --endpoints 127.0.0.1:8000,127.0.0.1:8001",
    )


def _duration(value: str, flag: str) -> float:
    try:
        seconds = parse_duration(value)
    except (ValueError, TypeError):
        seconds = -1.0
    if seconds <= 0:
        raise UsageError(f"{flag}: {value!r} is not a positive duration", hint="write it like 50ms, 1s or 2m")
    return seconds


async def _serve(args: argparse.Namespace) -> int:
    from inferplane.epp.server import EppOptions, EppServer

    config = load_config(args)
    holder: dict[str, EppServer] = {}

    def on_extras(parsed: EndpointsFile) -> None:
        server = holder.get("server")
        if server is None:
            return
        if parsed.objectives is not None:
            server.datastore.set_objectives(parsed.objectives)
        if parsed.rewrites is not None:
            server.datastore.set_rewrites(parsed.rewrites)

    serving_cert = serving_cert_for(args)

    def on_objectives(objectives: list[Objective]) -> None:
        server = holder.get("server")
        if server is not None:
            server.datastore.set_objectives(objectives)

    opts = EppOptions(
        pool_name=args.pool_name,
        pool_namespace=args.pool_namespace,
        discovery=build_discovery(args, on_extras, on_objectives),
        config=config,
        bind=args.bind,
        grpc_port=args.grpc_port,
        grpc_health_port=args.grpc_health_port,
        metrics_port=args.metrics_port,
        refresh_metrics_interval=_duration(args.refresh_metrics_interval, "--refresh-metrics-interval"),
        kv_events_bind=args.kv_events_bind,
        kv_events_connect=list(args.kv_events_connect),
        default_body_mode=BODY_MODES[args.body_mode],
        serving_cert=serving_cert,
        seed=args.seed,
        ext_proc_server=args.ext_proc_server,
    )
    server = EppServer(opts)
    holder["server"] = server
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    # Everything allocated so far (modules, config, plugins) lives as long as the process: move it out of the
    # collector's reach so the per-request garbage collections do not rescan it (measured in BENCHMARKS.md).
    gc.collect()
    gc.freeze()
    print(
        f"inferplane epp: pool {opts.pool_name} ext_proc {opts.bind}:{server.grpc_port} "
        f"health {server.health_port} metrics {server.metrics_port}",
        file=sys.stderr,
        flush=True,
    )
    failed = loop.create_task(server.wait_failed())
    stopped = loop.create_task(stop.wait())
    try:
        await asyncio.wait({failed, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if failed.done():
            failed.result()  # re-raises the discovery error
    finally:
        failed.cancel()
        stopped.cancel()
        await server.stop()
    return 0


def run(args: argparse.Namespace) -> int:
    register_in_tree_plugins()  # this command is the picker's composition root (idempotent after the CLI's)
    if args.log_verbosity:
        logging.getLogger("inferplane").setLevel(logging.DEBUG if args.log_verbosity >= 4 else logging.INFO)
        logging.getLogger().setLevel(logging.DEBUG if args.log_verbosity >= 4 else logging.INFO)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a dependency except on Windows
        return asyncio.run(_serve(args))
    return uvloop.run(_serve(args))
