"""The endpoint picker's view of its pool: endpoints with live state, objectives and model rewrites.

Discovery sources replace the endpoint set; the scraper and the request director update endpoints in place.
Endpoint objects survive a replacement that keeps them, so scraped metrics and in-flight counts are not lost
when an unrelated replica comes or goes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from inferplane.epp.datalayer.discovery import EndpointSpec
from inferplane.epp.flowcontrol.rewrite import ModelRewriter, ModelRewriteResource
from inferplane.epp.framework.types import Endpoint, EndpointKey

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Objective:
    name: str
    priority: int = 0


EndpointListener = Callable[[list[Endpoint], list[Endpoint]], None]  # (added, removed)


@dataclass
class Datastore:
    pool_name: str = ""
    pool_namespace: str = "default"
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    objectives: dict[str, Objective] = field(default_factory=dict)
    rewriter: ModelRewriter = field(default_factory=ModelRewriter)
    synced: bool = False  # discovery has pushed at least once: gRPC readiness waits on this
    listeners: list[EndpointListener] = field(default_factory=list)

    # discovery

    def set_endpoints(self, specs: Sequence[EndpointSpec]) -> None:
        wanted = {s.hostport: s for s in specs}
        removed = [e for key, e in self.endpoints.items() if key not in wanted]
        added: list[Endpoint] = []
        for key, spec in wanted.items():
            ep = self.endpoints.get(key)
            if ep is None:
                ep = Endpoint(
                    key=EndpointKey(spec.address, spec.port),
                    name=spec.name or key,
                    namespace=spec.namespace,
                    labels=spec.label_dict(),
                    # not ready until its first scrape answers: a replica that is still loading gets no traffic
                    ready=False,
                )
                self.endpoints[key] = ep
                added.append(ep)
            else:
                ep.labels = spec.label_dict()
                ep.name = spec.name or key
        for ep in removed:
            del self.endpoints[ep.hostport]
        self.synced = True
        if added or removed:
            log.info(
                "pool %s: endpoints %s (added %s, removed %s)",
                self.pool_name,
                sorted(self.endpoints),
                [e.hostport for e in added],
                [e.hostport for e in removed],
            )
        for listener in self.listeners:
            listener(added, removed)

    # lookups used by the director

    def ready_endpoints(self) -> list[Endpoint]:
        return [e for e in self.endpoints.values() if e.ready]

    def candidates(self, subset: Iterable[str] | None) -> list[Endpoint]:
        """Ready endpoints, restricted to a subset hint when one is given.

        Upstream matches the hint's IP only (the ranks of one pod share it). Locally every replica shares
        127.0.0.1, so an `ip:port` entry naming an endpoint of the pool matches exactly that endpoint; an entry
        naming no endpoint falls back to upstream's IP match."""
        ready = self.ready_endpoints()
        if subset is None:
            return ready
        exact: set[str] = set()
        ips: set[str] = set()
        for s in subset:
            if s in self.endpoints:
                exact.add(s)
            else:
                ips.add(s.rsplit(":", 1)[0].strip("[]") if s.count(":") == 1 or s.startswith("[") else s)
        return [e for e in ready if e.hostport in exact or e.key.address in ips]

    def endpoint_for_topic_id(self, pod_id: str) -> Endpoint | None:
        """The endpoint a KV-event topic names: `ip:port`, or a bare IP when that IP has one endpoint."""
        ep = self.endpoints.get(pod_id)
        if ep is not None:
            return ep
        same_ip = [e for e in self.endpoints.values() if e.key.address == pod_id]
        return same_ip[0] if len(same_ip) == 1 else None

    def priority_of(self, objective: str | None) -> int:
        """An InferenceObjective's priority; absent or unknown → 0, as upstream."""
        if not objective:
            return 0
        obj = self.objectives.get(objective)
        return obj.priority if obj is not None else 0

    def set_objectives(self, objectives: Iterable[Objective]) -> None:
        self.objectives = {o.name: o for o in objectives}

    def set_rewrites(self, resources: Iterable[ModelRewriteResource]) -> None:
        self.rewriter = ModelRewriter(resources=list(resources), rng=self.rewriter.rng)
