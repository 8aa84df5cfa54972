"""The endpoint-picker process: ext_proc and health gRPC servers, the metrics page, the data layer, wired together.

`EppServer` is usable in-process (tests, benchmarks) and by `inferplane epp` (command.py), which runs it under
uvloop until SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from inferplane.api.epp_config import EndpointPickerConfig
from inferplane.epp.datalayer.datastore import Datastore
from inferplane.epp.datalayer.discovery import DiscoverySource
from inferplane.epp.datalayer.kvevents import KVEventBatch, KVEventSubscriber
from inferplane.epp.datalayer.scraper import MetricsScraper
from inferplane.epp.director import Director
from inferplane.epp.extproc import FULL_DUPLEX, ExtProcServicer
from inferplane.epp.extproc_port import Stoppable, start_ext_proc_port, start_health_port
from inferplane.epp.flowcontrol.rewrite import ModelRewriter
from inferplane.epp.health import EppHealth
from inferplane.epp.integration import (
    build_admission,
    build_scheduler_for,
    kv_event_sink,
    kv_events_settings,
    request_parser,
)
from inferplane.epp.metrics import EppMetrics
from inferplane.epp.tls import ServingCert
from inferplane.errors import InferplaneError

log = logging.getLogger(__name__)

GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.so_reuseport", 0),  # a second EPP on the same port must fail, not share it
    ("grpc.http2.max_pings_without_data", 0),
]


@dataclass
class EppOptions:
    pool_name: str
    discovery: DiscoverySource
    config: EndpointPickerConfig
    pool_namespace: str = "default"
    bind: str = "0.0.0.0"
    grpc_port: int = 9002
    grpc_health_port: int = 9003
    metrics_port: int | None = 9090  # 0 = any free port, None = no metrics page
    refresh_metrics_interval: float = 0.05
    scrape_timeout: float = 1.0
    kv_events_bind: str | None = None
    kv_events_connect: list[str] = field(default_factory=list)
    default_body_mode: int = FULL_DUPLEX
    # TLS on the ext_proc port (`--secure-serving`); None = plaintext. The health port is always plaintext.
    serving_cert: ServingCert | None = None
    seed: int | None = None
    # which gRPC server carries ext_proc: "h2" (inferplane's h2grpc on the event loop, BENCHMARKS.md run H) or
    # "grpcio" (grpc.aio)
    ext_proc_server: str = "h2"
    on_extras: Callable[[Any], None] | None = None


class EppServer:
    def __init__(self, opts: EppOptions) -> None:
        self.opts = opts
        self.datastore = Datastore(pool_name=opts.pool_name, pool_namespace=opts.pool_namespace)
        self.metrics = EppMetrics()
        rng = random.Random(opts.seed)
        self.scheduler = build_scheduler_for(opts.config, self.metrics, rng)
        self.admission = build_admission(opts.config, self.datastore, self.metrics, self.scheduler)
        self.metrics.attach_pool(self.datastore, self.admission.saturation, self.scheduler.plugins)
        self.datastore.rewriter = ModelRewriter(rng=rng)
        parser = request_parser(opts.config, self.scheduler)
        self.director = Director(
            self.datastore,
            self.scheduler,
            self.metrics,
            admit=self.admission.admit,
            rng=rng,
            parse=parser.parse_request,
        )
        self.servicer = ExtProcServicer(self.director, opts.default_body_mode)
        self.health = EppHealth()
        self.scraper = MetricsScraper(
            self.datastore,
            interval=opts.refresh_metrics_interval,
            timeout=opts.scrape_timeout,
            on_scrape=self._on_scrape,
        )
        self.kv_subscriber: KVEventSubscriber | None = None
        self._sink: Callable[[str, KVEventBatch], None] | None = kv_event_sink(self.scheduler)
        self._kv_settings = kv_events_settings(self.scheduler)
        kv_bind = opts.kv_events_bind
        kv_connect = list(opts.kv_events_connect)
        topic_filter = "kv@"
        if self._kv_settings is not None:
            topic_filter = self._kv_settings.topic_filter
            if kv_bind is None and not kv_connect and not self._kv_settings.discover_pods:
                kv_bind = self._kv_settings.zmq_endpoint  # central mode, as the scorer's config says
        if kv_bind and kv_bind.startswith("tcp://*:") and opts.bind not in ("0.0.0.0", "::"):
            kv_bind = kv_bind.replace("*", opts.bind, 1)  # --bind 127.0.0.1 keeps every socket on loopback
        per_pod = self._kv_settings is not None and self._kv_settings.discover_pods
        if kv_bind or kv_connect or per_pod:
            self.kv_subscriber = KVEventSubscriber(
                self.datastore,
                self._on_kv_batch,
                bind=kv_bind,
                connect=kv_connect,
                topic_filter=topic_filter,
                on_event=lambda kind: self.metrics.kv_events.labels(kind).inc(),
                on_unmatched=self.metrics.kv_events_unmatched.inc,
            )
            if per_pod:
                self.datastore.listeners.append(self._follow_pods)
        self._ext_proc: Stoppable | None = None
        self._health_grpc: grpc.aio.Server | None = None
        self._web: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._ready_task: asyncio.Task[None] | None = None
        self.grpc_port = opts.grpc_port
        self.health_port = opts.grpc_health_port
        self.metrics_port = opts.metrics_port or 0

    def _on_scrape(self, ep: Any, seconds: float, ok: bool) -> None:
        self.metrics.scrape_duration.observe(seconds)
        if not ok:
            self.metrics.scrape_errors.labels(ep.hostport).inc()

    def _follow_pods(self, added: list[Any], removed: list[Any]) -> None:
        """Per-pod KV events (`discoverPods: true`): one connection per endpoint to its publisher's socket."""
        assert self.kv_subscriber is not None
        assert self._kv_settings is not None
        port = self._kv_settings.socket_port
        for ep in removed:
            self.kv_subscriber.disconnect_endpoint(f"tcp://{ep.key.address}:{port}")
        for ep in added:
            self.kv_subscriber.connect_endpoint(f"tcp://{ep.key.address}:{port}")

    def _on_kv_batch(self, hostport: str, batch: KVEventBatch) -> None:
        if self._sink is not None:
            self._sink(hostport, batch)

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop(0)  # what did start (the health port, say) must not outlive a failed start
            raise

    async def _start(self) -> None:
        await self.health.start()
        opts = self.opts
        self._health_grpc, self.health_port = await start_health_port(
            self.health, opts.bind, opts.grpc_health_port, GRPC_OPTIONS
        )
        self._ext_proc, self.grpc_port = await start_ext_proc_port(
            opts.ext_proc_server, self.servicer, self.health, opts.bind, opts.grpc_port, opts.serving_cert,
            GRPC_OPTIONS,
        )  # fmt: skip

        if self.opts.metrics_port is not None:
            app = web.Application()
            app.router.add_get("/metrics", self._metrics_page)
            self._web = web.AppRunner(app, access_log=None)
            await self._web.setup()
            site = web.TCPSite(self._web, self.opts.bind, self.opts.metrics_port)
            try:
                await site.start()
            except OSError as exc:
                raise InferplaneError(
                    f"cannot serve metrics on {self.opts.bind}:{self.opts.metrics_port}: {exc}"
                ) from None
            addresses = self._web.addresses  # the bound (host, port, ...) of each site: port 0 resolved
            if addresses:
                self.metrics_port = int(addresses[0][1])

        await self.scraper.start()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._discover()))
        if self.kv_subscriber is not None:
            self.kv_subscriber.open()
            self._tasks.append(loop.create_task(self.kv_subscriber.run()))
        log.info(
            "endpoint picker for pool %s: ext_proc %s:%d, health %d, metrics %d",
            self.opts.pool_name,
            self.opts.bind,
            self.grpc_port,
            self.health_port,
            self.metrics_port,
        )

    async def _discover(self) -> None:
        def sink(specs: Any) -> None:
            self.datastore.set_endpoints(specs)
            if not self.health.ready and self._ready_task is None:
                self._ready_task = asyncio.get_running_loop().create_task(self._become_ready())

        await self.opts.discovery.run(sink)

    async def _become_ready(self) -> None:
        """Ready once discovery has delivered the pool and every endpoint has been scraped once (answered or
        failed), so the first requests after readiness see live metrics rather than a pool of not-yet-ready
        endpoints."""
        await self.scraper.first_round()
        await self.health.set_ready(True)

    async def _metrics_page(self, request: web.Request) -> web.Response:
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def wait_failed(self) -> None:
        """Returns when a background task (discovery) failed, re-raising its error."""
        while True:
            for t in self._tasks:
                if t.done() and not t.cancelled() and t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
            await asyncio.sleep(0.2)

    async def stop(self, grace: float = 1.0) -> None:
        await self.health.shutdown()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.scraper.stop()
        if self._ext_proc is not None:
            await self._ext_proc.stop(grace)
        if self._health_grpc is not None:
            await self._health_grpc.stop(0)
        if self._web is not None:
            await self._web.cleanup()
