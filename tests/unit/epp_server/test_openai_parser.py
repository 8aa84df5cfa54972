"""The openai-parser: request kinds and validation, usage from bodies and SSE streams, model restore."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferplane.epp import openai_parser as op
from inferplane.epp.request_errors import EppError


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/v1/chat/completions", "chat"),
        ("/v1/completions?x=1", "completions"),
        ("/v1/responses", "responses"),
        ("/v1/embeddings/", "embeddings"),
        ("/v1/conversations", "conversations"),
        ("/anything", "completions"),
    ],
)
def test_api_kind(path: str, kind: str) -> None:
    assert op.api_kind(path) == kind


def test_chat_messages_and_parts() -> None:
    body = op.parse_request_body(
        json.dumps(
            {
                "model": "m",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url"}]},
                ],
            }
        ).encode(),
        "/v1/chat/completions",
    )
    assert body.kind == "chat"
    assert [m.content for m in body.messages or []] == ["be brief", "hi"]


def test_completion_prompt_forms() -> None:
    for prompt, text in (("abc", "abc"), (["a", "b"], "ab"), ([1, 2, 3], "123")):
        body = op.parse_request_body(json.dumps({"model": "m", "prompt": prompt}).encode(), "/v1/completions")
        assert body.prompt == text


@pytest.mark.parametrize(
    ("body", "path", "needle"),
    [
        (b"[1]", "/v1/completions", "JSON object"),
        (b'{"model": ""}', "/v1/completions", "model not found"),
        (b'{"model": "m", "messages": []}', "/v1/chat/completions", "at least one message"),
        (b'{"model": "m"}', "/v1/embeddings", "must have an input"),
        (b"\xff\xfe", "/v1/completions", "unmarshaling"),
    ],
)
def test_invalid_requests_are_400(body: bytes, path: str, needle: str) -> None:
    with pytest.raises(EppError) as exc:
        op.parse_request_body(body, path)
    assert exc.value.http_status == 400
    assert needle in str(exc.value)


def test_usage_forms() -> None:
    u = op.usage_from_body(
        b'{"object":"chat.completion","usage":{"prompt_tokens":10,"completion_tokens":3,"total_tokens":13,'
        b'"prompt_tokens_details":{"cached_tokens":8}}}'
    )
    assert u == op.Usage(10, 3, 13, 8)
    r = op.usage_from_object(
        {"type": "response.completed", "response": {"usage": {"input_tokens": 4, "output_tokens": 2}}}
    )
    assert r == op.Usage(4, 2, 6, 0)
    assert op.usage_from_body(b"not json") is None


@settings(max_examples=100, deadline=None)
@given(cuts=st.lists(st.integers(0, 400), max_size=8), prompt=st.integers(1, 10_000), completion=st.integers(0, 999))
def test_sse_usage_found_wherever_the_stream_is_cut(cuts: list[int], prompt: int, completion: int) -> None:
    stream = (
        b'data: {"choices":[{"text":"x"}],"usage":null}\n\n'
        + b'data: {"choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":%d}}\n\n' % (prompt, completion)
        + b"data: [DONE]\n\n"
    )
    scanner = op.SSEUsageScanner()
    prev = 0
    for c in sorted({min(c, len(stream)) for c in cuts}):
        scanner.feed(stream[prev:c])
        prev = c
    scanner.feed(stream[prev:])
    scanner.finish()
    assert scanner.usage is not None
    assert (scanner.usage.prompt_tokens, scanner.usage.completion_tokens) == (prompt, completion)


def test_model_rewrite_back_both_spacings() -> None:
    chunk = b'{"model":"t","x":{"model": "t"},"other":"t"}'
    assert op.model_rewrite_back(chunk, "t", "in") == b'{"model":"in","x":{"model": "in"},"other":"t"}'
