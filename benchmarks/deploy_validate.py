"""Schema validation cost of `inferplane render`: kubernetes_validate.validate() per object vs inferplane's cached
validators (inferplane.deploy.validate), on the pattern 2 GKE render (the largest golden file), side by side.

    .venv/bin/python benchmarks/deploy_validate.py [--rounds 5]

Only built-in kinds are compared (kubernetes_validate has no CRDs); the CRD and hand-written checks are reported on
their own. Bounded: `--rounds` renders of one manifest set.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import kubernetes_validate
import yaml

from inferplane.deploy.validate import KUBERNETES_VERSION, ManifestValidator

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "data" / "golden" / "pattern2-multimodel" / "gke-gpu.yaml"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    docs = [d for d in yaml.safe_load_all(GOLDEN.read_text()) if d]
    validator = ManifestValidator(REPO.parent / "shared" / "schemas")
    builtin = [d for d in docs if "kubernetes" in " ".join(validator.covered_by(d))]
    custom = [d for d in docs if d not in builtin]

    def upstream() -> None:
        for d in builtin:
            kubernetes_validate.validate(d, KUBERNETES_VERSION, strict=True)

    def ours() -> None:
        for d in builtin:
            assert not validator.validate(d)

    def ours_custom() -> None:
        for d in custom:
            assert not validator.validate(d)

    t0 = time.perf_counter()
    ours()  # first call builds and caches the validators
    first = time.perf_counter() - t0
    rows = []
    for name, fn in (("kubernetes_validate.validate", upstream), ("inferplane cached validators", ours),
                     ("inferplane CRD + hand-written kinds", ours_custom)):  # fmt: skip
        times = []
        for _ in range(args.rounds):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        rows.append((name, statistics.median(times)))
    n_builtin, n_custom = len(builtin), len(custom)
    print(f"{GOLDEN.relative_to(REPO)}: {n_builtin} built-in objects, {n_custom} custom resources")
    print(f"inferplane first (cold) pass over built-in kinds: {first * 1000:.0f} ms")
    for name, t in rows:
        count = n_custom if "CRD" in name else n_builtin
        print(f"{name:40s} {t * 1000:8.1f} ms per render  ({t / count * 1000:.2f} ms per object)")
    print(f"speed-up on built-in kinds: {rows[0][1] / rows[1][1]:.0f}x")


if __name__ == "__main__":
    main()
