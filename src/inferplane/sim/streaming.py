"""Response bodies: SSE chunks (`data: {...}` … `data: [DONE]`) and the non-streaming JSON.

The chunk JSON is assembled from a per-request prefix and `json.dumps` of the new text only: this path runs for
every token of every stream (the simulator must stream ≥ 20,000 tokens/s on one core), and building a dict per
token and serialising it whole costs several times more. When a client falls behind, the tokens that piled up go
out in one chunk, as vLLM's output collector merges deltas for slow consumers.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from inferplane.sim.engine import Sequence
from inferplane.sim.protocol import GenerationRequest, usage
from inferplane.sim.replica import Replica, RequestStream

PD_PLACEHOLDER = {
    "do_remote_prefill": True,
    "do_remote_decode": False,
    "remote_block_ids": ["DUMMY_ID"],
    "remote_engine_id": "DUMMY_ID",
    "remote_host": "DUMMY",
    "remote_port": 1234,
    "tp_size": 1,
}


def _usage(seqs: list[Sequence]) -> dict[str, Any]:
    return usage(
        sum(s.num_prompt for s in seqs), sum(s.num_output for s in seqs), sum(max(s.num_cached, 0) for s in seqs)
    )


def _text(r: Replica, seq: Sequence) -> str:
    text = r.textgen.text
    return "".join([text(t) for t in seq.output_plan[: seq.num_output]])


async def stream_sse(
    request: web.Request,
    r: Replica,
    req: GenerationRequest,
    stream: RequestStream,
    rid: str,
    model: str,
    headers: dict[str, str],
) -> web.StreamResponse:
    resp = web.StreamResponse(
        status=200, headers={**headers, "Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await resp.prepare(request)
    chat = req.kind == "chat"
    obj = "chat.completion.chunk" if chat else "text_completion"
    head = f'data: {{"id":"{rid}","object":"{obj}","created":{int(time.time())},"model":{json.dumps(model)},'
    choice_head = head + '"choices":[{"index":'
    field = ',"delta":{"content":' if chat else ',"text":'
    close = "}" if chat else ""
    seqs = stream.seqs
    sent = [0] * len(seqs)
    closed = [False] * len(seqs)
    if chat:
        first = "".join(
            f'{choice_head}{i},"delta":{{"role":"assistant","content":""}},"logprobs":null,"finish_reason":null}}]}}\n\n'
            for i in range(len(seqs))
        )
        await resp.write(first.encode())
    continuous = req.continuous_usage
    text = r.textgen.text
    dumps = json.dumps
    while True:
        parts: list[str] = []
        for i, seq in enumerate(seqs):
            if closed[i]:
                continue
            n = seq.num_output
            reason = seq.finish_reason
            if n == sent[i] and reason is None:
                continue
            extra = f',"usage":{dumps(_usage(seqs))}' if continuous else ""
            pre = f"{choice_head}{i}{field}"
            post = f'{close},"logprobs":null,"finish_reason":null}}]{extra}}}\n\n'
            # one SSE event per token, as vLLM sends them; the events of one wake-up share one write
            plan = seq.output_plan
            last = n - 1 if reason is not None else n
            for k in range(sent[i], last):
                parts.append(pre + dumps(text(plan[k])) + post)
            if reason is not None:
                final = dumps(text(plan[n - 1])) if n > sent[i] else '""'
                parts.append(f'{pre}{final}{close},"logprobs":null,"finish_reason":"{reason}"}}]{extra}}}\n\n')
                closed[i] = True
            sent[i] = n
        if parts:
            await resp.write("".join(parts).encode())
        if all(closed):
            break
        await stream.wait()
    tail = ""
    if req.include_usage:
        tail = f'{head}"choices":[],"usage":{json.dumps(_usage(seqs))}}}\n\n'
    await resp.write((tail + "data: [DONE]\n\n").encode())
    await resp.write_eof()
    return resp


def non_streaming_body(r: Replica, req: GenerationRequest, stream: RequestStream, rid: str, model: str) -> bytes:
    choices: list[dict[str, Any]] = []
    for i, seq in enumerate(stream.seqs):
        text = _text(r, seq)
        if req.kind == "chat":
            choice: dict[str, Any] = {
                "index": i,
                "message": {"role": "assistant", "content": text, "tool_calls": []},
                "logprobs": None,
                "finish_reason": seq.finish_reason,
                "stop_reason": None,
            }
        else:
            choice = {
                "index": i,
                "text": text,
                "logprobs": None,
                "finish_reason": seq.finish_reason,
                "stop_reason": None,
                "prompt_logprobs": None,
            }
        choices.append(choice)
    body: dict[str, Any] = {
        "id": rid,
        "object": "chat.completion" if req.kind == "chat" else "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": _usage(stream.seqs),
    }
    if req.remote_decode:
        body["kv_transfer_params"] = PD_PLACEHOLDER
    return json.dumps(body).encode()
