"""The vLLM-compatible HTTP API of one replica (aiohttp): protocol translation only; the work is in `Replica`."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from aiohttp import web

from inferplane import __version__
from inferplane.sim.protocol import FAILURES, ApiError, context_length_error, parse_generation, parse_json
from inferplane.sim.replica import Replica
from inferplane.sim.streaming import non_streaming_body, stream_sse

REPLICA_KEY = web.AppKey("replica", Replica)
STARTED_KEY = web.AppKey("started", float)


def _replica(request: web.Request) -> Replica:
    return request.app[REPLICA_KEY]


def _error(exc: ApiError, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=exc.status, body=exc.body(), content_type="application/json", headers=headers)


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        resp: web.StreamResponse = await handler(request)
        return resp
    except ApiError as exc:
        return _error(exc, _identity(request))
    except web.HTTPRequestEntityTooLarge as exc:
        return _error(ApiError(413, f"Request body too large: {exc.text}"), _identity(request))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(ApiError(exc.status, exc.reason), _identity(request))


def _identity(request: web.Request) -> dict[str, str]:
    r = _replica(request)
    headers = {"x-inference-pod": r.ident.pod_name, "x-inference-port": str(r.ident.port)}
    rid = request.headers.get("x-request-id")
    if rid:
        headers["x-request-id"] = rid
    return headers


async def _body(request: web.Request) -> dict[str, Any]:
    # vLLM's validate_json_request: any media type but application/json is a 400 before the body is read.
    if request.content_type.lower() != "application/json":
        raise ApiError(400, "Unsupported Media Type: Only 'application/json' is allowed")
    return parse_json(await request.read())


async def _generate(request: web.Request, kind: str) -> web.StreamResponse:
    r = _replica(request)
    forced = request.headers.get("x-return-error")
    if forced is not None:
        if not forced.strip().isdigit():
            raise ApiError(400, f"X-Return-Error must be an HTTP status code, got {forced!r}")
        raise ApiError(int(forced), f"error forced by X-Return-Error: {forced}")
    body = await _body(request)
    req = parse_generation(kind, body, r.tokenizer)
    lora = r.resolve_model(req.model)
    if r.sleeping:
        raise ApiError(503, "The engine is sleeping; POST /wake_up first.")
    failure = r.pick_failure()
    if failure is not None:
        status, type_, message = FAILURES[failure]
        limit = r.cfg.max_model_len
        text = message.format(model=req.model or r.cfg.names[0], max_len=limit, over=limit + 1)
        raise ApiError(status, text, type_=type_)
    for prompt in req.prompts:
        err = context_length_error(r.cfg.max_model_len, len(prompt), req.max_tokens)
        if err is not None:
            raise err
    if req.remote_decode and req.stream:
        raise ApiError(400, "a P/D prefill request (kv_transfer_params.do_remote_decode) must not stream")
    headers = _identity(request)
    stream = await r.submit(req, lora)
    rid = f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{uuid.uuid4().hex}"
    model = req.model or r.cfg.names[0]
    try:
        if req.stream:
            try:
                return await stream_sse(request, r, req, stream, rid, model, headers)
            except ConnectionError:  # the client went away mid-stream: nothing left to answer
                raise asyncio.CancelledError from None
        while not stream.done:
            await stream.wait()
        payload = non_streaming_body(r, req, stream, rid, model)
        return web.Response(body=payload, content_type="application/json", headers=headers)
    finally:
        if not stream.done:
            r.abort(stream)


async def completions(request: web.Request) -> web.StreamResponse:
    return await _generate(request, "completion")


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _generate(request, "chat")


async def render(request: web.Request) -> web.Response:
    r = _replica(request)
    kind = "chat" if request.path.startswith("/v1/chat") else "completion"
    req = parse_generation(kind, await _body(request), r.tokenizer)
    r.resolve_model(req.model)
    ids: Any = req.prompts[0] if len(req.prompts) == 1 else req.prompts
    return web.json_response({"token_ids": ids}, headers=_identity(request))


async def tokenize(request: web.Request) -> web.Response:
    r = _replica(request)
    body = await _body(request)
    kind = "chat" if "messages" in body else "completion"
    if kind == "completion" and not isinstance(body.get("prompt"), str):
        raise ApiError(400, "prompt: a string is required", param="prompt")
    tokens = parse_generation(kind, body, r.tokenizer).prompts[0]
    payload = {"count": len(tokens), "max_model_len": r.cfg.max_model_len, "tokens": tokens, "token_strs": None}
    return web.json_response(payload)


async def detokenize(request: web.Request) -> web.Response:
    r = _replica(request)
    tokens = (await _body(request)).get("tokens")
    if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
        raise ApiError(400, "tokens: a list of token ids is required", param="tokens")
    try:
        text = r.tokenizer.decode(tokens)
    except ValueError as exc:
        raise ApiError(400, str(exc), param="tokens") from None
    return web.json_response({"prompt": text})


async def models(request: web.Request) -> web.Response:
    r = _replica(request)
    created = int(request.app[STARTED_KEY])
    data: list[dict[str, Any]] = [
        {
            "id": name,
            "object": "model",
            "created": created,
            "owned_by": "vllm",
            "root": r.cfg.model,
            "parent": None,
            "max_model_len": r.cfg.max_model_len,
            "permission": [],
        }
        for name in r.cfg.names
    ]
    for name, path in r.ident.loras.items():
        data.append(
            {"id": name, "object": "model", "created": created, "owned_by": "vllm", "root": path}
            | {"parent": r.cfg.names[0], "max_model_len": None, "permission": []}
        )
    return web.json_response({"object": "list", "data": data})


async def load_lora(request: web.Request) -> web.Response:
    r = _replica(request)
    if not r.cfg.enable_lora:
        raise ApiError(400, "LoRA is not enabled: start the server with --enable-lora")
    body = await _body(request)
    name, path = body.get("lora_name"), body.get("lora_path")
    if not isinstance(name, str) or not name or not isinstance(path, str) or not path:
        raise ApiError(400, "Both 'lora_name' and 'lora_path' must be provided.")
    if name in r.ident.loras:
        raise ApiError(400, f"The lora adapter '{name}' has already been loaded.")
    r.ident.loras[name] = path
    return web.Response(text=f"Success: LoRA adapter '{name}' added successfully.")


async def unload_lora(request: web.Request) -> web.Response:
    r = _replica(request)
    if not r.cfg.enable_lora:
        raise ApiError(400, "LoRA is not enabled: start the server with --enable-lora")
    name = (await _body(request)).get("lora_name")
    if not isinstance(name, str) or name not in r.ident.loras:
        raise ApiError(404, f"The lora adapter '{name}' cannot be found.", type_="NotFoundError")
    del r.ident.loras[name]
    return web.Response(text=f"Success: LoRA adapter '{name}' removed successfully.")


async def health(request: web.Request) -> web.Response:
    return web.Response(status=200)


async def ready(request: web.Request) -> web.Response:
    r = _replica(request)
    waited = time.monotonic() - request.app[STARTED_KEY]
    if waited < r.cfg.startup_delay:
        remaining = round(r.cfg.startup_delay - waited, 3)
        return web.json_response({"status": "loading", "remaining_s": remaining}, status=503)
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    body = _replica(request).metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def model_info(request: web.Request) -> web.Response:
    r = _replica(request)
    return web.json_response(
        {"model_path": r.cfg.model, "tokenizer_path": r.cfg.tokenizer or r.cfg.model, "is_generation": True}
        | {"served_model_names": r.cfg.names, "max_model_len": r.cfg.max_model_len}
    )


async def server_info(request: web.Request) -> web.Response:
    r = _replica(request)
    cfg = r.cfg
    return web.json_response(
        {
            "model_path": cfg.model,
            "tokenizer_path": cfg.tokenizer or cfg.model,
            "dp_size": 1,
            "tp_size": cfg.tensor_parallel_size or cfg.profile.tensor_parallel_size,
            "max_running_requests": cfg.max_num_seqs,
            "max_total_num_tokens": r.num_gpu_blocks * cfg.block_size,
            "page_size": cfg.block_size,
            "port": r.ident.port,
            "version": f"inferplane-sim {__version__}",
            "profile": r.latency.name,
        }
    )


async def sleep(request: web.Request) -> web.Response:
    _replica(request).sleep()
    return web.Response(status=200)


async def wake_up(request: web.Request) -> web.Response:
    _replica(request).sleeping = False
    return web.Response(status=200)


async def is_sleeping(request: web.Request) -> web.Response:
    return web.json_response({"is_sleeping": _replica(request).sleeping})


def build_app(replica: Replica) -> web.Application:
    app = web.Application(middlewares=[_errors], client_max_size=replica.cfg.max_request_body_mb * 1024 * 1024)
    app[REPLICA_KEY] = replica
    app[STARTED_KEY] = time.monotonic()
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions/render", render)
    app.router.add_post("/v1/chat/completions/render", render)
    app.router.add_post("/tokenize", tokenize)
    app.router.add_post("/detokenize", detokenize)
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/load_lora_adapter", load_lora)
    app.router.add_post("/v1/unload_lora_adapter", unload_lora)
    app.router.add_get("/health", health)
    app.router.add_get("/health/ready", ready)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/model_info", model_info)
    app.router.add_get("/get_model_info", model_info)
    app.router.add_get("/server_info", server_info)
    app.router.add_get("/get_server_info", server_info)
    app.router.add_post("/sleep", sleep)
    app.router.add_post("/wake_up", wake_up)
    app.router.add_get("/is_sleeping", is_sleeping)
    return app
