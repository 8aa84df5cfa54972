"""The HTTP edge of the benchmark: one OpenAI-compatible request, streamed, timed token by token.

Only this module knows about aiohttp and SSE; it fills a RequestRecord and returns the generated text (multi-turn
workloads put it into the next turn's history).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from inferplane.bench.records import RequestRecord
from inferplane.bench.workloads import RequestSpec

REPLICA_HEADERS = ("x-inference-pod", "x-inference-port")


@dataclass(frozen=True)
class Target:
    """Where and how to send: the gateway (or a router, or a replica) and the API shape."""

    base_url: str
    model: str
    api: str = "completion"  # completion | chat
    streaming: bool = True
    ignore_eos: bool = True
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        path = "/v1/chat/completions" if self.api == "chat" else "/v1/completions"
        return self.base_url.rstrip("/") + path

    def body(self, spec: RequestSpec) -> dict[str, Any]:
        body: dict[str, Any] = {"model": spec.model or self.model, "max_tokens": spec.output_tokens}
        if self.api == "chat":
            body["messages"] = [{"role": m.role, "content": m.content} for m in spec.messages]
        else:
            body["prompt"] = spec.prompt
        if self.ignore_eos:
            body["ignore_eos"] = True
        if self.streaming:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body


def _replica(headers: Any) -> str:
    pod = headers.get("x-inference-pod")
    if pod:
        return str(pod)
    port = headers.get("x-inference-port")
    return f":{port}" if port else ""


def _apply_usage(record: RequestRecord, usage: dict[str, Any] | None) -> None:
    if not usage:
        return
    record.input_tokens = int(usage.get("prompt_tokens", usage.get("input_tokens", record.input_tokens)) or 0)
    record.output_tokens = int(usage.get("completion_tokens", usage.get("output_tokens", record.output_tokens)) or 0)
    details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details")
    if isinstance(details, dict) and details.get("cached_tokens") is not None:
        record.cached_tokens = int(details["cached_tokens"])


def _content(choice: dict[str, Any]) -> str:
    if "text" in choice:
        return choice["text"] or ""
    delta = choice.get("delta") or choice.get("message") or {}
    return delta.get("content") or ""


def connect_reason(exc: aiohttp.ClientConnectorError) -> str:
    """'connection refused', 'no route to host', ... rather than asyncio's 'Connect call failed (...)'."""
    if isinstance(exc.os_error, ConnectionRefusedError):
        return "connection refused"
    errno = exc.os_error.errno
    return os.strerror(errno).lower() if errno else str(exc.os_error) or "connection failed"


async def _error_text(resp: aiohttp.ClientResponse) -> str:
    raw = await resp.text()
    try:
        return str(json.loads(raw)["error"]["message"])[:300]
    except (ValueError, KeyError, TypeError):
        return raw[:300] or resp.reason or "HTTP error"


async def send(
    session: aiohttp.ClientSession, target: Target, spec: RequestSpec, record: RequestRecord, t0: float
) -> str | None:
    """Send `spec`, filling `record` (start relative to `t0`). Returns the generated text, None on failure."""
    record.model = spec.model or target.model
    record.group = spec.group
    record.input_tokens = spec.input_tokens
    started = time.perf_counter()
    record.start = started - t0
    try:
        async with session.post(target.url, json=target.body(spec), headers=target.headers) as resp:
            record.status = resp.status
            record.replica = _replica(resp.headers)
            if resp.status >= 300:
                record.error = await _error_text(resp)
                record.e2e = time.perf_counter() - started
                return None
            if target.streaming:
                text = await _read_stream(resp, record, started)
            else:
                data = await resp.json(content_type=None)
                record.ttft = time.perf_counter() - started
                text = "".join(_content(c) for c in data.get("choices", []))
                _apply_usage(record, data.get("usage"))
    except aiohttp.ClientConnectorError as exc:  # nothing answered: say so plainly, once per distinct cause
        record.error = f"cannot connect: {connect_reason(exc)} at {exc.host}:{exc.port}"
        record.e2e = time.perf_counter() - started
        return None
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        record.error = f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
        record.e2e = time.perf_counter() - started
        return None
    record.e2e = time.perf_counter() - started
    return text


async def _read_stream(resp: aiohttp.ClientResponse, record: RequestRecord, started: float) -> str:
    pieces: list[str] = []
    last = None
    tokens = 0
    usage = None
    async for raw in resp.content:
        if not raw.startswith(b"data:"):
            continue
        payload = raw[5:].strip()
        if payload == b"[DONE]":
            break
        chunk = json.loads(payload)
        if "error" in chunk:  # an error after the stream started (vLLM sends it as an event)
            record.error = str(chunk["error"].get("message", chunk["error"]))[:300]
            break
        for choice in chunk.get("choices") or ():
            text = _content(choice)
            if not text:
                continue
            now = time.perf_counter()
            if last is None:
                record.ttft = now - started
            else:
                record.itl.append(now - last)
            last = now
            tokens += 1
            pieces.append(text)
        if chunk.get("usage"):
            usage = chunk["usage"]
    record.output_tokens = tokens
    _apply_usage(record, usage)
    return "".join(pieces)
