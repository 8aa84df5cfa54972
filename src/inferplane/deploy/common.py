"""Small helpers shared by the object renderers: metadata, labels, references."""

from __future__ import annotations

from typing import Any

from inferplane import __version__
from inferplane.deploy.plan import PART_OF

Manifest = dict[str, Any]

GATEWAY_GROUP = "gateway.networking.k8s.io"
POOL_GROUP = "inference.networking.k8s.io"
POOL_API = f"{POOL_GROUP}/v1"
XPOOL_GROUP = "inference.networking.x-k8s.io"


def base_labels(name: str, component: str) -> dict[str, str]:
    """The recommended app.kubernetes.io labels; `part-of: inferplane` lets users select everything rendered."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "inferplane",
        "app.kubernetes.io/version": __version__,
    }


def selector_labels(name: str, component: str) -> dict[str, str]:
    """The immutable subset used in workload selectors (the version label must not be in a selector)."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/component": component}


def meta(name: str, namespace: str | None, labels: dict[str, str], **extra: Any) -> dict[str, Any]:
    """Object metadata; no `namespace` key at all when rendering without one (the applier sets it)."""
    out: dict[str, Any] = {"name": name}
    if namespace is not None:
        out["namespace"] = namespace
    out["labels"] = dict(sorted(labels.items()))
    out.update({k: v for k, v in extra.items() if v})
    return out


def obj(api_version: str, kind: str, metadata: dict[str, Any], **body: Any) -> Manifest:
    out: Manifest = {"apiVersion": api_version, "kind": kind, "metadata": metadata}
    out.update(body)
    return out


def pool_ref(pool: str) -> dict[str, str]:
    return {"group": POOL_GROUP, "kind": "InferencePool", "name": pool}


def gateway_ref(gateway: str) -> dict[str, str]:
    return {"group": GATEWAY_GROUP, "kind": "Gateway", "name": gateway}


def dns_label(text: str, limit: int = 63) -> str:
    """A Kubernetes name from a model id or similar: lower-case alphanumerics and '-'."""
    out = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
    while "--" in out:
        out = out.replace("--", "-")
    return out[:limit].rstrip("-") or "x"
