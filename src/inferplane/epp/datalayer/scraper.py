"""Polls every endpoint's /metrics (one asyncio task and one kept-alive connection per endpoint).

Upstream runs one collector per endpoint every 50 ms with a 1 s timeout (`metrics.md` §1). A failed scrape marks
the endpoint not ready at once and keeps it so until a scrape answers again: a killed replica stops receiving
traffic within one interval plus the connect error, which on loopback is immediate.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from inferplane.epp.datalayer.datastore import Datastore
from inferplane.epp.datalayer.http_get import HTTPGetError, HTTPGetter
from inferplane.epp.datalayer.metrics_parser import ParsedMetrics, parse_metrics
from inferplane.epp.framework.types import Endpoint

log = logging.getLogger(__name__)

# The families an endpoint should have; a missing one is warned about once per endpoint (the vLLM KV rename made
# upstream EPPs read zeros silently for months).
_REQUIRED = ("waiting", "running", "kv")


def apply(ep: Endpoint, parsed: ParsedMetrics, now: float) -> None:
    m = ep.metrics
    if parsed.waiting is not None:
        m.waiting_queue_size = int(parsed.waiting)
    if parsed.running is not None:
        m.running_requests_size = int(parsed.running)
    if parsed.kv is not None:
        m.kv_cache_usage_percent = parsed.kv
    if parsed.block_size is not None:
        m.cache_block_size = int(parsed.block_size)
    if parsed.num_blocks is not None:
        m.cache_num_gpu_blocks = int(parsed.num_blocks)
    if parsed.running_loras is not None:
        m.active_models = dict.fromkeys(parsed.running_loras, 1)
        m.waiting_models = dict.fromkeys(parsed.waiting_loras or (), 1)
        m.max_active_models = parsed.max_lora or 0
    m.update_time = now
    m.scrape_error = None


class MetricsScraper:
    def __init__(
        self,
        datastore: Datastore,
        interval: float = 0.05,
        timeout: float = 1.0,
        on_scrape: Callable[[Endpoint, float, bool], None] | None = None,
    ) -> None:
        self.datastore = datastore
        self.interval = interval
        self.timeout = timeout
        self.on_scrape = on_scrape  # (endpoint, seconds, ok): for the scrape-latency metric
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._getters: dict[str, HTTPGetter] = {}
        self._warned: set[tuple[str, str]] = set()

    async def start(self) -> None:
        self.datastore.listeners.append(self._on_change)
        self._on_change(list(self.datastore.endpoints.values()), [])

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        for g in self._getters.values():
            g.close()
        self._getters.clear()

    def _on_change(self, added: list[Endpoint], removed: list[Endpoint]) -> None:
        for ep in removed:
            task = self._tasks.pop(ep.hostport, None)
            if task is not None:
                task.cancel()
            getter = self._getters.pop(ep.hostport, None)
            if getter is not None:
                getter.close()
        for ep in added:
            if ep.hostport not in self._tasks:
                self._tasks[ep.hostport] = asyncio.get_running_loop().create_task(self._poll(ep))

    async def scrape_once(self, ep: Endpoint) -> bool:
        getter = self._getters.get(ep.hostport)
        if getter is None:
            getter = self._getters[ep.hostport] = HTTPGetter(ep.key.address, ep.key.port)
        t0 = time.monotonic()
        try:
            status, body = await getter.get(self.timeout)
            if status != 200:
                raise HTTPGetError(f"GET /metrics answered {status}")
            parsed = parse_metrics(body.decode("utf-8", "replace"))
        except (HTTPGetError, TimeoutError, OSError) as exc:
            if ep.ready:
                log.warning("endpoint %s: metrics scrape failed (%s); marked not ready", ep.hostport, exc)
            ep.ready = False
            ep.metrics.scrape_error = str(exc) or type(exc).__name__
            if self.on_scrape:
                self.on_scrape(ep, time.monotonic() - t0, False)
            return False
        now = time.monotonic()
        apply(ep, parsed, now)
        if not ep.ready:
            log.info("endpoint %s: metrics answer; ready", ep.hostport)
        ep.ready = True
        self._warn_missing(ep, parsed)
        if self.on_scrape:
            self.on_scrape(ep, now - t0, True)
        return True

    async def first_round(self) -> None:
        """Return once every endpoint known now has been scraped at least once by its poller (answered or failed),
        or after the scrape timeout — whichever comes first."""
        pending = list(self.datastore.endpoints.values())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout + 0.1
        while loop.time() < deadline:
            pending = [e for e in pending if e.metrics.update_time == 0 and e.metrics.scrape_error is None]
            if not pending:
                return
            await asyncio.sleep(0.005)

    def _warn_missing(self, ep: Endpoint, parsed: ParsedMetrics) -> None:
        for fam in _REQUIRED:
            if getattr(parsed, fam) is None and (ep.hostport, fam) not in self._warned:
                self._warned.add((ep.hostport, fam))
                log.warning(
                    "endpoint %s: /metrics has no %s metric (looked for vLLM, SGLang and TensorRT-LLM names); "
                    "scoring treats it as 0",
                    ep.hostport,
                    fam,
                )

    async def _poll(self, ep: Endpoint) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await self.scrape_once(ep)
            await asyncio.sleep(max(0.0, self.interval - (loop.time() - started)))
