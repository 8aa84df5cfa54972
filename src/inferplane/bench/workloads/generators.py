"""Workload generators, one per `type`, registered by name. Every draw comes from a random stream keyed by the
seed and the item (group, prompt, session), so a run is reproducible and one item does not shift another."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from inferplane.bench.workloads.base import (
    ChatSession,
    ListSource,
    Message,
    RequestSource,
    RequestSpec,
    SessionFactory,
    SessionSource,
)
from inferplane.bench.workloads.config import (
    Distribution,
    MultiTurnConfig,
    RandomConfig,
    SharedPrefixConfig,
    TraceConfig,
    WorkloadConfig,
)
from inferplane.bench.workloads.text import TokenCounter, rng_for, synth_text, token_counter
from inferplane.errors import ConfigError

ModelPicker = Callable[[str], "str | None"]


@dataclass
class Workload:
    """A built workload: `source()` makes a fresh request source (each benchmark run or stage ladder gets its own,
    so two configurations compared side by side see the same requests in the same order)."""

    config: WorkloadConfig
    seed: int
    make_source: Callable[[], RequestSource]

    def source(self) -> RequestSource:
        return self.make_source()


def model_picker(models: dict[str, float] | None, seed: int) -> ModelPicker:
    """Assigns a model to an item key by share; the same key always gets the same model."""
    if not models:
        return lambda key: None
    names = sorted(models)
    weights = [models[n] for n in names]
    return lambda key: rng_for(seed, "model", key).choices(names, weights)[0]


def draw_length(dist: Distribution, rng: random.Random) -> int:
    if dist.type == "fixed":
        assert dist.value is not None
        return dist.value
    if dist.type == "uniform":
        return rng.randint(dist.min, dist.max)
    value = round(rng.gauss(dist.mean, dist.std_dev)) if dist.std_dev > 0 else round(dist.mean)
    return min(max(value, dist.min), dist.max)


def _text(n: int, rng: random.Random, count: TokenCounter) -> tuple[str, int]:
    text = synth_text(n, rng, count)
    return text, count(text)


def shared_prefix_specs(
    cfg: SharedPrefixConfig, seed: int, pick: ModelPicker, count: TokenCounter
) -> list[RequestSpec]:
    seed = cfg.seed if cfg.seed is not None else seed
    system_len, question_len, output_len = cfg.lengths()
    specs = []
    for g in range(cfg.groups):
        system_rng = rng_for(seed, "system", g)
        system, system_n = _text(draw_length(system_len, system_rng), system_rng, count)
        model = pick(f"group-{g}")
        for p in range(cfg.prompts_per_group):
            # A fixed length draws nothing, so fixed-length workloads do not depend on the distribution code.
            question_rng = rng_for(seed, "question", g, p)
            question, question_n = _text(draw_length(question_len, question_rng), question_rng, count)
            messages = (
                (Message("system", system), Message("user", question)) if system else (Message("user", question),)
            )
            specs.append(
                RequestSpec(
                    messages=messages,
                    output_tokens=max(draw_length(output_len, question_rng), 1),
                    input_tokens=system_n + question_n,
                    model=model,
                    group=f"group-{g}",
                )
            )
    return specs


def random_specs(cfg: RandomConfig, seed: int, pick: ModelPicker, count: TokenCounter) -> list[RequestSpec]:
    specs = []
    for i in range(cfg.count):
        lengths = rng_for(seed, "lengths", i)
        n_in = draw_length(cfg.input_distribution, lengths)
        n_out = draw_length(cfg.output_distribution, lengths)
        text, n = _text(n_in, rng_for(seed, "prompt", i), count)
        specs.append(
            RequestSpec(
                messages=(Message("user", text),), output_tokens=n_out, input_tokens=n, model=pick(f"prompt-{i}")
            )
        )
    return specs


class _Sessions(SessionFactory):
    def __init__(self, cfg: MultiTurnConfig, seed: int, pick: ModelPicker, count: TokenCounter) -> None:
        self.cfg, self.seed, self.pick, self.count = cfg, seed, pick, count
        self._shared = _text(cfg.system_prompt_len, rng_for(seed, "system", "shared"), count)

    def __call__(self, index: int) -> ChatSession:
        cfg = self.cfg
        system = (
            self._shared
            if cfg.shared_system_prompt
            else _text(cfg.system_prompt_len, rng_for(self.seed, "system", index), self.count)
        )
        turns = [_text(cfg.turn_len, rng_for(self.seed, "turn", index, t), self.count) for t in range(cfg.turns)]
        sid = f"session-{index}"
        return ChatSession(sid, system, turns, cfg.output_len, self.pick(sid))


def trace_specs(cfg: TraceConfig, seed: int, pick: ModelPicker, count: TokenCounter) -> list[RequestSpec]:
    path = Path(cfg.path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read trace {path}: {exc.strerror}") from None
    rows: list[tuple[float, RequestSpec]] = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(_trace_row(json.loads(line), lineno, seed, pick, count))
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(
                f"{path}:{lineno}: {exc}",
                hint='each line is a JSON object like {"timestamp": 0.5, "input_len": 300, "output_len": 50}',
            ) from None
    if not rows:
        raise ConfigError(f"{path}: the trace has no requests")
    start = min(t for t, _ in rows)
    return [
        RequestSpec(s.messages, s.output_tokens, s.input_tokens, s.model, s.group, (t - start) / cfg.speedup)
        for t, s in sorted(rows, key=lambda r: r[0])
    ]


def _trace_row(
    row: object, lineno: int, seed: int, pick: ModelPicker, count: TokenCounter
) -> tuple[float, RequestSpec]:
    if not isinstance(row, dict):
        raise TypeError("expected a JSON object")
    ts = float(row["timestamp"])
    out = int(row.get("output_len", row.get("output_length", 0)) or 0)
    if out < 1:
        raise ValueError("output_len must be a positive integer")
    if "prompt" in row:
        text = str(row["prompt"])
        n = count(text)
    elif "input_len" in row or "input_length" in row:
        length = int(row.get("input_len", row.get("input_length")) or 0)
        text, n = _text(length, rng_for(seed, "trace", lineno), count)
    else:
        raise KeyError("needs `prompt` or `input_len`")
    model = row.get("model") or pick(f"line-{lineno}")
    return ts, RequestSpec((Message("user", text),), out, n, model, group=str(row.get("session_id", "")))


_GENERATORS: dict[str, Callable[[BaseModel, int, ModelPicker, TokenCounter], Sequence[RequestSpec]]] = {
    "shared_prefix": shared_prefix_specs,  # type: ignore[dict-item]
    "random": random_specs,  # type: ignore[dict-item]
    "trace": trace_specs,  # type: ignore[dict-item]
}


def build_workload(config: WorkloadConfig, seed: int, counter: TokenCounter | None = None) -> Workload:
    count = counter or token_counter()
    pick = model_picker(config.models, seed)
    section = config.section()
    if isinstance(section, MultiTurnConfig):
        factory = _Sessions(section, seed, pick, count)
        return Workload(config, seed, lambda: SessionSource(section.sessions, factory))
    specs = list(_GENERATORS[config.type](section, seed, pick, count))
    timed = config.type == "trace"
    return Workload(config, seed, lambda: ListSource(specs, seed, shuffle=not timed, cycle=not timed))
