"""The request director: everything between a parsed request and a destination, in upstream order (epp.md §2).

1. model rewrite; 2. objective → priority; 3. admission (429/503); 4. candidates, with the subset hint;
5–7. PrepareData, scheduling; 8. destination list and PreRequest; 9. the re-marshalled body. Then the response
hooks and the in-flight accounting, which `finish` ends exactly once whatever way the stream ends.

No protocol here: the ext_proc server hands in plain values and turns the returned `Decision` into messages.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from inferplane.epp import openai_parser
from inferplane.epp.datalayer.datastore import Datastore
from inferplane.epp.framework.interfaces import SchedulingError
from inferplane.epp.framework.interfaces import Usage as HookUsage
from inferplane.epp.framework.types import Endpoint, LLMRequest, LLMRequestBody, SchedulingResult
from inferplane.epp.metrics import EppMetrics
from inferplane.epp.request_errors import EppError, ErrorCode, bad_request, internal, unavailable

log = logging.getLogger(__name__)

H_OBJECTIVE = "x-gateway-inference-objective"
H_FAIRNESS = "x-gateway-inference-fairness-id"
H_MODEL = "x-gateway-model-name"  # set by BBR; the model for body-less (headers-only) decisions
H_REQUEST_ID = "x-request-id"
DEFAULT_FLOW = "default-flow"


class SchedulerPort(Protocol):
    """What the director needs from the scheduler (`inferplane.epp.scheduling.scheduler.Scheduler`)."""

    def prepare_request_data(self, request: LLMRequest, candidates: list[Endpoint]) -> None: ...
    def schedule(self, request: LLMRequest, candidates: list[Endpoint]) -> SchedulingResult: ...
    def pre_request(self, request: LLMRequest, result: SchedulingResult) -> dict[str, str | None]: ...
    def response_received(self, request: LLMRequest, endpoint: Endpoint | None) -> dict[str, str]: ...
    def response_streaming(
        self, request: LLMRequest, endpoint: Endpoint | None, usage: HookUsage | None = None
    ) -> None: ...
    def response_complete(
        self, request: LLMRequest, endpoint: Endpoint | None, usage: HookUsage | None = None
    ) -> None: ...
    def flush_deferred(self) -> None: ...


# The configured `parser` plugin's `parse_request`: the body → what the scheduler reads, or None for a parser that
# does not look inside bodies (the model then comes from x-gateway-model-name, as for a body-less request).
ParseBody = Callable[[bytes, str], LLMRequestBody | None]

# Admission: awaits until the request may be scheduled, or raises EppError (429/503). The flow-control gate makes
# this a queue; without it, it sheds sheddable requests when the pool is saturated.
Admit = Callable[[LLMRequest, list[Endpoint]], Awaitable[None]]


@dataclass(slots=True)
class Decision:
    """What to tell the data plane: the destination list, request headers to set/remove, and the new body."""

    destination: str
    set_headers: dict[str, str] = field(default_factory=dict)
    # PreRequest answered None for these: remove them from the upstream request (e.g. a client-supplied
    # `x-prefiller-host-port` when no prefill ran must not reach the decode sidecar)
    remove_headers: list[str] = field(default_factory=list)
    body: bytes | None = None  # None = the body is unchanged (or there was none)


@dataclass(slots=True)
class RequestContext:
    """One HTTP request's life in the EPP, from request headers to the end of the response stream."""

    headers: dict[str, str]
    request_id: str = ""
    inject_request_id: bool = False
    path: str = "/"
    incoming_model: str = ""
    target_model: str = ""
    request: LLMRequest | None = None
    result: SchedulingResult | None = None
    endpoint: Endpoint | None = None  # primary pick, or the endpoint that actually served
    tokens_in_flight: int = 0
    start: float = field(default_factory=time.monotonic)
    request_size: int = 0
    response_status: int = 0
    response_streaming: bool = False
    response_size: int = 0
    sse: openai_parser.SSEUsageScanner | None = None
    response_buffer: bytearray | None = None
    usage: openai_parser.Usage | None = None
    finished: bool = False

    @property
    def rewritten(self) -> bool:
        return bool(self.target_model) and self.target_model != self.incoming_model


def new_context(headers: dict[str, str]) -> RequestContext:
    rid = headers.get(H_REQUEST_ID, "")
    ctx = RequestContext(headers=headers, path=headers.get(":path", "/"))
    if rid:
        ctx.request_id = rid
    else:
        ctx.request_id = str(uuid.uuid4())
        ctx.inject_request_id = True
    return ctx


class Director:
    def __init__(
        self,
        datastore: Datastore,
        scheduler: SchedulerPort,
        metrics: EppMetrics,
        admit: Admit | None = None,
        rng: random.Random | None = None,
        parse: ParseBody | None = None,
    ) -> None:
        self.datastore = datastore
        self.parse: ParseBody = parse or openai_parser.parse_request_body
        self.scheduler = scheduler
        self.metrics = metrics
        self.admit = admit
        self.rng = rng or random.Random()

    # ---- request path ----------------------------------------------------------------------------------------

    def pick_for_headers_only(self, ctx: RequestContext) -> Decision:
        """A request without a body (GET, ...): any ready endpoint, as upstream; none → 500."""
        ready = self.datastore.ready_endpoints()
        if not ready:
            raise internal("no pods available in datastore")
        ep = self.rng.choice(ready)
        ctx.endpoint = ep
        return Decision(destination=ep.hostport, set_headers=self._id_header(ctx))

    async def handle_request(
        self, ctx: RequestContext, body: bytes | None, subset: list[str] | None = None
    ) -> Decision:
        """Run the director for a request whose body (None in headers-only mode) is complete."""
        parsed: LLMRequestBody | None = None
        if body is not None:
            ctx.request_size = len(body)
            parsed = self.parse(body, ctx.path)
        if parsed is not None:
            ctx.incoming_model = str(parsed.raw["model"])
        else:
            ctx.incoming_model = ctx.headers.get(H_MODEL, "")
        # 1. model rewrite
        ctx.target_model = self._target_model(ctx)
        new_body: bytes | None = None
        if parsed is not None and ctx.rewritten:
            parsed.raw["model"] = ctx.target_model
            new_body = json.dumps(parsed.raw, separators=(",", ":"), ensure_ascii=False).encode()
        # 2. objective and priority
        objective = ctx.headers.get(H_OBJECTIVE) or None
        req = LLMRequest(
            request_id=ctx.request_id,
            target_model=ctx.target_model,
            body=parsed,
            headers=ctx.headers,
            objective=objective,
            priority=self.datastore.priority_of(objective),
            fairness_id=ctx.headers.get(H_FAIRNESS) or DEFAULT_FLOW,
            request_size_bytes=ctx.request_size,
        )
        ctx.request = req
        labels = (ctx.incoming_model, ctx.target_model)
        self.metrics.request_total.inc((*labels, str(req.priority)))
        self.metrics.request_sizes.observe(labels, ctx.request_size)
        try:
            # 4 (before 3, so admission sees the pool it admits into). Subset hint: only its members, none → 503.
            candidates = self.datastore.candidates(subset)
            if not candidates:
                if subset is not None:
                    raise unavailable("failed to find endpoint candidates for serving the request")
                raise unavailable("no ready endpoints in the pool")
            # 3. admission: may wait (flow control) or refuse
            if self.admit is not None:
                await self.admit(req, candidates)
                candidates = self.datastore.candidates(subset) or candidates
            # 5–7. PrepareData and scheduling
            t0 = time.perf_counter()
            try:
                self.scheduler.prepare_request_data(req, candidates)
                result = self.scheduler.schedule(req, candidates)
            except SchedulingError as exc:
                # upstream wraps every scheduler error, "no endpoints available" included, as ResourceExhausted
                # "failed to find target endpoint" → 429 (extproc.md §4); the status is SchedulingError's own
                self.metrics.scheduler_attempts.inc(("failure", ctx.target_model, "", "", ""))
                code = ErrorCode.for_status(exc.status)
                raise EppError(code, f"failed to find target endpoint: {exc.message}") from None
            finally:
                self.metrics.scheduler_e2e.observe((), time.perf_counter() - t0)
        except EppError as exc:
            self.metrics.request_error.inc((*labels, exc.code.upstream_name))
            raise
        targets = result.primary.target_endpoints
        primary = targets[0]
        self.metrics.scheduler_attempts.inc(
            ("success", ctx.target_model, primary.name, primary.namespace, str(primary.key.port))
        )
        ctx.result = result
        # 8. destination and PreRequest; the request is in flight on the primary from here on
        self._start_in_flight(ctx, primary)
        headers = self._id_header(ctx)
        removes: list[str] = []
        for name, value in self.scheduler.pre_request(req, result).items():
            if value is None:
                removes.append(name)
            else:
                headers[name] = value
        # 9. the body, re-marshalled only when it changed
        return Decision(
            destination=result.destination_header(), set_headers=headers, remove_headers=removes, body=new_body
        )

    def after_reply(self) -> None:
        """The decision has been sent: run what the scheduler deferred until then."""
        self.scheduler.flush_deferred()

    def _target_model(self, ctx: RequestContext) -> str:
        """`x-gateway-model-name-rewrite`, else the weighted InferenceModelRewrite rules (flowcontrol.rewrite)."""
        decision = self.datastore.rewriter.rewrite(ctx.incoming_model, ctx.headers)
        if decision.rewritten and decision.source != "header":
            self.metrics.model_rewrite_decisions.inc()
        return decision.model

    def _id_header(self, ctx: RequestContext) -> dict[str, str]:
        return {H_REQUEST_ID: ctx.request_id} if ctx.inject_request_id else {}

    def _start_in_flight(self, ctx: RequestContext, ep: Endpoint) -> None:
        ctx.endpoint = ep
        body = ctx.request.body if ctx.request else None
        ctx.tokens_in_flight = len(body.prompt_text()) // 4 if body is not None else 0
        ep.in_flight_requests += 1
        ep.in_flight_tokens += ctx.tokens_in_flight
        self.metrics.running_requests.add((ctx.incoming_model,), 1)

    # ---- response path ---------------------------------------------------------------------------------------

    def response_headers(self, ctx: RequestContext, headers: dict[str, str], served: str | None) -> dict[str, str]:
        """Response headers arrived; returns headers to add to the response."""
        try:
            ctx.response_status = int(headers.get(":status", "200"))
        except ValueError:
            ctx.response_status = 0
        if ctx.response_status != 200 and ctx.request is not None:
            self.metrics.request_error.inc((ctx.incoming_model, ctx.target_model, "ModelServerError"))
        ctx.response_streaming = "text/event-stream" in headers.get("content-type", "")
        if ctx.response_streaming:
            ctx.sse = openai_parser.SSEUsageScanner()
        else:
            ctx.response_buffer = bytearray()
        if served and ctx.endpoint is not None and served != ctx.endpoint.hostport:
            self._move_in_flight(ctx, served)
        out = {"x-went-into-resp-headers": "true"}
        if ctx.request is not None:
            out.update(self.scheduler.response_received(ctx.request, ctx.endpoint))
        return out

    def _move_in_flight(self, ctx: RequestContext, served: str) -> None:
        """A fallback served the request (the data plane retried): account it there."""
        ep = self.datastore.endpoints.get(served)
        old = ctx.endpoint
        if ep is None or old is None:
            return
        old.in_flight_requests -= 1
        old.in_flight_tokens -= ctx.tokens_in_flight
        ep.in_flight_requests += 1
        ep.in_flight_tokens += ctx.tokens_in_flight
        ctx.endpoint = ep

    def response_chunk(self, ctx: RequestContext, chunk: bytes, end_of_stream: bool, hold: bool = True) -> bytes | None:
        """One response body chunk. SSE: returns the chunk to forward now. Otherwise, with `hold`, buffers and
        returns the whole body at end of stream (None before); without it (Envoy's STREAMED mode, where every
        chunk needs its answer) forwards each chunk and keeps a copy only to read the usage at the end."""
        ctx.response_size += len(chunk)
        if ctx.response_streaming or ctx.response_buffer is None:
            if ctx.sse is None:
                ctx.sse = openai_parser.SSEUsageScanner()
            ctx.sse.feed(chunk)
            if end_of_stream:
                ctx.sse.finish()
                ctx.usage = ctx.sse.usage
            if ctx.request is not None:
                self.scheduler.response_streaming(ctx.request, ctx.endpoint, _hook_usage(ctx.sse.usage))
            return self._restore_model(ctx, chunk)
        ctx.response_buffer += chunk
        if not end_of_stream:
            return None if hold else self._restore_model(ctx, chunk)
        whole = bytes(ctx.response_buffer)
        ctx.response_buffer = bytearray()
        ctx.usage = openai_parser.usage_from_body(whole)
        return self._restore_model(ctx, whole if hold else chunk)

    def _restore_model(self, ctx: RequestContext, chunk: bytes) -> bytes:
        if not ctx.rewritten or not chunk:
            return chunk
        return openai_parser.model_rewrite_back(chunk, ctx.target_model, ctx.incoming_model)

    def finish(self, ctx: RequestContext) -> None:
        """End of the request's life: normal end, client cancel, upstream reset or EPP error. Idempotent."""
        if ctx.finished:
            return
        ctx.finished = True
        ep = ctx.endpoint
        if ep is None or ctx.request is None or ctx.result is None:
            return
        ep.in_flight_requests -= 1
        ep.in_flight_tokens -= ctx.tokens_in_flight
        m = self.metrics
        m.running_requests.add((ctx.incoming_model,), -1)
        labels = (ctx.incoming_model, ctx.target_model)
        elapsed = time.monotonic() - ctx.start
        if ctx.response_status == 200:
            m.request_duration.observe(labels, elapsed)
            m.response_sizes.observe(labels, ctx.response_size)
        usage = ctx.usage
        if usage is not None:
            m.input_tokens.observe(labels, usage.prompt_tokens)
            m.output_tokens.observe(labels, usage.completion_tokens)
            m.cached_tokens.observe(labels, usage.cached_tokens)
            if usage.completion_tokens > 0:
                m.ntpot.observe(labels, elapsed / usage.completion_tokens)
        try:
            self.scheduler.response_complete(ctx.request, ep, _hook_usage(usage))
        except Exception:  # a plugin bug must not leak the request's accounting
            log.exception("response_complete hook failed for request %s", ctx.request_id)


def _hook_usage(u: openai_parser.Usage | None) -> HookUsage | None:
    if u is None:
        return None
    return HookUsage(
        prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens, cached_tokens=u.cached_tokens
    )


__all__ = ["Decision", "Director", "EppError", "ErrorCode", "RequestContext", "bad_request", "new_context"]
