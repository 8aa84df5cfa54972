"""Discovery plumbing and the scraper: the endpoints file, endpoint up/down from real HTTP scrapes, subsets."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from inferplane.epp.datalayer.datastore import Datastore
from inferplane.epp.datalayer.discovery import EndpointSpec
from inferplane.epp.datalayer.endpoints_file import EndpointsFile, FileDiscovery, parse_endpoints_file
from inferplane.epp.datalayer.scraper import MetricsScraper
from inferplane.errors import ConfigError
from tests.unit.epp_server.conftest import MetricsEndpoint, wait_for


def write_atomically(path: Path, data: object) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def test_endpoints_file_shapes() -> None:
    f = parse_endpoints_file('["127.0.0.1:8000", {"address": "10.0.0.2", "port": 9000, "labels": {"a": "b"}}]')
    assert [e.hostport for e in f.endpoints] == ["127.0.0.1:8000", "10.0.0.2:9000"]
    assert f.endpoints[1].label_dict() == {"a": "b"}
    assert f.objectives is None
    f = parse_endpoints_file(
        "endpoints: ['127.0.0.1:1']\nobjectives: [{name: batch, priority: -1}]\n"
        "modelRewrites:\n- name: r\n  rules:\n  - matches: [{model: {type: Exact, value: food}}]\n"
        "    targets: [{modelRewrite: food-v2, weight: 1}]\n"
    )
    assert f.objectives is not None
    assert f.objectives[0].priority == -1
    assert f.rewrites is not None
    assert f.rewrites[0].rules[0].targets[0].model == "food-v2"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[", "not valid JSON or YAML"),
        ('["nohost"]', "not host:port"),
        ("{endpoint: []}", "unknown keys"),
        ("[{address: x}]", "expected 'host:port'"),
        ("{objectives: [{priority: 1}]}", "objectives need"),
    ],
)
def test_endpoints_file_errors(text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        parse_endpoints_file(text, "eps.yaml")


async def test_file_discovery_follows_atomic_rewrites(tmp_path: Path) -> None:
    path = tmp_path / "eps.json"
    write_atomically(path, ["127.0.0.1:1000"])
    ds = Datastore()
    extras: list[EndpointsFile] = []
    src = FileDiscovery(path, poll_interval=0.01, on_extras=extras.append)
    task = asyncio.get_running_loop().create_task(src.run(ds.set_endpoints))
    try:
        await wait_for(lambda: set(ds.endpoints) == {"127.0.0.1:1000"}, what="first read")
        kept = ds.endpoints["127.0.0.1:1000"]
        kept.in_flight_requests = 3
        write_atomically(path, {"endpoints": ["127.0.0.1:1000", "127.0.0.1:1001"], "objectives": []})
        await wait_for(lambda: len(ds.endpoints) == 2, what="added endpoint")
        assert ds.endpoints["127.0.0.1:1000"] is kept
        assert kept.in_flight_requests == 3
        path.write_text("[")  # a bad edit keeps the last good set
        await asyncio.sleep(0.05)
        assert len(ds.endpoints) == 2
        assert not task.done()
        write_atomically(path, ["127.0.0.1:1001"])
        await wait_for(lambda: set(ds.endpoints) == {"127.0.0.1:1001"}, what="removed endpoint")
        assert extras
        assert extras[0].objectives is None
        assert extras[1].objectives == []
    finally:
        task.cancel()


async def test_missing_endpoints_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        await FileDiscovery(tmp_path / "nope.json").run(lambda specs: None)


async def test_scraper_marks_down_and_up() -> None:
    server = MetricsEndpoint(waiting=4, kv=0.5)
    await server.start()
    ds = Datastore()
    ds.set_endpoints([EndpointSpec("127.0.0.1", server.port)])
    ep = ds.endpoints[server.hostport]
    assert not ep.ready  # not ready until the first scrape answers
    scraper = MetricsScraper(ds, interval=0.01, timeout=0.5)
    await scraper.start()
    try:
        await wait_for(lambda: ep.ready, what="ready after a scrape")
        assert ep.metrics.waiting_queue_size == 4
        assert ep.metrics.kv_cache_usage_percent == 0.5
        assert ep.metrics.cache_block_size == 16
        assert ep.metrics.cache_num_gpu_blocks == 1000
        stamp = ep.metrics.update_time
        await wait_for(lambda: ep.metrics.update_time > stamp, what="fresh update time")
        server.status = 503
        await wait_for(lambda: not ep.ready, what="down on a failing scrape")
        assert ep.metrics.scrape_error
        server.status = 200
        await wait_for(lambda: ep.ready, what="up again")
        await server.stop()  # connection refused
        await wait_for(lambda: not ep.ready, what="down when the server is gone")
        ds.set_endpoints([])
        await asyncio.sleep(0.03)
        assert not scraper._tasks  # removed endpoints stop being polled
    finally:
        await scraper.stop()
        await server.stop()


def test_subset_matching() -> None:
    ds = Datastore()
    ds.set_endpoints([EndpointSpec("10.0.0.1", 8000), EndpointSpec("10.0.0.1", 8001), EndpointSpec("10.0.0.2", 8000)])
    for e in ds.endpoints.values():
        e.ready = True
    assert [e.hostport for e in ds.candidates(["10.0.0.1:8001"])] == ["10.0.0.1:8001"]
    # an address:port that is no endpoint falls back to upstream's IP match (the ranks of one pod)
    assert {e.hostport for e in ds.candidates(["10.0.0.1:9999"])} == {"10.0.0.1:8000", "10.0.0.1:8001"}
    assert ds.candidates([]) == []
    assert len(ds.candidates(None)) == 3
