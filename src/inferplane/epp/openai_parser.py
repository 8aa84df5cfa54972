"""The `openai-parser`: OpenAI request bodies in, LLMRequestBody out; token usage out of responses.

Follows GIE's `openai-parser` (`pkg/epp/framework/plugins/requesthandling/parsers/openai`): the API kind comes
from the path suffix, each kind has its required field, usage is read from the JSON body or from the SSE
`data:` lines of a stream (`metrics.md` §4).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from inferplane.epp.framework.types import ChatMessage, LLMRequestBody
from inferplane.epp.request_errors import bad_request

# Path suffix → API kind; checked in order so `/chat/completions` wins over `/completions`.
_KINDS = (
    ("/chat/completions", "chat"),
    ("/completions", "completions"),
    ("/responses", "responses"),
    ("/conversations", "conversations"),
    ("/embeddings", "embeddings"),
)


def api_kind(path: str) -> str:
    """The API kind of a request path (query string ignored); default completions, as upstream."""
    path = path.split("?", 1)[0].rstrip("/")
    for suffix, kind in _KINDS:
        if path.endswith(suffix):
            return kind
    return "completions"


def _text_of(content: Any) -> str:
    """Chat content is a string or a list of parts; only text parts carry prompt text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") in ("text", None)
        )
    return "" if content is None else str(content)


def _prompt_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        # a list of strings, token ids, or lists of token ids: join what is textual, render ids as text so
        # that identical id sequences still hash identically
        return "".join(p if isinstance(p, str) else json.dumps(p, separators=(",", ":")) for p in prompt)
    return json.dumps(prompt, separators=(",", ":"))


def parse_request_body(data: bytes, path: str) -> LLMRequestBody:
    """Decode and validate one request body; an EppError (400) for anything a model server would refuse."""
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"error unmarshaling request body: {exc}") from None
    if not isinstance(raw, dict):
        raise bad_request("request body must be a JSON object")
    model = raw.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("model not found in request body", param="model")
    kind = api_kind(path)
    body = LLMRequestBody(kind=kind, raw=raw)
    if kind == "chat":
        messages = raw.get("messages")
        if not isinstance(messages, list) or not messages:
            raise bad_request("chat completions request must have at least one message", param="messages")
        body.messages = [
            ChatMessage(role=str(m.get("role", "")), content=_text_of(m.get("content")))
            for m in messages
            if isinstance(m, dict)
        ]
    elif kind == "completions":
        if "prompt" not in raw or raw["prompt"] is None:
            raise bad_request("completions request must have a prompt", param="prompt")
        body.prompt = _prompt_text(raw["prompt"])
    elif kind == "embeddings":
        if "input" not in raw:
            raise bad_request("embeddings request must have an input", param="input")
        body.prompt = _prompt_text(raw["input"])
    elif kind == "responses":
        parts = [raw.get("instructions"), raw.get("tools"), raw.get("input")]
        body.prompt = json.dumps([p for p in parts if p is not None], separators=(",", ":"))
    else:  # conversations
        body.prompt = json.dumps(raw.get("items", []), separators=(",", ":"))
    return body


def is_streaming(body: LLMRequestBody | None) -> bool:
    return bool(body is not None and body.raw.get("stream") is True)


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0


def usage_from_object(obj: Any) -> Usage | None:
    """The usage of one response object (chat/completions: prompt/completion tokens; responses: input/output)."""
    if not isinstance(obj, dict):
        return None
    if obj.get("type") == "response.completed" and isinstance(obj.get("response"), dict):
        obj = obj["response"]
    u = obj.get("usage")
    if not isinstance(u, dict):
        return None
    prompt = u.get("prompt_tokens", u.get("input_tokens", 0)) or 0
    completion = u.get("completion_tokens", u.get("output_tokens", 0)) or 0
    details = u.get("prompt_tokens_details") or u.get("input_tokens_details") or {}
    cached = details.get("cached_tokens", 0) if isinstance(details, dict) else 0
    return Usage(
        prompt_tokens=int(prompt),
        completion_tokens=int(completion),
        total_tokens=int(u.get("total_tokens", prompt + completion) or 0),
        cached_tokens=int(cached or 0),
    )


def usage_from_body(data: bytes) -> Usage | None:
    try:
        return usage_from_object(json.loads(data))
    except (ValueError, UnicodeDecodeError):
        return None


class SSEUsageScanner:
    """Finds the first `usage` object in a server-sent-event stream fed chunk by chunk.

    Chunks may split an event anywhere, so the unfinished last line is kept; only `data:` lines that mention
    "usage" are decoded, which keeps the per-chunk cost to a substring search.
    """

    __slots__ = ("_tail", "usage")

    def __init__(self) -> None:
        self._tail = b""
        self.usage: Usage | None = None

    def feed(self, chunk: bytes) -> None:
        if self.usage is not None:
            return
        data = self._tail + chunk
        lines = data.split(b"\n")
        self._tail = lines.pop()
        for line in lines:
            self._line(line)

    def finish(self) -> None:
        if self._tail:
            self._line(self._tail)
            self._tail = b""

    def _line(self, line: bytes) -> None:
        if self.usage is not None or not line.startswith(b"data:") or b'"usage"' not in line:
            return
        payload = line[5:].strip()
        if payload == b"[DONE]":
            return
        usage = usage_from_body(payload)
        if usage is not None and (usage.prompt_tokens or usage.completion_tokens):
            self.usage = usage


def model_rewrite_back(chunk: bytes, target: str, incoming: str) -> bytes:
    """Restore the client's model name in a response chunk (both JSON spacings, as upstream)."""
    t = json.dumps(target).encode()
    i = json.dumps(incoming).encode()
    return chunk.replace(b'"model":' + t, b'"model":' + i).replace(b'"model": ' + t, b'"model": ' + i)
