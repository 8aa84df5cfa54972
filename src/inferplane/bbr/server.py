"""The body-based router process: the ext_proc gRPC server and a gRPC health server on its own port (upstream BBR
uses 9004 and 9005). The ext_proc port serves TLS when given a certificate (`--secure-serving`, as upstream's router
does); the health port stays plaintext, because kubelet's gRPC probes do not speak TLS."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from inferplane.bbr.extproc import BbrServicer
from inferplane.bbr.routing import BaseModels
from inferplane.epp.extproc_port import Stoppable, start_ext_proc_port, start_health_port
from inferplane.epp.health import EppHealth
from inferplane.epp.tls import ServingCert

log = logging.getLogger(__name__)

# BUFFERED mode hands the whole request body to the router in one message; gRPC's 4 MiB default would refuse
# long prompts long before Envoy's own body limit does.
MAX_MESSAGE = 64 * 1024 * 1024
GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.so_reuseport", 0),
]


@dataclass(frozen=True)
class BbrOptions:
    port: int = 9004
    health_port: int | None = 9005
    bind: str = "0.0.0.0"
    models: BaseModels = field(default_factory=BaseModels)
    # TLS on the ext_proc port; None serves cleartext HTTP/2 (the local runtime's Envoy on loopback)
    serving_cert: ServingCert | None = None
    # the gRPC server carrying ext_proc: "h2" (inferplane's h2grpc, as the endpoint picker) or "grpcio" (grpc.aio)
    ext_proc_server: str = "h2"


class BbrServer:
    def __init__(self, opts: BbrOptions) -> None:
        self.opts = opts
        # the picker's health states: liveness while the process runs, readiness and the ext_proc service name
        # while it routes (from start to stop: the router needs no discovery)
        self.health = EppHealth()
        self.port = 0
        self.health_port = 0
        self._servers: list[Stoppable] = []
        self._stopped = asyncio.Event()

    @property
    def scheme(self) -> str:
        """How the ext_proc port is reached: `grpcs` (TLS) or `grpc` (cleartext HTTP/2)."""
        return "grpcs" if self.opts.serving_cert is not None else "grpc"

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop(0)  # what did start must not outlive a failed start
            raise

    async def _start(self) -> None:
        await self.health.start()
        await self.health.set_ready(True)
        opts = self.opts
        ext_proc, self.port = await start_ext_proc_port(
            opts.ext_proc_server, BbrServicer(opts.models), self.health, opts.bind, opts.port, opts.serving_cert,
            GRPC_OPTIONS,
        )  # fmt: skip
        self._servers.append(ext_proc)
        if opts.health_port is not None:
            side, self.health_port = await start_health_port(self.health, opts.bind, opts.health_port, GRPC_OPTIONS)
            self._servers.append(side)
        log.debug(  # `inferplane bbr` prints the same as its one start-up line
            "body-based router: ext_proc %s://%s:%d, health %s, %d known models",
            self.scheme, opts.bind, self.port, self.health_port or "-", len(opts.models),
        )  # fmt: skip

    async def wait(self) -> None:
        """Returns once the router has stopped."""
        await self._stopped.wait()

    async def stop(self, grace: float = 1.0) -> None:
        await self.health.set_ready(False)  # liveness stays SERVING while the process drains
        for server in self._servers:
            await server.stop(grace)
        self._stopped.set()
