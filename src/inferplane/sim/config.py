"""The simulator's resolved configuration (built from vLLM-style flags by `inferplane.sim.flags`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from inferplane.sim.kvpublisher import KVEventsConfig
from inferplane.sim.latency import UpstreamLatency
from inferplane.sim.profiles import Profile


@dataclass(frozen=True, slots=True)
class LoraModule:
    name: str
    path: str
    base_model_name: str | None = None


@dataclass(slots=True)
class SimConfig:
    model: str
    profile: Profile
    served_model_names: list[str] = field(default_factory=list)
    host: str = "0.0.0.0"
    port: int = 8000
    max_model_len: int = 8192
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    max_waiting: int = 0
    enable_prefix_caching: bool = True
    block_size: int = 16
    gpu_memory_utilization: float = 0.9
    num_gpu_blocks_override: int | None = None
    tensor_parallel_size: int | None = None
    data_parallel_size: int = 1
    dtype: str = "auto"
    kv_events: KVEventsConfig = field(default_factory=KVEventsConfig)
    enable_lora: bool = False
    lora_modules: list[LoraModule] = field(default_factory=list)
    max_loras: int = 1
    upstream: UpstreamLatency = field(default_factory=UpstreamLatency)
    mode: str = "random"
    seed: int | None = None
    time_scale: float = 1.0
    startup_delay: float = 0.0
    replicas: int = 1
    failure_rate: float = 0.0
    failure_types: list[str] = field(default_factory=list)
    pod_name: str | None = None
    tokenizer: str | None = None
    legacy_gpu_cache_metric: bool = False
    max_request_body_mb: int = 4

    @property
    def names(self) -> list[str]:
        return self.served_model_names or [self.model]

    def num_gpu_blocks(self) -> int:
        if self.num_gpu_blocks_override:
            return self.num_gpu_blocks_override
        return self.profile.num_gpu_blocks(self.block_size, self.gpu_memory_utilization, self.tensor_parallel_size)

    @property
    def num_endpoints(self) -> int:
        return self.replicas * self.data_parallel_size
