"""`inferplane simulate` on the shipped patterns: the real scheduler over step engines in virtual time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from inferplane.bench.client import Target
from inferplane.bench.loadgen import Stage
from inferplane.bench.results import RunResult
from inferplane.bench.workloads import build_workload, load_workload_spec
from inferplane.runtime.resources import load, runtime_view
from inferplane.simulate.runner import simulate_run
from inferplane.simulate.scenario import FleetOptions
from inferplane.simulate.whatif import parse_whatif
from tests.conftest import DEPLOYMENTS

PATTERN3 = DEPLOYMENTS / "pattern3-caching"
SCHEDULERS = Path(__file__).resolve().parents[3] / "src/inferplane/bench/schedulers"
WORKLOAD = "shared-prefix:num_groups=12,num_prompts_per_group=4,system_prompt_len=1500,question_len=100,output_len=50"
MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def _run(
    epp: str | None, *, rate: float = 6.0, duration: float = 20.0, seed: int = 0, whatifs: tuple = (), blocks: int = 0
):
    deployment = load(PATTERN3)
    view = runtime_view(deployment, str(SCHEDULERS / f"{epp}.yaml") if epp else None)
    spec = load_workload_spec(WORKLOAD)
    workload = build_workload(spec.workload, seed)
    model = view.servers[0].served_names[0] if view.servers[0].served_names else view.servers[0].model
    target = Target("simulated://", model)
    stages = [
        Stage("warmup", "poisson", rate=rate, duration=5.0, warmup=True),
        Stage(f"{rate:g}/s", "poisson", rate=rate, duration=duration),
    ]
    # a KV cache of `blocks` blocks per replica: a third of the prefixes each, so where requests go matters
    sim_args = ("--num-gpu-blocks-override", str(blocks), "--max-model-len", "4096") if blocks else ()
    return simulate_run(
        epp or "default",
        view,
        FleetOptions(seed=seed, sim_args=sim_args),
        target,
        workload,
        stages,
        seed=seed,
        whatifs=[parse_whatif(w) for w in whatifs],
    )


def test_the_same_seed_gives_the_same_run_and_another_seed_another() -> None:
    a, b, c = _run("prefix"), _run("prefix"), _run("prefix", seed=1)
    key = lambda run: [(r.start, r.replica, r.ttft, r.e2e) for r in run.result.records]  # noqa: E731
    assert key(a) == key(b)
    assert key(a) != key(c)
    assert a.result.summary.failures == 0
    assert a.result.summary.successes > 100
    assert len(a.scenario.replicas) == 3  # the pattern's own replica count


def test_prefix_aware_picking_beats_round_robin_on_cache_hits_and_ttft() -> None:
    prefix, rr = _run("prefix", rate=20.0, blocks=450), _run("round-robin", rate=20.0, blocks=450)
    p, r = prefix.result.per_stage["20/s"], rr.result.per_stage["20/s"]
    assert p.cache_hit_rate is not None
    assert r.cache_hit_rate is not None
    assert p.cache_hit_rate > r.cache_hit_rate + 0.05
    assert p.ttft is not None
    assert r.ttft is not None
    assert p.ttft.p50 < r.ttft.p50
    # round-robin spreads requests evenly; every replica serves
    assert len(r.replicas) == 3
    assert max(r.replicas.values()) - min(r.replicas.values()) <= 0.2 * r.successes


def test_a_failed_replica_fails_only_what_it_was_running_and_serves_again_after_recovery() -> None:
    run = _run("least-request", whatifs=("fail:llm-d-pattern3-decode:1@10s+5s",))
    records = run.result.records
    failed = [r for r in records if not r.ok]
    assert failed, "the killed replica was running requests"
    victim = "llm-d-pattern3-decode-0"
    assert {r.replica for r in failed} == {victim}
    assert all(10.0 - 0.01 <= (r.start + (r.e2e or 0)) <= 10.01 for r in failed)  # they fail at the kill
    # while it is down nothing is routed to it; after recovery it serves again
    routed = [r for r in records if r.replica == victim and r.ok]
    assert not [r for r in routed if 10.01 < r.start < 15.0 - 0.01]
    assert [r for r in routed if r.start > 15.0]


def test_the_command_writes_bench_results_and_answers_find(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    cmd = [
        sys.executable,
        "-m",
        "inferplane",
        "simulate",
        str(PATTERN3),
        "--workload",
        WORKLOAD,
        "--rate",
        "4",
        "--duration",
        "10s",
        "--no-plots",
        "-o",
        str(out),
        "--price-per-hour",
        "3",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "accelerator-hours × 3/h" in done.stdout
    result = RunResult.read(out / "results.json")
    assert result.summary.successes > 20
    assert result.configuration["simulation"]["virtual_seconds"] > 10
    assert (out / "report.md").read_text().startswith("#")

    find = [*cmd[:-4], "-o", str(tmp_path / "find"), "--find", "replicas", "--slo", "ttft=400ms", "--rate", "40"]
    done = subprocess.run(find, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads((tmp_path / "find" / "results.json").read_text())
    answer = data["configuration"]["find"]["answer"]
    probes = {p["value"]: p["met"] for p in data["configuration"]["find"]["probes"]}
    assert probes[answer] is True
    assert probes.get(answer - 1, False) is False  # the fewest: one fewer misses (or was bracketed as a miss)
    assert f"answer: {answer:g} replicas" in done.stdout


@pytest.mark.parametrize("bad", ["fail:nope:1@10s", "explode:llm-d-pattern3-decode:1@1s"])
def test_a_bad_what_if_is_a_clear_usage_error(bad: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "inferplane", "simulate", str(PATTERN3), "--what-if", bad, "--duration", "1s"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--what-if" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_simulated_run_agrees_with_the_measured_one_through_the_real_stack(tmp_path: Path) -> None:
    """Fidelity, small case: `inferplane bench` through `inferplane up` (Envoy, picker, three simulator processes)
    and `inferplane simulate` with the same deployment, workload, seed and arrivals. The virtual run leaves out
    HTTP, Envoy's and the event loops' jitter, so the tolerances are loose here (the full table is
    benchmarks/simulate_fidelity.py's); what must agree exactly is what does not depend on timing noise."""
    workload = (
        "shared-prefix:num_groups=8,num_prompts_per_group=4,system_prompt_len=1200,question_len=100,output_len=60"
    )
    common = ["--workload", workload, "--rate", "4", "--duration", "12s", "--time-scale", "2", "--seed", "5",
              "--no-plots"]  # fmt: skip
    measured = subprocess.run(
        [sys.executable, "-m", "inferplane", "bench", str(PATTERN3), *common, "--progress", "off", "-o",
         str(tmp_path / "bench")], capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert measured.returncode == 0, measured.stdout + measured.stderr
    simulated = subprocess.run(
        [sys.executable, "-m", "inferplane", "simulate", str(PATTERN3), *common, "-o", str(tmp_path / "sim")],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert simulated.returncode == 0, simulated.stdout + simulated.stderr
    real = RunResult.read(tmp_path / "bench" / "results.json").summary
    sim = RunResult.read(tmp_path / "sim" / "results.json").summary
    assert sim.requests == real.requests  # the same arrivals
    assert sim.failures == real.failures == 0
    assert abs(sim.output_tokens_per_s - real.output_tokens_per_s) <= 0.1 * real.output_tokens_per_s
    assert real.cache_hit_rate is not None
    assert sim.cache_hit_rate is not None
    assert abs(sim.cache_hit_rate - real.cache_hit_rate) <= 0.05
    assert real.tpot is not None
    assert sim.tpot is not None
    assert abs(sim.tpot.p50 - real.tpot.p50) <= 0.35 * real.tpot.p50
    assert real.ttft is not None
    assert sim.ttft is not None
    assert abs(sim.ttft.p50 - real.ttft.p50) <= max(0.5 * real.ttft.p50, 0.03)
