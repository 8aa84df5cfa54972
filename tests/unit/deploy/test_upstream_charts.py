"""Rendered objects line up with the Helm releases they replace: names, labels, selectors, port names, strategies
and RBAC of the upstream charts, so `kubectl apply` over a release of the same name updates it in place.

The expected values are facts read off the charts' templates (not copied text):
GIE `config/charts/epplib` + `inferencepool` at tag v1.5.0, `config/charts/body-based-routing` at v1.5.0, and
llm-d-modelservice `charts/llm-d-modelservice` v0.4.12 (`_helpers.tpl` fullname/decodeName, decode-deployment.yaml).
"""

from __future__ import annotations

import yaml

from inferplane.deploy.command import render_path
from inferplane.deploy.plan import RenderOptions
from inferplane.deploy.render import to_stream
from tests.conftest import DEPLOYMENTS

# GIE inferencepool chart v1.5 for a release named <pool> (epplib _service.yaml, _deployment.yaml, _rbac.yaml,
# inferencepool/templates/rbac.yaml).
CHART_EPP_SERVICE_PORTS = [("grpc-ext-proc", 9002), ("http-metrics", 9090)]
CHART_EPP_STRATEGY = "Recreate"
CHART_EPP_ROLES = {
    "{epp}-sa": {("", "pods")},
    "{epp}-non-sa": {
        ("inference.networking.x-k8s.io", "inferenceobjectives"),
        ("inference.networking.x-k8s.io", "inferencemodelrewrites"),
        ("inference.networking.k8s.io", "inferencepools"),
    },
}
# body-based-routing chart v1.5 (bbr.yaml): Deployment and Service `body-based-router`, selector app: <name>.
CHART_BBR = ("body-based-router", {"app": "body-based-router"})


def render(pattern: str, target: str = "kubernetes", klass: str | None = "istio", **kw: object) -> list[dict]:
    options = RenderOptions(target, "inferplane:test", klass, **kw)  # type: ignore[arg-type]
    return render_path(DEPLOYMENTS / pattern, options).manifests


def by(manifests: list[dict], kind: str, name: str) -> dict:
    found = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
    return found[0]


def test_endpoint_picker_matches_the_inferencepool_chart() -> None:
    out = render("pattern3-caching")
    pool = next(m for m in out if m["kind"] == "InferencePool")["metadata"]["name"]
    epp = f"{pool}-epp"
    svc = by(out, "Service", epp)
    assert [(p["name"], p["port"]) for p in svc["spec"]["ports"]] == CHART_EPP_SERVICE_PORTS
    dep = by(out, "Deployment", epp)
    assert dep["spec"]["strategy"] == {"type": CHART_EPP_STRATEGY}
    assert dep["spec"]["selector"] == {"matchLabels": {"inferencepool": epp}}
    assert svc["spec"]["selector"] == {"inferencepool": epp}
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert labels["inferencepool"] == epp
    assert labels["inference.networking.k8s.io/igw-mode"] == "inferencepool"
    assert dep["metadata"]["labels"]["app.kubernetes.io/name"] == epp
    pod = dep["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == epp
    assert by(out, "ServiceAccount", epp)
    c = pod["containers"][0]
    assert c["name"] == "epp"
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"grpc": 9002, "grpc-health": 9003, "metrics": 9090}
    assert {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in c["env"]} == {
        "NAMESPACE": "metadata.namespace",
        "POD_NAME": "metadata.name",
    }
    assert {"name": "plugins-config-volume", "configMap": {"name": epp}} in pod["volumes"]
    for role, wanted in CHART_EPP_ROLES.items():
        name = role.format(epp=epp)
        rules = by(out, "Role", name)["rules"]
        assert {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]} == wanted
        binding = by(out, "RoleBinding", name)
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}
        assert [s["name"] for s in binding["subjects"]] == [epp]


def test_model_server_matches_the_modelservice_chart() -> None:
    """Release `llm-d-pattern3` (the values file's name) → fullname `llm-d-pattern3-llm-d-modelservice`, workload
    `<fullname>-decode`, selector = modelArtifacts.labels + llm-d.ai/role (the chart's pod labels exactly)."""
    out = render("pattern3-caching")
    dep = by(out, "Deployment", "llm-d-pattern3-llm-d-modelservice-decode")
    values = yaml.safe_load((DEPLOYMENTS / "pattern3-caching" / "llm-d-pattern3-values.yaml").read_text())
    chart_labels = {**values["modelArtifacts"]["labels"], "llm-d.ai/role": "decode"}
    assert dep["spec"]["selector"] == {"matchLabels": chart_labels}
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert chart_labels.items() <= pod_labels.items()
    pool = next(m for m in out if m["kind"] == "InferencePool")
    assert pool["spec"]["selector"]["matchLabels"].items() <= chart_labels.items()


def test_release_name_containing_the_chart_name_is_the_fullname(tmp_path) -> None:
    src = DEPLOYMENTS / "pattern3-caching"
    dst = tmp_path / "p3"
    dst.mkdir()
    for f in src.rglob("*"):
        if f.is_file():
            target = dst / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            name = "llm-d-modelservice-values.yaml" if f.name == "llm-d-pattern3-values.yaml" else f.name
            (target.parent / name).write_bytes(f.read_bytes())
    out = render_path(dst, RenderOptions("kubernetes", "inferplane:test", "istio")).manifests
    assert "llm-d-modelservice-decode" in {m["metadata"]["name"] for m in out if m["kind"] == "Deployment"}


def test_body_based_router_matches_its_chart() -> None:
    out = render("pattern2-multimodel", klass="kgateway")
    name, selector = CHART_BBR
    dep = by(out, "Deployment", name)
    assert dep["spec"]["selector"] == {"matchLabels": selector}
    assert selector.items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert by(out, "Service", name)["spec"]["selector"] == selector


def test_deliberate_differences_are_said_in_the_output() -> None:
    options = RenderOptions("kubernetes", "inferplane:test", "istio")
    stream = to_stream(render_path(DEPLOYMENTS / "pattern3-caching", options), "p3", options)
    docs = stream.split("\n---\n")
    epp = next(d for d in docs if "kind: Deployment" in d and "name: llama-8b-pool-epp" in d)
    assert epp.startswith("# Matches upstream: ")
    assert "GIE inferencepool chart v1.5" in epp
    assert "# Differs on purpose: " in epp
    assert "securityContext" in epp.split("\napiVersion")[0]
    server = next(d for d in docs if "kind: Deployment" in d and "modelservice-decode" in d.split("spec:")[0])
    assert "llm-d-modelservice chart v0.4.12" in server.split("\napiVersion")[0]


def test_a_user_deployment_keeps_its_own_selector(tmp_path) -> None:
    """A model server written as an apps/v1 Deployment is rendered under its name with its own (immutable) selector,
    which may be a subset of its pod labels."""
    src = DEPLOYMENTS / "pattern3-caching"
    dst = tmp_path / "p3"
    (dst / "manifests").mkdir(parents=True)
    for f in (src / "manifests").iterdir():
        (dst / "manifests" / f.name).write_bytes(f.read_bytes())
    labels = {"app": "llama", "llm-d.ai/inference-serving": "true", "llm-d.ai/guide": "prefix-caching"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "llama"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "llama"}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{
                    "name": "vllm", "image": "vllm/vllm-openai:v0.11.0", "command": ["vllm", "serve"],
                    "args": ["meta-llama/Llama-3.1-8B-Instruct", "--port", "8000"],
                    "resources": {"limits": {"nvidia.com/gpu": "1"}},
                }]},
            },
        },
    }  # fmt: skip
    (dst / "manifests" / "deployment.yaml").write_text(yaml.safe_dump(deployment))
    out = render_path(dst, RenderOptions("kubernetes", "inferplane:test", "istio")).manifests
    dep = by(out, "Deployment", "llama")
    assert dep["spec"]["selector"] == {"matchLabels": {"app": "llama"}}
    assert labels.items() <= dep["spec"]["template"]["metadata"]["labels"].items()
