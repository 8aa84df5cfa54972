"""One simulated engine in real time: the asyncio driver of the step engine, its block manager, metrics and KV-event
publisher, and the token streams the HTTP handlers read.

Simulated time runs `1 / time_scale` times as fast as the wall clock. Steps are laid end to end in simulated time
(a step starts when the previous one ends, or now if the engine was idle or the event loop fell behind), and the
driver sleeps until each step's end in wall-clock time before applying it, so TTFT, ITL and queueing come from the
schedule rather than from sleep jitter.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from dataclasses import dataclass, field

from inferplane.sim.config import SimConfig
from inferplane.sim.engine import Engine, QueueFull, Sequence
from inferplane.sim.kvblocks import BlockManager, cache_extra
from inferplane.sim.kvpublisher import ZmqEventPublisher
from inferplane.sim.latency import build_latency_model
from inferplane.sim.metrics import EngineMetrics
from inferplane.sim.protocol import ApiError, GenerationRequest
from inferplane.sim.textgen import TextGenerator
from inferplane.tokenizer import Tokenizer

log = logging.getLogger(__name__)

ZERO_STEP_SLICE_S = 0.005


class RequestStream:
    """What a handler waits on: the driver marks it dirty after any of its sequences changed."""

    __slots__ = ("_loop", "_waiter", "dirty", "seqs")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiter: asyncio.Future[None] | None = None
        self.dirty = False
        self.seqs: list[Sequence] = []

    def notify(self) -> None:
        self.dirty = True
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def wait(self) -> None:
        if not self.dirty:
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        self.dirty = False

    @property
    def done(self) -> bool:
        return all(s.finish_reason is not None for s in self.seqs)


@dataclass(slots=True)
class ReplicaIdentity:
    index: int
    port: int
    pod_name: str
    engine: str  # the `engine` metric label: data-parallel rank
    data_parallel_rank: int | None
    loras: dict[str, str] = field(default_factory=dict)  # loaded LoRA name → path


class Replica:
    def __init__(self, cfg: SimConfig, ident: ReplicaIdentity, tokenizer: Tokenizer, kv_topic_host: str) -> None:
        self.cfg = cfg
        self.ident = ident
        self.tokenizer = tokenizer
        self.loop = asyncio.get_running_loop()
        self.num_gpu_blocks = cfg.num_gpu_blocks()
        self.publisher: ZmqEventPublisher | None = None
        if cfg.kv_events.enabled:
            topic = cfg.kv_events.topic or f"kv@{kv_topic_host}:{ident.port}@{cfg.names[0]}"
            self.publisher = ZmqEventPublisher(cfg.kv_events, topic, ident.data_parallel_rank, ident.index)
        self.blocks = BlockManager(
            self.num_gpu_blocks, cfg.block_size, cfg.enable_prefix_caching, record_events=self.publisher is not None
        )
        seed = None if cfg.seed is None else cfg.seed + ident.index
        self.latency = build_latency_model(
            cfg.profile,
            cfg.upstream,
            max_num_seqs=cfg.max_num_seqs,
            tensor_parallel_size=cfg.tensor_parallel_size,
            seed=seed,
        )
        self.engine = Engine(
            self.blocks,
            self.latency,
            max_num_seqs=cfg.max_num_seqs,
            max_num_batched_tokens=cfg.max_num_batched_tokens,
            max_waiting=cfg.max_waiting,
            max_loras=cfg.max_loras if cfg.enable_lora else 0,
            clock=self.now,
        )
        self.textgen = TextGenerator(tokenizer, cfg.mode, seed)
        self.metrics = EngineMetrics(
            model_name=cfg.names[0],
            engine=ident.engine,
            block_size=cfg.block_size,
            num_gpu_blocks=self.num_gpu_blocks,
            max_model_len=cfg.max_model_len,
            max_loras=cfg.max_loras,
            legacy_gpu_cache_metric=cfg.legacy_gpu_cache_metric,
        )
        self.metrics.bind_state(
            lambda: len(self.engine.running),
            lambda: len(self.engine.waiting),
            lambda: self.blocks.usage,
            self._lora_state,
        )
        self._rng = random.Random(seed)
        self._ids = itertools.count()
        self._wake = asyncio.Event()
        self._real0 = self.loop.time()
        self._task: asyncio.Task[None] | None = None
        self.sleeping = False

    # --- time ----------------------------------------------------------------------------------------------
    def now(self) -> float:
        """Simulated seconds since start."""
        return (self.loop.time() - self._real0) / self.cfg.time_scale

    def _real_at(self, sim_t: float) -> float:
        return self._real0 + sim_t * self.cfg.time_scale

    # --- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = self.loop.create_task(self._run(), name=f"engine-{self.ident.port}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self.publisher is not None:
            self.publisher.close()

    async def _run(self) -> None:
        engine = self.engine
        loop = self.loop
        last_end = 0.0
        last_yield = loop.time()
        while True:
            step = engine.schedule() if engine.has_work else None
            self._publish_events()
            if step is None:
                self._wake.clear()
                await self._wake.wait()
                last_yield = loop.time()
                continue
            end = max(self.now(), last_end) + step.duration
            delay = self._real_at(end) - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
                last_yield = loop.time()
            elif loop.time() - last_yield >= ZERO_STEP_SLICE_S:
                # Steps that take no wall time (zero profile, tiny --time-scale) run back to back for a slice,
                # so each stream's handler wakes once per slice and writes its tokens in one send.
                await asyncio.sleep(0)
                last_yield = loop.time()
            out = engine.finish_step(step, end)
            last_end = end
            self._deliver(step.admitted, step.preempted, out.emitted, out.finished)

    def _deliver(
        self, admitted: list[Sequence], preempted: list[Sequence], emitted: list[Sequence], finished: list[Sequence]
    ) -> None:
        m = self.metrics
        for seq in admitted:
            m.on_admitted(seq)
        if preempted:
            m.on_preempted(len(preempted))
        gaps: dict[float, int] = {}
        for seq in emitted:
            if seq.num_output == 1:
                m.on_first_token(seq)
            elif seq.prev_token_time is not None and seq.last_token_time is not None:
                gap = seq.last_token_time - seq.prev_token_time
                gaps[gap] = gaps.get(gap, 0) + 1
            stream = seq.listener
            if stream is not None:
                stream.notify()
        if emitted:
            m.on_tokens(len(emitted), gaps)
        for seq in finished:
            m.on_finished(seq, seq.max_tokens)
            if seq.listener is not None:
                seq.listener.notify()

    def _publish_events(self) -> None:
        if self.publisher is not None:
            events = self.blocks.take_events()
            if events:
                self.publisher.publish(events)

    # --- requests ------------------------------------------------------------------------------------------
    def _lora_state(self) -> tuple[list[str], list[str]]:
        running = {s.lora for s in self.engine.running if s.lora is not None}
        waiting = {s.lora for s in self.engine.waiting if s.lora is not None}
        return sorted(running), sorted(waiting)

    def resolve_model(self, name: str) -> str | None:
        """None for a base model name, the LoRA name for a loaded adapter; ApiError 404 otherwise."""
        if not name or name in self.cfg.names:
            return None
        if name in self.ident.loras:
            return name
        raise ApiError(404, f"The model `{name}` does not exist.", type_="NotFoundError", param="model")

    def max_tokens_for(self, req: GenerationRequest, prompt_len: int) -> int:
        if req.remote_decode:
            return 1
        return req.max_tokens if req.max_tokens is not None else self.cfg.max_model_len - prompt_len

    async def submit(self, req: GenerationRequest, lora: str | None) -> RequestStream:
        """Plan each choice's output, pay the front-end cost, queue the sequences; the stream reports progress."""
        stream = RequestStream(self.loop)
        arrival = self.now()
        base = self.cfg.names[0]
        extra = cache_extra(lora or base, req.cache_salt)
        for i, (prompt, echo) in enumerate(zip(req.prompts, req.echo_ids, strict=True)):
            max_tokens = self.max_tokens_for(req, len(prompt))
            seed = None if req.seed is None else req.seed + i
            plan = self.textgen.plan(echo, max_tokens, req.ignore_eos or req.remote_decode, seed)
            seq = Sequence(
                request_id=f"{next(self._ids)}",
                prompt=prompt,
                output_plan=plan.token_ids,
                max_tokens=max_tokens,
                finish_reason_at_end="remote_decode" if req.remote_decode else plan.finish_reason,
                hash_extra=extra,
                lora=lora,
                remote_prefill=req.remote_prefill,
                arrival=arrival,
            )
            seq.listener = stream
            stream.seqs.append(seq)
        overhead = max(self.latency.request_overhead(len(p)) for p in req.prompts)
        if overhead > 0:
            await asyncio.sleep(overhead * self.cfg.time_scale)
        try:
            for seq in stream.seqs:
                self.engine.add(seq)
        except QueueFull as exc:
            self.abort(stream)
            raise ApiError(429, str(exc), type_="RateLimitError") from None
        self._wake.set()
        return stream

    def abort(self, stream: RequestStream) -> None:
        for seq in stream.seqs:
            if seq.finish_reason is None:
                self.engine.abort(seq)
        self._wake.set()

    def sleep(self) -> None:
        self.sleeping = True
        if self.engine.reset_prefix_cache():
            self._publish_events()

    def pick_failure(self) -> str | None:
        if self.cfg.failure_rate <= 0 or self._rng.random() * 100.0 >= self.cfg.failure_rate:
            return None
        from inferplane.sim.protocol import FAILURES

        types = self.cfg.failure_types or sorted(FAILURES)
        return self._rng.choice(types)
