"""The ceiling of `inferplane bench`'s load generator, against a zero-latency simulator.

    .venv/bin/python benchmarks/bench_loadgen_ceiling.py [--duration 6] [--json out.json]

One simulator process (`--profile zero`) answers at once; the generator runs closed loops at several concurrencies,
streaming many tokens per request and non-streaming single-token requests. For each it reports the achieved rate
and the generator's own CPU time; requests and tokens per client CPU-second are the ceiling of one generator
process. On a 2-core machine the simulator and the generator share the cores, so the achieved rate is bounded by
whichever saturates first; the per-CPU-second figures are not.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from inferplane.bench.procs import sim_replicas
from inferplane.bench.selftest import MODEL, ceiling_table, measure_ceiling
from inferplane.net import free_port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cases = [
        (16, 256, True),
        (64, 256, True),
        (128, 128, True),
        (64, 1, False),
        (128, 1, False),
    ]
    with tempfile.TemporaryDirectory() as tmp, sim_replicas(MODEL, [free_port()], Path(tmp), profile="zero") as urls:
        rows = [
            measure_ceiling(urls[0], concurrency=c, output_len=n, streaming=s, duration=args.duration)
            for c, n, s in cases
        ]
    Console().print(ceiling_table(rows))
    if args.json:
        args.json.write_text(json.dumps([r.to_json() for r in rows], indent=1))
    return 0 if all(r.requests and not r.failures for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
