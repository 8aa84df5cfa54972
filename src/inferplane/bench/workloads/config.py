"""Workload configuration: the same keys as inference-perf's `data:` section, so a user's inference-perf config
means the same thing here.

    type: shared_prefix            # shared_prefix | multi_turn | random | trace  (hyphens accepted)
    shared_prefix: {num_groups: 30, num_prompts_per_group: 5, system_prompt_len: 2000, question_len: 300,
                    output_len: 200}
    models: {model-a: 0.7, model-b: 0.3}   # optional multi-model mix (share per model)
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Distribution(_Strict):
    """A length distribution. Without `type` it is inference-perf's: a normal around `mean` with `std_dev`,
    clipped to [min, max]."""

    type: Literal["fixed", "uniform", "normal"] = "normal"
    value: int | None = Field(default=None, ge=0, description="fixed length")
    min: int = Field(default=10, ge=1)
    max: int = Field(default=1024, ge=1)
    mean: float = 512
    std_dev: float = Field(default=200, ge=0)
    total_count: int | None = Field(default=None, ge=1, description="inference-perf: number of prompts")

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        return parse_distribution(data) if isinstance(data, str) else data

    @model_validator(mode="after")
    def _check(self) -> Distribution:
        if self.type == "fixed" and self.value is None:
            raise ValueError("a fixed distribution needs `value`")
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self

    @classmethod
    def fixed(cls, value: int) -> Distribution:
        return cls(type="fixed", value=value, min=1, max=max(value, 1))

    @property
    def upper(self) -> int:
        return self.value if self.type == "fixed" and self.value is not None else self.max


Length = Annotated[int, Field(ge=0)] | Distribution

_DIST_TEXT = re.compile(r"^\s*(fixed|uniform|normal)\s*\(([^()]*)\)\s*$")
DISTRIBUTION_SYNTAX = "fixed(N), uniform(MIN,MAX) or normal(MEAN,STD_DEV[,MIN,MAX])"


def parse_distribution(text: str) -> dict[str, Any]:
    """`normal(512,64)`, `uniform(64,256)`, `fixed(128)` → Distribution fields, so that a length distribution fits
    in one --workload value. A normal without bounds is clipped to mean ± 4 standard deviations (at least 1)."""
    m = _DIST_TEXT.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a length distribution; write {DISTRIBUTION_SYNTAX}")
    kind, raw = m.group(1), [a.strip() for a in m.group(2).split(",") if a.strip()]
    try:
        args = [float(a) for a in raw]
    except ValueError:
        args = []
    if len(args) != len(raw) or not all(math.isfinite(a) and abs(a) < 1e9 for a in args):
        raise ValueError(f"{text!r}: the arguments of {kind}() must be numbers below 1e9")
    arity = {"fixed": (1,), "uniform": (2,), "normal": (2, 4)}[kind]
    if len(args) not in arity:
        raise ValueError(f"{text!r}: {kind}() takes {' or '.join(map(str, arity))} numbers ({DISTRIBUTION_SYNTAX})")
    if kind == "fixed":
        return {"type": "fixed", "value": int(args[0]), "min": 1, "max": max(int(args[0]), 1)}
    if kind == "uniform":
        return {"type": "uniform", "min": int(args[0]), "max": int(args[1])}
    mean, std = args[0], args[1]
    lo, hi = (args[2], args[3]) if len(args) == 4 else (max(1.0, mean - 4 * std), max(1.0, mean + 4 * std))
    return {"type": "normal", "mean": mean, "std_dev": std, "min": int(lo), "max": int(hi)}


class SharedPrefixConfig(_Strict):
    """inference-perf `data.shared_prefix`: `num_groups` system prompts, each followed by
    `num_prompts_per_group` distinct questions. Lengths are a number of tokens or a distribution, as in
    inference-perf 0.7 (which also names the counts `num_unique_system_prompts` / `num_users_per_system_prompt`)."""

    num_groups: int = Field(default=10, ge=1)
    num_prompts_per_group: int = Field(default=10, ge=1)
    system_prompt_len: Length = 100
    question_len: Length = 50
    output_len: Length = 50
    num_unique_system_prompts: int | None = Field(default=None, ge=1, description="alias of num_groups")
    num_users_per_system_prompt: int | None = Field(default=None, ge=1, description="alias of num_prompts_per_group")
    question_distribution: Distribution | None = Field(default=None, description="inference-perf legacy form")
    output_distribution: Distribution | None = Field(default=None, description="inference-perf legacy form")
    enable_multi_turn_chat: Literal[False] = Field(
        default=False, description="not supported here: use `type: multi_turn` for chat sessions"
    )
    seed: int | None = None

    @property
    def groups(self) -> int:
        return self.num_unique_system_prompts or self.num_groups

    @property
    def prompts_per_group(self) -> int:
        return self.num_users_per_system_prompt or self.num_prompts_per_group

    def lengths(self) -> tuple[Distribution, Distribution, Distribution]:
        """(system prompt, question, output) length distributions, fixed numbers included."""

        def as_dist(value: int | Distribution, legacy: Distribution | None = None) -> Distribution:
            if legacy is not None:
                return legacy
            return value if isinstance(value, Distribution) else Distribution.fixed(value)

        return (
            as_dist(self.system_prompt_len),
            as_dist(self.question_len, self.question_distribution),
            as_dist(self.output_len, self.output_distribution),
        )


class RandomConfig(_Strict):
    input_distribution: Distribution = Field(default_factory=lambda: Distribution.fixed(512))
    output_distribution: Distribution = Field(default_factory=lambda: Distribution.fixed(128))
    num_prompts: int | None = Field(default=None, ge=1, description="default: input total_count, else 1000")

    @model_validator(mode="before")
    @classmethod
    def _short_names(cls, data: Any) -> Any:
        # `input_len` / `output_len` (a number or a distribution) are the short inline spellings of the
        # inference-perf `*_distribution` keys, matching the shared-prefix section's names.
        if isinstance(data, dict):
            data = dict(data)
            for short, full in (("input_len", "input_distribution"), ("output_len", "output_distribution")):
                if short in data:
                    if full in data:
                        raise ValueError(f"give either {short} or {full}, not both")
                    value = data.pop(short)
                    if type(value) is int and value < 0:
                        raise ValueError(f"{short} is {value}; a length is a number ≥ 0 or a distribution")
                    data[full] = Distribution.fixed(value) if type(value) is int else value
        return data

    @property
    def count(self) -> int:
        return self.num_prompts or self.input_distribution.total_count or 1000


class MultiTurnConfig(_Strict):
    sessions: int = Field(default=8, ge=1, description="sessions in progress at once, interleaved")
    turns: int = Field(default=5, ge=1, description="user turns per session")
    system_prompt_len: int = Field(default=200, ge=0)
    shared_system_prompt: bool = Field(default=False, description="one system prompt for every session")
    turn_len: int = Field(default=100, ge=1, description="tokens per user turn")
    output_len: int = Field(default=100, ge=1)


class TraceConfig(_Strict):
    """JSONL, one request per line: timestamp (s), prompt or input_len, output_len, optional model."""

    path: str
    speedup: float = Field(default=1.0, gt=0, description="replay faster (>1) or slower (<1) than recorded")


WorkloadType = Literal["shared_prefix", "multi_turn", "random", "trace"]


class WorkloadConfig(_Strict):
    type: WorkloadType
    shared_prefix: SharedPrefixConfig | None = None
    multi_turn: MultiTurnConfig | None = None
    random: RandomConfig | None = None
    trace: TraceConfig | None = None
    models: dict[str, Annotated[float, Field(gt=0)]] | None = Field(
        default=None, description="multi-model mix: model name → share (normalised)"
    )

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = {str(k).replace("-", "_"): v for k, v in data.items()}
            if isinstance(data.get("type"), str):
                data["type"] = data["type"].replace("-", "_")
        return data

    @model_validator(mode="after")
    def _section(self) -> WorkloadConfig:
        # The section named by `type` gets its defaults when absent, like inference-perf.
        if getattr(self, self.type) is None:
            if self.type == "trace":
                raise ValueError("a trace workload needs `trace: {path: FILE.jsonl}`")
            defaults = {"shared_prefix": SharedPrefixConfig, "multi_turn": MultiTurnConfig, "random": RandomConfig}
            setattr(self, self.type, defaults[self.type]())
        return self

    def section(self) -> BaseModel:
        value = getattr(self, self.type)
        assert value is not None  # filled by _section
        return value
