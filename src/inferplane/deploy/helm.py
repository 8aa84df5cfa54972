"""`inferplane render --format helm -o DIR`: the rendered objects as a Helm chart, for teams whose GitOps runs Helm.

The chart is the same render with the values a team changes per environment lifted into `values.yaml`: the
inferplane image (picker and router), the namespace (default: the release's), and per model server its image,
replicas and accelerators (resource counts and the node-selector value naming the accelerator type). Everything else
stays as rendered, so `helm template` with the default values gives the objects `inferplane render` writes.

How: the objects are rendered with unique placeholder values where a template expression goes, dumped as YAML, and
each placeholder is replaced by its expression. Text that already looks like a template (`{{`) is escaped first,
so an EPP config or launch script cannot be read as one.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from inferplane import __version__
from inferplane.deploy.common import Manifest
from inferplane.deploy.modelserver import COMPONENT as MS_COMPONENT
from inferplane.deploy.modelserver import GKE_GPU_LABEL, GKE_TPU_LABEL, GPU_RESOURCE, TPU_RESOURCE
from inferplane.deploy.render import Rendered, dump

# A valid namespace name, so the render validates like any other; replaced by the namespace expression.
NAMESPACE_PLACEHOLDER = "inferplane-helm-namespace-placeholder"
NAMESPACE_EXPR = '{{ include "inferplane.namespace" . }}'
_ACCELERATOR_RESOURCES = (GPU_RESOURCE, TPU_RESOURCE)
_ACCELERATOR_LABELS = (GKE_GPU_LABEL, GKE_TPU_LABEL)

_HELPERS = """{{/* The namespace of every object: values.namespace, else the release's. */}}
{{- define "inferplane.namespace" -}}
{{- default .Release.Namespace .Values.namespace -}}
{{- end -}}
"""


@dataclass
class _Chart:
    values: dict[str, Any] = field(default_factory=dict)
    # placeholder text → template expression
    exprs: dict[str, str] = field(default_factory=dict)

    def hole(self, expr: str) -> str:
        token = f"inferplane-helm-value-{len(self.exprs)}-end"  # the suffix keeps -1- from matching -10-
        self.exprs[token] = expr
        return token


def _containers(m: Manifest) -> list[dict[str, Any]]:
    spec = m.get("spec", {})
    templates = [spec.get("template")] if m["kind"] == "Deployment" else []
    lws = spec.get("leaderWorkerTemplate", {})
    templates += [lws.get("leaderTemplate"), lws.get("workerTemplate")]
    return [c for t in templates if t for c in t["spec"]["containers"]]


def _pod_specs(m: Manifest) -> list[dict[str, Any]]:
    spec = m.get("spec", {})
    lws = spec.get("leaderWorkerTemplate", {})
    templates = [spec.get("template"), lws.get("leaderTemplate"), lws.get("workerTemplate")]
    return [t["spec"] for t in templates if t]


def _lift(manifests: list[Manifest], image: str, namespace: str | None, chart: _Chart) -> list[Manifest]:
    image_repo, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    chart.values["image"] = {"repository": image_repo, "tag": tag or "latest"}
    chart.values["namespace"] = namespace or ""
    image_expr = chart.hole("{{ .Values.image.repository }}:{{ .Values.image.tag }}")
    chart.values["modelServers"] = {}
    out = copy.deepcopy(manifests)
    for m in out:
        name = m["metadata"]["name"]
        component = m["metadata"].get("labels", {}).get("app.kubernetes.io/component")
        is_server = m["kind"] in ("Deployment", "LeaderWorkerSet") and component == MS_COMPONENT
        if not is_server:
            for c in _containers(m):
                if c["image"] == image:
                    c["image"] = image_expr
            continue
        v: dict[str, Any] = {"replicas": m["spec"]["replicas"]}
        ref = f'(index .Values.modelServers "{name}")'
        m["spec"]["replicas"] = chart.hole(f"{{{{ {ref}.replicas }}}}")
        for c in _containers(m):
            v["image"] = c["image"]
            c["image"] = chart.hole(f"{{{{ {ref}.image }}}}")
            for section in ("limits", "requests"):
                for res, count in c.get("resources", {}).get(section, {}).items():
                    if res in _ACCELERATOR_RESOURCES:
                        v.setdefault("accelerators", {})[res] = int(count)
                        c["resources"][section][res] = chart.hole(f'{{{{ index {ref}.accelerators "{res}" | quote }}}}')
        for pod in _pod_specs(m):
            for label, value in pod.get("nodeSelector", {}).items():
                if label in _ACCELERATOR_LABELS:
                    v["acceleratorType"] = value
                    pod["nodeSelector"][label] = chart.hole(f"{{{{ {ref}.acceleratorType | quote }}}}")
        chart.values["modelServers"][name] = v
    return out


def _template(text: str, chart: _Chart) -> str:
    text = text.replace("{{", '{{ "{{" }}')
    for token, expr in chart.exprs.items():
        text = text.replace(token, expr)
    return text.replace(NAMESPACE_PLACEHOLDER, NAMESPACE_EXPR)


def write_chart(rendered: Rendered, image: str, namespace: str | None, directory: Path, name: str) -> list[Path]:
    """Write Chart.yaml, values.yaml and one template per object. `rendered` must come from a render in namespace
    NAMESPACE_PLACEHOLDER (the Namespace object itself is left to `helm install --create-namespace`); `namespace`
    becomes the default of `values.namespace` (none: the release's)."""
    chart = _Chart()
    manifests = [m for m in rendered.manifests if m["kind"] != "Namespace"]
    lifted = _lift(manifests, image, namespace, chart)
    templates = directory / "templates"
    templates.mkdir(parents=True, exist_ok=True)
    for old in templates.glob("[0-9][0-9][0-9]-*.yaml"):
        old.unlink()
    meta = {
        "apiVersion": "v2",
        "name": name,
        "description": f"{name}, rendered by inferplane {__version__} (inferplane render --format helm)",
        "type": "application",
        "version": "0.1.0",
        "appVersion": __version__,
    }
    written = [directory / "Chart.yaml", directory / "values.yaml", templates / "_helpers.tpl"]
    written[0].write_text(yaml.safe_dump(meta, sort_keys=False))
    values_head = "# Values of the chart inferplane rendered; namespace empty = the release namespace.\n"
    written[1].write_text(values_head + yaml.safe_dump(chart.values, sort_keys=False))
    written[2].write_text(_HELPERS)
    for i, m in enumerate(lifted):
        path = templates / f"{i:03d}-{m['kind'].lower()}-{m['metadata']['name']}.yaml"
        path.write_text(_template(dump(m), chart))
        written.append(path)
    return written
