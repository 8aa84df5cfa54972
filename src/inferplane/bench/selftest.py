"""The load generator's own ceiling, measured against a zero-latency simulator.

A benchmark is only trustworthy if the client is not the bottleneck. This drives a simulator that answers at once
(`--profile zero`) in a closed loop and divides the work done by the client's own CPU time: tokens (and requests)
per client CPU-second is what one generator process can absorb, whatever the server could deliver.
"""

from __future__ import annotations

import json
import resource
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from inferplane import __version__
from inferplane.bench.client import Target
from inferplane.bench.loadgen import Stage
from inferplane.bench.procs import sim_replicas
from inferplane.bench.report import files_line
from inferplane.bench.runner import run_one
from inferplane.bench.workloads import WorkloadConfig, build_workload
from inferplane.net import free_port

MODEL = "ceiling-model"


@dataclass(frozen=True)
class Ceiling:
    concurrency: int
    output_len: int
    streaming: bool
    requests: int
    failures: int
    wall_s: float
    requests_per_s: float
    tokens_per_s: float
    client_cpu_s: float
    client_cpu_share: float  # of one core, over the run
    requests_per_cpu_s: float  # the ceiling: what one generator process absorbs per CPU-second
    tokens_per_cpu_s: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def measure_ceiling(
    url: str,
    *,
    concurrency: int = 64,
    output_len: int = 128,
    duration: float = 6.0,
    streaming: bool = True,
    model: str = MODEL,
) -> Ceiling:
    cfg = WorkloadConfig.model_validate(
        {
            "type": "random",
            "random": {
                "num_prompts": 256,
                "input_distribution": {"type": "fixed", "value": 32},
                "output_distribution": {"type": "fixed", "value": output_len},
            },
        }
    )
    workload = build_workload(cfg, seed=0)
    target = Target(url, model, streaming=streaming)
    stage = Stage(f"c{concurrency}", "closed", concurrency=concurrency, duration=duration)
    cpu0, wall0 = _cpu(), time.perf_counter()
    result = run_one("ceiling", target, workload, [stage], slo=None, configuration={}, progress=False)
    cpu, wall = _cpu() - cpu0, time.perf_counter() - wall0
    s = result.summary
    return Ceiling(
        concurrency=concurrency,
        output_len=output_len,
        streaming=streaming,
        requests=s.successes,
        failures=s.failures,
        wall_s=wall,
        requests_per_s=s.requests_per_s,
        tokens_per_s=s.output_tokens_per_s,
        client_cpu_s=cpu,
        client_cpu_share=cpu / wall,
        requests_per_cpu_s=s.successes / cpu if cpu else 0.0,
        tokens_per_cpu_s=s.output_tokens / cpu if cpu else 0.0,
    )


def ceiling_table(rows: list[Ceiling]) -> Table:
    table = Table(title="load generator ceiling (zero-latency simulator)")
    for col in (
        "concurrency",
        "output tokens",
        "stream",
        "req/s",
        "tok/s",
        "client CPU",
        "ceiling req/CPU-s",
        "ceiling tok/CPU-s",
        "failures",
    ):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            str(r.concurrency), str(r.output_len), "yes" if r.streaming else "no", f"{r.requests_per_s:.0f}",
            f"{r.tokens_per_s:.0f}", f"{100 * r.client_cpu_share:.0f} %", f"{r.requests_per_cpu_s:.0f}",
            f"{r.tokens_per_cpu_s:.0f}", str(r.failures),
        )  # fmt: skip
    return table


def write_self_test(rows: list[Ceiling], directory: Path, command: str) -> list[Path]:
    """selftest.json (one object per measurement) and report.md (the same as a Markdown table)."""
    directory.mkdir(parents=True, exist_ok=True)
    data = {"schema": "inferplane.bench.selftest/v1", "inferplane_version": __version__, "command": command}
    (directory / "selftest.json").write_text(json.dumps({**data, "ceilings": [r.to_json() for r in rows]}, indent=1))
    header = "| concurrency | output tokens | stream | req/s | tok/s | client CPU | req/CPU-s | tok/CPU-s | failures |"
    lines = ["# inferplane bench self-test", "", f"- command: `{command}`", "", header, "|" + "---|" * 9]
    lines += [
        f"| {r.concurrency} | {r.output_len} | {'yes' if r.streaming else 'no'} | {r.requests_per_s:.0f} "
        f"| {r.tokens_per_s:.0f} | {100 * r.client_cpu_share:.0f} % | {r.requests_per_cpu_s:.0f} "
        f"| {r.tokens_per_cpu_s:.0f} | {r.failures} |"
        for r in rows
    ]
    (directory / "report.md").write_text("\n".join(lines) + "\n")
    return [directory / "selftest.json", directory / "report.md"]


def run_self_test(
    console: Console, duration: float = 5.0, output: Path | None = None, command: str = "inferplane bench --self-test"
) -> int:
    port = free_port()
    with (
        tempfile.TemporaryDirectory(prefix="inferplane-selftest-") as tmp,
        sim_replicas(MODEL, [port], Path(tmp), profile="zero") as urls,
    ):
        rows = [
            measure_ceiling(urls[0], concurrency=64, output_len=128, duration=duration),
            measure_ceiling(urls[0], concurrency=64, output_len=1, duration=duration, streaming=False),
        ]
    console.print(ceiling_table(rows))
    console.print(
        "The ceiling columns are what one generator process absorbs per CPU-second; a benchmark whose offered load "
        "stays well below them measures the server, not the client."
    )
    if output is not None:
        console.print(files_line(write_self_test(rows, output, command), output), markup=False)
    return 0 if all(r.requests and not r.failures for r in rows) else 1
