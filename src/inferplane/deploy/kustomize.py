"""Kustomize files shipped with a rendered directory: a `Kustomization` listing the objects, and the
`nameReference` configuration that teaches kustomize the Gateway API and GIE reference fields.

Kustomize knows the built-in kinds (a ConfigMap volume, a RoleBinding's ServiceAccount) but not custom resources, so
an overlay with `namePrefix` would rename an InferencePool or the picker's Service and leave `endpointPickerRef`,
HTTPRoute `backendRefs`/`parentRefs` and policy `targetRef`s pointing at the old names. The configuration below
lists those fields (and the picker's `--pool-name` argument, a name in a string list), so a `namespace` +
`namePrefix` overlay keeps every reference intact.

The two files have no `.yaml` suffix (`Kustomization` is one of the names kustomize looks for), so
`kubectl apply -f DIR` does not try to send them to the API server, while `kubectl apply -k DIR` and overlays with
`resources: [DIR]` use them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION = "Kustomization"
CONFIGURATION = "kustomizeconfig"

_GATEWAY = "gateway.networking.k8s.io"
_POOL = "inference.networking.k8s.io"
_XPOOL = "inference.networking.x-k8s.io"


def _spec(kind: str, path: str, group: str | None = None) -> dict[str, str]:
    out = {"kind": kind, "path": path}
    if group is not None:
        out["group"] = group
    return out


# referenced kind (group) → the fields that hold its name
NAME_REFERENCES: tuple[tuple[str, str | None, tuple[dict[str, str], ...]], ...] = (
    ("Service", None, (
        _spec("InferencePool", "spec/endpointPickerRef/name", _POOL),
        _spec("HTTPRoute", "spec/rules/backendRefs/name", _GATEWAY),
        _spec("DestinationRule", "spec/host", "networking.istio.io"),
        _spec("GCPRoutingExtension", "spec/extensionChains/extensions/backendRef/name", "networking.gke.io"),
        _spec("EnvoyExtensionPolicy", "spec/extProc/backendRefs/name", "gateway.envoyproxy.io"),
        _spec("GatewayExtension", "spec/extProc/grpcService/backendRef/name", "gateway.kgateway.dev"),
    )),
    ("InferencePool", _POOL, (
        _spec("HTTPRoute", "spec/rules/backendRefs/name", _GATEWAY),
        _spec("InferenceObjective", "spec/poolRef/name", _XPOOL),
        _spec("InferenceModelRewrite", "spec/poolRef/name", _XPOOL),
        _spec("HealthCheckPolicy", "spec/targetRef/name", "networking.gke.io"),
        _spec("GCPBackendPolicy", "spec/targetRef/name", "networking.gke.io"),
        # `inferplane epp --pool-name NAME`: the name is one item of the args list.
        _spec("Deployment", "spec/template/spec/containers/args", "apps"),
    )),
    ("Gateway", _GATEWAY, (
        _spec("HTTPRoute", "spec/parentRefs/name", _GATEWAY),
        _spec("GCPRoutingExtension", "spec/targetRefs/name", "networking.gke.io"),
        _spec("EnvoyExtensionPolicy", "spec/targetRefs/name", "gateway.envoyproxy.io"),
        _spec("TrafficPolicy", "spec/targetRefs/name", "gateway.kgateway.dev"),
    )),
    ("GatewayExtension", "gateway.kgateway.dev", (
        _spec("TrafficPolicy", "spec/extProc/extensionRef/name", "gateway.kgateway.dev"),
    )),
)  # fmt: skip


def configuration() -> dict[str, Any]:
    refs = []
    for kind, group, specs in NAME_REFERENCES:
        entry: dict[str, Any] = {"kind": kind}
        if group is not None:
            entry["group"] = group
        entry["fieldSpecs"] = [dict(s) for s in specs]
        refs.append(entry)
    return {"nameReference": refs}


def kustomization(resources: Sequence[str]) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": list(resources),
        "configurations": [CONFIGURATION],
    }


def write(directory: Path, files: Sequence[Path]) -> list[Path]:
    head = "# Written by `inferplane render`: the rendered objects as a kustomize base (see deploy/kustomize.py).\n"
    k = directory / KUSTOMIZATION
    c = directory / CONFIGURATION
    k.write_text(head + yaml.safe_dump(kustomization([f.name for f in files]), sort_keys=False))
    c.write_text(head + yaml.safe_dump(configuration(), sort_keys=False))
    return [k, c]
