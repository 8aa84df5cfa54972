"""A ZMQ subscriber receives the simulator's KV events in vLLM's wire format, matching its block cache."""

from __future__ import annotations

import json
import struct
import time
import urllib.request

import zmq

from inferplane.net import free_port
from inferplane.sim.kvblocks import block_hashes
from inferplane.sim.kvevents import BlockRemoved, BlockStored, decode_batch
from inferplane.tokenizer import get_tokenizer
from tests.integration.sim.conftest import StartSim


def complete(url: str, prompt: str) -> dict:
    req = urllib.request.Request(
        f"{url}/v1/completions",
        data=json.dumps({"prompt": prompt, "max_tokens": 1}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def tokenize(url: str, prompt: str) -> list[int]:
    req = urllib.request.Request(
        f"{url}/tokenize", data=json.dumps({"prompt": prompt}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return list(json.loads(resp.read())["tokens"])


def receive(sub: zmq.Socket, timeout: float) -> list[tuple[bytes, int, list]]:
    out = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sub.poll(50):
            topic, seq, payload = sub.recv_multipart()
            _, events, _ = decode_batch(payload)
            out.append((topic, struct.unpack(">Q", seq)[0], events))
        elif out:
            break
    return out


def test_block_stored_and_removed_match_the_cache(start_sim: StartSim) -> None:
    zport = free_port()
    ctx = zmq.Context.instance()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.bind(f"tcp://127.0.0.1:{zport}")  # central mode: the subscriber binds, the model server connects
    sub.setsockopt(zmq.SUBSCRIBE, b"kv@")
    try:
        cfg = {"enable_kv_cache_events": True, "publisher": "zmq", "endpoint": f"tcp://127.0.0.1:{zport}"}
        model = "Qwen/Qwen3-0.6B"
        sim = start_sim(
            "--zero-latency",
            "--kv-events-config",
            json.dumps(cfg),
            "--num-gpu-blocks-override",
            "8",
            "--max-model-len",
            "128",
            model=model,
        )
        # PUB/SUB joins asynchronously: send warm-ups until the first batch arrives
        warm = []
        for i in range(50):
            complete(sim.url, f"warm up {i} " * 6)
            warm = receive(sub, 0.2)
            if warm:
                break
        assert warm, "no KV events arrived"
        assert warm[0][0] == f"kv@127.0.0.1:{sim.port}@{model}".encode()
        receive(sub, 0.3)  # drain

        text = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen " * 2
        tokens = tokenize(sim.url, text)
        assert 32 <= len(tokens) < 64
        complete(sim.url, text)
        got = receive(sub, 2.0)
        stored = [e for _, _, evs in got for e in evs if isinstance(e, BlockStored)]
        expected = block_hashes(tokens, 16, extra=model)[: (len(tokens)) // 16]
        assert [h for e in stored for h in e.block_hashes] == expected
        assert stored[0].parent_block_hash is None
        assert stored[0].block_size == 16
        assert [t for e in stored for t in e.token_ids] == tokens[: len(expected) * 16]
        seqs = [s for _, s, _ in got]
        assert seqs == sorted(seqs)

        # 8 blocks in all: a different long prompt needs them, so the first prompt's blocks are evicted
        tok = get_tokenizer()
        other = tok.decode(tok.encode("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu " * 20)[:127])
        complete(sim.url, other)
        got = receive(sub, 2.0)
        removed = {h for _, _, evs in got for e in evs if isinstance(e, BlockRemoved) for h in e.block_hashes}
        assert set(expected) <= removed
        assert complete(sim.url, text)["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    finally:
        sub.close(linger=0)
