"""The `vllm:` metrics one simulated engine exports (reference/metrics.md §3), in its own prometheus registry.

Every series carries `model_name` and `engine` (the data-parallel rank, "0" for one engine) like vLLM's v1
loggers. Queue gauges and KV usage are read at scrape time (callbacks), so the step loop pays nothing for them;
histograms are observed when requests finish. The page is rendered from per-family cached text
(`inferplane.sim.exposition`), byte-identical to prometheus_client's `generate_latest` over `registry`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, disable_created_metrics

from inferplane.sim.engine import Sequence
from inferplane.sim.exposition import Family, FastCounter, FastHistogram, FnGauge, LoraInfo

# vLLM disables the `_created` series too; without this every counter and histogram doubles its series count.
disable_created_metrics()

TTFT_BUCKETS: tuple[float, ...] = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5)
TTFT_BUCKETS += (5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
TPOT_BUCKETS: tuple[float, ...] = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0)
TPOT_BUCKETS += (7.5, 10.0, 20.0, 40.0, 80.0)
REQUEST_BUCKETS: tuple[float, ...] = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0)
REQUEST_BUCKETS += (60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)


def token_buckets(max_model_len: int) -> list[float]:
    """vLLM's 1-2-5 series up to max_model_len (`build_1_2_5_buckets`)."""
    out: list[float] = []
    exp = 0
    while True:
        for m in (1, 2, 5):
            v = m * 10**exp
            if v > max_model_len:
                return out
            out.append(float(v))
        exp += 1


class EngineMetrics:
    def __init__(
        self,
        *,
        model_name: str,
        engine: str,
        block_size: int,
        num_gpu_blocks: int,
        max_model_len: int,
        max_loras: int,
        cache_dtype: str = "auto",
        legacy_gpu_cache_metric: bool = False,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = {"model_name": model_name, "engine": engine}
        self._labels = labels
        names = list(labels)
        # the page's families in page order; `bind_state` adds the scrape-time gauges in front and the LoRA info
        self._families: list[Family] = []
        self._gauge_docs = {
            "vllm:num_requests_running": "Number of requests in model execution batches.",
            "vllm:num_requests_waiting": "Number of requests waiting to be processed.",
            "vllm:kv_cache_usage_perc": "KV-cache usage. 1 means 100 percent usage.",
        }
        self._legacy_gpu_cache_metric = legacy_gpu_cache_metric
        info_labels = {
            "block_size": str(block_size),
            "cache_dtype": cache_dtype,
            "num_cpu_blocks": "0",
            "num_gpu_blocks": str(num_gpu_blocks),
            **labels,
        }
        self._info = FnGauge("vllm:cache_config_info", "Information of the LLMEngine CacheConfig", info_labels, _one)

        def counter(name: str, doc: str, extra: tuple[str, ...] = ()) -> FastCounter:
            c = FastCounter(name, doc, [*names, *extra])
            self._families.append(c)
            return c

        self.prefix_queries = counter("vllm:prefix_cache_queries", "Prefix cache queries, in terms of tokens.")
        self.prefix_hits = counter("vllm:prefix_cache_hits", "Prefix cache hits, in terms of tokens.")
        self.prompt_tokens = counter("vllm:prompt_tokens", "Number of prefill tokens processed.")
        self.generation_tokens = counter("vllm:generation_tokens", "Number of generation tokens processed.")
        self.preemptions = counter("vllm:num_preemptions", "Cumulative number of preemptions from the engine.")
        self.success = counter(
            "vllm:request_success", "Count of successfully processed requests.", ("finished_reason",)
        )

        def hist(name: str, doc: str, buckets: Iterable[float]) -> FastHistogram:
            h = FastHistogram(name, doc, labels, buckets)
            self._families.append(h)
            return h

        tb = token_buckets(max_model_len)
        self.h_prompt = hist("vllm:request_prompt_tokens", "Number of prefill tokens processed.", tb)
        self.h_generation = hist("vllm:request_generation_tokens", "Number of generation tokens processed.", tb)
        self.h_max_tokens = hist("vllm:request_params_max_tokens", "Histogram of the max_tokens request parameter.", tb)
        self.h_max_gen = hist("vllm:max_num_generation_tokens", "Maximum number of requested generation tokens.", tb)
        self.h_ttft = hist(
            "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", TTFT_BUCKETS
        )
        self.h_tpot = hist("vllm:time_per_output_token_seconds", "Histogram of time per output token.", TPOT_BUCKETS)
        self.h_itl = hist("vllm:inter_token_latency_seconds", "Histogram of inter-token latency.", TPOT_BUCKETS)
        self.h_req_tpot = hist(
            "vllm:request_time_per_output_token_seconds",
            "Histogram of time_per_output_token per request.",
            TPOT_BUCKETS,
        )
        self.h_e2e = hist("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency.", REQUEST_BUCKETS)
        self.h_queue = hist("vllm:request_queue_time_seconds", "Time spent in the WAITING phase.", REQUEST_BUCKETS)
        self.h_infer = hist("vllm:request_inference_time_seconds", "Time spent in the RUNNING phase.", REQUEST_BUCKETS)
        self.h_prefill = hist("vllm:request_prefill_time_seconds", "Time spent in the PREFILL phase.", REQUEST_BUCKETS)
        self.h_decode = hist("vllm:request_decode_time_seconds", "Time spent in the DECODE phase.", REQUEST_BUCKETS)
        self._max_loras = max_loras
        lv = list(labels.values())
        self._c = {
            name: getattr(self, name).labels(*lv)
            for name in ("prefix_queries", "prefix_hits", "prompt_tokens", "generation_tokens", "preemptions")
        }
        self._h: dict[str, FastHistogram] = {n: getattr(self, n) for n in dir(self) if n.startswith("h_")}

    def bind_state(
        self,
        running: Callable[[], float],
        waiting: Callable[[], float],
        kv_usage: Callable[[], float],
        loras: Callable[[], tuple[list[str], list[str]]],
    ) -> None:
        """The scrape-time values; the page is complete (and `registry` filled, in page order) from here on."""
        docs = self._gauge_docs
        gauges = [
            FnGauge(name, docs[name], self._labels, fn)
            for name, fn in (
                ("vllm:num_requests_running", running),
                ("vllm:num_requests_waiting", waiting),
                ("vllm:kv_cache_usage_perc", kv_usage),
            )
        ]
        if self._legacy_gpu_cache_metric:
            gauges.append(
                FnGauge("vllm:gpu_cache_usage_perc", "GPU KV-cache usage (pre-0.10 name).", self._labels, kv_usage)
            )
        self._families = [*gauges, self._info, *self._families, LoraInfo(self._labels, self._max_loras, loras)]
        for fam in self._families:
            self.registry.register(fam)

    def on_admitted(self, seq: Sequence) -> None:
        self._c["prefix_queries"].inc(seq.num_prompt)
        self._c["prefix_hits"].inc(max(seq.num_cached, 0))
        self._c["prompt_tokens"].inc(seq.num_prompt)

    def on_tokens(self, n: int, gaps: dict[float, int]) -> None:
        """`n` tokens came out at a step end; `gaps` counts inter-token gaps by value (one step → few values)."""
        self._c["generation_tokens"].inc(n)
        itl, tpot = self.h_itl.observe, self.h_tpot.observe
        for gap, count in gaps.items():
            itl(gap, count)
            tpot(gap, count)

    def on_preempted(self, n: int) -> None:
        self._c["preemptions"].inc(n)

    def on_first_token(self, seq: Sequence) -> None:
        assert seq.first_token_time is not None
        self._h["h_ttft"].observe(seq.first_token_time - seq.arrival)

    def on_finished(self, seq: Sequence, max_tokens: int) -> None:
        h = self._h
        lv = list(self._labels.values())
        self.success.labels(*lv, seq.finish_reason or "stop").inc()
        end = seq.finish_time or seq.arrival
        started = seq.first_scheduled if seq.first_scheduled is not None else end
        first = seq.first_token_time if seq.first_token_time is not None else end
        h["h_prompt"].observe(seq.num_prompt)
        h["h_generation"].observe(seq.num_output)
        h["h_max_tokens"].observe(max_tokens)
        h["h_max_gen"].observe(max_tokens)
        h["h_e2e"].observe(end - seq.arrival)
        h["h_queue"].observe(started - seq.arrival)
        h["h_infer"].observe(end - started)
        h["h_prefill"].observe(first - started)
        h["h_decode"].observe(end - first)
        if seq.num_output > 1:
            h["h_req_tpot"].observe((end - first) / (seq.num_output - 1))

    def exposition(self) -> bytes:
        """The page: each family's cached text, refilled only where values changed since the last scrape."""
        return "".join([f.text() for f in self._families]).encode()


def _one() -> float:
    return 1.0
