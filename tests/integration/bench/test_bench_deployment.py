"""`inferplane bench PATH` and `inferplane bench compare PATH` through the whole local stack: the runtime brings
pattern 3 up (Envoy, the endpoint picker, three simulator replicas), the benchmark measures through the gateway."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import matplotlib.image as mpimg

from inferplane.bench.peers import PEERS
from tests.conftest import DEPLOYMENTS
from tests.support.procs import INFERPLANE

PATTERN3 = str(DEPLOYMENTS / "pattern3-caching")
WORKLOAD = "shared-prefix:num_groups=4,num_prompts_per_group=4,system_prompt_len=320,question_len=16,output_len=6"


def bench(*args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*INFERPLANE, "bench", *args, "--workload", WORKLOAD, "--time-scale", "0.05", "--progress", "off"],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_bench_a_deployment_through_its_gateway(tmp_path: Path) -> None:
    out = tmp_path / "p3"
    done = bench(PATTERN3, "--rate", "12", "--duration", "2", "-o", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads((out / "results.json").read_text())
    records = data["records"]
    assert len(records) >= 15
    assert all(r["status"] == 200 for r in records)
    # three replicas behind the gateway, each named by x-inference-pod, and the summary's split counts them. (Not
    # "at least two replicas served": with answers this fast every replica's queue and KV use read 0 when a new
    # group's first request is decided, so the llm-d weights tie and the picker's random tie-break sends all four
    # groups to one replica one time in 27; the routing tests check spreading.)
    assert all(r["replica"].startswith("llm-d-pattern3-decode-") for r in records)
    served = {name: sum(r["replica"] == name for r in records) for name in {r["replica"] for r in records}}
    assert data["summary"]["replicas"] == served
    assert sum(r["cached_tokens"] for r in records) > 0
    assert data["summary"]["cache_hit_rate"] > 0
    for png in ("ttft_cdf", "latency_vs_rate", "throughput_vs_rate", "replicas_over_time"):
        assert mpimg.imread(out / f"{png}.png").std() > 0.01
    assert (out / "report.md").read_text().startswith("# inferplane bench report")


def test_compare_schedulers_and_a_peer_on_identical_replicas(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    done = bench(
        "compare", PATTERN3, "--schedulers", "round-robin,prefix", "--peers", "sglang-router:cache_aware",
        "--rate", "10", "--duration", "2", "-o", str(out), timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    runs = json.loads((out / "results.json").read_text())["runs"]
    labels = [json.loads((out / name).read_text())["label"] for name in runs]
    assert labels[:2] == ["round-robin", "prefix"]
    if PEERS["sglang-router"].installed():
        assert len(labels) == 3
        assert labels[2].startswith(f"sglang-router {PEERS['sglang-router'].version()} cache_aware")
    else:
        assert "skipping sglang-router: not installed" in done.stdout
    rr = json.loads((out / runs[0]).read_text())
    # round robin spreads the stage evenly over the three replicas
    split = rr["summary"]["replicas"]
    assert len(split) == 3
    assert max(split.values()) - min(split.values()) <= 1
    assert "ratios against round-robin" in done.stdout
    assert "## Comparison" in (out / "report.md").read_text()
    # every file written is listed by path at the end, so it can be opened or copied
    printed = done.stdout
    for name in ("results.json", "report.md", *runs):
        assert str(out / name) in printed, name


def test_predicted_ttft_configuration_keeps_each_group_on_one_replica(tmp_path: Path) -> None:
    """inferplane's cost-model configuration through the real picker: every request succeeds, each prompt group
    stays on one replica (a miss costs 4x its prefill; with 4 groups the load never justifies a spill) and the
    groups spread over the replicas (a new prefix goes to the replica whose index footprint is smallest)."""
    out = tmp_path / "pt"
    done = bench(
        "compare", PATTERN3, "--schedulers", "predicted-ttft", "--rate", "10", "--duration", "2",
        "-o", str(out), timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads((out / "results.json").read_text())  # one configuration: its results, not an index
    assert data["label"] == "predicted-ttft"
    records = data["records"]
    assert len(records) >= 15
    assert all(r["status"] == 200 for r in records)
    homes: dict[str, set[str]] = {}
    for r in records:
        homes.setdefault(r["group"], set()).add(r["replica"])
    assert all(len(replicas) == 1 for replicas in homes.values()), homes
    assert len(set().union(*homes.values())) >= 2  # 4 groups on at least 2 of the 3 replicas
    assert sum(r["cached_tokens"] for r in records) > 0
