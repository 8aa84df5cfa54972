"""KV-event decoding (every vLLM layout, the map form, u64 or bytes hashes) and a real ZMQ PUB → SUB."""

from __future__ import annotations

import asyncio
import struct

import msgpack
import pytest
import zmq
import zmq.asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from inferplane.epp.datalayer.datastore import Datastore
from inferplane.epp.datalayer.discovery import EndpointSpec
from inferplane.epp.datalayer.kvevents import (
    AllBlocksCleared,
    BlockRemoved,
    BlockStored,
    KVEventBatch,
    KVEventDecodeError,
    KVEventSubscriber,
    decode_message,
    encode_message,
    parse_topic,
)
from tests.unit.epp_server.conftest import wait_for


def frames(topic: str, seq: int, payload: object) -> list[bytes]:
    return [topic.encode(), struct.pack(">Q", seq), msgpack.packb(payload)]


def test_topic_forms() -> None:
    assert parse_topic("kv@10.0.0.1:8000@meta/llama@v2") == ("10.0.0.1:8000", "meta/llama@v2")
    assert parse_topic("kv@10.0.0.1@m") == ("10.0.0.1", "m")
    with pytest.raises(KVEventDecodeError):
        parse_topic("kv@")


@pytest.mark.parametrize(
    "stored",
    [
        ["BlockStored", [1, 2], None, [5, 6, 7, 8], 4],  # early vLLM
        ["BlockStored", [1, 2], 0, [5, 6, 7, 8], 4, None],  # + lora_id
        ["BlockStored", [1, 2], 9, [5, 6, 7, 8], 4, None, "GPU", None, [["salt"]], 0, "full", None],  # current
    ],
)
def test_every_blockstored_layout(stored: list[object]) -> None:
    batch = decode_message(frames("kv@1.2.3.4:8000@m", 7, [1.5, [stored, ["BlockRemoved", [1]], ["AllBlocksCleared"]]]))
    ev = batch.events[0]
    assert isinstance(ev, BlockStored)
    assert ev.block_hashes == (1, 2)
    assert ev.token_ids == (5, 6, 7, 8)
    assert ev.block_size == 4
    assert ev.parent_block_hash == (9 if len(stored) > 6 else None)
    assert isinstance(batch.events[1], BlockRemoved)
    assert isinstance(batch.events[2], AllBlocksCleared)
    assert (batch.seq, batch.pod_id, batch.model, batch.ts) == (7, "1.2.3.4:8000", "m", 1.5)


def test_map_form_bytes_hashes_and_unknown_events() -> None:
    payload = [
        2.0,
        [
            {
                "type": "BlockStored",
                "block_hashes": [b"\x01" * 8],
                "parent_block_hash": None,
                "token_ids": [1],
                "block_size": 1,
                "medium": "GPU",
            },
            ["SomethingNew", 1, 2],
            {"type": "BlockRemoved", "block_hashes": [b"\x01" * 8]},
        ],
        3,
    ]
    batch = decode_message(frames("kv@h@m", 1, payload))
    assert [type(e).__name__ for e in batch.events] == ["BlockStored", "BlockRemoved"]
    first = batch.events[0]
    assert isinstance(first, BlockStored)
    assert first.block_hashes == (b"\x01" * 8,)
    assert batch.dp_rank == 3


@pytest.mark.parametrize(
    "bad",
    [
        [b"kv@h@m", b"\x00" * 8],
        [b"kv@h@m", b"\x00" * 4, msgpack.packb([0, []])],
        [b"kv@h@m", b"\x00" * 8, b"\xc1"],
        [b"kv@h@m", b"\x00" * 8, msgpack.packb({"a": 1})],
        [b"kv@h@m", b"\x00" * 8, msgpack.packb([0, [["BlockStored", [1]]]])],
    ],
)
def test_malformed_messages(bad: list[bytes]) -> None:
    with pytest.raises(KVEventDecodeError):
        decode_message(bad)


hashes = st.lists(st.one_of(st.integers(0, 2**64 - 1), st.binary(min_size=8, max_size=8)), min_size=1, max_size=5)
events = st.lists(
    st.one_of(
        st.builds(
            BlockStored,
            hashes.map(tuple),
            st.one_of(st.none(), st.integers(1, 2**64 - 1)),
            st.lists(st.integers(0, 2**32 - 1), max_size=8).map(tuple),
            st.sampled_from([16, 64]),
            st.none(),
            st.sampled_from([None, "GPU", "CPU"]),
            st.none(),
        ),
        st.builds(BlockRemoved, hashes.map(tuple), st.sampled_from([None, "GPU"])),
        st.just(AllBlocksCleared()),
    ),
    max_size=6,
)


@settings(max_examples=100, deadline=None)
@given(evs=events, seq=st.integers(0, 2**64 - 1), rank=st.one_of(st.none(), st.integers(0, 7)))
def test_encode_decode_round_trip(evs: list[object], seq: int, rank: int | None) -> None:
    batch = KVEventBatch("kv@10.0.0.1:8000@m", "10.0.0.1:8000", "m", seq, 1.25, list(evs), rank)  # type: ignore[arg-type]
    assert decode_message(encode_message(batch)) == batch


async def test_central_subscriber_over_real_zmq() -> None:
    ds = Datastore(pool_name="p")
    ds.set_endpoints([EndpointSpec("127.0.0.1", 8000), EndpointSpec("127.0.0.2", 8001)])
    got: list[tuple[str, KVEventBatch]] = []
    unmatched: list[int] = []
    sub = KVEventSubscriber(
        ds, lambda hp, b: got.append((hp, b)), bind="tcp://127.0.0.1:*", on_unmatched=lambda: unmatched.append(1)
    )
    sub.open()
    task = asyncio.get_running_loop().create_task(sub.run())
    pub = zmq.asyncio.Context.instance().socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    assert sub.bound_endpoint is not None
    pub.connect(sub.bound_endpoint)
    try:
        stored = BlockStored((11, 12), None, tuple(range(32)), 16)
        messages = [
            KVEventBatch("kv@127.0.0.1:8000@m", "", "", 0, 1.0, [stored]),
            KVEventBatch("kv@127.0.0.2@m", "", "", 0, 1.0, [BlockRemoved((11,))]),  # bare IP, one endpoint
            KVEventBatch("kv@10.9.9.9:1@m", "", "", 0, 1.0, [AllBlocksCleared()]),  # no such endpoint
            KVEventBatch("other@x@m", "", "", 0, 1.0, [AllBlocksCleared()]),  # filtered by topic
        ]

        async def publish_until_received() -> None:
            # PUB/SUB drops messages sent before the subscription propagates: resend until the first arrives
            while not got:
                await pub.send_multipart(encode_message(messages[0]))
                await asyncio.sleep(0.02)

        await asyncio.wait_for(publish_until_received(), 5)
        for m in messages[1:]:
            await pub.send_multipart(encode_message(m))
        await wait_for(lambda: len(got) >= 2 and bool(unmatched), what="events delivered")
        keys = {hp for hp, _ in got}
        assert keys == {"127.0.0.1:8000", "127.0.0.2:8001"}
        assert any(b.events == [stored] for _, b in got)
        assert all(b.topic.startswith("kv@") for _, b in got)
    finally:
        pub.close(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
