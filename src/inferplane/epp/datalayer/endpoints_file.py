"""`--endpoints-file`: the local runtime's way of pushing endpoint changes to a running endpoint picker.

The runtime rewrites the file atomically (write a temp file, rename over) whenever replicas start, stop or restart;
this source notices the new file (inode, size or mtime changed) and pushes the whole set. Polling every 100 ms
is used rather than inotify because the standard library has no portable file watch and a stat is ~2 µs.

Accepted shapes (JSON or YAML):

    ["127.0.0.1:8000", {"address": "127.0.0.1", "port": 8001, "name": "r1", "labels": {...}}]
    {"endpoints": [...], "objectives": [{"name": "critical", "priority": 10}],
     "modelRewrites": [{"name": "r", "rules": [{"matches": [{"model": {"type": "Exact", "value": "food"}}],
                                                 "targets": [{"modelRewrite": "food-v2", "weight": 90}]}]}]}
    (objectives and modelRewrites carry InferenceObjective / InferenceModelRewrite specs.)
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from inferplane.epp.datalayer.datastore import Objective
from inferplane.epp.datalayer.discovery import EndpointSink, EndpointSpec, parse_endpoints
from inferplane.epp.flowcontrol.rewrite import ModelRewriteResource
from inferplane.errors import ConfigError, UsageError

log = logging.getLogger(__name__)


@dataclass
class EndpointsFile:
    endpoints: list[EndpointSpec]
    objectives: list[Objective] | None = None
    rewrites: list[ModelRewriteResource] | None = None


def _endpoint(item: Any, where: str) -> EndpointSpec:
    if isinstance(item, str):
        try:
            specs = parse_endpoints(item)
        except UsageError:
            specs = []
        if len(specs) != 1:
            raise ConfigError(f"{where}: {item!r} is not host:port")
        return specs[0]
    if isinstance(item, dict) and "address" in item and "port" in item:
        labels = item.get("labels") or {}
        return EndpointSpec(
            address=str(item["address"]),
            port=int(item["port"]),
            name=str(item.get("name", "")),
            namespace=str(item.get("namespace", "default")),
            labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
        )
    raise ConfigError(f"{where}: expected 'host:port' or {{address, port}}, found {item!r}")


def parse_endpoints_file(text: str, path: str = "<endpoints-file>") -> EndpointsFile:
    try:
        data = yaml.safe_load(text)  # YAML is a superset of JSON
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid JSON or YAML: {exc}") from None
    if data is None:
        data = []
    if isinstance(data, list):
        data = {"endpoints": data}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a list of endpoints or a mapping with 'endpoints'")
    unknown = set(data) - {"endpoints", "objectives", "modelRewrites"}
    if unknown:
        raise ConfigError(f"{path}: unknown keys {sorted(unknown)}; expected endpoints, objectives, modelRewrites")
    eps = [_endpoint(x, f"{path}: endpoints[{i}]") for i, x in enumerate(data.get("endpoints") or [])]
    objectives = None
    rewrites = None
    try:
        if "objectives" in data:
            objectives = [
                Objective(name=str(o["name"]), priority=int(o.get("priority", 0) or 0))
                for o in data["objectives"] or []
            ]
        if "modelRewrites" in data:
            rewrites = [
                ModelRewriteResource.from_spec(str(r.get("name", f"rewrite-{i}")), r, created=float(i))
                for i, r in enumerate(data["modelRewrites"] or [])
            ]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(
            f"{path}: objectives need {{name, priority}}, modelRewrites need InferenceModelRewrite specs "
            f"(rules[].matches[].model.value, rules[].targets[].modelRewrite): {type(exc).__name__}: {exc}"
        ) from None
    return EndpointsFile(eps, objectives, rewrites)


@dataclass
class FileDiscovery:
    """A DiscoverySource that follows a file; `on_extras` receives objectives and rewrites when present."""

    path: Path
    poll_interval: float = 0.1
    on_extras: Callable[[EndpointsFile], None] | None = None
    _stamp: tuple[int, int, int] | None = field(default=None, init=False)

    def read(self) -> EndpointsFile:
        try:
            text = self.path.read_text()
        except OSError as exc:
            raise ConfigError(f"--endpoints-file {self.path}: {exc.strerror or exc}") from None
        return parse_endpoints_file(text, str(self.path))

    def _current_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    async def run(self, sink: EndpointSink) -> None:
        first = True
        while True:
            stamp = self._current_stamp()
            if stamp is not None and stamp != self._stamp:
                try:
                    parsed = self.read()
                except ConfigError as exc:
                    if first:
                        raise
                    # a bad rewrite keeps the last good set: the runtime writes atomically, so this is a user edit
                    log.error("%s; keeping the previous endpoint set", exc)
                else:
                    sink(parsed.endpoints)
                    if self.on_extras is not None:
                        self.on_extras(parsed)
                self._stamp = stamp
                first = False
            elif stamp is None and first:
                raise ConfigError(f"--endpoints-file {self.path}: no such file")
            await asyncio.sleep(self.poll_interval)
