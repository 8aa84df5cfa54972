"""What a workload produces: request specifications, handed out by a request source.

A source decides *what* is sent next; the load generator decides *when*. Stateless workloads (shared-prefix,
random) hand out a fixed list in a seeded order; multi-turn chat needs the answer to turn k before it can send
turn k+1, so sources are told when a request completes.
"""

from __future__ import annotations

import asyncio
import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """One request to send. `messages` is the chat form; completions send `prompt`, the same text joined, so a
    shared system prompt is a shared prefix in both APIs."""

    messages: tuple[Message, ...]
    output_tokens: int
    input_tokens: int
    model: str | None = None  # None: the run's default model
    group: str = ""  # what the request shares its prefix with: shared-prefix group, chat session
    at: float | None = None  # trace replay: seconds after the start at which to send

    @property
    def prompt(self) -> str:
        return "\n".join(m.content for m in self.messages)


class RequestSource(ABC):
    """Hands out requests; `None` from next() means the workload is exhausted."""

    @abstractmethod
    async def next(self) -> RequestSpec | None: ...

    def done(self, spec: RequestSpec, reply: str | None) -> None:  # noqa: B027 - optional hook
        """Called when `spec` completed (`reply` is the generated text, None on failure)."""

    @property
    def timed(self) -> bool:
        """Whether specs carry their own send times (trace replay)."""
        return False


class ListSource(RequestSource):
    """A fixed list of requests in a seeded random order, reshuffled and repeated on each pass (`cycle`), so
    that a run bounded by duration never runs dry while the interleaving of groups stays reproducible."""

    def __init__(self, specs: Sequence[RequestSpec], seed: int, *, shuffle: bool = True, cycle: bool = True):
        if not specs:
            raise ValueError("a workload must contain at least one request")
        self._specs = list(specs)
        self._rng = random.Random(f"{seed}:order")
        self._shuffle = shuffle
        self._cycle = cycle
        self._order: list[RequestSpec] = []
        self._passes = 0

    def _refill(self) -> bool:
        if self._passes and not self._cycle:
            return False
        self._order = list(self._specs)
        if self._shuffle:
            self._rng.shuffle(self._order)
        self._order.reverse()  # pop() from the end hands them out in shuffled order
        self._passes += 1
        return True

    async def next(self) -> RequestSpec | None:
        if not self._order and not self._refill():
            return None
        return self._order.pop()

    @property
    def timed(self) -> bool:
        return self._specs[0].at is not None


class SessionSource(RequestSource):
    """Interleaved chat sessions: each active session has at most one request in flight; its next turn carries
    the whole history including the previous answers. A finished session is replaced by a fresh one, so the
    stream only ends when the load generator's bounds say so."""

    def __init__(self, sessions: int, new_session: SessionFactory) -> None:
        self._factory = new_session
        self._next_index = 0
        self._active: list[ChatSession] = [self._new() for _ in range(sessions)]
        self._cursor = 0
        self._changed = asyncio.Event()

    def _new(self) -> ChatSession:
        session = self._factory(self._next_index)
        self._next_index += 1
        return session

    async def next(self) -> RequestSpec | None:
        while True:
            n = len(self._active)
            for step in range(n):
                i = (self._cursor + step) % n
                session = self._active[i]
                if not session.in_flight:
                    self._cursor = (i + 1) % n
                    return session.take()
            self._changed.clear()
            await self._changed.wait()

    def done(self, spec: RequestSpec, reply: str | None) -> None:
        for i, session in enumerate(self._active):
            if session.id == spec.group and session.in_flight:
                session.finish(reply)
                if session.exhausted:
                    self._active[i] = self._new()
                break
        self._changed.set()


class ChatSession:
    """One conversation: a system prompt and scripted user turns; the assistant turns are whatever the server
    answered (a real client sends the real history, and the server may have cached it)."""

    def __init__(
        self,
        session_id: str,
        system: tuple[str, int],
        user_turns: Sequence[tuple[str, int]],
        output_tokens: int,
        model: str | None,
    ) -> None:
        self.id = session_id
        self._history: list[Message] = [Message("system", system[0])] if system[0] else []
        self._turns = list(user_turns)  # (text, tokens)
        self._output_tokens = output_tokens
        self._model = model
        self._turn = 0
        self._history_tokens = system[1]
        self.in_flight = False

    @property
    def exhausted(self) -> bool:
        return self._turn >= len(self._turns)

    def take(self) -> RequestSpec:
        text, tokens = self._turns[self._turn]
        self._history.append(Message("user", text))
        self._history_tokens += tokens
        self.in_flight = True
        return RequestSpec(
            messages=tuple(self._history),
            output_tokens=self._output_tokens,
            input_tokens=self._history_tokens,
            model=self._model,
            group=self.id,
        )

    def finish(self, reply: str | None) -> None:
        # A failed turn still moves the conversation on, with an empty answer, so one error cannot stall it.
        self._history.append(Message("assistant", reply or ""))
        self._history_tokens += self._output_tokens if reply else 0
        self._turn += 1
        self.in_flight = False


class SessionFactory(ABC):
    @abstractmethod
    def __call__(self, index: int) -> ChatSession: ...
