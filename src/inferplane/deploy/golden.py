"""Golden renders of the four patterns: `python -m inferplane.deploy.golden tests/data/golden` (what `make golden`
runs) rewrites them after an intended rendering change; tests/unit/deploy/test_golden.py compares every render with
its file, so an unintended change shows up as a diff in review.

One file per pattern × target × accelerator (and, for the body-based router's gateway-specific resources, per
gateway implementation): `<golden>/<pattern>/<target>-<accelerator|sim>[-<gateway class>].yaml`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from inferplane.deploy.command import DEFAULT_IMAGE, render_path
from inferplane.deploy.plan import Accelerator, Backend, RenderOptions, Target
from inferplane.deploy.render import to_stream


@dataclass(frozen=True)
class GoldenCase:
    pattern: str
    target: Target
    accelerator: Accelerator
    gateway_class: str | None = None
    backend: Backend = "vllm"
    namespace: str | None = None

    @property
    def filename(self) -> str:
        suffix = f"-{self.gateway_class}" if self.gateway_class and self.target != "gke" else ""
        hardware = self.accelerator if self.backend == "vllm" else self.backend
        return f"{self.pattern}/{self.target}-{hardware}{suffix}.yaml"

    def options(self) -> RenderOptions:
        accelerator = self.accelerator if self.backend == "vllm" else None
        return RenderOptions(
            self.target, DEFAULT_IMAGE, self.gateway_class, accelerator, namespace=self.namespace, backend=self.backend
        )


# Pattern 1 keeps a TPU model service and a GPU variant; the others are written for GPUs only (rendering them for
# TPUs is a usage error, tested separately). Generic clusters are rendered with Istio; pattern 2 also with the
# other gateways whose body-based-router resources differ. Renders name no namespace (kubectl -n, kustomize or
# Argo CD set it), except pattern 2 on Istio: the router's EnvoyFilter names its cluster with the namespace.
CASES: tuple[GoldenCase, ...] = (
    GoldenCase("pattern1-baseline", "gke", "tpu"),
    GoldenCase("pattern1-baseline", "gke", "gpu"),
    GoldenCase("pattern1-baseline", "kubernetes", "gpu", "istio"),
    GoldenCase("pattern2-multimodel", "gke", "gpu"),
    GoldenCase("pattern2-multimodel", "kubernetes", "gpu", "istio", namespace="team-a"),
    GoldenCase("pattern2-multimodel", "kubernetes", "gpu", "kgateway"),
    GoldenCase("pattern2-multimodel", "kubernetes", "gpu", "eg"),
    GoldenCase("pattern3-caching", "gke", "gpu"),
    GoldenCase("pattern3-caching", "kubernetes", "gpu", "istio"),
    GoldenCase("pattern4-moe", "gke", "gpu"),
    GoldenCase("pattern4-moe", "kubernetes", "gpu", "istio"),
    # GPU-free clusters (kind, CI): the simulator from the inferplane image stands in for vLLM.
    GoldenCase("pattern3-caching", "kubernetes", "cpu", "istio", backend="sim"),
    GoldenCase("pattern4-moe", "kubernetes", "cpu", "istio", backend="sim"),
)


def render_case(case: GoldenCase, deployments: Path) -> str:
    source = f"deployments/{case.pattern}"
    options = case.options()
    return to_stream(render_path(deployments / case.pattern, options), source, options)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inferplane.deploy.golden", description=__doc__)
    parser.add_argument("out", type=Path, help="the golden folder, e.g. tests/data/golden")
    parser.add_argument("--deployments", type=Path, default=Path("deployments"), help="the patterns' folder")
    args = parser.parse_args(argv)
    wanted = {args.out / c.filename for c in CASES}
    for stale in set(args.out.glob("*/*.yaml")) - wanted:
        stale.unlink()
        print(f"removed {stale}")
    for case in CASES:
        path = args.out / case.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        text = render_case(case, args.deployments)
        changed = not path.exists() or path.read_text() != text
        path.write_text(text)
        print(f"{'updated' if changed else 'unchanged'} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
