"""`inferplane bbr`: the body-based router, an ext_proc server that copies the body's `model` into
`X-Gateway-Model-Name` (and the adapter's base model into `X-Gateway-Base-Model-Name`) so HTTPRoutes can match on it.

    inferplane bbr --port 9004 --health-port 9005 --bind 127.0.0.1 --models-file models.yaml [--secure-serving true]

The models file lists `{baseModel, adapters}` entries (the data of upstream BBR's ConfigMaps). With
`--secure-serving true` the ext_proc port serves TLS, with the certificate in `--cert-path` or a self-signed one made
at start (`inferplane.epp.tls`, the picker's code: upstream's router and picker share the same TLS behaviour).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from inferplane.bbr.routing import BaseModels
from inferplane.epp.extproc_port import add_ext_proc_server_argument
from inferplane.epp.tls import ServingCert, load_cert_dir, self_signed
from inferplane.errors import UsageError


def configure(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("--port", "--grpc-port", "--grpcPort", dest="port", type=int, default=9004, help="ext_proc gRPC port (9004)")
    a(
        "--health-port", "--grpc-health-port", "--grpcHealthPort", dest="health_port", type=int, default=9005,
        help="gRPC health port (9005); 0 picks a free port",
    )  # fmt: skip
    a("--bind", default="0.0.0.0", help="address to listen on (127.0.0.1 for local runs)")
    a(
        "--models-file",
        dest="models_file",
        type=Path,
        help="YAML list of {baseModel, adapters} for the base-model header",
    )
    # Upstream defaults to true; inferplane defaults to false because the local runtime starts the router without the
    # flag and its Envoy reaches it over cleartext loopback. The Kubernetes manifests pass it explicitly per gateway
    # (deploy/transport.py).
    a(
        "--secure-serving",
        "--secureServing",
        dest="secure_serving",
        default="false",
        choices=("true", "false"),
        help="serve TLS on the ext_proc port (default false; upstream's default is true); health stays plaintext",
    )
    a(
        "--cert-path",
        "--certPath",
        dest="cert_path",
        type=Path,
        help="directory with tls.crt and tls.key for --secure-serving true; without it a self-signed certificate is "
        "generated at start, as upstream does",
    )
    add_ext_proc_server_argument(parser)
    a("--streaming", action="store_true", help="accepted for upstream compatibility; the mode Envoy announces is used")


def serving_cert_for(args: argparse.Namespace) -> ServingCert | None:
    """The ext_proc port's certificate, or None for cleartext."""
    if args.secure_serving != "true":
        if args.cert_path:
            raise UsageError("--cert-path is only read with --secure-serving true", hint="add --secure-serving true")
        return None
    return load_cert_dir(args.cert_path) if args.cert_path else self_signed(common_name="inferplane-bbr")


async def _serve(args: argparse.Namespace, cert: ServingCert | None) -> int:
    from inferplane.bbr.server import BbrOptions, BbrServer

    models = BaseModels.load(args.models_file) if args.models_file else BaseModels()
    opts = BbrOptions(
        port=args.port,
        health_port=args.health_port,
        bind=args.bind,
        models=models,
        serving_cert=cert,
        ext_proc_server=args.ext_proc_server,
    )
    server = BbrServer(opts)
    await server.start()
    # one line with the scheme and the ports actually bound, as `inferplane epp` prints, so `--port 0` is usable
    print(
        f"inferplane bbr: ext_proc {server.scheme}://{args.bind}:{server.port} health {server.health_port or '-'} "
        f"models {len(models)}",
        file=sys.stderr,
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    waiter = loop.create_task(server.wait())
    stopper = loop.create_task(stop.wait())
    await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    await server.stop()
    waiter.cancel()
    return 0


def run(args: argparse.Namespace) -> int:
    for flag in ("port", "health_port"):
        value = getattr(args, flag)
        if not 0 <= value < 65536:
            raise UsageError(f"--{flag.replace('_', '-')} {value} is not a port number")
    cert = serving_cert_for(args)  # before the event loop: a bad --cert-path is a usage error, not a crash
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        return asyncio.run(_serve(args, cert))
    return uvloop.run(_serve(args, cert))
