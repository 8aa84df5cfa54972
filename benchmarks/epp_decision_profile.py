"""Where a default-configuration scheduling decision spends its time: per phase (thread CPU time, median) and the
top functions under cProfile. Companion of epp_decision.py.

    .venv/bin/python benchmarks/epp_decision_profile.py [--decisions 3000]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import epp_decision as bench
from inferplane.api.epp_config import default_epp_config
from inferplane.epp.framework.types import LLMRequest
from inferplane.epp.intree import register_in_tree_plugins
from inferplane.epp.openai_parser import parse_request_body
from inferplane.epp.scheduling import build_scheduler

register_in_tree_plugins()  # this script is a composition root: the kernel's registry imports no plugin


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--decisions", type=int, default=3000)
    args = ap.parse_args()
    rng = random.Random(1)
    eps = bench.endpoints(16, rng)
    system = bench.system_prompts(8000, rng)
    warm = bench.workload(3000, 8000, rng, system)
    bodies = bench.workload(args.decisions, 8000, rng, system)
    s = build_scheduler(default_epp_config(), rng=random.Random(1))
    for i, d in enumerate(warm):
        bench.decide(s, eps, d, f"w{i}")
    names = ("parse", "prepare", "schedule", "pre_request", "decision", "after_reply")
    phases: dict[str, list[float]] = {k: [] for k in names}
    tt = time.thread_time
    for i, data in enumerate(bodies):
        t0 = tt()
        body = parse_request_body(data, "/v1/completions")
        req = LLMRequest(request_id=f"r{i}", target_model=str(body.raw.get("model", "")), body=body)
        t1 = tt()
        s.prepare_request_data(req, eps)
        t2 = tt()
        res = s.schedule(req, eps)
        t3 = tt()
        s.pre_request(req, res)
        t4 = tt()
        s.flush_deferred()
        t5 = tt()
        for k, v in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0, t5 - t4), strict=True):
            phases[k].append(v)
        chosen = res.primary.target_endpoints[0]
        s.response_complete(req, chosen)
        chosen.metrics.waiting_queue_size += 1
        if i % 32 == 0:
            for e in eps:
                e.metrics.waiting_queue_size //= 2
    print("median CPU µs per phase:", {k: round(statistics.median(v) * 1e6, 1) for k, v in phases.items()})
    prof = cProfile.Profile()
    prof.enable()
    for i, data in enumerate(bodies):
        bench.decide(s, eps, data, f"c{i}")
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
