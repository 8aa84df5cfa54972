"""RenderPlan → an ordered list of manifests, and their YAML form.

Order matters for `kubectl apply -f`: identities and configuration first, then workloads, their Services, the
inference resources that point at them, the Gateway and routes, then policies and monitoring that target those.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from inferplane.api.gie_versions import DEFAULT as DEFAULT_GIE_VERSION
from inferplane.api.gie_versions import has_field
from inferplane.deploy import kustomize
from inferplane.deploy.bbr import render_bbr
from inferplane.deploy.common import Manifest, base_labels, dns_label, obj
from inferplane.deploy.epp import render_epp
from inferplane.deploy.modelserver import render_model_server
from inferplane.deploy.monitoring import render_monitoring
from inferplane.deploy.plan import DEFAULT_GKE_GATEWAY_CLASS, RenderOptions, RenderPlan
from inferplane.deploy.providers import provider_for, require_bbr_provider
from inferplane.deploy.routing import render_gateway, render_pool, render_route, render_x_resource
from inferplane.deploy.transport import DEFAULT as DEFAULT_TRANSPORT
from inferplane.deploy.transport import unknown_class_warning
from inferplane.deploy.upstream import comment
from inferplane.errors import UsageError

KIND_ORDER = (
    "Namespace", "ServiceAccount", "Role", "RoleBinding", "ConfigMap",
    "Deployment", "LeaderWorkerSet", "Service",
    "InferencePool", "InferenceObjective", "InferenceModelRewrite",
    "Gateway", "HTTPRoute",
    "HealthCheckPolicy", "GCPBackendPolicy", "GCPRoutingExtension", "DestinationRule", "EnvoyFilter",
    "EnvoyExtensionPolicy",
    "GatewayExtension", "TrafficPolicy",
    "PodMonitoring", "PodMonitor", "ServiceMonitor",
)  # fmt: skip
_RANK = {kind: i for i, kind in enumerate(KIND_ORDER)}


@dataclass
class Rendered:
    manifests: list[Manifest]
    gateway_class: str
    provider: str | None
    warnings: list[str] = field(default_factory=list)
    # Secrets the manifests reference but do not contain (the user creates them).
    secrets: list[str] = field(default_factory=list)


def gateway_class_for(plan: RenderPlan, options: RenderOptions) -> str:
    if options.gateway_class:
        return options.gateway_class
    if options.target == "gke":
        return DEFAULT_GKE_GATEWAY_CLASS
    classes = sorted({g.get("spec", {}).get("gatewayClassName", "") for g in plan.gateways} - {""})
    if len(classes) == 1 and not classes[0].startswith("gke-"):
        return classes[0]
    raise UsageError(
        "--target kubernetes needs the gateway class of your cluster"
        + (f" (the deployment names {', '.join(classes)})" if classes else ""),
        hint="pass --gateway-class, e.g. istio, kgateway or eg (Envoy Gateway)",
    )


def order(manifests: list[Manifest]) -> list[Manifest]:
    return sorted(manifests, key=lambda m: _RANK.get(m["kind"], len(KIND_ORDER)))


def _secrets(plan: RenderPlan) -> list[str]:
    names = {e.secret_name for ms in plan.model_servers for e in ms.env if e.secret_name}
    names |= {s for ms in plan.model_servers for s in ms.image_pull_secrets}
    return sorted(names)


def render(plan: RenderPlan, options: RenderOptions) -> Rendered:
    gateway_class = gateway_class_for(plan, options)
    provider = require_bbr_provider(options.target, gateway_class) if plan.needs_bbr else None
    provider = provider or provider_for(options.target, gateway_class)
    transport = provider.transport if provider is not None else DEFAULT_TRANSPORT
    warnings = list(plan.warnings)
    if provider is None:
        warnings.append(unknown_class_warning(gateway_class))
    ns = plan.namespace
    out: list[Manifest] = []
    if ns is not None and ns != "default":
        out.append(obj("v1", "Namespace", {"name": ns, "labels": base_labels(ns, "namespace")}))
    for ms in plan.model_servers:
        out.append(render_model_server(ms, ns, options.target))
    for pool in plan.pools:
        out += render_epp(pool, ns, options.image, transport.epp_tls, transport.epp_app_protocol)
        out.append(render_pool(pool, ns, options.gie_version))
        if pool.app_protocol_written and not has_field(options.gie_version, "InferencePool", ("spec", "appProtocol")):
            warnings.append(
                f"InferencePool {pool.name}: spec.appProtocol ({pool.app_protocol}) is not written, the GIE "
                f"{options.gie_version} CRDs lack it (added in v1.4); the pool speaks HTTP/1.1 to its model servers"
            )
        if provider is not None and provider.pool_policies is not None:
            out += provider.pool_policies(pool, ns)
    out += [render_x_resource(o, "InferenceObjective", ns) for o in plan.objectives]
    out += [render_x_resource(r, "InferenceModelRewrite", ns) for r in plan.rewrites]
    gateways = [render_gateway(g, ns, gateway_class) for g in plan.gateways]
    out += gateways
    out += [render_route(r, ns) for r in plan.routes]
    if plan.needs_bbr:
        assert provider is not None  # require_bbr_provider raised otherwise
        out += render_bbr(ns, options.image, transport, plan.bbr_models)
        for gw in gateways:
            out += provider.bbr_extension(gw["metadata"]["name"], ns)
    out += render_monitoring(options.target, ns, plan.pools, plan.model_servers)
    return Rendered(
        manifests=order(out),
        gateway_class=gateway_class,
        provider=provider.name if provider else None,
        warnings=warnings,
        secrets=_secrets(plan),
    )


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings (EPP configs, launch scripts) so the output reads like hand-written YAML."""


def _str(dumper: yaml.SafeDumper, value: str) -> Any:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(manifest: Manifest) -> str:
    return comment(manifest) + yaml.dump(manifest, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)


def header(rendered: Rendered, source: str, options: RenderOptions) -> str:
    lws = any(m["kind"] == "LeaderWorkerSet" for m in rendered.manifests)
    flags = [f"--target {options.target}"]
    flags += [f"--{k} {v}" for k, v in (("gateway-class", options.gateway_class), ("accelerator", options.accelerator),
                                          ("namespace", options.namespace)) if v]  # fmt: skip
    if options.backend != "vllm":
        flags.append(f"--backend {options.backend}")
    if options.gie_version != DEFAULT_GIE_VERSION:
        flags.append(f"--gie-version {options.gie_version}")
    namespaced = any("namespace" in m["metadata"] for m in rendered.manifests)
    apply = (
        "kubectl apply -f <this file or directory>"
        if namespaced
        else "kubectl apply -n NAMESPACE -f <this file or directory>"
    )
    lines = [
        f"# Rendered by `inferplane render {source} {' '.join(flags)}` — do not edit; re-render instead.",
        f"# Gateway class: {rendered.gateway_class}. Apply with: {apply}",
        "# Needs in the cluster: the Gateway API and InferencePool (inference.networking.k8s.io/v1) CRDs of GIE "
        f"{options.gie_version} or later" + (", the LeaderWorkerSet controller" if lws else "") + ".",
    ]
    if rendered.secrets:
        lines.append(f"# Secrets referenced, not rendered (create them first): {', '.join(rendered.secrets)}.")
    lines += [f"# warning: {w}" for w in rendered.warnings]
    return "\n".join(lines) + "\n"


def to_stream(rendered: Rendered, source: str, options: RenderOptions) -> str:
    return header(rendered, source, options) + "".join("---\n" + dump(m) for m in rendered.manifests)


def write_dir(rendered: Rendered, directory: Path, source: str, options: RenderOptions) -> list[Path]:
    """One file per object, numbered so that `kubectl apply -f DIR` (which goes in file-name order) keeps the
    dependency order; stale files from an earlier render are removed. A kustomize base beside them (kustomize.py)
    lets overlays set `namespace` and `namePrefix` without breaking references."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("[0-9][0-9][0-9]-*.yaml"):
        old.unlink()
    written = []
    head = header(rendered, source, options)
    for i, m in enumerate(rendered.manifests):
        path = directory / f"{i:03d}-{m['kind'].lower()}-{dns_label(m['metadata']['name'])}.yaml"
        path.write_text(head + dump(m))
        written.append(path)
    kustomize.write(directory, written)
    return written
