"""Write small deployment trees for tests."""

from __future__ import annotations

import textwrap
from pathlib import Path


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


GATEWAY = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: c
  listeners: [{name: http, protocol: HTTP, port: 80}]
"""


def route(pool: str = "p", header: str | None = None) -> str:
    match = f"\n      matches: [{{headers: [{{name: X-Gateway-Model-Name, value: '{header}'}}]}}]" if header else ""
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r-{pool}}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
    - backendRefs: [{{group: inference.networking.k8s.io, kind: InferencePool, name: {pool}}}]{match}
"""


def pool(name: str = "p", labels: str = "app: m", port: int = 8000, annotations: str = "") -> str:
    ann = f"\n  annotations: {{{annotations}}}" if annotations else ""
    return f"""
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata:
  name: {name}{ann}
spec:
  selector: {{matchLabels: {{{labels}}}}}
  targetPorts: [{{number: {port}}}]
"""


def flat(name: str = "m", model: str = "org/model", args: str = "[--port=8000]") -> str:
    return f"""
modelservice:
  name: {name}
  image: {{repository: vllm/vllm-openai, tag: v0.11.0}}
  model: {model}
  args: {args}
"""
