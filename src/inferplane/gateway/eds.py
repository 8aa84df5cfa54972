"""Endpoint updates without a restart: Envoy EDS read from files.

Every Service and InferencePool cluster is an EDS cluster whose `ClusterLoadAssignment` lives in
`<config_dir>/eds/<cluster>.json`, watched through `path_config_source.watched_directory`. `write_endpoints`
writes a new file beside it and renames it into place; the rename is atomic and is the event Envoy watches for,
so Envoy never reads a half-written file and applies the new set within milliseconds.

Why files, and not an xDS server or hot restart:
* an EDS update changes only the host set: requests already running on a removed host finish on their open
  connection (Envoy does not drain them), and new requests go to the new set at once — the integration test
  `test_inflight_request_survives_endpoint_update` checks exactly that;
* a gRPC xDS server would be one more long-running process and protocol to supervise, for the same effect;
* a hot restart re-creates every listener and connection pool, costs a new Envoy process per change and needs
  shared-memory coordination between the two generations — far slower than a rename (see BENCHMARKS.md, gateway).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inferplane.gateway.plan import parse_host_port

EDS_DIR = "eds"
_CLA = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
# The gateway, not a circuit breaker, should decide when a pool is busy: the reference config uses 40000 too.
_CIRCUIT_BREAKERS = {
    "thresholds": [
        {"max_connections": 40000, "max_pending_requests": 40000, "max_requests": 40000, "max_retries": 1024}
    ]
}


def eds_path(config_dir: Path, cluster: str) -> Path:
    return Path(config_dir) / EDS_DIR / f"{cluster}.json"


def eds_cluster(name: str, config_dir: Path, connect_timeout_s: float) -> dict[str, Any]:
    return {
        "name": name,
        "type": "EDS",
        "connect_timeout": f"{connect_timeout_s:g}s",
        "circuit_breakers": _CIRCUIT_BREAKERS,
        "eds_cluster_config": {
            "eds_config": {
                "resource_api_version": "V3",
                "path_config_source": {
                    "path": str(eds_path(config_dir, name)),
                    "watched_directory": {"path": str(Path(config_dir) / EDS_DIR)},
                },
            }
        },
    }


def load_assignment(cluster: str, endpoints: Sequence[str]) -> dict[str, Any]:
    """The EDS discovery response for `cluster` with `endpoints` (`ip:port`)."""
    lb_endpoints = []
    for e in endpoints:
        host, port = parse_host_port(e, what=f"endpoint of {cluster}")
        lb_endpoints.append({"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}})
    return {
        "version_info": str(time.time_ns()),
        "resources": [{"@type": _CLA, "cluster_name": cluster, "endpoints": [{"lb_endpoints": lb_endpoints}]}],
    }


def write_endpoints(config_dir: Path, cluster: str, endpoints: Sequence[str]) -> Path:
    """Replace the endpoints of one EDS cluster atomically; a running Envoy picks the change up by itself.

    `cluster` is the Envoy cluster name: `pool_cluster_name(pool_key)` or `service_cluster_name(service_key)`
    (the keys of `GatewayPlan.pools` / `.services`)."""
    path = eds_path(config_dir, cluster)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(load_assignment(cluster, endpoints))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
