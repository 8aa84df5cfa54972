"""Speed of the shared SimpleTokenizer (the endpoint picker tokenizes every request for precise prefix routing).

    .venv/bin/python benchmarks/sim_tokenizer.py [--chars 8000] [--iterations 300]

Encodes English prose and markdown of the given length, cold (fresh tokenizer, empty memo) and warm, and the
block hashing that follows (`inferplane.sim.kvblocks.block_hashes`, 16-token blocks). Reports CPU µs per call.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from inferplane.sim.kvblocks import block_hashes
from inferplane.tokenizer import SimpleTokenizer

PROSE = (
    "Routing quality is only as believable as the simulator: a prefix cache hit must save prefill time the way it "
    "does on a real accelerator, a full batch must queue, and a full cache must evict the oldest blocks first. "
)


def timed(fn, iterations: int) -> float:  # type: ignore[no-untyped-def]
    # CPU time of this process: wall time on this shared machine mostly measures the other tenants
    start = time.process_time()
    for _ in range(iterations):
        fn()
    return (time.process_time() - start) / iterations * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--chars", type=int, default=8000)
    ap.add_argument("--iterations", type=int, default=300)
    args = ap.parse_args()
    design = (Path(__file__).resolve().parent.parent.parent / "shared" / "DESIGN.md").read_text()
    texts = {"prose": (PROSE * 100)[: args.chars], "markdown": (design * 10)[: args.chars]}
    for name, text in texts.items():
        cold = timed(lambda text=text: SimpleTokenizer().encode(text), max(10, args.iterations // 10))
        tok = SimpleTokenizer()
        ids = tok.encode(text)
        warm = timed(lambda text=text, tok=tok: tok.encode(text), args.iterations)
        decode = timed(lambda ids=ids, tok=tok: tok.decode(ids), args.iterations)
        hashing = timed(lambda ids=ids: block_hashes(ids, 16), args.iterations)
        print(
            json.dumps(
                {
                    "text": name,
                    "chars": len(text),
                    "tokens": len(ids),
                    "chars_per_token": round(len(text) / len(ids), 2),
                    "encode_cold_us": round(cold),
                    "encode_warm_us": round(warm),
                    "decode_us": round(decode),
                    "block_hashes_us": round(hashing),
                }
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
