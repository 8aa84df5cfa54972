"""Which upstream chart each rendered workload lines up with, and where inferplane differs on purpose.

The renderers follow the GIE `inferencepool` and `body-based-routing` charts (v1.5) and llm-d-modelservice
(v0.4.12) in names, labels, selectors, Service port names and strategies, so `kubectl apply` over a Helm release of
the same name updates it in place. Each rendered object of the kinds below carries these lines as a YAML comment,
so whoever reviews a `kubectl diff` against the Helm release sees which differences are intended.
"""

from __future__ import annotations

from inferplane.deploy.common import Manifest

GIE_CHART = "GIE inferencepool chart v1.5"
BBR_CHART = "GIE body-based-routing chart v1.5"
MS_CHART = "llm-d-modelservice chart v0.4.12"

_SECURITY = "a restricted securityContext (non-root, read-only root filesystem with an emptyDir /tmp, no capabilities)"

# (kind, app.kubernetes.io/component) → (what matches upstream, what differs on purpose)
NOTES: dict[tuple[str, str], tuple[str, str]] = {
    ("Deployment", "endpoint-picker"): (
        f"name <pool>-epp, selector inferencepool: <pool>-epp, Recreate strategy, ports and env as the {GIE_CHART}",
        f"the inferplane image and flags; {_SECURITY}; requests 500m CPU / 512Mi (chart: 4 CPU / 8Gi); probes on "
        "the gRPC health services liveness/readiness (chart with one replica: inference-extension)",
    ),
    ("Service", "endpoint-picker"): (
        f"name, selector and port names grpc-ext-proc / http-metrics as the {GIE_CHART}",
        "appProtocol on grpc-ext-proc states the transport the gateway speaks (TLS or h2c); targetPort is explicit",
    ),
    ("Deployment", "model-server"): (
        f"from {MS_CHART} values: name <fullname>-<role> and selector = the values' pod labels as the chart's; "
        "from a Deployment or the pattern form: its name, and its pod labels as selector",
        "/health startup, readiness and liveness probes; accelerator resources and node selectors for the target; "
        "inferplane's app.kubernetes.io labels on the pods (outside the selector)",
    ),
    ("LeaderWorkerSet", "model-server"): (
        f"from {MS_CHART} values (multinode): name <fullname>-<role> and pod labels as the chart's; from a "
        "LeaderWorkerSet: its name and labels",
        "launch scripts for the group, /health probes, accelerator resources and node selectors for the target",
    ),
    ("Deployment", "body-based-router"): (
        f"name body-based-router and selector app: body-based-router as the {BBR_CHART}",
        f"the inferplane image and flags (models file instead of watched ConfigMaps); {_SECURITY}; gRPC probes; "
        "resource requests",
    ),
}


def comment(manifest: Manifest) -> str:
    """`# ...` lines for a rendered object, or "" where no upstream chart renders its kind."""
    component = manifest["metadata"].get("labels", {}).get("app.kubernetes.io/component", "")
    note = NOTES.get((manifest["kind"], component))
    if note is None:
        return ""
    same, differs = note
    return f"# Matches upstream: {same}.\n# Differs on purpose: {differs}.\n"
