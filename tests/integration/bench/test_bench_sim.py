"""`inferplane bench` against real simulator processes: the command end to end (files, plots, cached tokens), the
load generator's bounds and loops, multi-turn sessions, and the self-test's ceiling measurement."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import pytest

from inferplane.bench.client import Target
from inferplane.bench.loadgen import LoadGenerator, Stage
from inferplane.bench.selftest import measure_ceiling
from inferplane.bench.workloads import WorkloadConfig, build_workload
from inferplane.net import free_port, http_status
from tests.support.procs import INFERPLANE, Proc

MODEL = "bench-model"


def start_sim(procs: list[Proc], name: str, *args: str) -> str:
    port = free_port()
    proc = Proc(
        [*INFERPLANE, "sim", "--model", MODEL, "--port", str(port), "--seed", "1", "--host", "127.0.0.1", *args],
        env={"POD_NAME": name},
    )
    procs.append(proc)
    url = f"http://127.0.0.1:{port}"
    proc.wait_ready(lambda: http_status(url + "/health/ready") == 200, timeout=60, what=f"{name} ready")
    return url


@pytest.fixture
def sim(procs: list[Proc]) -> str:
    # The H100 8B profile sped up 20x: real prefill/decode shapes (cache hits save prefill time), short test.
    return start_sim(procs, "replica-a", "--profile", "h100-llama-8b", "--time-scale", "0.05")


def test_bench_command_writes_results_report_and_plots(sim: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    workload = "shared-prefix:num_groups=3,num_prompts_per_group=4,system_prompt_len=256,question_len=24,output_len=8"
    done = subprocess.run(
        [*INFERPLANE, "bench", "--url", sim, "--workload", workload, "--rate", "15,30", "--duration", "1.5",
         "--warmup", "1s", "--slo", "ttft=2s,tpot=200ms", "--seed", "3", "-o", str(out), "--progress", "off"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads((out / "results.json").read_text())
    assert data["seed"] == 3
    assert data["configuration"]["workload"]["shared_prefix"]["num_groups"] == 3
    assert [s["name"] for s in data["stages"]] == ["warmup", "15/s", "30/s"]
    records = data["records"]
    assert len(records) >= 20
    assert all(r["status"] == 200 and r["error"] is None for r in records)
    assert all(r["replica"] == "replica-a" for r in records)
    assert all(r["output_tokens"] == 8 for r in records)
    assert all(r["ttft"] is not None and 0 < r["ttft"] <= r["e2e"] for r in records)
    assert all(len(r["itl"]) == 7 for r in records)  # 8 tokens, 7 gaps
    # 3 system prompts of 256 tokens repeat across 12+ requests: the simulator reports cached prompt tokens
    assert sum(r["cached_tokens"] for r in records) > 0
    assert data["summary"]["cache_hit_rate"] > 0.3
    assert data["summary"]["goodput_per_s"] is not None
    report = (out / "report.md").read_text()
    assert "| bench-model | 30/s |" in report
    for name in ("ttft_cdf", "latency_vs_rate", "throughput_vs_rate", "replicas_over_time"):
        image = mpimg.imread(out / f"{name}.png")
        assert image.shape[0] > 100
        assert image.std() > 0.01
    assert "TTFT p90" in done.stdout  # the summary table


def run_gen(url: str, cfg: dict[str, object], stages: list[Stage], seed: int = 0) -> list:  # type: ignore[type-arg]
    workload = build_workload(WorkloadConfig.model_validate(cfg), seed=seed)
    gen = LoadGenerator(Target(url, MODEL), seed=seed)
    records, _ = asyncio.run(gen.run(workload.source(), stages))
    return records


RANDOM = {
    "type": "random",
    "random": {
        "num_prompts": 50,
        "input_distribution": {"type": "fixed", "value": 40},
        "output_distribution": {"type": "uniform", "min": 2, "max": 6},
    },
}


def test_closed_loop_respects_count_and_concurrency(sim: str) -> None:
    records = run_gen(sim, RANDOM, [Stage("c4", "closed", concurrency=4, max_requests=20)])
    assert len(records) == 20
    assert all(r.ok for r in records)
    # never more than 4 in flight: sort by start and check overlaps
    events = sorted([(r.start, 1) for r in records] + [(r.end, -1) for r in records])
    depth = peak = 0
    for _, d in events:
        depth += d
        peak = max(peak, depth)
    assert peak <= 4
    assert all(2 <= r.output_tokens <= 6 for r in records)


def test_open_loop_constant_rate_and_duration_bound(sim: str) -> None:
    records = run_gen(sim, RANDOM, [Stage("10/s", "constant", rate=10, duration=1.0)])
    # constant arrivals every 100 ms for 1 s: 10 requests, sent on schedule
    assert len(records) == 10
    gaps = [b.scheduled - a.scheduled for a, b in itertools.pairwise(records)]
    assert all(abs(g - 0.1) < 1e-6 for g in gaps)
    assert all(abs(r.start - r.scheduled) < 0.05 for r in records)


def test_multi_turn_sessions_hit_the_cache_on_later_turns(sim: str) -> None:
    cfg = {"type": "multi_turn", "multi_turn": {"sessions": 2, "turns": 3, "system_prompt_len": 128,
                                                 "turn_len": 32, "output_len": 8}}  # fmt: skip
    target = Target(sim, MODEL, api="chat")
    workload = build_workload(WorkloadConfig.model_validate(cfg), seed=1)
    gen = LoadGenerator(target, seed=1)
    records, _ = asyncio.run(gen.run(workload.source(), [Stage("c2", "closed", concurrency=2, max_requests=6)]))
    assert len(records) == 6
    assert all(r.ok for r in records)
    by_session: dict[str, list] = {}  # type: ignore[type-arg]
    for r in sorted(records, key=lambda r: r.start):
        by_session.setdefault(r.group, []).append(r)
    assert sorted(len(v) for v in by_session.values()) == [3, 3]
    for turns in by_session.values():
        assert turns[0].input_tokens < turns[1].input_tokens < turns[2].input_tokens
        assert turns[2].cached_tokens
        assert turns[2].cached_tokens >= 128


def test_failed_requests_are_recorded_not_raised(sim: str) -> None:
    target = Target(sim, "no-such-model")
    workload = build_workload(WorkloadConfig.model_validate(RANDOM), seed=0)
    records, _ = asyncio.run(
        LoadGenerator(target).run(workload.source(), [Stage("c2", "closed", concurrency=2, max_requests=4)])
    )
    assert len(records) == 4
    assert all(r.status == 404 and r.error and not r.ok for r in records)


def test_self_test_measures_the_generator_ceiling(procs: list[Proc]) -> None:
    url = start_sim(procs, "zero", "--profile", "zero")
    c = measure_ceiling(url, concurrency=16, output_len=32, duration=1.5, model=MODEL)
    assert c.requests > 10
    assert c.failures == 0
    assert c.tokens_per_s > 0
    assert 0 < c.client_cpu_share <= 1.5
    assert c.tokens_per_cpu_s >= c.tokens_per_s  # the client used at most one core's worth per second


def test_bad_flags_are_usage_errors_without_traceback(tmp_path: Path) -> None:
    done = subprocess.run([*INFERPLANE, "bench", "--url", "http://127.0.0.1:9", "--workload", "shared-prefix:nope=1"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert "unknown workload key 'nope' for shared-prefix; valid keys: num_groups" in done.stderr
    assert "Traceback" not in done.stderr
    done = subprocess.run([*INFERPLANE, "bench"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "nothing to benchmark" in done.stderr


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
