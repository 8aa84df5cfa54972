"""One simulated benchmark run: the bench's stages and workload against a virtual fleet, in virtual time.

The client side mirrors `inferplane.bench.loadgen` (same stage semantics, same seeded arrival stream, the same
request bodies from `bench.client.Target`), the replicas parse those bodies with the simulator's own request parser,
and every request ends as a `RequestRecord` like a measured one, so `results.json`, `report.md` and the plots come
out of the bench's own writers. Requests flow:

    client ─ gateway hop ─▶ picker (pool's scheduler) ─ network ─▶ replica front end (request overhead)
           ─▶ engine queue ─▶ steps ─▶ first token / last token ─ network ─▶ client

Each replica's engine is advanced only when something happens to it (a request arrives, or its current step ends),
so idle replicas cost nothing.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from inferplane.bench.client import Target
from inferplane.bench.loadgen import Stage
from inferplane.bench.records import RequestRecord, StageInfo
from inferplane.bench.workloads import RequestSource, RequestSpec
from inferplane.bench.workloads.base import ListSource
from inferplane.sim.engine import QueueFull, ScheduledStep
from inferplane.sim.engine import Sequence as EngineSequence
from inferplane.sim.kvblocks import cache_extra
from inferplane.sim.protocol import ApiError, parse_generation
from inferplane.sim.textgen import TextGenerator
from inferplane.simulate.events import EventQueue
from inferplane.simulate.fleet import VirtualReplica
from inferplane.simulate.picker import Routed, VirtualPicker
from inferplane.tokenizer import Tokenizer, get_tokenizer


@dataclass(frozen=True)
class Hops:
    """Latency added outside the engines, one way, in seconds. Defaults: BENCHMARKS.md run H (Envoy alone p50
    0.77-0.96 ms at one request at a time; the picker's ext_proc round trip +0.7-1.3 ms over Envoy alone)."""

    gateway: float = 0.0008
    ext_proc: float = 0.001
    network: float = 0.0001


@dataclass
class _InFlight:
    record: RequestRecord
    spec: RequestSpec
    stage_gen: int
    routed: Routed | None = None
    seqs: list[EngineSequence] = field(default_factory=list)
    last_token: float = 0.0


def take(source: RequestSource) -> tuple[RequestSpec | None, bool]:
    """The source's next spec without an event loop turn: (spec, True), or (None, False) when the source would
    wait (a multi-turn source whose sessions all have a request in flight). Must run inside a running loop."""
    coro = source.next()
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value, True
    coro.close()
    return None, False


class Simulation:
    """Runs stages of load against pickers and replicas that share one event queue."""

    def __init__(
        self,
        events: EventQueue,
        pickers: dict[str, VirtualPicker],
        target: Target,
        *,
        hops: Hops = Hops(),
        seed: int = 0,
        drain_timeout: float = 120.0,
        tokenizer: Tokenizer | None = None,
        keep_itl: bool = True,
    ) -> None:
        self.events = events
        self.pickers = pickers  # model name → the picker of the pool that serves it
        self.target = target
        self.hops = hops
        self.seed = seed
        self.drain_timeout = drain_timeout
        self.tokenizer = tokenizer or get_tokenizer(None)
        self.textgen = TextGenerator(self.tokenizer, "random", seed)
        self.keep_itl = keep_itl
        self._ids = itertools.count()
        self._seq_owner: dict[str, _InFlight] = {}
        self._in_flight = 0
        self._gen = 0  # stage generation: events of a finished stage are ignored
        self._accepting = False
        self._records: list[RequestRecord] = []
        self._waiting_for_source = 0  # closed loop: workers waiting for a free session
        self.kind = "chat" if target.api == "chat" else "completion"
        self.path = "/v1/chat/completions" if self.kind == "chat" else "/v1/completions"

    # --- the run -------------------------------------------------------------------------------------------
    def run(self, source: RequestSource, stages: Sequence[Stage]) -> tuple[list[RequestRecord], list[StageInfo]]:
        infos: list[StageInfo] = []
        for stage in stages:
            started = self.events.now
            self._run_stage(source, stage)
            infos.append(
                StageInfo(stage.name, stage.mode, stage.rate, stage.concurrency, started, self.events.now, stage.warmup)
            )
        return self._records, infos

    def _run_stage(self, source: RequestSource, stage: Stage) -> None:
        self._gen += 1
        gen = self._gen
        self._stage = stage
        self._source = source
        self._accepting = True
        self._sent = 0
        self._waiting_for_source = 0
        now = self.events.now
        if stage.duration is not None:
            self.events.at(now + stage.duration, lambda: self._close(gen))
        if stage.mode == "closed":
            assert stage.concurrency is not None
            for _ in range(stage.concurrency):
                self._closed_next()
        else:
            self._gap = self._arrivals(stage)
            first = self._gap() if self._gap is not None and stage.mode == "poisson" else 0.0
            self._begin = now
            self._open_next(now + first, gen)
        self.events.run(until=lambda: not self._accepting and self._in_flight == 0)
        self._accepting = False
        if self._in_flight:  # the queue ran dry with requests that can never finish (every replica down)
            self._abort_all("cancelled: no replica left to serve it")

    def _close(self, gen: int) -> None:
        if gen != self._gen or not self._accepting:
            return
        self._accepting = False
        self.events.after(self.drain_timeout, lambda: self._drain_timeout(gen))

    def _drain_timeout(self, gen: int) -> None:
        if gen == self._gen and self._in_flight:
            self._abort_all("cancelled: stage drain timeout")

    def _abort_all(self, reason: str) -> None:
        for owner in list(dict.fromkeys(self._seq_owner.values())):
            for seq in owner.seqs:
                if owner.routed is not None and seq.finish_reason is None:
                    owner.routed.replica.engine.abort(seq)
            self._fail(owner, 0, reason)

    def _budget_left(self) -> bool:
        limit = self._stage.max_requests
        return limit is None or self._sent < limit

    # --- arrivals ------------------------------------------------------------------------------------------
    def _arrivals(self, stage: Stage) -> Callable[[], float] | None:
        if stage.mode == "trace":
            return None
        assert stage.rate is not None
        rate = stage.rate
        if stage.mode == "constant":
            return lambda: 1.0 / rate
        rng = random.Random(f"{self.seed}:arrivals:{stage.name}")  # the bench's stream: same arrivals
        return lambda: rng.expovariate(rate)

    def _open_next(self, at: float, gen: int) -> None:
        self.events.at(at, lambda: self._open_arrival(at, gen))

    def _open_arrival(self, at: float, gen: int) -> None:
        if gen != self._gen or not self._accepting or not self._budget_left():
            self._close(gen)
            return
        spec, ready = take(self._source)
        if not ready:  # a multi-turn source with every session busy: this arrival waits for a free session
            self._waiting_for_source += 1
            return
        if spec is None:
            self._close(gen)
            return
        if spec.at is not None and self._gap is None:
            at = self._begin + spec.at
            if at > self.events.now:
                self.events.at(at, lambda: self._send_and_continue(spec, at, gen))
                return
        self._send_and_continue(spec, at, gen)

    def _send_and_continue(self, spec: RequestSpec, at: float, gen: int) -> None:
        if gen != self._gen or not self._accepting:
            return
        self._send(spec, scheduled=at)
        nxt = at + self._gap() if self._gap is not None else self.events.now
        self._open_next(nxt, gen)

    def _closed_next(self) -> None:
        if not self._accepting or not self._budget_left():
            if self._in_flight == 0:
                self._accepting = False
            return
        spec, ready = take(self._source)
        if not ready:
            self._waiting_for_source += 1
            return
        if spec is None:
            self._close(self._gen)
            return
        self._send(spec, scheduled=None)

    def _source_freed(self) -> None:
        """A request finished: workers or arrivals parked on a busy multi-turn source may go on."""
        waiting, self._waiting_for_source = self._waiting_for_source, 0
        for _ in range(waiting):
            if self._stage.mode == "closed":
                self._closed_next()
            else:
                self._open_arrival(self.events.now, self._gen)

    # --- one request ---------------------------------------------------------------------------------------
    def _send(self, spec: RequestSpec, scheduled: float | None) -> None:
        now = self.events.now
        self._sent += 1
        self._in_flight += 1
        record = RequestRecord(start=now, stage=self._stage.name, scheduled=scheduled, group=spec.group)
        record.model = spec.model or self.target.model
        self._records.append(record)
        owner = _InFlight(record, spec, self._gen)
        self.events.after(self.hops.gateway + self.hops.ext_proc, lambda: self._route(owner))

    def _route(self, owner: _InFlight) -> None:
        body = self.target.body(owner.spec)
        picker = self.pickers.get(owner.record.model)
        if picker is None:
            self._fail(owner, 404, f"no route for model {owner.record.model!r}")
            return
        routed = picker.pick(f"req-{next(self._ids)}", body, self.path)
        if routed is None:
            self._fail(owner, 503, "no ready endpoints in the pool")
            return
        owner.routed = routed
        owner.record.replica = routed.replica.name
        self.events.after(self.hops.network, lambda: self._arrive(owner, body))

    def _arrive(self, owner: _InFlight, body: dict[str, Any]) -> None:
        assert owner.routed is not None
        replica = owner.routed.replica
        if not replica.up:
            self._finish_routed(owner)
            self._fail(owner, 0, "connection refused: replica down")
            return
        try:
            req = parse_generation(self.kind, body, self.tokenizer)
        except ApiError as exc:
            self._finish_routed(owner)
            self._fail(owner, exc.status, exc.message)
            return
        base = replica.cfg.names[0]
        extra = cache_extra(base, req.cache_salt)
        now = self.events.now
        for prompt, echo in zip(req.prompts, req.echo_ids, strict=True):
            max_tokens = req.max_tokens if req.max_tokens is not None else replica.cfg.max_model_len - len(prompt)
            plan = self.textgen.plan(echo, max_tokens, req.ignore_eos)
            seq = EngineSequence(
                request_id=f"s{next(self._ids)}",
                prompt=prompt,
                output_plan=plan.token_ids,
                max_tokens=max_tokens,
                finish_reason_at_end=plan.finish_reason,
                hash_extra=extra,
                arrival=now,
            )
            owner.seqs.append(seq)
            self._seq_owner[seq.request_id] = owner
        owner.record.input_tokens = sum(len(p) for p in req.prompts)
        overhead = max(replica.latency.request_overhead(len(p)) for p in req.prompts)
        self.events.after(overhead, lambda: self._enqueue(owner, replica))

    def _enqueue(self, owner: _InFlight, replica: VirtualReplica) -> None:
        if not replica.up:
            self._finish_routed(owner)
            self._fail(owner, 0, "connection reset: replica down")
            return
        try:
            for seq in owner.seqs:
                replica.add(seq)
        except QueueFull as exc:
            for seq in owner.seqs:
                replica.engine.abort(seq)
            self._finish_routed(owner)
            self._fail(owner, 429, str(exc))
            return
        replica.record(self.events.now)
        self.kick(replica)

    # --- replicas ------------------------------------------------------------------------------------------
    def kick(self, replica: VirtualReplica) -> None:
        """Start the replica's next step if it is idle and has work."""
        if replica.busy or not replica.up:
            return
        step = replica.engine.schedule()
        if step is None:
            return
        replica.busy = True
        replica.step = step
        self.events.after(step.duration, lambda: self._step_done(replica, step))

    def _step_done(self, replica: VirtualReplica, step: ScheduledStep) -> None:
        if replica.step is not step:  # the replica was killed (and maybe restarted) meanwhile
            return
        now = self.events.now
        out = replica.engine.finish_step(step, now)
        replica.busy = False
        replica.step = None
        net = self.hops.network
        for seq in out.emitted:
            owner = self._seq_owner.get(seq.request_id)
            if owner is None:
                continue
            rec = owner.record
            t = now + net - rec.start
            if rec.ttft is None:
                rec.ttft = t
                if owner.routed is not None:
                    routed = owner.routed
                    picker = self.pickers.get(rec.model)
                    if picker is not None:
                        self.events.after(net, lambda p=picker, r=routed: p.first_token(r))  # type: ignore[misc]
            elif self.keep_itl:
                rec.itl.append(t - owner.last_token)
            owner.last_token = t
        for seq in out.finished:
            owner = self._seq_owner.pop(seq.request_id, None)
            if owner is None or any(s.finish_reason is None for s in owner.seqs):
                continue
            self._complete(owner, now + net)
        replica.record(now)
        self.kick(replica)

    def _complete(self, owner: _InFlight, at: float) -> None:
        rec = owner.record
        rec.status = 200
        rec.e2e = at - rec.start
        rec.output_tokens = sum(s.num_output for s in owner.seqs)
        rec.cached_tokens = sum(max(s.num_cached, 0) for s in owner.seqs)
        reply = None
        if not isinstance(self._source, ListSource):  # only conversations send the answer back
            reply = "".join(self.textgen.text(t) for s in owner.seqs for t in s.tokens[s.num_prompt :])
        self._finish_routed(owner)
        self._done(owner, reply)

    def _finish_routed(self, owner: _InFlight) -> None:
        if owner.routed is not None:
            picker = self.pickers.get(owner.record.model)
            if picker is not None:
                picker.finished(owner.routed)
            owner.routed = None

    def _fail(self, owner: _InFlight, status: int, message: str) -> None:
        if owner.record.e2e is not None or owner.record.error is not None:
            return
        owner.record.status = status
        owner.record.error = message
        owner.record.e2e = self.events.now - owner.record.start
        for seq in owner.seqs:
            self._seq_owner.pop(seq.request_id, None)
        self._finish_routed(owner)
        self._done(owner, None)

    def _done(self, owner: _InFlight, reply: str | None) -> None:
        self._in_flight -= 1
        self._source.done(owner.spec, reply)
        self._source_freed()
        if self._stage.mode == "closed" and owner.stage_gen == self._gen:
            self._closed_next()

    # --- what-ifs ------------------------------------------------------------------------------------------
    def kill(self, replica: VirtualReplica) -> None:
        """The replica dies: what it was running fails (clients see a reset), the picker stops seeing it."""
        replica.up = False
        replica.busy = False
        replica.step = None
        victims = {id(o): o for o in self._seq_owner.values() if o.routed is not None and o.routed.replica is replica}
        for owner in victims.values():
            self._fail(owner, 0, "connection reset: replica died")
        for picker in dict.fromkeys(self.pickers.values()):
            if replica in picker.replicas:
                picker.sync_endpoints()
