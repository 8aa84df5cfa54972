"""`KubernetesDiscovery` against a fake API server on loopback, through the real `kubernetes` client and a kubeconfig.

Covers: the initial list, ready pods only, one endpoint per targetPort, pods leaving (deleted, unready,
terminating), the pool's selector and ports changing, InferenceObjectives, watch restarts (410 Gone → relist, dropped
connections), and readiness flapping.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path

import pytest
from kubernetes import config

from inferplane.epp.datalayer.discovery import EndpointSpec
from inferplane.epp.datalayer.kubernetes import (
    OBJECTIVE_GROUP,
    OBJECTIVE_PLURAL,
    OBJECTIVE_VERSION,
    POOL_GROUP,
    POOL_PLURAL,
    POOL_VERSION,
    KubernetesDiscovery,
    ObjectiveSpec,
)
from inferplane.errors import ConfigError
from tests.integration.deploy.fakekube import FakeKubeApi, inference_pool, objective, pod

NS = "llm"
PODS = FakeKubeApi.pods(NS)
POOLS = FakeKubeApi.custom(POOL_GROUP, POOL_VERSION, NS, POOL_PLURAL)
OBJECTIVES = FakeKubeApi.custom(OBJECTIVE_GROUP, OBJECTIVE_VERSION, NS, OBJECTIVE_PLURAL)
SEL = {"app": "vllm"}


class Recorder:
    """Collects what discovery reports and waits (bounded) for a condition on the latest report."""

    def __init__(self) -> None:
        self.endpoints: list[list[EndpointSpec]] = []
        self.objectives: list[dict[str, ObjectiveSpec]] = []
        self.changed = asyncio.Event()

    def sink(self, eps: Sequence[EndpointSpec]) -> None:
        self.endpoints.append(list(eps))
        self.changed.set()

    def on_objectives(self, objs: Mapping[str, ObjectiveSpec]) -> None:
        self.objectives.append(dict(objs))
        self.changed.set()

    @property
    def hostports(self) -> set[str]:
        return {e.hostport for e in self.endpoints[-1]} if self.endpoints else set()

    async def until(self, predicate: Callable[[], bool], within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


async def poll_until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    """For conditions no callback announces (requests reaching the fake server, relists that change nothing)."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - nothing to wait on: the state lives in another thread
            await asyncio.sleep(0.02)


@pytest.fixture
async def api() -> AsyncIterator[FakeKubeApi]:
    server = await FakeKubeApi().start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def discovery(api: FakeKubeApi, tmp_path: Path) -> AsyncIterator[tuple[KubernetesDiscovery, Recorder]]:
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", NS)
    rec = Recorder()
    disc = KubernetesDiscovery(
        "pool", NS, api_client=config.new_client_from_config(str(kubeconfig)), on_objectives=rec.on_objectives
    )
    task = asyncio.create_task(disc.run(rec.sink))
    try:
        yield disc, rec
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_initial_list_reports_ready_pods_on_every_target_port(api: FakeKubeApi, tmp_path: Path) -> None:
    await api.put(POOLS, inference_pool("pool", SEL, [8000, 8001]))
    await api.put(POOLS, inference_pool("other-pool", {"app": "other"}, [9000]))
    await api.put(PODS, pod("a", SEL, "10.0.0.1"))
    await api.put(PODS, pod("b", SEL, "10.0.0.2", ready=False))
    await api.put(PODS, pod("c", SEL, None))  # scheduled, no IP yet
    await api.put(PODS, pod("d", {"app": "other"}, "10.0.0.4"))
    rec = Recorder()
    disc = KubernetesDiscovery("pool", NS, api_client=config.new_client_from_config(
        str(api.write_kubeconfig(tmp_path / "kc", NS))))  # fmt: skip
    task = asyncio.create_task(disc.run(rec.sink))
    try:
        await rec.until(lambda: bool(rec.endpoints))
        assert rec.hostports == {"10.0.0.1:8000", "10.0.0.1:8001"}
        assert {e.name for e in rec.endpoints[-1]} == {"a-rank-0", "a-rank-1"}
        assert all(e.namespace == NS and e.label_dict() == SEL for e in rec.endpoints[-1])
        # The pod list was asked for with the pool's selector, and the pool with a field selector on its name.
        assert any("labelSelector=app%3Dvllm" in r for r in api.requests if r.startswith("LIST /api/v1"))
        assert any("fieldSelector=metadata.name%3Dpool" in r for r in api.requests if "inferencepools" in r)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_pods_joining_leaving_and_terminating(
    api: FakeKubeApi, discovery: tuple[KubernetesDiscovery, Recorder]
) -> None:
    _, rec = discovery
    await api.put(POOLS, inference_pool("pool", SEL, [8000]))
    await rec.until(lambda: rec.endpoints == [[]])
    await api.put(PODS, pod("a", SEL, "10.0.0.1", ready=False))
    await api.put(PODS, pod("a", SEL, "10.0.0.1"))
    await rec.until(lambda: rec.hostports == {"10.0.0.1:8000"})
    await api.put(PODS, pod("b", SEL, "10.0.0.2"))
    await rec.until(lambda: rec.hostports == {"10.0.0.1:8000", "10.0.0.2:8000"})
    # Terminating: the pod still exists but is drained at once.
    terminating = pod("a", SEL, "10.0.0.1")
    terminating["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    await api.put(PODS, terminating)
    await rec.until(lambda: rec.hostports == {"10.0.0.2:8000"})
    await api.delete(PODS, "a")
    await api.delete(PODS, "b")
    await rec.until(lambda: rec.hostports == set())
    # A pod relabelled out of the selector leaves the pool.
    await api.put(PODS, pod("c", SEL, "10.0.0.3"))
    await rec.until(lambda: rec.hostports == {"10.0.0.3:8000"})
    await api.put(PODS, pod("c", {"app": "elsewhere"}, "10.0.0.3"))
    await rec.until(lambda: rec.hostports == set())


async def test_pool_selector_and_port_changes(
    api: FakeKubeApi, discovery: tuple[KubernetesDiscovery, Recorder]
) -> None:
    _, rec = discovery
    await api.put(PODS, pod("a", SEL, "10.0.0.1"))
    await api.put(PODS, pod("b", {"app": "v2"}, "10.0.0.2"))
    await api.put(POOLS, inference_pool("pool", SEL, [8000]))
    await rec.until(lambda: rec.hostports == {"10.0.0.1:8000"})
    await api.put(POOLS, inference_pool("pool", SEL, [8000, 8200]))
    await rec.until(lambda: rec.hostports == {"10.0.0.1:8000", "10.0.0.1:8200"})
    await api.put(POOLS, inference_pool("pool", {"app": "v2"}, [8000]))
    await rec.until(lambda: rec.hostports == {"10.0.0.2:8000"})
    await api.delete(POOLS, "pool")
    await rec.until(lambda: rec.hostports == set())


async def test_objectives_of_this_pool(api: FakeKubeApi, discovery: tuple[KubernetesDiscovery, Recorder]) -> None:
    _, rec = discovery
    await api.put(POOLS, inference_pool("pool", SEL, [8000]))
    await api.put(OBJECTIVES, objective("critical", "pool", 10))
    await api.put(OBJECTIVES, objective("batch", "pool", -1))
    await api.put(OBJECTIVES, objective("theirs", "other-pool", 5))
    want = {"critical": ObjectiveSpec("critical", 10), "batch": ObjectiveSpec("batch", -1)}
    await rec.until(lambda: bool(rec.objectives) and rec.objectives[-1] == want)
    await api.delete(OBJECTIVES, "batch")
    await rec.until(lambda: rec.objectives[-1] == {"critical": ObjectiveSpec("critical", 10)})


async def test_dropped_watch_relists_and_catches_up(
    api: FakeKubeApi, discovery: tuple[KubernetesDiscovery, Recorder]
) -> None:
    disc, rec = discovery
    await api.put(POOLS, inference_pool("pool", SEL, [8000]))
    await api.put(PODS, pod("a", SEL, "10.0.0.1"))
    await rec.until(lambda: rec.hostports == {"10.0.0.1:8000"})
    pods_reflector = disc.reflectors["pods"]
    lists_before = pods_reflector.relists
    # While the watches are down, history moves on and is compacted: resuming from the old resourceVersion gets
    # 410 Gone, and only a fresh list can show the change.
    await api.drop_watches()
    await api.put(PODS, pod("b", SEL, "10.0.0.2"))
    await api.delete(PODS, "a")
    api.compact()
    await rec.until(lambda: rec.hostports == {"10.0.0.2:8000"})
    assert pods_reflector.relists > lists_before
    # And the watch works again after the relist.
    await api.put(PODS, pod("c", SEL, "10.0.0.3"))
    await rec.until(lambda: rec.hostports == {"10.0.0.2:8000", "10.0.0.3:8000"})


async def test_410_on_resume_is_answered_by_a_relist(
    api: FakeKubeApi, discovery: tuple[KubernetesDiscovery, Recorder]
) -> None:
    disc, rec = discovery
    await api.put(POOLS, inference_pool("pool", SEL, [8000]))
    await api.put(PODS, pod("a", SEL, "10.0.0.1"))
    await rec.until(lambda: rec.hostports == {"10.0.0.1:8000"})
    reflector = disc.reflectors["pods"]
    lists = reflector.relists
    # History moves past the reflector's resourceVersion (an unrelated write) and is compacted; then the watch ends
    # cleanly, so the reflector resumes from its stale resourceVersion and is told 410 Gone.
    await api.put(OBJECTIVES, objective("unrelated", "other-pool", 1))
    api.compact()
    await api.end_watches()
    await poll_until(lambda: api.gone_sent >= 1 and reflector.relists > lists)
    await api.put(PODS, pod("b", SEL, "10.0.0.2"))
    await rec.until(lambda: rec.hostports == {"10.0.0.1:8000", "10.0.0.2:8000"})


async def test_clean_watch_end_resumes_without_relisting(
    api: FakeKubeApi, discovery: tuple[KubernetesDiscovery, Recorder]
) -> None:
    disc, rec = discovery
    await api.put(POOLS, inference_pool("pool", SEL, [8000]))
    await api.put(PODS, pod("a", SEL, "10.0.0.1"))
    await rec.until(lambda: rec.hostports == {"10.0.0.1:8000"})
    reflector = disc.reflectors["pods"]
    lists = reflector.relists
    watches = sum(r.startswith("WATCH /api/v1") for r in api.requests)
    await api.end_watches()
    await poll_until(lambda: sum(r.startswith("WATCH /api/v1") for r in api.requests) > watches)
    await api.put(PODS, pod("b", SEL, "10.0.0.2"))
    await rec.until(lambda: rec.hostports == {"10.0.0.1:8000", "10.0.0.2:8000"})
    assert reflector.relists == lists


async def test_readiness_flapping_converges(api: FakeKubeApi, discovery: tuple[KubernetesDiscovery, Recorder]) -> None:
    _, rec = discovery
    await api.put(POOLS, inference_pool("pool", SEL, [8000]))
    await api.put(PODS, pod("steady", SEL, "10.0.0.1"))
    await rec.until(lambda: rec.hostports == {"10.0.0.1:8000"})
    for i in range(30):
        await api.put(PODS, pod("flappy", SEL, "10.0.0.2", ready=i % 2 == 0))
    # The last state written was not ready (i = 29): only the steady pod remains, and it never left.
    await api.put(PODS, pod("marker", {"app": "none"}, "10.0.0.9"))
    await rec.until(lambda: rec.hostports == {"10.0.0.1:8000"} and len(rec.endpoints) > 2)
    await asyncio.sleep(0)  # let any queued snapshot land before checking the history
    assert all("10.0.0.1:8000" in {e.hostport for e in eps} for eps in rec.endpoints[1:])
    # Every report is a change: no duplicates pushed to the scheduler.
    assert all(a != b for a, b in zip(rec.endpoints, rec.endpoints[1:], strict=False))
    await api.put(PODS, pod("flappy", SEL, "10.0.0.2"))
    await rec.until(lambda: rec.hostports == {"10.0.0.1:8000", "10.0.0.2:8000"})


async def test_default_client_reads_kubeconfig(
    api: FakeKubeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(api.write_kubeconfig(tmp_path / "kubeconfig", NS)))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # not in a pod: the kubeconfig is used
    await api.put(POOLS, inference_pool("pool", SEL, [8000]))
    await api.put(PODS, pod("a", SEL, "10.0.0.1"))
    rec = Recorder()
    task = asyncio.create_task(KubernetesDiscovery("pool", NS).run(rec.sink))
    try:
        await rec.until(lambda: rec.hostports == {"10.0.0.1:8000"})
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_no_cluster_configuration_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ConfigError, match="no in-cluster service account and no usable kubeconfig"):
        await KubernetesDiscovery("pool", NS).run(lambda eps: None)
