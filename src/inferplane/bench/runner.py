"""Running one benchmark: stages from the user's load flags, the event loop, and the files written at the end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from inferplane.bench.client import Target, connect_reason
from inferplane.bench.loadgen import LoadGenerator, Stage
from inferplane.bench.metrics import Slo
from inferplane.bench.plots import write_plots
from inferplane.bench.progress import live_progress
from inferplane.bench.report import markdown_report
from inferplane.bench.results import RunResult
from inferplane.bench.workloads import Workload
from inferplane.errors import ConfigError, UsageError


@dataclass(frozen=True)
class LoadPlan:
    """What the load flags asked for, before it becomes stages."""

    concurrency: Sequence[int] = ()
    rates: Sequence[float] = ()
    arrivals: str = "poisson"
    stages: Sequence[dict[str, Any]] = ()  # explicit: [{rate|concurrency, duration?, max_requests?}]
    duration: float | None = None
    num_requests: int | None = None
    warmup: float | None = None
    trace: bool = False

    def build(self) -> list[Stage]:
        try:
            return self._build()
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    def _build(self) -> list[Stage]:
        duration = self.duration
        if duration is None and self.num_requests is None and not self.trace:
            duration = 30.0
        stages: list[Stage] = []
        for i, s in enumerate(self.stages):
            unknown = set(s) - {"rate", "concurrency", "duration", "max_requests", "num_requests"}
            if unknown:
                raise ValueError(f"stage {i}: unknown keys {sorted(unknown)} (use rate or concurrency, duration)")
            d = s.get("duration", duration)
            n = s.get("max_requests", s.get("num_requests", self.num_requests))
            if "concurrency" in s:
                stages.append(
                    Stage(
                        f"c{s['concurrency']}", "closed", concurrency=int(s["concurrency"]), duration=d, max_requests=n
                    )
                )
            elif "rate" in s:
                rate = float(s["rate"])
                stages.append(Stage(f"{rate:g}/s", self.arrivals, rate=rate, duration=d, max_requests=n))
            else:
                raise ValueError(f"stage {i}: needs `rate` or `concurrency`")
        stages += [
            Stage(f"{r:g}/s", self.arrivals, rate=r, duration=duration, max_requests=self.num_requests)
            for r in self.rates
        ]
        stages += [
            Stage(f"c{c}", "closed", concurrency=c, duration=duration, max_requests=self.num_requests)
            for c in self.concurrency
        ]
        if self.trace and not stages:
            stages = [Stage("trace", "trace", duration=self.duration, max_requests=self.num_requests)]
        if not stages:
            stages = [Stage("c8", "closed", concurrency=8, duration=duration, max_requests=self.num_requests)]
        if self.warmup:
            first = stages[0]
            stages.insert(0, Stage("warmup", first.mode, first.rate, first.concurrency, self.warmup, None, True))
        names = [s.name for s in stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names repeat: {names}; give each stage a different rate or concurrency")
        return stages


def stages_from_inference_perf(load: dict[str, Any]) -> list[dict[str, Any]]:
    """inference-perf `load.stages` ([{rate, duration}] or [{concurrency_level|num_workers, duration}])."""
    out = []
    for s in load.get("stages") or []:
        s = dict(s)
        for key in ("concurrency_level", "num_workers"):
            if key in s:
                s["concurrency"] = s.pop(key)
        out.append(s)
    return out


def parse_stages(text: str) -> list[dict[str, Any]]:
    """--stages as YAML/JSON flow text or a file: '[{rate: 2, duration: 20}, {rate: 4, duration: 20}]'."""
    path = Path(text)
    try:
        data = yaml.safe_load(path.read_text() if path.is_file() else text)
    except yaml.YAMLError as exc:
        raise UsageError(f"--stages: not valid YAML/JSON: {exc}") from None
    if not isinstance(data, list) or not all(isinstance(s, dict) for s in data):
        raise UsageError("--stages: expected a list like [{rate: 2, duration: 20}, {concurrency: 8, duration: 20}]")
    return data


async def discover_model(base_url: str) -> str:
    """The first model of `GET /v1/models`, with an error that says what went wrong: nothing listening, an answer
    that is not an OpenAI model list (a gateway without a route for it), or an empty list."""
    url = base_url.rstrip("/") + "/v1/models"
    hint = "pass --model NAME (or --models a=0.5,b=0.5 for a mix)"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s, s.get(url) as resp:
            raw = await resp.text()
            status = resp.status
    except aiohttp.ClientConnectorError as exc:
        raise ConfigError(
            f"cannot reach {base_url}: {connect_reason(exc)} at {exc.host}:{exc.port}",
            hint="is the server running? check --url (or bring a deployment up with `inferplane bench PATH`)",
        ) from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ConfigError(f"cannot list models at {url}: {type(exc).__name__}: {exc}", hint=hint) from None
    models = _model_ids(raw)
    if status != 200:
        raise ConfigError(f"GET {url} returned {status}: {_error_message(raw)}", hint=hint)
    if models is None:
        raise ConfigError(f"GET {url} did not answer an OpenAI model list: {raw[:200]!r}", hint=hint)
    if not models:
        raise ConfigError(f"GET {url} lists no models", hint=hint)
    return models[0]


def _model_ids(raw: str) -> list[str] | None:
    """Model ids of an OpenAI list (`{"object": "list", "data": [{"id": ...}]}`), None when it is not one."""
    try:
        data = json.loads(raw)
        return [str(m["id"]) for m in data["data"]]
    except (ValueError, KeyError, TypeError):
        return None


def _error_message(raw: str) -> str:
    try:
        return str(json.loads(raw)["error"]["message"])[:300]
    except (ValueError, KeyError, TypeError):
        return raw[:300] or "(empty body)"


def _event_loop_policy() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def run_one(
    label: str,
    target: Target,
    workload: Workload,
    stages: Sequence[Stage],
    *,
    slo: Slo | None,
    configuration: dict[str, Any],
    progress: bool,
    max_in_flight: int = 4096,
    request_timeout: float = 600.0,
    drain_timeout: float = 120.0,
) -> RunResult:
    """Run the stages against the target (synchronously, on a fresh event loop) and collect the result."""
    _event_loop_policy()
    gen = LoadGenerator(
        target,
        seed=workload.seed,
        max_in_flight=max_in_flight,
        request_timeout=request_timeout,
        drain_timeout=drain_timeout,
    )
    with live_progress(gen.progress, label, progress):
        records, infos = asyncio.run(gen.run(workload.source(), stages))
    return RunResult(label, records, infos, configuration, workload.seed, slo)


def write_outputs(results: Sequence[RunResult], directory: Path, command: str, plots: bool = True) -> list[Path]:
    """results.json (one run) or results-<label>.json (several), report.md and the PNG plots."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    if len(results) == 1:
        results[0].write(directory / "results.json")
        written.append(directory / "results.json")
    else:
        for r in results:
            path = directory / f"results-{_slug(r.label)}.json"
            r.write(path)
            written.append(path)
        index = {"runs": [p.name for p in written]}
        (directory / "results.json").write_text(json.dumps(index, indent=1) + "\n")
        written.insert(0, directory / "results.json")
    pngs = write_plots(results, directory) if plots else []
    (directory / "report.md").write_text(markdown_report(results, pngs, command))
    return [*written, directory / "report.md", *pngs]


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in label)
