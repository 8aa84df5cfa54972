"""Results files, the Markdown report, comparison ratios, plots and load plans, from hand-made records."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image as mpimg
import pytest

from inferplane.bench.metrics import Slo, Summary
from inferplane.bench.records import RequestRecord, StageInfo
from inferplane.bench.report import comparison_rows, highest_common_stage
from inferplane.bench.results import RunResult
from inferplane.bench.runner import LoadPlan, stages_from_inference_perf, write_outputs
from inferplane.errors import UsageError


def make_run(label: str, ttft: float, replicas: tuple[str, ...] = ("r0", "r1")) -> RunResult:
    stages = [
        StageInfo("warmup", "poisson", rate=1.0, started=0.0, ended=2.0, warmup=True),
        StageInfo("1/s", "poisson", rate=1.0, started=2.0, ended=12.0),
        StageInfo("2/s", "poisson", rate=2.0, started=12.0, ended=22.0),
    ]
    records = []
    for i in range(50):
        stage = "warmup" if i < 2 else ("1/s" if i < 12 else "2/s")
        start = 0.1 * i if stage == "warmup" else (2.0 + i * 0.2)
        records.append(
            RequestRecord(
                start=start, stage=stage, status=200, ttft=ttft * (1 + i % 5), e2e=ttft * 6 + 1.0, itl=[0.01] * 9,
                input_tokens=100, output_tokens=10, cached_tokens=60, replica=replicas[i % len(replicas)], model="m",
            )
        )  # fmt: skip
    records.append(RequestRecord(start=15.0, stage="2/s", status=503, error="no healthy upstream", e2e=0.01))
    return RunResult(label, records, stages, {"workload": {"type": "random"}, "target": {}}, seed=7,
                     slo=Slo(ttft=0.5))  # fmt: skip


def test_results_json_round_trip_and_content(tmp_path: Path) -> None:
    run = make_run("a", 0.1)
    files = write_outputs([run], tmp_path, "inferplane bench --url x")
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["seed"] == 7
    assert data["inferplane_version"]
    assert len(data["records"]) == 51
    assert [s["name"] for s in data["stages"]] == ["warmup", "1/s", "2/s"]
    assert data["summary"]["requests"] == 49  # warm-up excluded
    assert data["summary"]["cache_hit_rate"] == pytest.approx(0.6)
    back = RunResult.read(tmp_path / "results.json")
    assert back.summary.requests == run.summary.requests
    assert back.summary.ttft is not None
    assert run.summary.ttft is not None
    assert back.summary.ttft.p90 == pytest.approx(run.summary.ttft.p90, abs=1e-6)
    assert back.summary.replicas == run.summary.replicas
    assert Summary.from_json(run.summary.to_json()) == run.summary
    assert back.slo == run.slo
    report = (tmp_path / "report.md").read_text()
    assert "| a | 2/s |" in report
    assert "503 - no healthy upstream" in report
    pngs = [f for f in files if f.suffix == ".png"]
    assert {p.stem for p in pngs} == {"ttft_cdf", "latency_vs_rate", "throughput_vs_rate", "replicas_over_time"}
    for png in pngs:
        image = mpimg.imread(png)
        assert image.shape[0] > 100
        assert image.shape[1] > 100
        assert image.std() > 0.01  # something was drawn
        assert f"![{png.stem}]({png.name})" in report


def test_comparison_ratios_against_the_first(tmp_path: Path) -> None:
    base, better = make_run("round-robin", 1.0), make_run("prefix", 0.1, replicas=("r0",))
    assert highest_common_stage([base, better]) == "2/s"
    rows = comparison_rows([base, better], "2/s")
    assert rows[0][0] == "round-robin"
    assert "(1.00×)" in rows[0][1]
    assert "(0.10×)" in rows[1][1]  # TTFT p90 ten times lower
    # one replica (r0) took all 38 successful requests of the stage; r1's zero keeps the columns aligned
    assert rows[1][-1] == "38 / 0"
    assert rows[0][-1] == "19 / 19"
    write_outputs([base, better], tmp_path, "inferplane bench compare")
    index = json.loads((tmp_path / "results.json").read_text())
    assert index["runs"] == ["results-round-robin.json", "results-prefix.json"]
    assert "## Comparison" in (tmp_path / "report.md").read_text()


def test_load_plans() -> None:
    stages = LoadPlan(rates=[1, 2], duration=10, warmup=5).build()
    assert [(s.name, s.mode, s.rate, s.duration, s.warmup) for s in stages] == [
        ("warmup", "poisson", 1, 5, True),
        ("1/s", "poisson", 1, 10, False),
        ("2/s", "poisson", 2, 10, False),
    ]
    closed = LoadPlan(concurrency=[4], num_requests=100).build()
    assert [(s.mode, s.concurrency, s.duration, s.max_requests) for s in closed] == [("closed", 4, None, 100)]
    default = LoadPlan().build()
    assert [(s.mode, s.concurrency, s.duration) for s in default] == [("closed", 8, 30.0)]
    ip = stages_from_inference_perf({"type": "poisson", "stages": [{"rate": 3, "duration": 20}]})
    assert LoadPlan(stages=ip, arrivals="poisson").build()[0].rate == 3
    trace = LoadPlan(trace=True).build()
    assert [(s.mode, s.duration) for s in trace] == [("trace", None)]


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (LoadPlan(stages=[{"duration": 3}]), "needs `rate` or `concurrency`"),
        (LoadPlan(stages=[{"rate": 1, "qps": 3}]), "unknown keys"),
        (LoadPlan(rates=[1, 1]), "stage names repeat"),
        (LoadPlan(rates=[0.0]), "positive rate"),
    ],
)
def test_bad_load_plans(plan: LoadPlan, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        plan.build()
