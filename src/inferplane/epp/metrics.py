"""The endpoint picker's Prometheus metrics, with the upstream names (metrics.md §2), on their own registry.

Pool gauges are computed when Prometheus scrapes (a custom collector over the datastore) instead of upstream's
5-second flush: they are always current and cost nothing between scrapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from inferplane import __version__
from inferplane.epp.datalayer.datastore import Datastore
from inferplane.epp.fastmetrics import FastCounter, FastGauge, FastHistogram
from inferplane.epp.framework.capabilities import DecisionCounter, KVEventsConsumer, PrefixIndexStats

OBJ = ("model_name", "target_model_name")
# Upstream buckets: durations 5 ms – 3600 s; sizes in bytes; token counts.
DURATION_BUCKETS = (0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30,
                    45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600)  # fmt: skip
SIZE_BUCKETS = tuple(float(2**i) for i in range(6, 31, 2))  # 64 B … 1 GiB
TOKEN_BUCKETS = (1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32778, 65536, 131072, 262144)
NTPOT_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
FAST_BUCKETS = (0.00001, 0.00002, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1,
                0.2, 0.5, 1.0)  # fmt: skip


class PoolCollector(Collector):
    """`inference_pool_*` gauges, read from the datastore at scrape time."""

    def __init__(self, datastore: Datastore, saturation: Callable[[], float] | None = None) -> None:
        self.datastore = datastore
        self.saturation = saturation

    def collect(self) -> Iterator[GaugeMetricFamily]:
        ds = self.datastore
        name = ds.pool_name
        ready = [e for e in ds.endpoints.values() if e.ready]
        n = len(ready)

        def avg(values: list[float]) -> float:
            return sum(values) / n if n else 0.0

        for metric, doc, value in (
            ("inference_pool_average_kv_cache_utilization", "Average KV-cache utilization of the pool's ready "
             "endpoints.", avg([e.metrics.kv_cache_usage_percent for e in ready])),
            ("inference_pool_average_queue_size", "Average waiting-queue size.",
             avg([float(e.metrics.waiting_queue_size) for e in ready])),
            ("inference_pool_average_running_requests", "Average running requests.",
             avg([float(e.metrics.running_requests_size) for e in ready])),
            ("inference_pool_ready_pods", "Ready endpoints in the pool.", float(n)),
        ):  # fmt: skip
            g = GaugeMetricFamily(metric, doc, labels=["name"])
            g.add_metric([name], value)
            yield g
        per_pod = GaugeMetricFamily(
            "inference_pool_per_pod_queue_size", "Waiting-queue size per endpoint.", labels=["name", "model_server_pod"]
        )
        for e in ds.endpoints.values():
            per_pod.add_metric([name, e.name], float(e.metrics.waiting_queue_size))
        yield per_pod
        if self.saturation is not None:
            sat = GaugeMetricFamily(
                "inference_extension_flow_control_pool_saturation", "Pool saturation (1.0 = saturated)."
            )
            sat.add_metric([], float(self.saturation()))
            yield sat


class SchedulerCollector(Collector):
    """Plugin state the scheduler keeps (prefix index size and hit ratio, P/D decisions, KV-event index counters),
    read at scrape time so the plugins stay free of metric code."""

    def __init__(self, plugins: Mapping[str, object]) -> None:
        self.plugins = plugins

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        plugins = list(self.plugins.values())
        producers = [p for p in plugins if isinstance(p, PrefixIndexStats)]
        if producers:
            size = GaugeMetricFamily("inference_extension_prefix_indexer_size", "Prefix hashes held in the index.")
            size.add_metric([], float(sum(p.index_size() for p in producers)))
            yield size
            queried = sum(p.queried_blocks for p in producers)
            ratio = GaugeMetricFamily(
                "inference_extension_prefix_indexer_hit_ratio", "Matched / queried prefix blocks since start."
            )
            ratio.add_metric([], sum(p.hit_blocks for p in producers) / queried if queried else 0.0)
            yield ratio
            hit = CounterMetricFamily(
                "inference_extension_prefix_indexer_hit_bytes", "Prompt bytes matched in the prefix index."
            )
            hit.add_metric([], float(sum(p.hit_bytes for p in producers)))
            yield hit
        handlers = [p for p in plugins if isinstance(p, DecisionCounter)]
        if handlers:
            pd = CounterMetricFamily(
                "llm_d_inference_scheduler_pd_decision", "Prefill/decode decisions.", labels=["decision_type"]
            )
            for kind in ("decode-only", "prefill-decode"):
                pd.add_metric([kind], float(sum(h.decisions.get(kind, 0) for h in handlers)))
            yield pd
        indexes = [p.kv_index_stats() for p in plugins if isinstance(p, KVEventsConsumer)]
        if indexes:
            kv = GaugeMetricFamily(
                "inferplane_epp_kv_index_events", "KV-event index counters (mismatches made visible).", labels=["stat"]
            )
            for stat in sorted({k for i in indexes for k in i}):
                kv.add_metric([stat], float(sum(i.get(stat, 0) for i in indexes)))
            yield kv


class InfoCollector(Collector):
    def collect(self) -> Iterator[InfoMetricFamily]:
        info = InfoMetricFamily("inference_extension", "Endpoint picker build.")
        info.add_metric([], {"commit": "inferplane", "build_ref": __version__})
        yield info


class EppMetrics:
    """Every metric the EPP exports; one instance per EPP process (tests create their own)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        # hot path (every request): fastmetrics, registered as collectors
        self.request_total = FastCounter("inference_objective_request_total", "Requests per model.", [*OBJ, "priority"])
        self.request_error = FastCounter(
            "inference_objective_request_error_total", "Failed requests per model.", [*OBJ, "error_code"]
        )
        self.request_duration = FastHistogram(
            "inference_objective_request_duration_seconds", "End-to-end request latency.", OBJ, DURATION_BUCKETS
        )
        self.request_sizes = FastHistogram(
            "inference_objective_request_sizes", "Request body sizes in bytes.", OBJ, SIZE_BUCKETS
        )
        self.response_sizes = FastHistogram(
            "inference_objective_response_sizes", "Response body sizes in bytes.", OBJ, SIZE_BUCKETS
        )
        self.input_tokens = FastHistogram(
            "inference_objective_input_tokens", "Prompt tokens per request.", OBJ, TOKEN_BUCKETS
        )
        self.output_tokens = FastHistogram(
            "inference_objective_output_tokens", "Output tokens per request.", OBJ, TOKEN_BUCKETS
        )
        self.cached_tokens = FastHistogram(
            "inference_objective_prompt_cached_tokens", "Cached prompt tokens per request.", OBJ, TOKEN_BUCKETS
        )
        self.ntpot = FastHistogram(
            "inference_objective_normalized_time_per_output_token_seconds",
            "Request latency per output token.",
            OBJ,
            NTPOT_BUCKETS,
        )
        self.running_requests = FastGauge(
            "inference_objective_running_requests", "Requests in flight per model.", ["model_name"]
        )
        self.scheduler_e2e = FastHistogram(
            "inference_extension_scheduler_e2e_duration_seconds", "Scheduling decision latency.", (), FAST_BUCKETS
        )
        self.scheduler_attempts = FastCounter(
            "inference_extension_scheduler_attempts_total",
            "Scheduling attempts.",
            ["status", "target_model_name", "pod_name", "namespace", "port"],
        )
        self.plugin_duration_hist = FastHistogram(
            "inference_extension_plugin_duration_seconds",
            "Plugin call latency.",
            ["extension_point", "plugin_type", "plugin_name"],
            FAST_BUCKETS,
        )
        for c in (
            self.request_total, self.request_error, self.request_duration, self.request_sizes, self.response_sizes,
            self.input_tokens, self.output_tokens, self.cached_tokens, self.ntpot, self.running_requests,
            self.scheduler_e2e, self.scheduler_attempts, self.plugin_duration_hist,
        ):  # fmt: skip
            r.register(c)
        self.model_rewrite_decisions = Counter(
            "inference_extension_model_rewrite_decisions_total", "Model rewrites applied.", registry=r
        )
        self.flow_queue_duration = Histogram(
            "inference_extension_flow_control_request_queue_duration_seconds", "Time spent in flow-control queues.",
            ["fairness_id", "priority", "outcome", "inference_pool", "model_name", "target_model_name"],
            buckets=DURATION_BUCKETS, registry=r,
        )  # fmt: skip
        self.flow_queue_size = Gauge(
            "inference_extension_flow_control_queue_size", "Requests queued by flow control.", registry=r
        )
        self.flow_queue_bytes = Gauge(
            "inference_extension_flow_control_queue_bytes", "Bytes queued by flow control.", registry=r
        )
        # inferplane's own (asked for upstream in GIE #690): how fresh the scheduler's view is.
        self.scrape_duration = Histogram(
            "inferplane_epp_metrics_scrape_duration_seconds", "Model-server /metrics scrape latency.",
            buckets=FAST_BUCKETS, registry=r,
        )  # fmt: skip
        self.scrape_errors = Counter(
            "inferplane_epp_metrics_scrape_errors_total", "Failed model-server /metrics scrapes.", ["endpoint"],
            registry=r,
        )  # fmt: skip
        self.kv_events = Counter(
            "inferplane_epp_kv_events_total", "KV-cache events received, by type.", ["type"], registry=r
        )
        self.kv_events_unmatched = Counter(
            "inferplane_epp_kv_events_unmatched_total",
            "KV-event batches whose topic names no endpoint of the pool.",
            registry=r,
        )
        r.register(InfoCollector())

    def attach_pool(
        self,
        datastore: Datastore,
        saturation: Callable[[], float] | None = None,
        plugins: Mapping[str, object] | None = None,
    ) -> None:
        self.registry.register(PoolCollector(datastore, saturation))
        if plugins is not None:
            self.registry.register(SchedulerCollector(plugins))

    # framework.interfaces.Observer
    def plugin_duration(self, extension_point: str, plugin_type: str, plugin_name: str, seconds: float) -> None:
        self.plugin_duration_hist.observe((extension_point, plugin_type, plugin_name), seconds)
