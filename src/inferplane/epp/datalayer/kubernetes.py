"""In-cluster discovery for `inferplane epp --discovery kubernetes`: the InferencePool, its pods, its objectives.

Three list-then-watch loops ("reflectors") keep a cache of the raw objects: the InferencePool named by the flags
(its selector and targetPorts), the Pods matching that selector (restarted whenever the selector changes), and the
InferenceObjectives that point at the pool. Every ready pod contributes one endpoint per targetPort; a pod that is
not Ready, has no IP yet, or is terminating is drained at once. The sink is called with the whole set whenever it
changes, never with a partial view: pods are reported only after the pool has been seen.

Client choice: the official `kubernetes` client rather than kr8s. It is already a dependency, speaks every auth
mode a kubeconfig or in-cluster service account can hold, and its `kubernetes.watch.Watch` gives the watch
protocol (chunked JSON lines, bookmarks, 410 Gone as `ApiException`) plus a `stop()` that unblocks the reading
socket. Its calls block, so each reflector runs in a daemon thread and hands snapshots to the event loop with
`call_soon_threadsafe`; the endpoint picker's loop never waits on the network.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from inferplane.epp.datalayer.discovery import EndpointSink, EndpointSpec
from inferplane.errors import ConfigError

log = logging.getLogger(__name__)

POOL_GROUP, POOL_VERSION, POOL_PLURAL = "inference.networking.k8s.io", "v1", "inferencepools"
OBJECTIVE_GROUP, OBJECTIVE_VERSION, OBJECTIVE_PLURAL = (
    "inference.networking.x-k8s.io",
    "v1alpha2",
    "inferenceobjectives",
)
# A server-side watch timeout bounds how long a silent watch holds a connection; the reflector then re-watches from
# the last resourceVersion it saw (no relist), as client-go's reflector does.
WATCH_TIMEOUT_S = 60
BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)

RawObject = dict[str, Any]


@dataclass(frozen=True)
class ObjectiveSpec:
    """An InferenceObjective of this pool: requests naming it in `x-gateway-inference-objective` get its priority."""

    name: str
    priority: int


ObjectiveSink = Callable[[Mapping[str, ObjectiveSpec]], None]


@dataclass(frozen=True)
class PoolSpec:
    selector: tuple[tuple[str, str], ...]
    target_ports: tuple[int, ...]

    @property
    def label_selector(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.selector)


def pool_spec(obj: RawObject) -> PoolSpec | None:
    spec = obj.get("spec") or {}
    labels = (spec.get("selector") or {}).get("matchLabels") or {}
    ports = tuple(int(p["number"]) for p in spec.get("targetPorts") or [] if "number" in p)
    if not labels or not ports:
        return None
    return PoolSpec(tuple(sorted((str(k), str(v)) for k, v in labels.items())), ports)


def pod_ready(pod: RawObject) -> bool:
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    if meta.get("deletionTimestamp") or not status.get("podIP") or status.get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def pod_endpoints(pods: Sequence[RawObject], pool: PoolSpec) -> list[EndpointSpec]:
    """Ready pods × targetPorts, sorted so that equal sets compare equal. Ports after the first are data-parallel
    ranks; they are named `<pod>-rank-<i>` as the upstream datastore names them."""
    out = []
    for pod in pods:
        if not pod_ready(pod):
            continue
        meta = pod["metadata"]
        labels = tuple(sorted((meta.get("labels") or {}).items()))
        for i, port in enumerate(pool.target_ports):
            name = meta["name"] if len(pool.target_ports) == 1 else f"{meta['name']}-rank-{i}"
            out.append(EndpointSpec(pod["status"]["podIP"], port, name, meta.get("namespace", "default"), labels))
    return sorted(out, key=lambda e: (e.name, e.port))


def pool_objectives(objects: Sequence[RawObject], pool: str) -> dict[str, ObjectiveSpec]:
    out = {}
    for o in objects:
        spec = o.get("spec") or {}
        if (spec.get("poolRef") or {}).get("name") == pool:
            name = o["metadata"]["name"]
            out[name] = ObjectiveSpec(name, int(spec.get("priority") or 0))
    return out


class Reflector:
    """List, then watch from the list's resourceVersion; on 410 Gone or any error, back off and list again.

    Runs in a daemon thread; `on_change(snapshot)` is called in the event loop with every object after each change
    (including the initial list, even when it is empty).
    """

    def __init__(
        self,
        name: str,
        list_fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        loop: asyncio.AbstractEventLoop,
        on_change: Callable[[list[RawObject]], None],
    ) -> None:
        self.name = name
        self.list_fn, self.args, self.kwargs = list_fn, args, kwargs
        self.loop, self.on_change = loop, on_change
        self.cache: dict[str, RawObject] = {}
        self.relists = 0
        self._stopped = threading.Event()
        self._watch: Any = None
        self._thread = threading.Thread(target=self._run, name=f"reflector-{name}", daemon=True)

    def start(self) -> Reflector:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._watch is not None:
            self._watch.stop()

    def _publish(self) -> None:
        snapshot = list(self.cache.values())
        try:
            self.loop.call_soon_threadsafe(self.on_change, snapshot)
        except RuntimeError:  # the loop closed while we were reading: nothing left to tell
            self._stopped.set()

    def _list(self) -> str:
        resp = self.list_fn(*self.args, **self.kwargs, _preload_content=False)
        body = json.loads(resp.data)
        self.cache = {o["metadata"]["name"]: o for o in body.get("items") or []}
        self.relists += 1
        self._publish()
        return str((body.get("metadata") or {}).get("resourceVersion", ""))

    def _run(self) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        failures = 0
        while not self._stopped.is_set():
            try:
                rv = self._list()
                failures = 0
                while not self._stopped.is_set():
                    # return_type "object" keeps events as plain dicts (no model classes) while ERROR events still
                    # become ApiException; `deserialize=False` would skip that and fail with KeyError instead.
                    self._watch = watch.Watch(return_type="object")
                    for event in self._watch.stream(
                        self.list_fn,
                        *self.args,
                        **self.kwargs,
                        resource_version=rv,
                        timeout_seconds=WATCH_TIMEOUT_S,
                        allow_watch_bookmarks=True,
                    ):
                        rv = self._apply(event) or rv
                    if self._stopped.is_set():
                        return
            except ApiException as exc:
                if exc.status == 410:
                    log.info("%s: watch expired (410 Gone), listing again", self.name)
                    continue
                failures += 1
                log.warning("%s: API error %s %s; retrying", self.name, exc.status, exc.reason)
            except Exception as exc:  # connection refused/reset, bad JSON from a proxy: retry, never die
                if self._stopped.is_set():
                    return
                failures += 1
                log.warning("%s: %s: %s; retrying", self.name, type(exc).__name__, exc)
            self._stopped.wait(BACKOFF_S[min(failures, len(BACKOFF_S)) - 1] if failures else 0)

    def _apply(self, event: dict[str, Any]) -> str | None:
        kind, obj = event.get("type"), event.get("object") or {}
        meta = obj.get("metadata") or {}
        rv = meta.get("resourceVersion")
        if kind == "BOOKMARK":
            return str(rv) if rv else None
        name = meta.get("name")
        if not name:
            return None
        if kind == "DELETED":
            self.cache.pop(name, None)
        elif kind in ("ADDED", "MODIFIED"):
            self.cache[name] = obj
        else:
            return None
        self._publish()
        return str(rv) if rv else None


class KubernetesDiscovery:
    """DiscoverySource for one InferencePool in one namespace (the EPP's `--pool-name` / `--pool-namespace`).

    `api_client`: a `kubernetes.client.ApiClient`; by default the in-cluster service account, else the kubeconfig.
    `on_objectives`: called with the pool's objectives (name → ObjectiveSpec) whenever they change.
    """

    def __init__(
        self,
        pool_name: str,
        namespace: str,
        *,
        api_client: Any = None,
        on_objectives: ObjectiveSink | None = None,
    ) -> None:
        self.pool_name = pool_name
        self.namespace = namespace
        self.api_client = api_client
        self.on_objectives = on_objectives
        self.pool: PoolSpec | None = None
        self.reflectors: dict[str, Reflector] = {}
        self._last: list[EndpointSpec] | None = None
        self._sink: EndpointSink | None = None

    def _client(self) -> Any:
        """The in-cluster service account, else $KUBECONFIG / ~/.kube/config; never the global default config
        (the kubernetes package reads $KUBECONFIG at import time, so it is passed explicitly)."""
        if self.api_client is None:
            from kubernetes import client, config

            try:
                cfg = client.Configuration()
                config.load_incluster_config(client_configuration=cfg)
                self.api_client = client.ApiClient(cfg)
            except config.ConfigException:
                try:
                    self.api_client = config.new_client_from_config(config_file=os.environ.get("KUBECONFIG"))
                except (config.ConfigException, OSError) as exc:
                    raise ConfigError(
                        f"--discovery kubernetes: no in-cluster service account and no usable kubeconfig ({exc})",
                        hint="run inside the cluster, or set KUBECONFIG; use --endpoints for a static list",
                    ) from None
        return self.api_client

    async def run(self, sink: EndpointSink) -> None:
        from kubernetes import client

        api = self._client()
        self._sink = sink
        loop = asyncio.get_running_loop()
        custom = client.CustomObjectsApi(api)
        self._core = client.CoreV1Api(api)
        self._loop = loop
        self.reflectors["pool"] = Reflector(
            f"inferencepool/{self.pool_name}",
            custom.list_namespaced_custom_object,
            (POOL_GROUP, POOL_VERSION, self.namespace, POOL_PLURAL),
            {"field_selector": f"metadata.name={self.pool_name}"},
            loop,
            self._on_pool,
        ).start()
        if self.on_objectives is not None:
            self.reflectors["objectives"] = Reflector(
                "inferenceobjectives",
                custom.list_namespaced_custom_object,
                (OBJECTIVE_GROUP, OBJECTIVE_VERSION, self.namespace, OBJECTIVE_PLURAL),
                {},
                loop,
                self._on_objectives,
            ).start()
        try:
            await asyncio.Event().wait()  # runs until cancelled; the reflectors do the work
        finally:
            for r in self.reflectors.values():
                r.stop()

    def _on_pool(self, objects: list[RawObject]) -> None:
        obj = next((o for o in objects if o["metadata"]["name"] == self.pool_name), None)
        spec = pool_spec(obj) if obj is not None else None
        if obj is not None and spec is None:
            log.warning("InferencePool %s has no matchLabels or targetPorts; no endpoints", self.pool_name)
        if spec == self.pool:
            return
        old, self.pool = self.pool, spec
        if old is None or spec is None or old.selector != spec.selector:
            pods = self.reflectors.pop("pods", None)
            if pods is not None:
                pods.stop()
            if spec is not None:
                self.reflectors["pods"] = Reflector(
                    f"pods[{spec.label_selector}]",
                    self._core.list_namespaced_pod,
                    (self.namespace,),
                    {"label_selector": spec.label_selector},
                    self._loop,
                    self._on_pods,
                ).start()
                return  # the new pod reflector publishes after its first list
            self._push([])
        else:  # same selector, other targetPorts: recompute from the cached pods
            self._on_pods(list(self.reflectors["pods"].cache.values()))

    def _on_pods(self, pods: list[RawObject]) -> None:
        if self.pool is None:
            return
        # A snapshot from a pod reflector that was just replaced can still be queued: ignore it unless its pods
        # match the current selector.
        selector = dict(self.pool.selector)
        current = [p for p in pods if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())]
        self._push(pod_endpoints(current, self.pool))

    def _push(self, endpoints: list[EndpointSpec]) -> None:
        if endpoints == self._last or self._sink is None:
            return
        self._last = endpoints
        log.info("pool %s: %d endpoints", self.pool_name, len(endpoints))
        self._sink(endpoints)

    def _on_objectives(self, objects: list[RawObject]) -> None:
        if self.on_objectives is not None:
            self.on_objectives(pool_objectives(objects, self.pool_name))
