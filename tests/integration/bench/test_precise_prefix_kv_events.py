"""The `precise-prefix` bench configuration on pattern 3 through the local runtime: the runtime wires the replicas'
KV events (`--kv-events-config`) to the endpoint picker's bound socket (`--kv-events-bind`), so a long prompt cached
on one replica by a request that bypassed the gateway is then routed to that replica."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from inferplane.bench.compare import SCHEDULERS_DIR
from inferplane.net import wait_until
from inferplane.runtime.runtime import run_deployment
from tests.conftest import DEPLOYMENTS

DOCUMENT = "Harbour log {n}: " + " ".join(f"entry {{n}}.{k}: the tide turned at the north pier" for k in range(80))


def complete(base_url: str, model: str, prompt: str) -> tuple[int, str, int]:
    """(status, the serving replica's port, cached prompt tokens)."""
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": 4}).encode()
    req = urllib.request.Request(base_url + "/v1/completions", body, {"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        data = json.loads(resp.read())
        port = resp.headers.get("x-inference-port", "")
    cached = ((data.get("usage") or {}).get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return resp.status, port, int(cached)


def kv_metric(metrics_port: int, name: str, kind: str | None = None) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and (kind is None or s.labels.get("type") == kind):
                total += s.value
    return total


def test_precise_prefix_routes_to_the_replica_whose_kv_events_reported_the_prompt(tmp_path: Path) -> None:
    with run_deployment(
        str(DEPLOYMENTS / "pattern3-caching"),
        state_dir=str(tmp_path / "state"),
        port=0,
        time_scale=0.05,
        epp_config_override=str(SCHEDULERS_DIR / "precise-prefix.yaml"),
    ) as rt:
        (pool,) = rt.running_plan.pools.values()
        model = str(rt.running_plan.models[0])
        replicas = rt.endpoint_urls()
        assert len(replicas) == 3
        stored = 0.0
        for n, target in enumerate((2, 0)):
            document = DOCUMENT.format(n=n)
            # prime one replica directly, bypassing the gateway: only its KV events can tell the picker
            status, port, _ = complete(replicas[target], model, document)
            assert status == 200
            assert replicas[target].endswith(f":{port}")
            wait_until(
                lambda s=stored: kv_metric(pool.epp_metrics_port, "inferplane_epp_kv_events_total", "BlockStored") > s,
                10,
                what="BlockStored events at the endpoint picker",
            )
            stored = kv_metric(pool.epp_metrics_port, "inferplane_epp_kv_events_total", "BlockStored")
            routed = [complete(rt.base_url, model, f"{document} Question {q}?") for q in range(3)]
            assert all(status == 200 for status, _, _ in routed)
            assert [f"{replicas[target].rsplit(':', 1)[0]}:{port}" for _, port, _ in routed] == [replicas[target]] * 3
            assert all(cached > 0 for _, _, cached in routed)
        assert kv_metric(pool.epp_metrics_port, "inferplane_epp_kv_events_unmatched_total") == 0
