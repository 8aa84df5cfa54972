"""OpenAI / vLLM request parsing and error shapes, as plain data (the aiohttp handlers stay thin).

Errors use vLLM's envelope: ``{"error": {"message", "type", "param", "code"}}`` with the integer HTTP status as
`code` (vllm `entrypoints/openai/protocol.py` ErrorResponse).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from inferplane.tokenizer import Tokenizer

_TYPES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    413: "RequestEntityTooLarge",
    429: "RateLimitError",
    500: "InternalServerError",
    503: "ServiceUnavailableError",
}


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, type_: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_ or _TYPES.get(status, "BadRequestError" if status < 500 else "InternalServerError")
        self.param = param

    def body(self) -> bytes:
        err = {"message": self.message, "type": self.type, "param": self.param, "code": self.status}
        return json.dumps({"error": err}).encode()


# Injected failures (--failure-types), in the shapes llm-d-inference-sim uses.
FAILURES: dict[str, tuple[int, str, str]] = {
    "rate_limit": (429, "RateLimitError", "Rate limit reached for {model}: too many requests (injected failure)"),
    "invalid_api_key": (401, "AuthenticationError", "Incorrect API key provided (injected failure)"),
    "context_length": (
        400,
        "BadRequestError",
        "This model's maximum context length is {max_len} tokens. However, your request has {over} input tokens. "
        "Please reduce the length of the input messages. (injected failure)",
    ),
    "server_error": (503, "ServiceUnavailableError", "The server is overloaded or not ready yet (injected failure)"),
    "invalid_request": (400, "BadRequestError", "Invalid request: malformed parameters (injected failure)"),
    "model_not_found": (404, "NotFoundError", "The model `{model}` does not exist. (injected failure)"),
}


@dataclass(slots=True)
class GenerationRequest:
    kind: str  # "completion" | "chat"
    model: str
    prompts: list[list[int]]  # one token list per choice
    echo_ids: list[list[int]]  # what echo mode returns, per choice
    max_tokens: int | None
    stream: bool
    include_usage: bool
    continuous_usage: bool
    ignore_eos: bool
    seed: int | None
    cache_salt: str | None
    kv_transfer_params: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def remote_decode(self) -> bool:
        """P/D prefill leg: compute the prompt, return KV-transfer parameters, decode elsewhere."""
        return bool(self.kv_transfer_params and self.kv_transfer_params.get("do_remote_decode"))

    @property
    def remote_prefill(self) -> bool:
        """P/D decode leg: the prompt's KV comes from the prefill pod."""
        return bool(self.kv_transfer_params and self.kv_transfer_params.get("do_remote_prefill"))


def parse_json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"Invalid JSON in request body: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object")
    return body


def _int_field(body: dict[str, Any], name: str, minimum: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"{name}: Input should be a valid integer", param=name)
    if value < minimum:
        raise ApiError(400, f"{name} must be at least {minimum}, got {value}.", param=name)
    return value


def _check_number_fields(body: dict[str, Any]) -> None:
    """Sampling parameters are accepted (and ignored) but typed, as vLLM's pydantic request models type them."""
    for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty", "repetition_penalty"):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ApiError(400, f"{name}: Input should be a valid number", param=name)


def _is_token_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in value)


def completion_prompts(body: dict[str, Any], tok: Tokenizer) -> list[list[int]]:
    prompt = body.get("prompt")
    if prompt is None:
        raise ApiError(400, "prompt: Field required", param="prompt")
    if isinstance(prompt, str):
        if not prompt:
            raise ApiError(400, "The decoder prompt cannot be empty", param="prompt")
        return [tok.encode(prompt)]
    if _is_token_list(prompt) and prompt:
        return [list(prompt)]
    if isinstance(prompt, list) and prompt:
        if all(isinstance(p, str) for p in prompt):
            return [tok.encode(p) for p in prompt]
        if all(_is_token_list(p) and p for p in prompt):
            return [list(p) for p in prompt]
    raise ApiError(
        400, "prompt must be a string, a list of strings, a list of token ids or a list of lists", param="prompt"
    )


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    raise ApiError(400, "messages: content must be a string or a list of content parts", param="messages")


def chat_prompt(body: dict[str, Any]) -> tuple[str, str]:
    """The templated prompt text (a ChatML-like template) and the last user message (what echo mode returns)."""
    messages = body.get("messages")
    if messages is not None and not isinstance(messages, list):
        raise ApiError(400, "messages: Input should be a valid list", param="messages")
    if not messages:
        raise ApiError(400, "messages: at least one message is required", param="messages")
    lines = []
    last_user = ""
    for m in messages:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise ApiError(400, "messages: each message needs a 'role'", param="messages")
        text = _content_text(m.get("content"))
        if m["role"] == "user":
            last_user = text
        lines.append(f"<|{m['role']}|>\n{text}\n")
    lines.append("<|assistant|>\n")
    return "".join(lines), last_user


def parse_generation(kind: str, body: dict[str, Any], tok: Tokenizer) -> GenerationRequest:
    _check_number_fields(body)
    if kind == "chat":
        text, last_user = chat_prompt(body)
        prompts = [tok.encode(text)]
        echo = [tok.encode(last_user)]
    else:
        prompts = completion_prompts(body, tok)
        echo = prompts
    max_tokens = _int_field(body, "max_completion_tokens", 1)
    if max_tokens is None:
        max_tokens = _int_field(body, "max_tokens", 1)
    n = _int_field(body, "n", 1)
    if n not in (None, 1):
        raise ApiError(400, "the simulator supports n=1 only", param="n")
    stream = bool(body.get("stream", False))
    opts = body.get("stream_options")
    if opts is not None and not isinstance(opts, dict):
        raise ApiError(400, "stream_options must be an object", param="stream_options")
    if opts and not stream:
        raise ApiError(400, "Stream options can only be defined when `stream=True`.", param="stream_options")
    kv = body.get("kv_transfer_params")
    salt = body.get("cache_salt")
    seed = body.get("seed")
    return GenerationRequest(
        kind=kind,
        model=str(body.get("model") or ""),
        prompts=prompts,
        echo_ids=echo,
        max_tokens=max_tokens,
        stream=stream,
        # vLLM: include_usage defaults to True once stream_options is present
        include_usage=bool(opts.get("include_usage", True)) if opts else False,
        continuous_usage=bool(opts.get("continuous_usage_stats", False)) if opts else False,
        ignore_eos=bool(body.get("ignore_eos", False)),
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        cache_salt=salt if isinstance(salt, str) and salt else None,
        kv_transfer_params=kv if isinstance(kv, dict) else None,
    )


def context_length_error(max_model_len: int, prompt_len: int, max_tokens: int | None) -> ApiError | None:
    """vLLM's messages for a prompt (or prompt + max_tokens) that does not fit --max-model-len."""
    if prompt_len >= max_model_len:
        return ApiError(
            400,
            f"This model's maximum context length is {max_model_len} tokens. However, your request has "
            f"{prompt_len} input tokens. Please reduce the length of the input messages.",
        )
    if max_tokens is not None and prompt_len + max_tokens > max_model_len:
        return ApiError(
            400,
            f"'max_tokens' or 'max_completion_tokens' is too large: {max_tokens}. This model's maximum context "
            f"length is {max_model_len} tokens and your request has {prompt_len} input tokens "
            f"({max_tokens} > {max_model_len} - {prompt_len}).",
        )
    return None


def usage(prompt: int, completion: int, cached: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "total_tokens": prompt + completion,
        "completion_tokens": completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }
