"""How long `inferplane validate` spends loading a deployment, and which YAML parser to use for it.

Compares PyYAML's pure-Python SafeLoader with the libyaml-backed CSafeLoader (both give node marks, which the
position map needs) on the four patterns and on a large synthetic deployment (N model services, pools and routes),
side by side in one run.

    .venv/bin/python benchmarks/api_load.py [--services 200] [--repeat 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from inferplane.api import load_deployment, positions
from inferplane.api.positions import parse_yaml

REPO = Path(__file__).resolve().parent.parent


def synthetic(root: Path, n: int) -> Path:
    gw = (
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n"
        "  gatewayClassName: c\n  listeners: [{name: http, protocol: HTTP, port: 80}]\n"
    )
    (root / "manifests").mkdir(parents=True)
    (root / "manifests" / "gw.yaml").write_text(gw)
    docs = []
    for i in range(n):
        (root / f"m{i}-values.yaml").write_text(
            f"modelArtifacts: {{uri: 'hf://org/m{i}', name: org/m{i}, labels: {{llm-d.ai/model: m{i}}}}}\n"
            "routing: {servicePort: 8000, proxy: {enabled: false}}\n"
            "decode:\n  replicas: 2\n  containers:\n    - name: vllm\n      image: ghcr.io/llm-d/llm-d-cuda:v0.5.0\n"
            "      modelCommand: vllmServe\n      args: [--max-model-len=4096, --enable-prefix-caching]\n"
            "prefill: {create: false}\n"
        )
        docs.append(
            f"apiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata: {{name: p{i}}}\nspec:\n"
            f"  selector: {{matchLabels: {{llm-d.ai/model: m{i}}}}}\n  targetPorts: [{{number: 8000}}]\n---\n"
            f"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r{i}}}\nspec:\n"
            "  parentRefs: [{name: gw}]\n  rules:\n    - matches:\n        - headers: [{name: X-Gateway-Model-Name, "
            f"value: org/m{i}}}]\n      backendRefs: [{{group: inference.networking.k8s.io, kind: InferencePool, "
            f"name: p{i}}}]\n"
        )
    (root / "manifests" / "all.yaml").write_text("---\n".join(docs))
    return root


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def parse_all(root: Path, loader: type[yaml.SafeLoader]) -> None:
    for path in sorted(root.rglob("*.yaml")):
        _docs, problems = parse_yaml(path.read_text(), str(path), loader_class=loader)
        assert not problems


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        big = synthetic(Path(tmp) / "big", args.services)
        lines = sum(len(p.read_text().splitlines()) for p in big.rglob("*.yaml"))
        targets = {f"pattern{i}": next((REPO / "deployments").glob(f"pattern{i}-*")) for i in range(1, 5)}
        targets[f"synthetic ({args.services} services, {lines} lines)"] = big
        print(
            f"{'deployment':<40} {'parse: SafeLoader':>18} {'CSafeLoader':>12} {'ratio':>6}"
            f" {'load: SafeLoader':>17} {'CSafeLoader':>12} {'ratio':>6}"
        )
        for name, root in targets.items():
            py = best_of(args.repeat, lambda root=root: parse_all(root, yaml.SafeLoader))
            c = best_of(args.repeat, lambda root=root: parse_all(root, yaml.CSafeLoader))
            fulls = []
            for loader in (yaml.SafeLoader, yaml.CSafeLoader):
                positions.FAST_LOADER = loader
                fulls.append(best_of(args.repeat, lambda root=root: load_deployment(root)))
            print(
                f"{name:<40} {py * 1000:>15.1f} ms {c * 1000:>9.1f} ms {py / c:>5.1f}×"
                f" {fulls[0] * 1000:>14.1f} ms {fulls[1] * 1000:>9.1f} ms {fulls[0] / fulls[1]:>5.1f}×"
            )


if __name__ == "__main__":
    main()
