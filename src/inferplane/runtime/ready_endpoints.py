"""The ready serving members of every InferencePool and plain Service, announced to callbacks when a set changes.

The supervisor calls `publish(units)` after anything that may change readiness; only a change in the set of names
reaches the callbacks, so a restart that ends where it began costs the gateway and the pickers nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from inferplane.runtime.components import ComponentSpec
from inferplane.runtime.units import Phase, Unit

PoolEndpoints = dict[str, list[ComponentSpec]]
EndpointsCallback = Callable[[PoolEndpoints], None]


class ReadyEndpoints:
    def __init__(
        self, on_endpoints: EndpointsCallback | None = None, on_service_endpoints: EndpointsCallback | None = None
    ) -> None:
        self._on_endpoints = on_endpoints
        self._on_service_endpoints = on_service_endpoints
        self._published: tuple[dict[str, list[str]], dict[str, list[str]]] | None = None

    def publish(self, units: Iterable[Unit]) -> None:
        """The ready serving members of every InferencePool and every plain Service, when a set changed."""
        pools: PoolEndpoints = {}
        services: PoolEndpoints = {}
        for u in units:
            for m in u.members:
                for table, names in ((pools, m.spec.pools), (services, m.spec.services)):
                    for name in names:
                        table.setdefault(name, [])
                        if m.spec.serves and u.phase == Phase.READY:
                            table[name].append(m.spec)
        key = (
            {p: sorted(s.name for s in specs) for p, specs in pools.items()},
            {p: sorted(s.name for s in specs) for p, specs in services.items()},
        )
        if key == self._published:
            return
        previous, self._published = self._published, key
        if self._on_endpoints is not None and (previous is None or previous[0] != key[0]):
            self._on_endpoints(pools)
        if self._on_service_endpoints is not None and (previous is None or previous[1] != key[1]):
            self._on_service_endpoints(services)
