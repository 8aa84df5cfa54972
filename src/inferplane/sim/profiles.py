"""Latency profiles: YAML files (package data under sim/profiles/) naming an accelerator, a model shape, kernel
efficiencies and fixed overheads, each citing where its numbers come from. `load_profile` resolves a name or a
path to a validated `Profile`; `inferplane.sim.latency` turns one into step times."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from inferplane.errors import ConfigError

PROFILE_DIR = Path(__file__).parent / "profiles"
GIB = 1024**3


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AcceleratorSpec(_Spec):
    name: str
    memory_gib: float = Field(gt=0)
    bf16_tflops: float = Field(gt=0)
    matmul_efficiency: float = Field(gt=0, le=1)
    hbm_tb_s: float = Field(gt=0)
    bandwidth_efficiency: float = Field(gt=0, le=1)

    @property
    def flops(self) -> float:
        """Achievable dense bf16 FLOP/s."""
        return self.bf16_tflops * 1e12 * self.matmul_efficiency

    @property
    def bandwidth(self) -> float:
        """Achievable HBM bytes/s."""
        return self.hbm_tb_s * 1e12 * self.bandwidth_efficiency


class ModelSpec(_Spec):
    name: str
    params_b: float = Field(gt=0)
    embedding_params_b: float = Field(ge=0)
    tied_embeddings: bool = False
    layers: int = Field(gt=0)
    attention_heads: int = Field(gt=0)
    kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    dtype_bytes: int = 2
    experts: int = 0
    experts_per_token: int = 0
    expert_params_b: float = 0.0

    @property
    def active_params(self) -> float:
        if not self.experts:
            return self.params_b * 1e9
        inactive = (self.experts - self.experts_per_token) * self.expert_params_b * 1e9
        return self.params_b * 1e9 - inactive

    @property
    def linear_flops_per_token(self) -> float:
        """Prefill matmul FLOPs per token: no FLOPs for the embedding lookup, LM head only for the last token."""
        embed_copies = 1 if self.tied_embeddings else 2
        return 2.0 * (self.active_params - embed_copies * self.embedding_params_b * 1e9)

    @property
    def decode_flops_per_token(self) -> float:
        embed_copies = 0 if self.tied_embeddings else 1
        return 2.0 * (self.active_params - embed_copies * self.embedding_params_b * 1e9)

    @property
    def attention_flops_per_pair(self) -> float:
        """FLOPs for one query token attending to one context token (QK^T and PV, all layers)."""
        return 4.0 * self.layers * self.attention_heads * self.head_dim

    @property
    def kv_bytes_per_token(self) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * self.dtype_bytes

    @property
    def weight_bytes(self) -> float:
        return self.params_b * 1e9 * self.dtype_bytes

    def decode_weight_bytes(self, batch: int) -> float:
        """Weights read by one decode step: every dense weight, and the experts that at least one token routes to
        (expected count with uniform top-k routing: E·(1 − (1 − k/E)^batch))."""
        if not self.experts or batch <= 0:
            return self.weight_bytes
        expert_bytes = self.expert_params_b * 1e9 * self.dtype_bytes
        dense = self.weight_bytes - self.experts * expert_bytes
        touched = self.experts * (1.0 - (1.0 - self.experts_per_token / self.experts) ** batch)
        return dense + touched * expert_bytes


class Efficiency(_Spec):
    prefill_mfu: float = Field(gt=0, le=1)
    attention_mfu: float = Field(gt=0, le=1)
    decode_mfu: float = Field(gt=0, le=1)
    tensor_parallel_efficiency: float = Field(default=0.85, gt=0, le=1)


class Overheads(_Spec):
    step_s: float = Field(ge=0)
    request_s: float = Field(ge=0)
    tokenize_per_token_s: float = Field(ge=0)
    kv_transfer_gb_s: float = Field(default=25.0, gt=0)


class Profile(_Spec):
    name: str
    description: str
    source: str
    accelerator: AcceleratorSpec
    model: ModelSpec
    efficiency: Efficiency
    overheads: Overheads
    activation_reserve_gib: float = Field(default=1.0, ge=0)
    tensor_parallel_size: int = Field(default=1, ge=1)
    zero: bool = False

    def num_gpu_blocks(
        self, block_size: int, gpu_memory_utilization: float, tensor_parallel_size: int | None = None
    ) -> int:
        from inferplane.sim.kvblocks import num_gpu_blocks

        m = self.model
        return num_gpu_blocks(
            memory_bytes=self.accelerator.memory_gib * GIB,
            gpu_memory_utilization=gpu_memory_utilization,
            weight_bytes=m.weight_bytes,
            layers=m.layers,
            kv_heads=m.kv_heads,
            head_dim=m.head_dim,
            kv_dtype_bytes=m.dtype_bytes,
            block_size=block_size,
            tensor_parallel_size=tensor_parallel_size or self.tensor_parallel_size,
            activation_reserve_bytes=self.activation_reserve_gib * GIB,
        )


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read latency profile {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None


@cache
def _catalog(kind: str) -> dict[str, Any]:
    data = _read_yaml(PROFILE_DIR / f"{kind}.yaml")
    assert isinstance(data, dict)
    return data


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml") if p.stem not in ("accelerators", "models"))


def _resolve_ref(raw: dict[str, Any], key: str, kind: str, path: Path) -> None:
    ref = raw.get(key)
    if isinstance(ref, str):
        catalog = _catalog(kind)
        if ref not in catalog:
            raise ConfigError(
                f"{path}: {key}: unknown {kind[:-1]} {ref!r}", hint=f"one of: {', '.join(sorted(catalog))}"
            )
        raw[key] = catalog[ref]


def load_profile(spec: str) -> Profile:
    """A profile by name (a file stem under sim/profiles/) or by path to a YAML file."""
    path = Path(spec)
    if not (spec.endswith((".yaml", ".yml")) or path.is_file()):
        path = PROFILE_DIR / f"{spec}.yaml"
        if not path.is_file() or spec in ("accelerators", "models"):
            raise ConfigError(f"unknown latency profile {spec!r}", hint=f"one of: {', '.join(profile_names())}")
    raw = _read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a latency profile is a mapping of fields")
    _resolve_ref(raw, "accelerator", "accelerators", path)
    _resolve_ref(raw, "model", "models", path)
    try:
        return Profile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}", hint="see sim/profiles/h100-llama-8b.yaml") from None


_SIZE_CLASSES = (("mixtral-8x7b", 46.7), ("qwen-32b", 32.0), ("llama-8b", 8.0), ("gemma-2b", 2.0))


def default_profile_name(accelerator: str, model: str) -> str:
    """The profile for an accelerator and a model name, by the size in the name ("8x7B" → MoE, "0.6B" → 2b)."""
    names = set(profile_names())
    lowered = model.lower()
    if "8x7b" in lowered or "mixtral" in lowered:
        wanted = "mixtral-8x7b"
    else:
        match = re.search(r"(\d+(?:\.\d+)?)\s*b\b", lowered)
        size = float(match.group(1)) if match else 8.0
        wanted = min(_SIZE_CLASSES[1:], key=lambda c: abs(c[1] - size))[0]
    candidates = [n for n in names if n.startswith(f"{accelerator}-")]
    if not candidates:
        prefixes = sorted({n.rsplit("-", 2)[0] for n in names if n != "zero"})
        raise ConfigError(f"no latency profile for accelerator {accelerator!r}", hint=f"one of: {prefixes}")
    if f"{accelerator}-{wanted}" in names:
        return f"{accelerator}-{wanted}"
    order = [c for c, _ in _SIZE_CLASSES]
    return min(candidates, key=lambda n: abs(order.index(n[len(accelerator) + 1 :]) - order.index(wanted)))
