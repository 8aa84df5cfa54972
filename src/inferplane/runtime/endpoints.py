"""Publishing a pool's ready endpoints to its consumers: the endpoint picker (`--endpoints-file`) and Envoy (EDS);
and a plain Service's ready endpoints to Envoy (EDS).

Both files are rewritten atomically; the picker polls its file and Envoy watches its EDS file, so a replica that
dies is withdrawn within ~100 ms and in-flight requests on the other replicas are untouched.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from inferplane.runtime.components import ComponentSpec
from inferplane.runtime.plan import RuntimePlan
from inferplane.runtime.state import write_atomic

log = logging.getLogger(__name__)

# pool name (or Service `namespace/name`) → ready `ip:port` endpoints; pushes the set into Envoy's discovery.
EnvoySink = Callable[[str, list[str]], None]


def endpoints_document(specs: Sequence[ComponentSpec], extras: dict[str, Any] | None = None) -> dict[str, Any]:
    eps = []
    for s in specs:
        host, _, port = (s.endpoint or "").rpartition(":")
        eps.append({"address": host, "port": int(port), "name": s.name, "labels": s.labels})
    return {"endpoints": eps, **(extras or {})}


class EndpointPublisher:
    """The supervisor's `on_endpoints` callback: writes each pool's ready set wherever it is consumed."""

    def __init__(
        self,
        plan: RuntimePlan,
        envoy: EnvoySink | None = None,
        extras: dict[str, dict[str, Any]] | None = None,
        envoy_services: EnvoySink | None = None,
    ) -> None:
        self.plan = plan
        self.envoy = envoy
        self.envoy_services = envoy_services
        self.extras = extras or {}
        self.current: dict[str, list[str]] = {}
        self.current_services: dict[str, list[str]] = {}

    def __call__(self, pools: dict[str, list[ComponentSpec]]) -> None:
        for name, pool in self.plan.pools.items():
            specs = pools.get(name, [])
            hostports = [s.endpoint for s in specs if s.endpoint]
            if self.current.get(name) == hostports and Path(pool.endpoints_file).exists():
                continue
            self.current[name] = hostports
            doc = endpoints_document(specs, self.extras.get(name))
            write_atomic(Path(pool.endpoints_file), json.dumps(doc, indent=2) + "\n")
            if self.envoy is not None:
                try:
                    self.envoy(name, hostports)
                except OSError as exc:  # Envoy keeps its last set; the picker has the new one
                    log.error("cannot update Envoy endpoints of %s: %s", name, exc)

    def services(self, services: dict[str, list[ComponentSpec]]) -> None:
        """The supervisor's `on_service_endpoints` callback: a Service's ready replicas → its Envoy cluster."""
        if self.envoy_services is None:
            return
        for key, svc in self.plan.services.items():
            if not svc.members:
                continue  # not a cluster in Envoy: a route to it answers 500
            hostports = [s.endpoint for s in services.get(key, []) if s.endpoint]
            if self.current_services.get(key) == hostports:
                continue
            self.current_services[key] = hostports
            try:
                self.envoy_services(key, hostports)
            except OSError as exc:
                log.error("cannot update Envoy endpoints of Service %s: %s", key, exc)
