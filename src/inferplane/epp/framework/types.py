"""The data the scheduler works on: endpoints with their live state, the parsed request, the result.

These are plain objects shared by the protocol edge (ext_proc server, metrics scraper, KV-event subscriber)
and the pure scheduling code. Names follow the upstream EPP (`WaitingQueueSize`, `KVCacheUsagePercent`, ...).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class EndpointKey:
    """Identity of one model-server endpoint: `address:port` is what goes into x-gateway-destination-endpoint."""

    address: str
    port: int

    @property
    def hostport(self) -> str:
        return f"{self.address}:{self.port}"

    def __str__(self) -> str:
        return self.hostport


@dataclass(slots=True)
class Metrics:
    """Live state scraped from an endpoint's /metrics (and LoRA info); `update_time` is time.monotonic()."""

    waiting_queue_size: int = 0
    running_requests_size: int = 0
    kv_cache_usage_percent: float = 0.0  # a 0..1 fraction, as vLLM reports it
    active_models: dict[str, int] = field(default_factory=dict)  # running LoRA adapters
    waiting_models: dict[str, int] = field(default_factory=dict)
    max_active_models: int = 0
    cache_block_size: int = 0  # from vllm:cache_config_info, for prefix-cache autotune
    cache_num_gpu_blocks: int = 0
    update_time: float = 0.0
    scrape_error: str | None = None

    def age(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.update_time


@dataclass(slots=True)
class Endpoint:
    """One model-server replica (a pod's targetPort) as the scheduler sees it."""

    key: EndpointKey
    name: str = ""  # pod name, or a local replica name
    namespace: str = "default"
    labels: dict[str, str] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)
    ready: bool = True
    # Requests the EPP has sent there and not yet seen finish (kept by the request director, not scraped).
    in_flight_requests: int = 0
    in_flight_tokens: int = 0

    @property
    def hostport(self) -> str:
        return self.key.hostport


@dataclass(slots=True)
class ChatMessage:
    role: str
    content: str


@dataclass(slots=True)
class LLMRequestBody:
    """The parsed OpenAI body. Exactly one of prompt / messages is set for completions / chat;
    `raw` keeps the decoded JSON so that the model can be rewritten and the body re-marshalled."""

    kind: str  # "completions" | "chat" | "responses" | "embeddings"
    prompt: str | None = None
    messages: list[ChatMessage] | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def prompt_text(self) -> str:
        """The text the prefix hashes are computed on: the prompt, or the chat messages flattened in order."""
        if self.prompt is not None:
            return self.prompt
        if self.messages:
            return "".join(f"<|{m.role}|>{m.content}" for m in self.messages)
        return ""


@dataclass(slots=True)
class LLMRequest:
    request_id: str
    target_model: str
    body: LLMRequestBody | None = None
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names
    objective: str | None = None
    priority: int = 0
    fairness_id: str = ""
    request_size_bytes: int = 0


@dataclass(slots=True)
class ScoredEndpoint:
    endpoint: Endpoint
    score: float


@dataclass(slots=True)
class ProfileRunResult:
    """The endpoints one scheduling profile picked, best first (primary, then fallbacks)."""

    target_endpoints: list[Endpoint]
    scores: dict[str, float] = field(default_factory=dict)  # hostport -> total weighted score


@dataclass(slots=True)
class SchedulingResult:
    profile_results: dict[str, ProfileRunResult]
    primary_profile_name: str

    @property
    def primary(self) -> ProfileRunResult:
        return self.profile_results[self.primary_profile_name]

    def destination_header(self) -> str:
        """The value of x-gateway-destination-endpoint: primary then fallbacks, comma-separated."""
        return ",".join(e.hostport for e in self.primary.target_endpoints)
