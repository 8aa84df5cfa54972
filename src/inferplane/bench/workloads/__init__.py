"""Benchmark workloads: shared-prefix, multi-turn chat, random lengths, trace replay, multi-model mixes.

`load_workload_spec` reads what users give on the command line (`shared-prefix:num_groups=30,...` or a YAML file,
including a whole inference-perf config whose `data:` section is used as is); `build_workload` turns the config
into request sources.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from inferplane.bench.workloads.base import Message, RequestSource, RequestSpec
from inferplane.bench.workloads.config import WorkloadConfig
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
]


@dataclass
class WorkloadSpec:
    """The workload plus, when it came from an inference-perf config, that config's `load` and `api` sections."""

    workload: WorkloadConfig
    load: dict[str, Any] = field(default_factory=dict)
    api: dict[str, Any] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    source: str = ""


def _validation_message(exc: ValidationError, where: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"{where}: {loc}: {err['msg']}")
    return "\n".join(lines)


def _validate(data: Any, where: str) -> WorkloadConfig:
    try:
        return WorkloadConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            _validation_message(exc, where),
            hint="see `inferplane bench --help` for the workload keys (inference-perf `data:` names)",
        ) from None


def _inline(text: str) -> WorkloadConfig:
    """`shared-prefix:num_groups=30,system_prompt_len=2000` → a config; values are YAML scalars."""
    kind, _, rest = text.partition(":")
    kind = kind.strip().replace("-", "_")
    params: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise UsageError(f"--workload {text!r}: {item!r} is not KEY=VALUE")
        params[key.strip().replace("-", "_")] = yaml.safe_load(value)
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
