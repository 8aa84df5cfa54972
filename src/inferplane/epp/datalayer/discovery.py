"""Where the endpoint picker learns which endpoints exist: a pluggable discovery source.

A source pushes the full current set of endpoints to a sink whenever it changes. Sources: a static list
(`--endpoints`), the local runtime (which pushes changes as replicas start, stop and restart), and the Kubernetes
watch of the InferencePool and its pods (`--discovery kubernetes`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from inferplane.errors import UsageError


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """An endpoint as discovery reports it, before it has live metrics."""

    address: str
    port: int
    name: str = ""
    namespace: str = "default"
    labels: tuple[tuple[str, str], ...] = field(default=())

    @property
    def hostport(self) -> str:
        return f"{self.address}:{self.port}"

    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)


EndpointSink = Callable[[Sequence[EndpointSpec]], None]


class DiscoverySource(Protocol):
    """Runs until cancelled, calling `sink` with the whole endpoint set after every change."""

    async def run(self, sink: EndpointSink) -> None: ...


class StaticDiscovery:
    """A fixed list, from `--endpoints host:port,...`."""

    def __init__(self, endpoints: Sequence[EndpointSpec]) -> None:
        self.endpoints = list(endpoints)

    async def run(self, sink: EndpointSink) -> None:
        sink(self.endpoints)


def parse_endpoints(text: str) -> list[EndpointSpec]:
    """`host:port,host:port` → specs; a clear usage error for anything else."""
    specs: list[EndpointSpec] = []
    for i, item in enumerate(x.strip() for x in text.split(",")):
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(
                f"--endpoints: {item!r} is not host:port",
                hint="give a comma-separated list such as 127.0.0.1:8000,127.0.0.1:8001",
            )
        specs.append(EndpointSpec(address=host.strip("[]"), port=int(port), name=f"endpoint-{i}"))
    return specs
