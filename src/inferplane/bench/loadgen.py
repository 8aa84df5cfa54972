"""The load generator: closed loop at a concurrency, open loop with Poisson or constant arrivals, trace replay, and
ladders of such stages, each bounded by duration and by request count.

Each stage drains its in-flight requests before the next begins (bounded by `drain_timeout`), so per-stage numbers
describe that stage's load only. Arrival times come from a seeded random stream, so two configurations compared side
by side receive the same arrival pattern.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aiohttp

from inferplane.bench.client import Target, send
from inferplane.bench.records import RequestRecord, StageInfo
from inferplane.bench.workloads import RequestSource, RequestSpec

MODES = ("closed", "poisson", "constant", "trace")


@dataclass(frozen=True)
class Stage:
    name: str
    mode: str  # one of MODES
    rate: float | None = None  # open loop: requests per second
    concurrency: int | None = None  # closed loop: requests in flight
    duration: float | None = None  # seconds; None: until max_requests or the workload runs out
    max_requests: int | None = None
    warmup: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown load mode {self.mode!r}")
        if self.mode in ("poisson", "constant") and not (self.rate and self.rate > 0):
            raise ValueError(f"stage {self.name}: an open-loop stage needs a positive rate")
        if self.mode == "closed" and not (self.concurrency and self.concurrency > 0):
            raise ValueError(f"stage {self.name}: a closed-loop stage needs a positive concurrency")
        if self.duration is None and self.max_requests is None and self.mode != "trace":
            raise ValueError(f"stage {self.name}: bound it by duration or by max_requests")


@dataclass
class Progress:
    """Live counters for the progress view; the generator writes, the view reads."""

    stage: str = ""
    stage_index: int = 0
    stages: int = 0
    stage_started: float = 0.0
    stage_duration: float | None = None
    sent: int = 0
    done: int = 0
    failed: int = 0
    in_flight: int = 0
    output_tokens: int = 0
    last_ttft: list[float] = field(default_factory=list)


@dataclass
class LoadGenerator:
    target: Target
    seed: int = 0
    max_in_flight: int = 4096  # open loop: beyond this, arrivals wait (the delay shows in record.scheduled)
    drain_timeout: float = 120.0
    request_timeout: float = 600.0
    progress: Progress = field(default_factory=Progress)
    on_record: Callable[[RequestRecord], None] | None = None

    async def run(self, source: RequestSource, stages: Sequence[Stage]) -> tuple[list[RequestRecord], list[StageInfo]]:
        records: list[RequestRecord] = []
        infos: list[StageInfo] = []
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        timeout = aiohttp.ClientTimeout(total=self.request_timeout, sock_connect=10)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            self._session = session
            self._t0 = time.perf_counter()
            self.progress.stages = len(stages)
            for i, stage in enumerate(stages):
                self.progress.stage, self.progress.stage_index = stage.name, i
                self.progress.stage_duration = stage.duration
                started = self._now()
                self.progress.stage_started = started
                stage_records = await self._run_stage(source, stage)
                records.extend(stage_records)
                infos.append(
                    StageInfo(stage.name, stage.mode, stage.rate, stage.concurrency, started, self._now(), stage.warmup)
                )
        return records, infos

    def _now(self) -> float:
        return time.perf_counter() - self._t0

    async def _one(
        self, source: RequestSource, spec: RequestSpec, stage: Stage, scheduled: float | None, out: list[RequestRecord]
    ) -> None:
        record = RequestRecord(start=0.0, stage=stage.name, scheduled=scheduled)
        out.append(record)
        self.progress.sent += 1
        self.progress.in_flight += 1
        reply = None
        try:
            reply = await send(self._session, self.target, spec, record, self._t0)
        except asyncio.CancelledError:
            record.error = "cancelled: stage drain timeout"
            raise
        finally:
            self.progress.in_flight -= 1
            self.progress.done += 1
            if not record.ok:
                self.progress.failed += 1
            else:
                self.progress.output_tokens += record.output_tokens
                if record.ttft is not None:
                    self.progress.last_ttft.append(record.ttft)
                    del self.progress.last_ttft[:-200]
            source.done(spec, reply)
            if self.on_record:
                self.on_record(record)

    async def _run_stage(self, source: RequestSource, stage: Stage) -> list[RequestRecord]:
        out: list[RequestRecord] = []
        deadline = None if stage.duration is None else time.perf_counter() + stage.duration
        if stage.mode == "closed":
            await self._closed(source, stage, deadline, out)
        else:
            await self._open(source, stage, deadline, out)
        return out

    async def _closed(
        self, source: RequestSource, stage: Stage, deadline: float | None, out: list[RequestRecord]
    ) -> None:
        budget = [stage.max_requests if stage.max_requests is not None else -1]

        async def worker() -> None:
            while deadline is None or time.perf_counter() < deadline:
                if budget[0] == 0:
                    return
                budget[0] -= 1
                spec = await self._next(source, deadline)
                if spec is None:
                    return
                await self._one(source, spec, stage, None, out)

        assert stage.concurrency is not None
        workers = [asyncio.create_task(worker()) for _ in range(stage.concurrency)]
        await self._drain(workers, deadline)

    async def _next(self, source: RequestSource, deadline: float | None) -> RequestSpec | None:
        """The next spec, giving up at the deadline (a multi-turn source may wait for a session to free up)."""
        if deadline is None:
            return await source.next()
        try:
            return await asyncio.wait_for(source.next(), max(deadline - time.perf_counter(), 0.001))
        except TimeoutError:
            return None

    def _arrivals(self, stage: Stage) -> Callable[[], float]:
        """Seconds to the next arrival."""
        assert stage.rate is not None
        rate = stage.rate
        if stage.mode == "constant":
            return lambda: 1.0 / rate
        rng = random.Random(f"{self.seed}:arrivals:{stage.name}")
        return lambda: rng.expovariate(rate)

    async def _open(
        self, source: RequestSource, stage: Stage, deadline: float | None, out: list[RequestRecord]
    ) -> None:
        tasks: set[asyncio.Task[None]] = set()
        slots = asyncio.Semaphore(self.max_in_flight)
        begin = time.perf_counter()
        gap = None if stage.mode == "trace" else self._arrivals(stage)
        next_at = begin + (gap() if gap and stage.mode == "poisson" else 0.0)
        sent = 0
        while stage.max_requests is None or sent < stage.max_requests:
            spec = await self._next(source, deadline)
            if spec is None:
                break
            if spec.at is not None and gap is None:
                next_at = begin + spec.at
            if deadline is not None and next_at >= deadline:
                break
            delay = next_at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            scheduled = next_at - self._t0
            task = asyncio.create_task(self._one(source, spec, stage, scheduled, out))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            task.add_done_callback(lambda _: slots.release())
            sent += 1
            if gap is not None:
                next_at += gap()
        await self._drain(list(tasks), None)

    async def _drain(self, tasks: list[asyncio.Task[None]], deadline: float | None) -> None:
        if not tasks:
            return
        limit = self.drain_timeout + (max(deadline - time.perf_counter(), 0.0) if deadline else 0.0)
        _, pending = await asyncio.wait(tasks, timeout=limit)
        for t in pending:
            t.cancel()
        for t in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await t
