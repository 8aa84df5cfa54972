"""Gateway benchmarks, side by side in one run:

1. Endpoint changes: an EDS file update (what inferplane does) against restarting Envoy with the new endpoints
   (the alternative to EDS without an xDS server), under steady request load: how long until the new endpoint
   set serves, and how many requests fail meanwhile.
2. Body-based routing cost: the same POST through Envoy straight to a backend, and through Envoy + `inferplane bbr`
   with routing on the model header, at a fixed concurrency, on keep-alive connections, in interleaved rounds.

    .venv/bin/python benchmarks/gateway_endpoints_and_bbr.py [--updates 20] [--requests 2000] [--concurrency 8]
        [--rounds 4]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integration.bbr.bbr_support import start_bbr
from tests.integration.gateway.harness import echo_backends, gateway_doc, route_doc, send

from inferplane.api.gateway_api import Gateway, HTTPRoute
from inferplane.gateway import (
    EnvoyProcess,
    GatewayPlan,
    find_envoy_binary,
    service_cluster_name,
    write_bootstrap,
    write_endpoints,
)
from inferplane.net import free_port


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class Load:
    """Back-to-back GETs from one thread; counts answers that are not a 200 from a backend."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.ok = 0
        self.failed = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                ok = send(self.port, timeout=5).status == 200
            except OSError:
                ok = False
            self.ok += ok
            self.failed += not ok

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def wait_served_by(port: int, names: set[str], timeout: float = 30.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if send(port, timeout=2).backend in names:
                return time.monotonic() - start
        except OSError:
            pass
    raise TimeoutError(f"not served by {names} after {timeout}s")


def endpoint_updates(workdir: Path, backends: dict[str, str], updates: int) -> dict[str, object]:
    sets = [["a1", "a2"], ["b1", "b2"]]
    envoy_bin = find_envoy_binary(None)
    port = free_port()

    def plan(names: list[str]) -> GatewayPlan:
        return GatewayPlan(
            gateways=[Gateway.model_validate(gateway_doc())],
            routes=[HTTPRoute.model_validate(route_doc("r", [{"backendRefs": [{"name": "svc", "port": 80}]}]))],
            services={"svc": [backends[n] for n in names]},
            port_map={80: port},
        )

    results: dict[str, object] = {}
    # EDS file update
    config = workdir / "eds"
    write_bootstrap(config, plan(sets[0]))
    with EnvoyProcess(envoy_bin, config, concurrency=1) as _, Load(port) as load:
        times = []
        for i in range(updates):
            names = sets[(i + 1) % 2]
            started = time.monotonic()
            write_endpoints(config, service_cluster_name("svc"), [backends[n] for n in names])
            wait_served_by(port, set(names))
            times.append(time.monotonic() - started)
    results["eds"] = {
        "p50_ms": 1000 * statistics.median(times),
        "max_ms": 1000 * max(times),
        "ok": load.ok,
        "failed": load.failed,
    }
    # restart Envoy with the new endpoints
    config = workdir / "restart"
    write_bootstrap(config, plan(sets[0]))
    envoy = EnvoyProcess(envoy_bin, config, concurrency=1)
    envoy.__enter__()
    times = []
    try:
        with Load(port) as load:
            for i in range(updates):
                names = sets[(i + 1) % 2]
                started = time.monotonic()
                write_bootstrap(config, plan(names))
                envoy.stop()
                envoy = EnvoyProcess(envoy_bin, config, concurrency=1)
                envoy.__enter__()
                wait_served_by(port, set(names))
                times.append(time.monotonic() - started)
    finally:
        envoy.stop()
    results["restart"] = {
        "p50_ms": 1000 * statistics.median(times),
        "max_ms": 1000 * max(times),
        "ok": load.ok,
        "failed": load.failed,
    }
    return results


def timed_posts(port: int, path: str, body: bytes, n: int, concurrency: int) -> list[float]:
    """`n` POSTs from `concurrency` threads, each on its own keep-alive connection (as a real client and the
    runtime benchmark do: a new TCP connection per request would add more than the hop being measured);
    returns the latencies in seconds and fails on any status but 200."""
    local = threading.local()
    latencies: list[float] = []

    def one(_: int) -> int:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        started = time.perf_counter()
        conn.request("POST", path, body=body, headers={"content-type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        latencies.append(time.perf_counter() - started)
        return resp.status

    with ThreadPoolExecutor(concurrency) as pool:
        statuses = set(pool.map(one, range(n)))
    assert statuses == {200}, statuses
    return latencies


def bbr_overhead(
    workdir: Path, backends: dict[str, str], requests: int, concurrency: int, rounds: int
) -> dict[str, object]:
    proc, bbr_port, _ = start_bbr(workdir)
    try:
        port = free_port()
        rule = {
            "matches": [{"headers": [{"name": "X-Gateway-Model-Name", "value": "m"}]}],
            "backendRefs": [{"name": "bbr-svc", "port": 80}],
        }
        plain = {"matches": [{"path": {"value": "/direct"}}], "backendRefs": [{"name": "direct-svc", "port": 80}]}
        plan = GatewayPlan(
            gateways=[Gateway.model_validate(gateway_doc())],
            routes=[
                HTTPRoute.model_validate(route_doc("direct", [plain], gateway="gw")),
                HTTPRoute.model_validate(route_doc("bbr", [rule], gateway="gw")),
            ],
            services={"bbr-svc": [backends["a1"]], "direct-svc": [backends["a1"]]},
            bbr_address=f"127.0.0.1:{bbr_port}",
            port_map={80: port},
        )
        # two listeners would need two ports: instead one listener where `/direct` bypasses nothing but routing
        # (BBR runs on every request of a listener that has model-header routes), so compare against a second
        # Envoy without the model-header route at all.
        direct_plan = GatewayPlan(
            gateways=plan.gateways, routes=[plan.routes[0]], services=plan.services, port_map={80: free_port()}
        )
        body = json.dumps({"model": "m", "prompt": "hello " * 50, "max_tokens": 16}).encode()
        out: dict[str, object] = {}
        with (
            EnvoyProcess(find_envoy_binary(None), write_bootstrap(workdir / "bbr", plan).parent, concurrency=1) as _,
            EnvoyProcess(
                find_envoy_binary(None), write_bootstrap(workdir / "direct", direct_plan).parent, concurrency=1
            ) as _,
        ):
            sides = {
                "envoy": (direct_plan.local_port("default/gw", 80), "/direct"),
                "envoy+bbr": (port, "/v1/completions"),
            }
            for p, path in sides.values():  # warm-up: connections, Envoy's and the router's first streams
                timed_posts(p, path, body, requests // 10, concurrency)
            samples: dict[str, list[float]] = {name: [] for name in sides}
            seconds = dict.fromkeys(sides, 0.0)
            # interleaved rounds, so that both sides see the same machine load
            for _round in range(rounds):
                for name, (p, path) in sides.items():
                    started = time.perf_counter()
                    samples[name] += timed_posts(p, path, body, requests // rounds, concurrency)
                    seconds[name] += time.perf_counter() - started
            for name, lat in samples.items():
                out[name] = {
                    "req_s": len(lat) / seconds[name],
                    "p50_ms": 1000 * pct(lat, 0.5),
                    "p99_ms": 1000 * pct(lat, 0.99),
                }
            out["bbr_added_p50_ms"] = out["envoy+bbr"]["p50_ms"] - out["envoy"]["p50_ms"]  # type: ignore[index]
        return out
    finally:
        proc.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds of the BBR comparison")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with echo_backends(["a1", "a2", "b1", "b2"], work) as backends:
            updates = endpoint_updates(work, backends, args.updates)
            bbr = bbr_overhead(work, backends, args.requests, args.concurrency, args.rounds)
    print(json.dumps({"endpoint_updates": updates, "bbr": bbr}, indent=1))


if __name__ == "__main__":
    main()
