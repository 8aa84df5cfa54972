"""The step engine: a continuous-batching scheduler shaped like vLLM v1's, in pure logic with an injectable clock.

Each step: running sequences first (a decode token each, or the next chunk of an unfinished prefill), then waiting
sequences while the batch has room (`max_num_seqs`) and the step has token budget (`max_num_batched_tokens`), so
prefill chunks and decodes share steps (chunked prefill). A newly admitted sequence reuses its longest cached
prefix (whole blocks, at most prompt − 1 tokens, as in vLLM) and computes only the rest. When the KV cache cannot
hold a running sequence's next tokens, the most recently admitted sequence is preempted: its blocks are freed and it
goes back to the head of the queue to be recomputed (its blocks may still be cached, which makes that cheap).

`schedule()` plans a step and prices it with the latency model; `finish_step()` applies it at the step's end:
computed tokens become cached blocks, sequences whose prompt is complete get their next token, finished ones
release their blocks. The asyncio driver (`inferplane.sim.driver`) sleeps between the two; a virtual-time
simulation can call them back to back.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from inferplane.sim.kvblocks import BlockManager, BlockTable, block_hashes
from inferplane.sim.latency import LatencyModel, PrefillChunk, StepBatch


class Listener(Protocol):
    def notify(self) -> None: ...


class Status(Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"


@dataclass(eq=False, slots=True)
class Sequence:
    request_id: str
    prompt: list[int]
    output_plan: list[int]  # the token ids this request will emit (decided at admission: echo or random)
    max_tokens: int
    finish_reason_at_end: str  # "length" when the plan was cut by max_tokens, else "stop"
    hash_extra: str  # model / LoRA name and cache salt: see kvblocks.cache_extra
    lora: str | None = None
    remote_prefill: bool = False  # P/D decode leg: the prompt's KV arrives by transfer
    arrival: float = 0.0
    # --- state ---
    status: Status = Status.WAITING
    tokens: list[int] = field(default_factory=list)  # prompt + emitted output
    hashes: list[int] = field(default_factory=list)  # chained hashes of the full blocks of `tokens`
    table: BlockTable = field(default_factory=BlockTable)
    num_computed: int = 0
    num_cached: int = -1  # prompt tokens served from the prefix cache at first admission (-1: not yet admitted)
    num_output: int = 0
    num_preemptions: int = 0
    first_scheduled: float | None = None
    first_token_time: float | None = None
    prev_token_time: float | None = None
    last_token_time: float | None = None
    finish_time: float | None = None
    finish_reason: str | None = None
    aborted: bool = False
    listener: Listener | None = None  # the HTTP side's token stream; the engine never calls it

    @property
    def num_prompt(self) -> int:
        return len(self.prompt)


@dataclass(slots=True)
class ScheduledStep:
    entries: list[tuple[Sequence, int]]  # (sequence, tokens computed this step)
    batch: StepBatch
    duration: float
    admitted: list[Sequence]  # admitted for the first time (re-admissions after preemption are not)
    preempted: list[Sequence]


@dataclass(slots=True)
class StepOutput:
    emitted: list[Sequence]  # got one new token at the end of the step
    finished: list[Sequence]
    end: float


@dataclass(slots=True)
class DecodeRun:
    """Steps that are all alike: every running sequence decodes one token, nothing waits, nothing is admitted or
    preempted, and the run ends with the step in which the first sequence finishes. A virtual-time driver can
    price such a run at once and apply it in one go (`Engine.apply_decode_run`) instead of step by step; the final
    state is the same as `schedule()`/`finish_step()` called `len(durations)` times."""

    seqs: list[Sequence]
    durations: list[float]  # one per step, in order
    new_blocks: list[int]  # KV blocks a step-by-step engine would allocate when it schedules each step


class QueueFull(Exception):
    pass


class Engine:
    def __init__(
        self,
        blocks: BlockManager,
        latency: LatencyModel,
        *,
        max_num_seqs: int = 256,
        max_num_batched_tokens: int = 8192,
        max_waiting: int = 0,
        max_loras: int = 0,
        clock: Callable[[], float],
    ) -> None:
        self.blocks = blocks
        self.latency = latency
        self.max_num_seqs = max_num_seqs
        self.max_num_batched_tokens = max_num_batched_tokens
        self.max_waiting = max_waiting
        self.max_loras = max_loras  # distinct LoRA adapters per batch; 0 = no limit
        self.clock = clock
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self.num_preemptions = 0
        self.prefix_queries = 0
        self.prefix_hits = 0

    # --- admission -----------------------------------------------------------------------------------------
    def add(self, seq: Sequence) -> None:
        if self.max_waiting and len(self.waiting) >= self.max_waiting:
            raise QueueFull(f"waiting queue is full ({self.max_waiting} requests)")
        seq.arrival = self.clock() if seq.arrival == 0.0 else seq.arrival
        seq.tokens = list(seq.prompt)
        seq.hashes = block_hashes(seq.tokens, self.blocks.block_size, extra=seq.hash_extra)
        self.waiting.append(seq)

    def abort(self, seq: Sequence) -> None:
        """Drop a sequence (client went away); a running one is released at the end of the current step."""
        seq.aborted = True
        if seq.status is Status.WAITING:
            try:
                self.waiting.remove(seq)
            except ValueError:
                pass
            self._finish(seq, "abort", self.clock())

    @property
    def has_work(self) -> bool:
        return bool(self.running or self.waiting)

    # --- one step ------------------------------------------------------------------------------------------
    def schedule(self) -> ScheduledStep | None:
        budget = self.max_num_batched_tokens
        entries: list[tuple[Sequence, int]] = []
        preempted: list[Sequence] = []
        admitted: list[Sequence] = []
        i = 0
        while i < len(self.running) and budget > 0:
            seq = self.running[i]
            n = min(len(seq.tokens) - seq.num_computed, budget)
            if n <= 0:
                i += 1
                continue
            while not self.blocks.allocate(seq.table, seq.num_computed + n):
                victim = self.running.pop()
                self._preempt(victim)
                preempted.append(victim)
                if victim is seq:
                    break
            else:
                entries.append((seq, n))
                budget -= n
                i += 1
                continue
            break
        if not preempted:
            budget = self._admit(entries, admitted, budget)
        if not entries:
            return None
        batch = self._price(entries)
        return ScheduledStep(entries, batch, self.latency.step_time(batch), admitted, preempted)

    def plan_decode_run(self, max_steps: int) -> DecodeRun | None:
        """The run of identical decode steps starting now, or None when the next step is not one (something
        waits, a sequence is still in prefill or aborted, or the KV cache could run short during the run)."""
        running = self.running
        if self.waiting or not running or len(running) > self.max_num_batched_tokens:
            return None
        steps = max_steps
        context = 0
        for seq in running:
            if seq.aborted or seq.num_output == 0 or len(seq.tokens) - seq.num_computed != 1:
                return None
            steps = min(steps, len(seq.output_plan) - seq.num_output)
            context += seq.num_computed
        if steps < 2:
            return None
        blocks = self.blocks
        new_blocks = [0] * steps
        for s in running:
            have = len(s.table.block_ids)
            for i in range(steps):
                want = blocks.blocks_needed(s.num_computed + i + 1)
                if want > have:
                    new_blocks[i] += want - have
                    have = want
        if sum(new_blocks) > blocks.num_free:
            return None
        n = len(running)
        step_time = self.latency.step_time
        durations = [
            step_time(StepBatch(num_decodes=n, decode_context=context + i * n, num_running=n)) for i in range(steps)
        ]
        return DecodeRun(list(running), durations, new_blocks)

    def apply_decode_run(self, run: DecodeRun, steps: int, ends: list[float]) -> StepOutput:
        """Apply the first `steps` steps of `run` (`ends[i]`: when step i ended); what `finish_step` would have
        done after each of them. Returns the last step's output."""
        bs = self.blocks.block_size
        emitted: list[Sequence] = []
        finished: list[Sequence] = []
        end = ends[steps - 1]
        for seq in run.seqs:
            if seq.status is not Status.RUNNING:
                continue
            self.blocks.allocate(seq.table, seq.num_computed + steps)
            seq.num_computed += steps
            if seq.aborted:
                self._release(seq)
                self._finish(seq, "abort", end)
                finished.append(seq)
                continue
            for _ in range(steps):
                seq.tokens.append(seq.output_plan[seq.num_output])
                seq.num_output += 1
                if len(seq.tokens) % bs == 0:
                    parent = seq.hashes[-1] if seq.hashes else None
                    seq.hashes.extend(block_hashes(seq.tokens[-bs:], bs, parent, seq.hash_extra))
            self.blocks.commit(seq.table, seq.hashes, seq.num_computed // bs, seq.tokens, seq.lora)
            seq.prev_token_time = ends[steps - 2] if steps >= 2 else seq.last_token_time
            seq.last_token_time = end
            emitted.append(seq)
            if seq.num_output >= len(seq.output_plan):
                self._release(seq)
                self._finish(seq, seq.finish_reason_at_end, end)
                finished.append(seq)
        return StepOutput(emitted, finished, end)

    def _admit(self, entries: list[tuple[Sequence, int]], admitted: list[Sequence], budget: int) -> int:
        bs = self.blocks.block_size
        # vLLM skips (keeps queued, in order) a request whose adapter would exceed max_loras in the batch
        loras = {s.lora for s in self.running if s.lora is not None} if self.max_loras else set()
        skipped: list[Sequence] = []
        while self.waiting and len(self.running) < self.max_num_seqs and budget > 0:
            seq = self.waiting[0]
            if self.max_loras and seq.lora is not None and seq.lora not in loras and len(loras) >= self.max_loras:
                skipped.append(self.waiting.popleft())
                continue
            total = len(seq.tokens)
            hits = 0
            if not seq.remote_prefill:
                hits = self.blocks.longest_prefix(seq.hashes[: (total - 1) // bs])
            cached = hits * bs
            n = min(total - cached, budget)
            needed = self.blocks.blocks_needed(cached + n) - hits
            if needed > self.blocks.free_excluding(seq.hashes[:hits]):
                break
            self.waiting.popleft()
            self.blocks.acquire_cached(seq.table, seq.hashes[:hits])
            self.blocks.allocate(seq.table, cached + n)
            seq.num_computed = cached
            if seq.num_cached < 0:
                seq.num_cached = cached
                seq.first_scheduled = self.clock()
                self.prefix_queries += seq.num_prompt
                self.prefix_hits += cached
                admitted.append(seq)
            seq.status = Status.RUNNING
            self.running.append(seq)
            if seq.lora is not None:
                loras.add(seq.lora)
            entries.append((seq, n))
            budget -= n
        self.waiting.extendleft(reversed(skipped))
        return budget

    def _price(self, entries: list[tuple[Sequence, int]]) -> StepBatch:
        batch = StepBatch(num_running=len(self.running))
        for seq, n in entries:
            if n == 1 and seq.num_output > 0 and seq.num_computed == len(seq.tokens) - 1:
                batch.num_decodes += 1
                batch.decode_context += seq.num_computed
                continue
            fresh = seq.num_preemptions == 0
            first = fresh and seq.num_computed == seq.num_cached
            last = seq.num_computed + n >= len(seq.tokens)
            batch.prefills.append(PrefillChunk(n, seq.num_computed, first, last, fresh and seq.remote_prefill))
        return batch

    def _preempt(self, seq: Sequence) -> None:
        self.blocks.free(seq.table)
        seq.num_computed = 0
        seq.num_preemptions += 1
        seq.status = Status.WAITING
        self.num_preemptions += 1
        self.waiting.appendleft(seq)

    def finish_step(self, step: ScheduledStep, end: float | None = None) -> StepOutput:
        now = self.clock() if end is None else end
        emitted: list[Sequence] = []
        finished: list[Sequence] = []
        bs = self.blocks.block_size
        for seq, n in step.entries:
            if seq.status is not Status.RUNNING:
                continue
            seq.num_computed += n
            if seq.aborted:
                self._release(seq)
                self._finish(seq, "abort", now)
                finished.append(seq)
                continue
            self.blocks.commit(seq.table, seq.hashes, seq.num_computed // bs, seq.tokens, seq.lora)
            if seq.num_computed < len(seq.tokens):
                continue  # a prefill chunk that did not reach the end of the prompt
            token = seq.output_plan[seq.num_output]
            seq.num_output += 1
            seq.tokens.append(token)
            if len(seq.tokens) % bs == 0:
                parent = seq.hashes[-1] if seq.hashes else None
                seq.hashes.extend(block_hashes(seq.tokens[-bs:], bs, parent, seq.hash_extra))
            if seq.first_token_time is None:
                seq.first_token_time = now
            seq.prev_token_time = seq.last_token_time
            seq.last_token_time = now
            emitted.append(seq)
            if seq.num_output >= len(seq.output_plan):
                self._release(seq)
                self._finish(seq, seq.finish_reason_at_end, now)
                finished.append(seq)
        return StepOutput(emitted, finished, now)

    def _release(self, seq: Sequence) -> None:
        self.blocks.free(seq.table)
        self.running.remove(seq)

    def _finish(self, seq: Sequence, reason: str, now: float) -> None:
        seq.status = Status.FINISHED
        seq.finish_reason = reason
        seq.finish_time = now

    def reset_prefix_cache(self) -> bool:
        return self.blocks.reset_prefix_cache()
