"""Benchmark workloads: shared-prefix, multi-turn chat, random lengths, trace replay, multi-model mixes.

`load_workload_spec` reads what users give on the command line (`shared-prefix:num_groups=30,...` or a YAML file,
including a whole inference-perf config whose `data:` section is used as is); `build_workload` turns the config
into request sources.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from inferplane.bench.workloads.base import Message, RequestSource, RequestSpec
from inferplane.bench.workloads.config import RandomConfig, WorkloadConfig
from inferplane.bench.workloads.generators import Workload, build_workload
from inferplane.errors import ConfigError, UsageError

__all__ = [
    "Message",
    "RequestSource",
    "RequestSpec",
    "Workload",
    "WorkloadConfig",
    "WorkloadSpec",
    "build_workload",
    "load_workload_spec",
    "workload_help",
]


@dataclass
class WorkloadSpec:
    """The workload plus, when it came from an inference-perf config, that config's `load` and `api` sections."""

    workload: WorkloadConfig
    load: dict[str, Any] = field(default_factory=dict)
    api: dict[str, Any] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    source: str = ""


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (`X | None`, `int | Distribution`, `Annotated[...]`)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _walk(loc: Sequence[int | str]) -> tuple[list[str], type[BaseModel] | None]:
    """Pydantic's error location without its union-branch tags ('constrained-int', 'function-after[…]'), and the
    model that holds the last key."""
    path: list[str] = []
    model: type[BaseModel] | None = WorkloadConfig
    for part in loc:
        if model is not None and isinstance(part, str) and part in model.model_fields:
            path.append(part)
            inner = _models_in(model.model_fields[part].annotation)
            model = inner[0] if inner else None
        elif isinstance(part, int):
            path.append(str(part))
        # anything else is a union-branch tag ('constrained-int'), dropped
    return path, model


def _section_name(path: Sequence[str]) -> str:
    # The section is named like the workload type on the command line (shared-prefix), the keys as written.
    return ".".join([path[0].replace("_", "-"), *path[1:]]) if path else "the workload"


def _unknown_key(key: str, path: list[str], model: type[BaseModel]) -> str:
    valid = workload_keys(model)
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown workload key {key!r} for {_section_name(path)}; valid keys: {', '.join(valid)}{hint}"


def workload_keys(model: type[BaseModel]) -> list[str]:
    keys = list(model.model_fields)
    if model is RandomConfig:
        keys = ["input_len", "output_len", *keys]
    return keys


def workload_help() -> str:
    """Each workload type's keys, for `inferplane bench --help`."""
    from inferplane.bench.workloads.config import (
        DISTRIBUTION_SYNTAX,
        Distribution,
        MultiTurnConfig,
        SharedPrefixConfig,
        TraceConfig,
    )

    sections = (
        ("shared-prefix", SharedPrefixConfig),
        ("multi-turn", MultiTurnConfig),
        ("random", RandomConfig),
        ("trace", TraceConfig),
    )
    lines = ["workload keys (--workload TYPE:KEY=VALUE,... or the same keys in a YAML file):"]
    lines += [f"  {name}: {', '.join(workload_keys(model))}" for name, model in sections]
    lines += [
        f"  shared-prefix and random lengths are a number of tokens or {DISTRIBUTION_SYNTAX},",
        f"  or a mapping with keys {', '.join(workload_keys(Distribution))}; e.g.",
        "  --workload 'random:input_len=normal(512,64),output_len=uniform(64,256),num_prompts=200'",
    ]
    return "\n".join(lines)


def _validation_message(exc: ValidationError, where: str) -> str:
    lines: dict[str, str] = {}
    for err in exc.errors():
        loc = err["loc"]
        if err["type"] == "extra_forbidden":
            path, model = _walk(loc[:-1])
            if model is not None:
                lines.setdefault(".".join(path) + "." + str(loc[-1]), _unknown_key(str(loc[-1]), path, model))
                continue
        if tuple(loc) == ("type",) and err["type"] == "literal_error":
            types = ["shared-prefix", "multi-turn", "random", "trace"]
            given = str(err.get("input", "")).replace("_", "-")
            close = difflib.get_close_matches(given, types, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            lines["type"] = f"unknown workload type {given!r}; valid types: {', '.join(types)}{hint}"
            continue
        path, _ = _walk(loc)
        key = ".".join(path) or "(top level)"
        msg = str(err["msg"]).removeprefix("Value error, ")
        # A union (a number or a distribution) reports one error per branch; our own ValueError explains best.
        if key not in lines or err["type"] == "value_error":
            lines[key] = f"{key}: {msg}"
    return "\n".join(f"{where}: {line}" for line in lines.values())


def _validate(data: Any, where: str) -> WorkloadConfig:
    try:
        return WorkloadConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            _validation_message(exc, where),
            hint="see `inferplane bench --help` for each workload type's keys (inference-perf `data:` names)",
        ) from None


def _split_items(text: str) -> list[str]:
    """Split on commas outside (), [] and {}: `input_len=normal(512,64),output_len=8` is two items."""
    items: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(depth - 1, 0)
        if ch == "," and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    items.append("".join(current))
    return [i.strip() for i in items if i.strip()]


def _inline(text: str) -> WorkloadConfig:
    """`shared-prefix:num_groups=30,system_prompt_len=2000` → a config; values are YAML scalars or distributions
    such as `normal(512,64)`."""
    kind, _, rest = text.partition(":")
    kind = kind.strip().replace("-", "_")
    params: dict[str, Any] = {}
    for item in _split_items(rest):
        key, eq, value = item.partition("=")
        if not eq:
            raise UsageError(f"--workload {text!r}: {item!r} is not KEY=VALUE")
        try:
            params[key.strip().replace("-", "_")] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise UsageError(f"--workload {text!r}: the value of {key.strip()!r} is not valid YAML") from None
    data: dict[str, Any] = {"type": kind}
    if params:
        data[kind] = params
    return _validate(data, f"--workload {text!r}")


def load_workload_spec(value: str) -> WorkloadSpec:
    path = Path(value)
    if path.suffix in (".yaml", ".yml", ".json") or path.is_file():
        try:
            doc = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read workload file {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"{path}: expected a mapping with `type:` (or an inference-perf config with `data:`)")
        if "data" in doc:  # a whole inference-perf config
            return WorkloadSpec(
                _validate(doc["data"], f"{path}: data"),
                load=dict(doc.get("load") or {}),
                api=dict(doc.get("api") or {}),
                server=dict(doc.get("server") or {}),
                source=str(path),
            )
        return WorkloadSpec(_validate(doc, str(path)), source=str(path))
    return WorkloadSpec(_inline(value), source=value)
