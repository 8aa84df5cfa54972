"""A fake Kubernetes API server on loopback, speaking the list/watch protocol for pods and custom resources.

No cluster runs on the test machines, so the discovery tests talk to this instead, over real HTTP, through the real
`kubernetes` client. What it implements is what a reflector relies on:

* `GET /api/v1/namespaces/{ns}/pods` and `GET /apis/{group}/{version}/namespaces/{ns}/{plural}`: a List with
  `metadata.resourceVersion`; `labelSelector` (equality: `k=v`, `k==v`, `k!=v`) and `fieldSelector`
  (`metadata.name=`, `metadata.namespace=`).
* `?watch=1&resourceVersion=N`: a chunked stream of JSON lines `{"type": ADDED|MODIFIED|DELETED|BOOKMARK, "object"}`
  for every change after N, then live changes until `timeoutSeconds`. A watch from a resourceVersion older than the
  compacted history gets an `ERROR` event with a `410` Status, as the real server answers "too old resource version".
* One global resourceVersion counter, like etcd's revision.

Tests change state with `put`, `delete`, `compact` (forget history), `end_watches` (end every open watch cleanly,
as a watch timeout does) and `drop_watches` (cut every watch connection, as an API server restart does).
"""

from __future__ import annotations

import asyncio
import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from inferplane.net import LOOPBACK, free_port

Obj = dict[str, Any]


@dataclass
class Event:
    rv: int
    collection: str
    type: str
    obj: Obj


def _selector_matches(selector: str, labels: dict[str, str]) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        else:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k) != v:
                return False
    return True


def _fields_match(selector: str, obj: Obj) -> bool:
    for term in filter(None, selector.split(",")):
        field, value = term.split("=", 1)
        if field == "metadata.name" and obj["metadata"]["name"] != value:
            return False
        if field == "metadata.namespace" and obj["metadata"].get("namespace") != value:
            return False
    return True


class FakeKubeApi:
    def __init__(self) -> None:
        self.rv = 1000
        self.objects: dict[str, dict[str, Obj]] = {}
        self.history: list[Event] = []
        self.compacted_rv = 0
        self.changed = asyncio.Condition()
        self.watches: set[web.StreamResponse] = set()
        self.requests: list[str] = []
        self.gone_sent = 0
        self.generation = 0
        self.port = 0
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ state changes (called by tests)

    @staticmethod
    def pods(ns: str) -> str:
        return f"/api/v1/namespaces/{ns}/pods"

    @staticmethod
    def custom(group: str, version: str, ns: str, plural: str) -> str:
        return f"/apis/{group}/{version}/namespaces/{ns}/{plural}"

    async def put(self, collection: str, obj: Obj) -> Obj:
        obj = copy.deepcopy(obj)
        obj["metadata"]["namespace"] = collection.split("/namespaces/", 1)[1].split("/", 1)[0]
        name = obj["metadata"]["name"]
        store = self.objects.setdefault(collection, {})
        kind = "MODIFIED" if name in store else "ADDED"
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        store[name] = obj
        await self._record(Event(self.rv, collection, kind, obj))
        return obj

    async def delete(self, collection: str, name: str) -> None:
        obj = self.objects.get(collection, {}).pop(name)
        self.rv += 1
        obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self.rv)}}
        await self._record(Event(self.rv, collection, "DELETED", obj))

    async def _record(self, event: Event) -> None:
        self.history.append(event)
        async with self.changed:
            self.changed.notify_all()

    def compact(self) -> None:
        """Forget all history: a watch resuming from any earlier resourceVersion now gets 410 Gone."""
        self.compacted_rv = self.rv
        self.history.clear()

    async def end_watches(self) -> None:
        """End every open watch cleanly, as `timeoutSeconds` expiring does: clients resume from their last
        resourceVersion without listing."""
        self.generation += 1
        async with self.changed:
            self.changed.notify_all()

    async def drop_watches(self) -> None:
        """Cut every open watch connection mid-stream (an API server restart)."""
        for resp in list(self.watches):
            task = getattr(resp, "_fake_task", None)
            if task is not None:
                task.cancel()
        async with self.changed:
            self.changed.notify_all()

    # ------------------------------------------------------------------ HTTP

    async def start(self) -> FakeKubeApi:
        app = web.Application()
        app.router.add_get("/api/v1/namespaces/{ns}/pods", self._handle)
        app.router.add_get("/apis/{group}/{version}/namespaces/{ns}/{plural}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, LOOPBACK, self.port).start()
        return self

    async def stop(self) -> None:
        await self.drop_watches()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                    "users": [{"name": "fake", "user": {"token": "fake-token"}}],
                    "contexts": [
                        {"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": namespace}}
                    ],
                    "current-context": "fake",
                }
            )
        )
        return path

    def _visible(self, request: web.Request, obj: Obj) -> bool:
        labels = obj["metadata"].get("labels") or {}
        return _selector_matches(request.query.get("labelSelector", ""), labels) and _fields_match(
            request.query.get("fieldSelector", ""), obj
        )

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        collection = request.path
        watching = request.query.get("watch") in ("1", "true", "True")
        self.requests.append(f"{'WATCH' if watching else 'LIST'} {request.path_qs}")
        if not watching:
            items = [o for o in self.objects.get(collection, {}).values() if self._visible(request, o)]
            return web.json_response(
                {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": str(self.rv)}, "items": items}
            )
        return await self._watch(request, collection)

    async def _watch(self, request: web.Request, collection: str) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        self.watches.add(resp)
        resp._fake_task = asyncio.current_task()  # type: ignore[attr-defined]
        since = int(request.query.get("resourceVersion") or self.rv)
        timeout = float(request.query.get("timeoutSeconds") or 300)
        generation = self.generation
        try:
            if since < self.compacted_rv:
                self.gone_sent += 1
                status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410, "reason": "Expired",
                          "message": f"too old resource version: {since} ({self.compacted_rv})"}  # fmt: skip
                await resp.write(json.dumps({"type": "ERROR", "object": status}).encode() + b"\n")
                return resp
            async with asyncio.timeout(timeout):
                while True:
                    for event in [e for e in self.history if e.rv > since and e.collection == collection]:
                        since = event.rv
                        kind = event.type
                        if not self._visible(request, event.obj):
                            # An object that stops matching the watch's selector leaves it as DELETED, as the
                            # API server's watch cache reports it (clients ignore deletions of names they lack).
                            kind = "DELETED"
                        await resp.write(json.dumps({"type": kind, "object": event.obj}).encode() + b"\n")
                    async with self.changed:
                        if not any(e.rv > since and e.collection == collection for e in self.history):
                            await self.changed.wait()
                    if self.generation != generation:
                        return resp
        except (TimeoutError, asyncio.CancelledError, ConnectionResetError):
            pass
        finally:
            self.watches.discard(resp)
        return resp


def pod(name: str, labels: dict[str, str], ip: str | None, *, ready: bool = True, ns: str = "default") -> Obj:
    status: Obj = {"phase": "Running" if ip else "Pending"}
    if ip:
        status["podIP"] = ip
        status["conditions"] = [{"type": "Ready", "status": "True" if ready else "False"}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"containers": [{"name": "vllm", "image": "vllm"}]}, "status": status}  # fmt: skip


def inference_pool(name: str, selector: dict[str, str], ports: list[int], ns: str = "default") -> Obj:
    return {
        "apiVersion": "inference.networking.k8s.io/v1",
        "kind": "InferencePool",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "selector": {"matchLabels": selector},
            "targetPorts": [{"number": p} for p in ports],
            "endpointPickerRef": {"name": f"{name}-epp", "port": {"number": 9002}},
        },
    }


def objective(name: str, pool: str, priority: int, ns: str = "default") -> Obj:
    return {
        "apiVersion": "inference.networking.x-k8s.io/v1alpha2",
        "kind": "InferenceObjective",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"priority": priority, "poolRef": {"name": pool}},
    }
