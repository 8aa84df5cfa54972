"""Reading the few model-server metrics the scheduler needs out of a Prometheus text page.

Names per engine follow `metrics.md` §1 (vLLM, SGLang, trtllm-serve, Triton TRT-LLM); both vLLM KV names are
accepted. An endpoint speaks one engine, so the specs of every engine are searched at once.

Why a hand-written parser: it runs 20 times a second per endpoint. On a 30 KB vLLM-style page (histograms
included) `benchmarks/epp_metrics_parse.py` measured, on this 2-core machine:
    hand-written (str.find on the wanted names only, one engine per page): ~28 µs per page
    prometheus_client.parser.text_string_to_metric_families: ~4,500 µs per page (~160x slower)
i.e. 0.6 ms vs 90 ms of CPU per endpoint per second at 50 ms scrapes. The hand parser is kept; tests check it
against prometheus_client's parser on generated pages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True, slots=True)
class Spec:
    """One series to read: a metric name, an optional label that must match, and where the value goes."""

    name: str
    field: str
    label: tuple[str, str] | None = None


SPECS: tuple[Spec, ...] = (
    Spec("vllm:num_requests_waiting", "waiting"),
    Spec("sglang:num_queue_reqs", "waiting"),
    Spec("trtllm_num_requests_waiting", "waiting"),
    Spec("nv_trt_llm_request_metrics", "waiting", ("request_type", "waiting")),
    Spec("vllm:num_requests_running", "running"),
    Spec("sglang:num_running_reqs", "running"),
    Spec("trtllm_num_requests_running", "running"),
    Spec("nv_trt_llm_request_metrics", "running", ("request_type", "scheduled")),
    Spec("vllm:kv_cache_usage_perc", "kv"),
    Spec("vllm:gpu_cache_usage_perc", "kv"),  # vLLM < 0.10
    Spec("sglang:token_usage", "kv"),
    Spec("trtllm_kv_cache_utilization", "kv"),
    Spec("nv_trt_llm_kv_cache_block_metrics", "kv", ("kv_cache_block_type", "fraction")),
    Spec("trtllm_kv_cache_tokens_per_block", "block_size"),
    Spec("nv_trt_llm_kv_cache_block_metrics", "block_size", ("kv_cache_block_type", "tokens_per")),
    Spec("trtllm_kv_cache_max_blocks", "num_blocks"),
    Spec("nv_trt_llm_kv_cache_block_metrics", "num_blocks", ("kv_cache_block_type", "max")),
)
# Info metrics whose labels carry the values: name → (block-size label, block-count label).
CACHE_CONFIG = {
    "vllm:cache_config_info": ("block_size", "num_gpu_blocks"),
    "sglang:cache_config_info": ("page_size", "num_pages"),
}
LORA_INFO = "vllm:lora_requests_info"
_ENGINE_PREFIXES = ("vllm:", "sglang:", "trtllm_", "nv_trt_llm_")


@dataclass(slots=True)
class ParsedMetrics:
    """What one page said; None for a family the page does not have (so a missing family can be warned about)."""

    waiting: float | None = None
    running: float | None = None
    kv: float | None = None
    block_size: float | None = None
    num_blocks: float | None = None
    running_loras: list[str] | None = None
    waiting_loras: list[str] | None = None
    max_lora: int | None = None
    seen: set[str] = field(default_factory=set)  # names found, for "missing family" warnings


def parse_labels(text: str) -> dict[str, str]:
    return {k: v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\") for k, v in _LABEL_RE.findall(text)}


def _series(text: str, name: str, first_only: bool = False) -> list[tuple[str, float]]:
    """Every sample line of `name` as (label text, value); lines are found with str.find, never split.
    `text` starts with a newline (parse_metrics adds it) so the first line is found like any other."""
    out: list[tuple[str, float]] = []
    needle = "\n" + name
    n = len(needle)
    pos = text.find(needle)
    while pos != -1:
        start = pos + n
        end = text.find("\n", start)
        if end == -1:
            end = len(text)
        rest = text[start:end]
        labels = ""
        if rest.startswith("{"):
            close = rest.rfind("}")
            labels, rest = rest[1:close], rest[close + 1 :]
        elif not rest.startswith((" ", "\t")):
            rest = ""  # a longer name sharing the prefix (e.g. `_created`, `_bucket`)
        parts = rest.split()
        if parts:
            try:
                out.append((labels, float(parts[0])))
            except ValueError:
                pass
            else:
                if first_only:
                    return out
        pos = text.find(needle, end)
    return out


def _adapters(value: str | None) -> list[str]:
    return [a.strip() for a in (value or "").split(",") if a.strip()]


def parse_metrics(text: str) -> ParsedMetrics:
    out = ParsedMetrics()
    text = "\n" + text
    # One engine per page: the first prefix found wins, so a vLLM page costs no full scans for SGLang/TRT-LLM
    # names (each miss scans the whole page, ~7 µs on 30 KB).
    engines = next(((p,) for p in _ENGINE_PREFIXES if "\n" + p in text), ())
    for spec in SPECS:
        if getattr(out, spec.field) is not None or not spec.name.startswith(engines):
            continue
        for labels, value in _series(text, spec.name, first_only=spec.label is None):
            if spec.label is not None and parse_labels(labels).get(spec.label[0]) != spec.label[1]:
                continue
            setattr(out, spec.field, value)
            out.seen.add(spec.name)
            break
    for name, (block_label, count_label) in CACHE_CONFIG.items():
        if not name.startswith(engines):
            continue
        for labels, _value in _series(text, name, first_only=True):
            lab = parse_labels(labels)
            try:
                out.block_size = float(lab[block_label])
                out.num_blocks = float(lab[count_label])
            except (KeyError, ValueError):
                continue
            out.seen.add(name)
            break
    lora = _series(text, LORA_INFO) if "vllm:" in engines else []
    if lora:
        # each label permutation is a new series whose value is its creation time: the newest one wins
        labels, _ = max(lora, key=lambda s: s[1])
        lab = parse_labels(labels)
        out.running_loras = _adapters(lab.get("running_lora_adapters"))
        out.waiting_loras = _adapters(lab.get("waiting_lora_adapters"))
        try:
            out.max_lora = int(float(lab.get("max_lora", "0") or 0))
        except ValueError:
            out.max_lora = 0
        out.seen.add(LORA_INFO)
    return out
