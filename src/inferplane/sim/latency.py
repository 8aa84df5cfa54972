"""Latency models: how long one engine step takes, given what the step computes.

`RooflineModel` (the default) prices a step from a profile (`inferplane.sim.profiles`): compute time (linear
FLOPs per new token + attention FLOPs over the context, over achievable FLOP/s) against memory time (weights read
once per step + every live KV token read once, over achievable bandwidth); the step takes a fixed overhead plus the
larger of the two (roofline). Each request also pays a front-end cost before it reaches the queue (tokenization,
API-server to engine hand-off), which is where vLLM's low-load TTFT floor comes from.

Prefill is calibrated on shared/calibration/h100-hf-eager.json (compute-bound, so Hugging Face eager and vLLM agree
to within the LM-head difference). Decode is **not** taken from that file: eager decode is launch-bound (8B, batch
1: 19.6 ms) and even the CUDA-graph replay (9.9 ms) pads attention over a static cache. vLLM replays decode from
CUDA graphs over paged KV, so a decode step here is the bandwidth bound (8B: 16 GB weights / 2.8 TB/s = 5.7 ms)
plus a 1 ms step overhead: 6.8 ms at batch 1, 12.8 ms at batch 128 with 1,024 tokens of context each. That is the
eager→CUDA-graph correction; the profiles restate it.

`UpstreamModel` reproduces llm-d-inference-sim's `constant` and `per-token` calculators with the load factor
f(n) = 1 + (time-factor-under-load − 1)(n − 1)/(max-num-seqs − 1), mapped onto steps: a step lasts the longest of
its prefill chunks' cost and, when it decodes, inter-token-latency · f. `ZeroModel` makes every step free.

Pure logic: no clocks, no network.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Protocol

from inferplane.sim.profiles import Profile


@dataclass(frozen=True, slots=True)
class PrefillChunk:
    new_tokens: int
    context: int  # tokens already in the KV cache before this chunk (cached prefix + earlier chunks)
    first: bool  # the request's first chunk (upstream per-token charges prefill-overhead here)
    last: bool  # completes the prompt: the step samples the request's first token
    remote: bool = False  # P/D decode leg: the KV is transferred, not computed


@dataclass(slots=True)
class StepBatch:
    prefills: list[PrefillChunk] = field(default_factory=list)
    num_decodes: int = 0
    decode_context: int = 0  # Σ context tokens of the decoding sequences
    num_running: int = 0

    @property
    def empty(self) -> bool:
        return not self.prefills and not self.num_decodes


class LatencyModel(Protocol):
    name: str

    def step_time(self, batch: StepBatch) -> float: ...

    def request_overhead(self, prompt_tokens: int) -> float: ...


class ZeroModel:
    name = "zero"

    def step_time(self, batch: StepBatch) -> float:
        return 0.0

    def request_overhead(self, prompt_tokens: int) -> float:
        return 0.0


class RooflineModel:
    def __init__(self, profile: Profile, tensor_parallel_size: int | None = None) -> None:
        self.profile = profile
        self.name = profile.name
        m, a, e = profile.model, profile.accelerator, profile.efficiency
        tp = tensor_parallel_size or profile.tensor_parallel_size
        # tensor parallelism splits FLOPs and bytes over ranks, minus all-reduce losses
        speedup = tp * (e.tensor_parallel_efficiency if tp > 1 else 1.0)
        self._linear_s = m.linear_flops_per_token / (a.flops * e.prefill_mfu) / speedup
        self._attn_s = m.attention_flops_per_pair / (a.flops * e.attention_mfu) / speedup
        self._decode_s = m.decode_flops_per_token / (a.flops * e.decode_mfu) / speedup
        self._byte_s = 1.0 / a.bandwidth / speedup
        self._kv_bytes = m.kv_bytes_per_token
        self._transfer_s = m.kv_bytes_per_token / (profile.overheads.kv_transfer_gb_s * 1e9)
        self._step_s = profile.overheads.step_s
        self._request_s = profile.overheads.request_s
        self._tok_s = profile.overheads.tokenize_per_token_s

    def step_time(self, batch: StepBatch) -> float:
        if batch.empty:
            return 0.0
        compute = 0.0
        kv_read = batch.decode_context
        transfer = 0.0
        for c in batch.prefills:
            if c.remote:
                transfer = max(transfer, c.new_tokens * self._transfer_s)
                continue
            compute += c.new_tokens * self._linear_s + c.new_tokens * (c.context + c.new_tokens / 2) * self._attn_s
            kv_read += c.context + c.new_tokens
        compute += batch.num_decodes * self._decode_s + batch.decode_context * self._attn_s
        batch_seqs = batch.num_decodes + len(batch.prefills)
        memory = (self.profile.model.decode_weight_bytes(batch_seqs) + kv_read * self._kv_bytes) * self._byte_s
        return self._step_s + max(compute, memory) + transfer

    def request_overhead(self, prompt_tokens: int) -> float:
        return self._request_s + prompt_tokens * self._tok_s


@dataclass(frozen=True, slots=True)
class UpstreamLatency:
    """llm-d-inference-sim's latency settings (seconds; its flags take Go durations)."""

    calculator: str = ""  # "constant" | "per-token" | "" (legacy: constant if time-to-first-token is set)
    time_to_first_token: float = 0.0
    time_to_first_token_std_dev: float = 0.0
    inter_token_latency: float = 0.0
    inter_token_latency_std_dev: float = 0.0
    prefill_overhead: float = 0.0
    prefill_time_per_token: float = 0.0
    prefill_time_std_dev: float = 0.0
    kv_cache_transfer_latency: float = 0.0
    kv_cache_transfer_latency_std_dev: float = 0.0
    kv_cache_transfer_time_per_token: float = 0.0
    kv_cache_transfer_time_std_dev: float = 0.0
    time_factor_under_load: float = 1.0

    @property
    def is_set(self) -> bool:
        return any(
            (self.time_to_first_token, self.inter_token_latency, self.prefill_overhead, self.prefill_time_per_token)
        ) or bool(self.calculator)


class UpstreamModel:
    name = "upstream"

    def __init__(self, cfg: UpstreamLatency, max_num_seqs: int, seed: int | None = None) -> None:
        if cfg.time_factor_under_load < 1.0:
            raise ValueError("time-factor-under-load must be ≥ 1.0")
        self.cfg = cfg
        self.max_num_seqs = max_num_seqs
        calc = cfg.calculator or ("constant" if cfg.time_to_first_token or cfg.time_to_first_token_std_dev else "")
        self.constant = calc == "constant"
        legacy_transfer = cfg.kv_cache_transfer_latency or cfg.kv_cache_transfer_latency_std_dev
        self.constant_transfer = calc == "constant" or (not cfg.calculator and bool(legacy_transfer))
        self.name = f"upstream-{'constant' if self.constant else 'per-token'}"
        self._rng = random.Random(seed)

    def load_factor(self, n_running: int) -> float:
        if self.max_num_seqs <= 1:
            return 1.0
        n = max(1, n_running)
        return 1.0 + (self.cfg.time_factor_under_load - 1.0) * (n - 1) / (self.max_num_seqs - 1)

    def _jitter(self, mean: float, std: float) -> float:
        if std <= 0 or mean <= 0:
            return mean
        # upstream caps the std-dev at 30 % of the mean and clamps samples to ±70 %
        sample = self._rng.gauss(mean, min(std, 0.3 * mean))
        return min(max(sample, 0.3 * mean), 1.7 * mean)

    def _chunk_time(self, c: PrefillChunk, f: float) -> float:
        cfg = self.cfg
        if c.remote:
            if self.constant_transfer:
                base = cfg.kv_cache_transfer_latency if c.last else 0.0
                return self._jitter(base, cfg.kv_cache_transfer_latency_std_dev)
            base = c.new_tokens * cfg.kv_cache_transfer_time_per_token
            return self._jitter(base, cfg.kv_cache_transfer_time_std_dev)
        if self.constant:
            return self._jitter(cfg.time_to_first_token, cfg.time_to_first_token_std_dev) * f if c.last else 0.0
        base = (cfg.prefill_overhead if c.first else 0.0) + c.new_tokens * cfg.prefill_time_per_token
        return self._jitter(base, cfg.prefill_time_std_dev) * f

    def step_time(self, batch: StepBatch) -> float:
        if batch.empty:
            return 0.0
        f = self.load_factor(batch.num_running)
        t = max((self._chunk_time(c, f) for c in batch.prefills), default=0.0)
        if batch.num_decodes:
            itl = self._jitter(self.cfg.inter_token_latency, self.cfg.inter_token_latency_std_dev) * f
            t = max(t, itl)
        return t

    def request_overhead(self, prompt_tokens: int) -> float:
        return 0.0


def build_latency_model(
    profile: Profile,
    upstream: UpstreamLatency | None = None,
    *,
    max_num_seqs: int = 256,
    tensor_parallel_size: int | None = None,
    seed: int | None = None,
) -> LatencyModel:
    """Upstream settings win when any is given; otherwise the profile (the `zero` profile → ZeroModel)."""
    if upstream is not None and upstream.is_set:
        return UpstreamModel(upstream, max_num_seqs, seed)
    if profile.zero:
        return ZeroModel()
    return RooflineModel(profile, tensor_parallel_size)
