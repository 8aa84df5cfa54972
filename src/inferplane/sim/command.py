"""`inferplane sim`: run the vLLM-compatible model-server simulator (one or more engines in one process)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
from pathlib import Path
from typing import Any

import yaml

from inferplane.errors import UsageError
from inferplane.sim import flags
from inferplane.sim.config import LoraModule, SimConfig
from inferplane.sim.kvpublisher import KVEventsConfig, parse_kv_events_config
from inferplane.sim.latency import UpstreamLatency
from inferplane.sim.profiles import default_profile_name, load_profile

log = logging.getLogger("inferplane.sim")


def configure(parser: argparse.ArgumentParser) -> None:
    flags.configure(parser)


def _load_yaml_config(path: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise UsageError(f"--config {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"--config {path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"--config {path}: expected a mapping of flag names to values")
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("latencies", "kvcache") and isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    if "fake-metrics" in flat:
        log.warning("--config %s: fake-metrics is not simulated; real metrics are exported", path)
        flat.pop("fake-metrics")
    return {str(k).replace("-", "_"): v for k, v in flat.items()}


def _parse_lora(spec: str) -> LoraModule:
    spec = spec.strip()
    if spec.startswith("{"):
        try:
            d = json.loads(spec)
            return LoraModule(str(d["name"]), str(d["path"]), d.get("base_model_name"))
        except (ValueError, KeyError, TypeError):
            raise UsageError(f"--lora-modules: {spec!r} is not JSON with 'name' and 'path'") from None
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise UsageError(f"--lora-modules: {spec!r} is neither name=path nor JSON")
    return LoraModule(name, path)


def resolve(args: argparse.Namespace) -> SimConfig:
    """Flags (then --config YAML, then defaults) → SimConfig."""
    yaml_cfg = _load_yaml_config(args.config) if args.config else {}
    known = set(vars(args))
    unknown = sorted(k for k in yaml_cfg if k not in known)
    if unknown:
        raise UsageError(f"--config {args.config}: unknown key(s) {', '.join(unknown)}")

    def get(name: str, default: Any = None) -> Any:
        value = getattr(args, name, None)
        if value is None:
            value = yaml_cfg.get(name)
        return default if value is None else value

    for dest in sorted(flags.IGNORED_DESTS):
        if get(dest) is not None:
            log.debug("ignoring vLLM flag --%s (no effect on the simulation)", dest.replace("_", "-"))
    positional = list(args.positional or [])
    if positional and positional[0] == "serve":
        positional.pop(0)
    if len(positional) > 1:
        raise UsageError(f"unexpected arguments: {' '.join(positional[1:])}", hint="one positional MODEL at most")
    model = get("model") or (positional[0] if positional else None) or os.environ.get("SIM_MODEL")
    if not model:
        raise UsageError("no model given", hint="pass --model NAME (or `inferplane sim serve NAME`)")
    if args.zero_latency:
        profile_spec = "zero"
    else:
        profile_spec = get("profile") or default_profile_name(get("accelerator", "h100"), model)
    profile = load_profile(profile_spec)
    served = get("served_model_name")
    served = [served] if isinstance(served, str) else served
    upstream = UpstreamLatency(
        calculator=get("latency_calculator", ""),
        time_factor_under_load=float(get("time_factor_under_load", 1.0)),
        **{
            f.replace("-", "_"): flags.parse_duration(get(f.replace("-", "_")), f) or 0.0
            for f in flags.UPSTREAM_DURATION_FLAGS
        },
    )
    if upstream.time_factor_under_load < 1.0:
        raise UsageError("--time-factor-under-load must be ≥ 1.0")
    kv_events = parse_kv_events_config(get("kv_events_config"))
    if not kv_events.enabled and get("enable_kvcache") and get("zmq_endpoint"):
        kv_events = KVEventsConfig(True, "zmq", get("zmq_endpoint"), "")
    startup = get("startup_delay")
    if startup is None:
        startup = flags.parse_duration(get("startup_duration"), "startup-duration") or 0.0
    time_scale = float(get("time_scale", 1.0))
    if time_scale <= 0:
        raise UsageError("--time-scale must be > 0")
    lora_specs = get("lora_modules") or []
    cfg = SimConfig(
        model=model,
        profile=profile,
        served_model_names=list(served or []),
        host=get("host", "0.0.0.0"),
        port=int(get("port", 8000)),
        max_model_len=int(get("max_model_len", 8192)),
        max_num_seqs=int(get("max_num_seqs", 256)),
        max_num_batched_tokens=int(get("max_num_batched_tokens", 8192)),
        max_waiting=int(get("max_waiting_queue_length", 0)),
        enable_prefix_caching=bool(get("enable_prefix_caching", True)),
        block_size=int(get("block_size", 16)),
        gpu_memory_utilization=float(get("gpu_memory_utilization", 0.9)),
        num_gpu_blocks_override=get("num_gpu_blocks_override") or get("kv_cache_size"),
        tensor_parallel_size=get("tensor_parallel_size"),
        data_parallel_size=int(get("data_parallel_size", 1)),
        dtype=get("dtype", "auto"),
        kv_events=kv_events,
        enable_lora=bool(get("enable_lora", False)) or bool(lora_specs),
        lora_modules=[_parse_lora(s if isinstance(s, str) else json.dumps(s)) for s in lora_specs],
        max_loras=int(get("max_loras", 1)),
        upstream=upstream,
        mode=get("mode", "random"),
        seed=get("seed"),
        time_scale=time_scale,
        startup_delay=float(startup),
        replicas=int(get("replicas", 1)),
        failure_rate=float(get("failure_rate", 0.0)),
        failure_types=list(get("failure_types") or []),
        pod_name=get("pod_name") or os.environ.get("POD_NAME"),
        tokenizer=get("tokenizer"),
        legacy_gpu_cache_metric=bool(get("gpu_cache_usage_metric", False)),
        max_request_body_mb=int(get("max_request_body_size_mb", 4)),
    )
    _check(cfg)
    return cfg


def _check(cfg: SimConfig) -> None:
    from inferplane.sim.protocol import FAILURES

    for name, value in (("--max-num-seqs", cfg.max_num_seqs), ("--max-num-batched-tokens", cfg.max_num_batched_tokens)):
        if value < 1:
            raise UsageError(f"{name} must be ≥ 1")
    if cfg.block_size < 1 or cfg.replicas < 1 or cfg.data_parallel_size < 1:
        raise UsageError("--block-size, --replicas and --data-parallel-size must be ≥ 1")
    if not 0 < cfg.gpu_memory_utilization <= 1:
        raise UsageError("--gpu-memory-utilization must be in (0, 1]")
    if not 0 <= cfg.failure_rate <= 100:
        raise UsageError("--failure-rate is a percentage (0-100)")
    bad = [t for t in cfg.failure_types if t not in FAILURES]
    if bad:
        raise UsageError(f"--failure-types: unknown {bad}", hint=f"choose from {sorted(FAILURES)}")
    blocks = cfg.num_gpu_blocks()
    tp = cfg.tensor_parallel_size or cfg.profile.tensor_parallel_size
    if blocks < 1:
        raise UsageError(
            f"profile {cfg.profile.name}: {cfg.profile.model.name} leaves no memory for the KV cache on "
            f"{cfg.profile.accelerator.name} with tensor parallel size {tp}",
            hint="raise --tensor-parallel-size or --gpu-memory-utilization, or pick another --profile",
        )
    need = -(-cfg.max_model_len // cfg.block_size)
    if need > blocks:
        raise UsageError(
            f"--max-model-len {cfg.max_model_len} needs {need} KV blocks of {cfg.block_size} tokens but only "
            f"{blocks} fit (vLLM refuses to start in this case)",
            hint="lower --max-model-len or give more KV memory (--num-gpu-blocks-override, --gpu-memory-utilization)",
        )
    if cfg.max_num_batched_tokens < cfg.max_model_len and cfg.max_num_batched_tokens < cfg.block_size:
        raise UsageError("--max-num-batched-tokens is smaller than one block")


def _pod_name(cfg: SimConfig, port: int, index: int) -> str:
    if cfg.pod_name:
        return cfg.pod_name if cfg.num_endpoints == 1 else f"{cfg.pod_name}-{index}"
    return f"{socket.gethostname()}-{port}"


async def serve(cfg: SimConfig, stop: asyncio.Event | None = None) -> None:
    from aiohttp import web

    from inferplane.sim.replica import Replica, ReplicaIdentity
    from inferplane.sim.server import build_app
    from inferplane.tokenizer import get_tokenizer

    tokenizer = get_tokenizer(_tokenizer_spec(cfg.tokenizer))
    topic_host = os.environ.get("POD_IP") or ("127.0.0.1" if cfg.host in ("0.0.0.0", "::", "") else cfg.host)
    replicas: list[Replica] = []
    runners: list[web.AppRunner] = []
    loras = {m.name: m.path for m in cfg.lora_modules}
    try:
        for index in range(cfg.num_endpoints):
            port = cfg.port + index
            dp = cfg.data_parallel_size > 1
            rank = index % cfg.data_parallel_size
            ident = ReplicaIdentity(
                index, port, _pod_name(cfg, port, index), str(rank) if dp else "0", rank if dp else None, dict(loras)
            )
            replica = Replica(cfg, ident, tokenizer, topic_host)
            replica.start()
            replicas.append(replica)
            runner = web.AppRunner(build_app(replica), access_log=None, handler_cancellation=True)
            await runner.setup()
            runners.append(runner)
            try:
                await web.TCPSite(runner, cfg.host, port, backlog=1024).start()
            except OSError as exc:
                raise UsageError(f"cannot listen on {cfg.host}:{port}: {exc.strerror}") from None
        ports = f"{cfg.port}-{cfg.port + cfg.num_endpoints - 1}" if cfg.num_endpoints > 1 else str(cfg.port)
        print(
            f"inferplane sim: {cfg.names[0]} ({replicas[0].latency.name}, {replicas[0].num_gpu_blocks} KV blocks "
            f"of {cfg.block_size}) on {cfg.host}:{ports}",
            flush=True,
        )
        await (stop or asyncio.Event()).wait()
    finally:
        for runner in runners:
            await runner.cleanup()
        for replica in replicas:
            await replica.stop()


def _tokenizer_spec(spec: str | None) -> str | None:
    if spec is None or spec == "simple" or spec.startswith("hf:") or Path(spec).exists():
        return spec
    # vLLM deployments pass a Hugging Face hub name here; without the files the built-in tokenizer stands in
    log.info("tokenizer %s is not a local file; using the built-in tokenizer", spec)
    return None


def run(args: argparse.Namespace) -> int:
    cfg = resolve(args)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(cfg, stop)

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        asyncio.run(main())
    else:
        uvloop.run(main())
    return 0
