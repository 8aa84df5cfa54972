"""A run's results: records, stages, aggregates and the configuration that produced them; `results.json` on disk."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inferplane import __version__
from inferplane.bench.metrics import Slo, Summary, summarize_run, summarize_stages
from inferplane.bench.records import RequestRecord, StageInfo
from inferplane.errors import ConfigError

SCHEMA = "inferplane.bench/v1"


@dataclass
class RunResult:
    label: str
    records: list[RequestRecord]
    stages: list[StageInfo]
    configuration: dict[str, Any]
    seed: int
    slo: Slo | None = None
    version: str = __version__
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    summary: Summary = field(init=False)
    per_stage: dict[str, Summary] = field(init=False)
    per_model: dict[str, Summary] = field(init=False)  # measured stages per model; empty unless several models

    def __post_init__(self) -> None:
        self.summary = summarize_run(self.records, self.stages, self.slo)
        self.per_stage = summarize_stages(self.records, self.stages, self.slo)
        models = sorted({r.model for r in self.records})
        self.per_model = (
            {m: summarize_run([r for r in self.records if r.model == m], self.stages, self.slo) for m in models}
            if len(models) > 1
            else {}
        )

    @property
    def measured_stages(self) -> list[StageInfo]:
        return [s for s in self.stages if not s.warmup]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "label": self.label,
            "inferplane_version": self.version,
            "created": self.created,
            "seed": self.seed,
            "slo": str(self.slo) if self.slo else None,
            "configuration": self.configuration,
            "summary": self.summary.to_json(),
            "per_model": {m: s.to_json() for m, s in self.per_model.items()},
            "stages": [{**s.to_json(), "summary": self.per_stage[s.name].to_json()} for s in self.stages],
            "records": [r.to_json() for r in self.records],
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def read(cls, path: Path) -> RunResult:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read results {path}: {exc}") from None
        if data.get("schema") != SCHEMA:
            raise ConfigError(f"{path}: not an inferplane bench results file (schema {data.get('schema')!r})")
        stages = [StageInfo.from_json({k: v for k, v in s.items() if k != "summary"}) for s in data["stages"]]
        result = cls(
            label=data["label"],
            records=[RequestRecord.from_json(r) for r in data["records"]],
            stages=stages,
            configuration=data["configuration"],
            seed=data["seed"],
            slo=Slo.parse(data.get("slo")),
            version=data["inferplane_version"],
            created=data["created"],
        )
        return result
