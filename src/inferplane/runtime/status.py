"""`inferplane status`: the deployment as `kubectl get` would show it, with live numbers from every replica.

Everything comes from the state directory (plan.json, state.json) plus one scrape of each replica's `/metrics`,
so it works for a deployment started by another process (`up --detach`).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from inferplane.runtime.state import StateDir


@dataclass
class ReplicaMetrics:
    running: float | None = None
    waiting: float | None = None
    kv_usage: float | None = None
    prefix_hit_rate: float | None = None
    requests_served: float | None = None


# sample name (without _total) → the field its samples are summed into
_SUMS = {
    "vllm:num_requests_running": "running",
    "vllm:num_requests_waiting": "waiting",
    "vllm:request_success": "served",
    "vllm:prefix_cache_hits": "hits",
    "vllm:prefix_cache_queries": "queries",
}
_KV = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")


def parse_metrics(text: str) -> ReplicaMetrics:
    sums: dict[str, float] = {}
    kv: float | None = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            # key by the sample's own name: counters arrive as `x_total` under a family `x` or `x_total`,
            # depending on how the server wrote its TYPE line
            base = sample.name.removesuffix("_total")
            key = _SUMS.get(base)
            if key is not None:
                sums[key] = sums.get(key, 0.0) + sample.value
            elif base in _KV and kv is None:
                kv = sample.value
    hits, queries = sums.get("hits"), sums.get("queries")
    return ReplicaMetrics(
        running=sums.get("running"),
        waiting=sums.get("waiting"),
        kv_usage=kv,
        prefix_hit_rate=(hits / queries if queries else 0.0) if hits is not None and queries is not None else None,
        requests_served=sums.get("served", 0.0),  # the counter has no samples before the first request
    )


def scrape(url: str, timeout: float = 1.0) -> ReplicaMetrics | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return parse_metrics(resp.read().decode("utf-8", "replace"))
    except (urllib.error.URLError, OSError, ValueError):
        return None


def collect(state: StateDir) -> dict[str, Any]:
    """The whole status as one JSON-able dict (what `--output json` prints)."""
    plan = state.read_json(state.plan_file)
    live: dict[str, Any] = (
        state.read_json(state.state_file) if state.state_file.exists() else {"components": {}, "status": "unknown"}
    )
    up_pid = state.up_pid()
    running = state.running()
    comps: dict[str, dict[str, Any]] = live.get("components", {})
    servers = [c for c in plan["components"] if c.get("serves")]
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(servers)))) as pool:
        scraped = list(
            pool.map(lambda c: scrape(f"http://127.0.0.1:{c['ports']['http']}/metrics") if running else None, servers)
        )
    endpoints = []
    for c, m in zip(servers, scraped, strict=True):
        info = comps.get(c["name"], {})
        endpoints.append(
            {
                "name": c["name"],
                "pools": c.get("pools", []),
                "address": f"127.0.0.1:{c['ports']['http']}",
                "model": c.get("model", ""),
                "ready": bool(info.get("ready")) and running,
                "phase": info.get("phase", "unknown") if running else "stopped",
                "restarts": info.get("restarts", 0),
                "last_exit": info.get("last_exit"),
                "pid": info.get("pid"),
                "metrics": asdict(m) if m is not None else None,
            }
        )
    components = [
        {
            "name": c["name"],
            "kind": c["kind"],
            "group": c.get("group", ""),
            "ports": c.get("ports", {}),
            "pid": comps.get(c["name"], {}).get("pid"),
            "phase": comps.get(c["name"], {}).get("phase", "unknown") if running else "stopped",
            "restarts": comps.get(c["name"], {}).get("restarts", 0),
            "last_exit": comps.get(c["name"], {}).get("last_exit"),
            "reason": comps.get(c["name"], {}).get("reason", ""),
        }
        for c in plan["components"]
    ]
    services = [
        {
            "name": key,
            "endpoints": len(svc["members"]),
            "ready": sum(1 for e in endpoints if e["name"] in svc["members"] and e["ready"]),
        }
        for key, svc in plan.get("services", {}).items()
    ]
    pools = []
    for name, p in plan["pools"].items():
        members = [e for e in endpoints if name in e["pools"]]
        pools.append(
            {
                "name": name,
                "endpoint_picker": p["epp"],
                "epp_address": p["epp_address"],
                "failure_mode": p["failure_mode"],
                "target_ports": p["target_ports"],
                "ready": sum(1 for e in members if e["ready"]),
                "endpoints": len(members),
            }
        )
    return {
        "name": plan["name"],
        "source": plan["source"],
        "backend": plan["backend"],
        "status": live.get("status", "unknown") if running else "stopped",
        "up_pid": up_pid if running else None,
        "stop_reason": "" if running else state.stop_reason(),
        "last_events": [] if running else list(state.events())[-5:],
        "base_url": plan["base_url"],
        "curl": plan.get("curl", ""),
        "gateways": [
            {**g, "address": plan["base_url"], "port_map": plan["port_map"]}
            for g in plan.get("summary", {}).get("gateways", [])
        ],
        "routes": plan.get("summary", {}).get("routes", []),
        "pools": pools,
        "services": services,
        "endpoints": endpoints,
        "components": components,
        "state_dir": str(state.path),
    }
