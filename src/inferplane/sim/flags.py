"""Command-line flags: the vLLM flags deployments pass, llm-d-inference-sim's flags, and the simulator's own.

vLLM flags the simulator has no use for are accepted and ignored (a debug line names them), so a pattern's
`vllm serve` args work unchanged; anything else is an argparse error (exit 2). Both `--flag=value` and
`--flag value` work, and so does a positional model (`inferplane sim serve MODEL ...`, like `vllm serve MODEL`).
Simulator flags default to None so that a `--config` YAML (llm-d-inference-sim's format) can fill what the command
line left out: command line > YAML > built-in default.
"""

from __future__ import annotations

import argparse


def _names(text: str) -> list[str]:
    return text.split()


# vLLM `serve` flags that take a value and do not change the simulation.
VLLM_IGNORED_VALUE_FLAGS = _names(
    "additional-config all2all-backend allowed-headers allowed-methods allowed-origins api-key "
    "api-server-count chat-template chat-template-content-format code-revision collect-detailed-traces "
    "compilation-config config-format cpu-offload-gb cuda-graph-sizes data-parallel-address "
    "data-parallel-backend data-parallel-rpc-port data-parallel-size-local data-parallel-start-rank "
    "dbo-decode-token-threshold dbo-prefill-token-threshold device distributed-executor-backend download-dir "
    "ec-transfer-config eplb-config expert-placement-strategy generation-config guided-decoding-backend "
    "h11-max-header-count h11-max-incomplete-event-size hf-config-path hf-overrides hf-token kv-cache-dtype "
    "kv-cache-memory-bytes kv-offloading-backend kv-offloading-size kv-transfer-config limit-mm-per-prompt "
    "load-format log-config-file logits-processor-pattern logprobs-mode long-lora-scaling-factors "
    "long-prefill-token-threshold lora-dtype lora-extra-vocab-size mamba-ssm-cache-dtype max-cpu-loras "
    "max-cudagraph-capture-size max-log-len max-logprobs max-long-partial-prefills max-lora-rank "
    "max-num-partial-prefills max-parallel-loading-workers max-prompt-adapters max-seq-len-to-capture "
    "middleware mm-processor-kwargs model-impl num-redundant-experts otlp-traces-endpoint "
    "override-generation-config override-pooler-config pipeline-parallel-size pooler-config preemption-mode "
    "prefix-caching-hash-algo quantization reasoning-parser response-role revision root-path rope-scaling "
    "rope-theta runner convert safetensors-load-strategy scheduler-delay-factor scheduling-policy "
    "speculative-config ssl-ca-certs ssl-cert-reqs ssl-certfile ssl-keyfile structured-outputs-config task "
    "tokenizer-mode tokenizer-pool-size tokenizer-revision tool-call-parser tool-parser-plugin ubatch-size "
    "uvicorn-log-level worker-cls worker-extension-cls "
)

# vLLM `serve` switches (each also accepted as --no-<name>) that do not change the simulation.
VLLM_IGNORED_SWITCHES = _names(
    "async-scheduling calculate-kv-scales data-parallel-external-lb data-parallel-hybrid-lb "
    "disable-async-output-proc disable-cascade-attn disable-custom-all-reduce disable-fastapi-docs "
    "disable-frontend-multiprocessing disable-log-requests disable-log-stats disable-mm-preprocessor-cache "
    "disable-sliding-window disable-uvicorn-access-log enable-auto-tool-choice enable-chunked-prefill "
    "enable-dbo enable-eplb enable-expert-parallel enable-force-include-usage enable-log-outputs "
    "enable-log-requests enable-lora-bias enable-mfu-metrics enable-prompt-tokens-details enable-reasoning "
    "enable-request-id-headers enable-server-load-tracking enable-sleep-mode enable-tokenizer-info-endpoint "
    "enforce-eager fully-sharded-loras headless ray-workers-use-nsight return-tokens-as-token-ids "
    "skip-tokenizer-init trust-remote-code use-v2-block-manager "
)

# llm-d-inference-sim flags: latency settings (Go durations) and others the simulator maps onto its own.
UPSTREAM_DURATION_FLAGS = _names(
    "time-to-first-token time-to-first-token-std-dev inter-token-latency inter-token-latency-std-dev "
    "prefill-overhead prefill-time-per-token prefill-time-std-dev kv-cache-transfer-latency "
    "kv-cache-transfer-latency-std-dev kv-cache-transfer-time-per-token kv-cache-transfer-time-std-dev "
)
UPSTREAM_IGNORED_FLAGS = _names(
    "hash-seed event-batch-size render-url render-timeout dataset-path dataset-url dataset-table-name "
    "kv-events-replay-endpoint kv-events-replay-queue-size global-cache-hit-threshold data-parallel-rank "
    "fake-metrics-refresh-interval zmq-max-connect-attempts "
)
UPSTREAM_IGNORED_SWITCHES = _names("strict dataset-in-memory force-dummy-tokenizer use-vllm-map-event-format ")

IGNORED_DESTS = {f.replace("-", "_") for f in VLLM_IGNORED_VALUE_FLAGS + UPSTREAM_IGNORED_FLAGS}
IGNORED_DESTS |= {f.replace("-", "_") for f in VLLM_IGNORED_SWITCHES + UPSTREAM_IGNORED_SWITCHES}


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("positional", nargs="*", metavar="[serve] MODEL", help="model, like `vllm serve MODEL`")
    v = p.add_argument_group("vLLM flags (the ones the simulation uses)")
    v.add_argument("--model", help="model name (served unless --served-model-name is given)")
    v.add_argument("--served-model-name", nargs="+", help="names the API accepts (first one labels metrics)")
    v.add_argument("--host", help="address to listen on (default 0.0.0.0)")
    v.add_argument("--port", type=int, help="first port (default 8000); replicas and DP ranks take the next ones")
    v.add_argument("--max-model-len", type=int, help="context length: prompt + max_tokens (default 8192)")
    v.add_argument("--max-num-seqs", type=int, help="running batch size (default 256)")
    v.add_argument("--max-num-batched-tokens", type=int, help="token budget per step (default 8192)")
    v.add_argument("--enable-prefix-caching", action=argparse.BooleanOptionalAction, default=None)
    v.add_argument("--block-size", type=int, help="KV block size in tokens (default 16)")
    v.add_argument("--gpu-memory-utilization", type=float, help="fraction of accelerator memory (default 0.9)")
    v.add_argument("--num-gpu-blocks-override", type=int, help="KV capacity in blocks, instead of the profile's")
    v.add_argument("--tensor-parallel-size", "-tp", type=int, help="splits weights, KV and step time over ranks")
    v.add_argument("--data-parallel-size", "-dp", type=int, help="engines, one endpoint each on consecutive ports")
    v.add_argument("--dtype", help="accepted; the profile's model dtype is used")
    v.add_argument("--kv-events-config", help="JSON, as vLLM: enable_kv_cache_events, publisher, endpoint, topic")
    v.add_argument("--enable-lora", action=argparse.BooleanOptionalAction, default=None)
    v.add_argument("--lora-modules", nargs="+", help="name=path or JSON {name, path, base_model_name}")
    v.add_argument("--max-loras", type=int, help="max LoRA adapters per batch (reported in metrics)")
    v.add_argument("--tokenizer", help="'simple' (built in) or a Hugging Face tokenizer.json path")
    v.add_argument("--seed", type=int, help="seed for random outputs, jitter and failure injection")
    s = p.add_argument_group("simulator flags")
    s.add_argument("--profile", help="latency profile name or YAML path (default: from --accelerator and model)")
    s.add_argument("--accelerator", help="h100 | h200 | l4 | tpu-v5e (default h100) when --profile is not given")
    s.add_argument("--zero-latency", action="store_true", default=None, help="same as --profile zero")
    s.add_argument("--mode", choices=("echo", "random"), help="output text: the prompt back or random words")
    s.add_argument("--time-scale", type=float, help="wall seconds per simulated second (0.1 = 10x faster)")
    s.add_argument("--startup-delay", type=float, help="seconds /health/ready answers 503 (model loading)")
    s.add_argument("--replicas", type=int, help="independent engines in this process on consecutive ports")
    s.add_argument("--failure-rate", "--failure-injection-rate", type=float, help="percent of requests to fail")
    s.add_argument("--failure-types", nargs="+", help="rate_limit invalid_api_key context_length server_error ...")
    s.add_argument("--pod-name", help="x-inference-pod header (default $POD_NAME or HOSTNAME-PORT)")
    s.add_argument("--max-waiting-queue-length", type=int, help="queue limit; beyond it requests get 429")
    s.add_argument("--gpu-cache-usage-metric", action="store_true", default=None, help="also vllm:gpu_cache_usage_perc")
    s.add_argument("--max-request-body-size-mb", type=int, help="larger bodies get 413 (default 4)")
    u = p.add_argument_group("llm-d-inference-sim compatibility")
    u.add_argument("--config", help="llm-d-inference-sim YAML config (flags given here win)")
    u.add_argument("--latency-calculator", choices=("constant", "per-token", ""), help="upstream latency mode")
    for name in UPSTREAM_DURATION_FLAGS:
        u.add_argument(f"--{name}", metavar="DURATION", help=argparse.SUPPRESS)
    u.add_argument("--time-factor-under-load", type=float, help=argparse.SUPPRESS)
    u.add_argument("--startup-duration", metavar="DURATION", help=argparse.SUPPRESS)
    u.add_argument("--kv-cache-size", type=int, help=argparse.SUPPRESS)
    u.add_argument("--enable-kvcache", action="store_true", default=None, help=argparse.SUPPRESS)
    u.add_argument("--zmq-endpoint", help=argparse.SUPPRESS)
    u.add_argument("--fake-metrics", help=argparse.SUPPRESS)
    ign = p.add_argument_group("accepted and ignored (vLLM / llm-d-inference-sim)")
    for name in VLLM_IGNORED_VALUE_FLAGS + UPSTREAM_IGNORED_FLAGS:
        ign.add_argument(f"--{name}", help=argparse.SUPPRESS)
    for name in VLLM_IGNORED_SWITCHES + UPSTREAM_IGNORED_SWITCHES:
        ign.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, default=None, help=argparse.SUPPRESS)
    ign.add_argument("-O", dest="compilation_level", help=argparse.SUPPRESS)
    IGNORED_DESTS.add("compilation_level")


def parse_duration(value: str | int | float | None, what: str) -> float | None:
    """Go-style durations ("100ms", "250us", "1.5s", "2m"); a bare number is milliseconds, as upstream."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value) / 1000.0
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|h)?\s*", str(value))
    if not m:
        from inferplane.errors import UsageError

        raise UsageError(f"--{what}: {value!r} is not a duration", hint="use e.g. 100ms, 250us, 2s")
    scale = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1e-3}
    return float(m.group(1)) * scale[m.group(2)]
