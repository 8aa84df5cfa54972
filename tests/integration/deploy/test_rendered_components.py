"""The rendered containers, run for real on loopback with the args `inferplane render` wrote.

A cluster cannot run here, so the pod is played by a process: the simulator Deployment of `--backend sim` serves its
model, and the endpoint picker Deployment — with `--discovery kubernetes`, a kubeconfig pointing at the fake API
server, and the ConfigMap's EndpointPickerConfig — finds that simulator through the InferencePool and Pod objects a
cluster would hold. Only what a pod would change is changed: listen addresses (loopback) and ports (free ones).
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import urllib.request
from pathlib import Path

from inferplane.deploy.command import render_path
from inferplane.deploy.plan import RenderOptions
from inferplane.epp.datalayer.kubernetes import POOL_GROUP, POOL_PLURAL, POOL_VERSION
from inferplane.net import LOOPBACK, free_ports, wait_http_ok
from tests.conftest import DEPLOYMENTS
from tests.integration.deploy.fakekube import FakeKubeApi, pod
from tests.support.procs import INFERPLANE, Proc

SIM = RenderOptions("kubernetes", "inferplane:test", "istio", backend="sim")


def rendered(pattern: str) -> list[dict]:
    return render_path(DEPLOYMENTS / pattern, SIM).manifests


def kubelet_args(container: dict, namespace: str) -> list[str]:
    """The args as the kubelet passes them: `$(VAR)` expanded from the container's env, the downward API's
    metadata.namespace being the namespace the pod runs in."""
    env = {}
    for e in container.get("env", []):
        field = e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        env[e["name"]] = namespace if field == "metadata.namespace" else e.get("value", "")
    out = []
    for a in container["args"]:
        for name, value in env.items():
            a = a.replace(f"$({name})", value)
        out.append(a)
    return out


def first(manifests: list[dict], kind: str, name: str | None = None) -> dict:
    return next(m for m in manifests if m["kind"] == kind and (name is None or m["metadata"]["name"] == name))


def with_flag(args: list[str], flag: str, value: str) -> list[str]:
    """Replace a flag's value (both `--f v` and `--f=v`), or append it."""
    out = list(args)
    for i, a in enumerate(out):
        if a == flag:
            out[i + 1] = value
            return out
        if a.startswith(flag + "="):
            out[i] = f"{flag}={value}"
            return out
    return [*out, flag, value]


def series(url: str, name: str) -> list[float]:
    """Values of every sample of one metric family on a Prometheus page."""
    with urllib.request.urlopen(url, timeout=2) as resp:
        lines = resp.read().decode().splitlines()
    return [float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith((name + " ", name + "{"))]


def tls_alpn(host: str, port: int) -> str | None:
    """A TLS handshake as a gateway makes it to the picker (no certificate verification, ALPN h2): the protocol
    agreed, or an ssl.SSLError when the port does not speak TLS."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    with socket.create_connection((host, port), timeout=5) as raw, context.wrap_socket(raw) as tls:
        return tls.selected_alpn_protocol()


def start_rendered_sim(container: dict, port: int, procs: list[Proc]) -> Proc:
    args = with_flag(with_flag(container["args"], "--port", str(port)), "--host", LOOPBACK)
    sim = Proc([*INFERPLANE, *args])
    procs.append(sim)
    probe = container["readinessProbe"]["httpGet"]["path"]
    sim.wait_ready(lambda: _ok(f"http://{LOOPBACK}:{port}{probe}"), 60, "simulator readiness probe")
    return sim


def _ok(url: str) -> bool:
    try:
        wait_http_ok(url, 0.2)
    except TimeoutError:
        return False
    return True


def test_rendered_simulator_serves_the_model(procs: list[Proc]) -> None:
    manifests = rendered("pattern3-caching")
    dep = first(manifests, "Deployment", "llm-d-pattern3-llm-d-modelservice-decode")
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "inferplane:test"
    assert container["args"][:2] == ["sim", "serve"]
    (port,) = free_ports(1)
    start_rendered_sim(container, port, procs)
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/v1/models", timeout=5) as resp:
        models = {m["id"] for m in json.loads(resp.read())["data"]}
    assert "meta-llama/Llama-3.1-8B-Instruct" in models
    # The pool's targetPort is the port the rendered server listens on.
    assert first(manifests, "InferencePool")["spec"]["targetPorts"] == [
        {"number": container["ports"][0]["containerPort"]}
    ]


async def test_rendered_endpoint_picker_discovers_the_pods(procs: list[Proc], tmp_path: Path) -> None:
    manifests = rendered("pattern3-caching")
    pool = first(manifests, "InferencePool")
    server = first(manifests, "Deployment", "llm-d-pattern3-llm-d-modelservice-decode")
    epp = first(manifests, "Deployment", pool["spec"]["endpointPickerRef"]["name"])
    config = first(manifests, "ConfigMap", epp["metadata"]["name"])
    api = await FakeKubeApi().start()
    try:
        # What the cluster would hold: the rendered pool, and one ready pod with the rendered pod labels, in the
        # namespace `kubectl apply -n` put them (the render names none).
        assert "namespace" not in pool["metadata"]
        ns = "team-a"
        (sim_port, grpc, health, metrics) = free_ports(4)
        await api.put(FakeKubeApi.custom(POOL_GROUP, POOL_VERSION, ns, POOL_PLURAL),
                      {**pool, "spec": {**pool["spec"], "targetPorts": [{"number": sim_port}]}})  # fmt: skip
        labels = server["spec"]["template"]["metadata"]["labels"]
        pods = FakeKubeApi.pods(ns)
        await api.put(pods, pod("decode-0", labels, LOOPBACK, ns=ns))
        await api.put(pods, pod("other", {"app": "unrelated"}, LOOPBACK, ns=ns))
        await asyncio.to_thread(
            start_rendered_sim, server["spec"]["template"]["spec"]["containers"][0], sim_port, procs
        )

        config_file = tmp_path / "epp-config.yaml"
        config_file.write_text(config["data"]["epp-config.yaml"])
        args = kubelet_args(epp["spec"]["template"]["spec"]["containers"][0], ns)
        assert args[args.index("--pool-namespace") + 1] == ns
        assert args[args.index("--discovery") + 1] == "kubernetes"
        for flag, value in (("--config-file", str(config_file)), ("--grpc-port", str(grpc)),
                            ("--grpc-health-port", str(health)), ("--metrics-port", str(metrics)),
                            ("--bind", LOOPBACK)):  # fmt: skip
            args = with_flag(args, flag, value)
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", ns)
        proc = Proc([*INFERPLANE, *args], env={"KUBECONFIG": str(kubeconfig), "KUBERNETES_SERVICE_HOST": ""})
        procs.append(proc)
        url = f"http://{LOOPBACK}:{metrics}/metrics"

        async def until(name: str, want: list[float], within: float) -> None:
            async with asyncio.timeout(within):
                while True:
                    assert proc.alive(), proc.output()[-3000:]
                    try:
                        if await asyncio.to_thread(series, url, name) == want:
                            return
                    except OSError:
                        pass
                    await asyncio.sleep(0.1)

        # Discovered through the fake API server, then scraped for real: the pool has one ready endpoint.
        await until("inference_pool_ready_pods", [1.0], 60)
        # As rendered (for Istio, whose DestinationRule originates TLS), the ext_proc port speaks TLS with HTTP/2.
        assert args[args.index("--secure-serving") + 1] == "true"
        assert await asyncio.to_thread(tls_alpn, LOOPBACK, grpc) == "h2"
        await until("inference_pool_per_pod_queue_size", [0.0], 10)
        # The pod turns unready: the picker drains it (no endpoint left at all).
        await api.put(pods, pod("decode-0", labels, LOOPBACK, ready=False, ns=ns))
        await until("inference_pool_per_pod_queue_size", [], 30)
        await until("inference_pool_ready_pods", [0.0], 10)
        # Ready again: back in the pool.
        await api.put(pods, pod("decode-0", labels, LOOPBACK, ns=ns))
        await until("inference_pool_ready_pods", [1.0], 30)
    finally:
        await api.stop()
