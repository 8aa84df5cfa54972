"""Plugin types that appear in EndpointPickerConfig files but are carried out outside the scheduler: data-layer
sources and extractors (the EPP's metrics scraper and KV-event subscriber), request parsers (the ext_proc server)
and flow-control policies (`inferplane.epp.flowcontrol`). Registering them lets configs that name them validate and
lets those components read their parameters from the built plugin."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from inferplane.epp import openai_parser
from inferplane.epp.framework.interfaces import RequestHooks, RequestParser, RequestState
from inferplane.epp.framework.registry import Plugin, PluginParams, register
from inferplane.epp.framework.types import Endpoint, LLMRequest, LLMRequestBody


class MetricsDataSourceParams(PluginParams):
    scheme: str = "http"
    path: str = "/metrics"
    insecure_skip_verify: bool = Field(default=True, alias="insecureSkipVerify")


class CoreMetricsExtractorParams(PluginParams):
    # Metric-name overrides (GIE flags `--total-queued-requests-metric` etc.); None = the engine's defaults.
    engine_label_key: str | None = Field(default=None, alias="engineLabelKey")
    queued_requests_metric: str | None = Field(default=None, alias="totalQueuedRequestsMetric")
    running_requests_metric: str | None = Field(default=None, alias="totalRunningRequestsMetric")
    kv_cache_usage_metric: str | None = Field(default=None, alias="kvCacheUsagePercentageMetric")
    lora_info_metric: str | None = Field(default=None, alias="loraInfoMetric")
    cache_info_metric: str | None = Field(default=None, alias="cacheInfoMetric")


class DataLayerPlugin(Plugin):
    """Configuration holder read by the EPP's data layer."""

    def parameters(self) -> dict[str, Any]:
        return self.params.model_dump(by_alias=True)


@register("metrics-data-source", "datalayer", MetricsDataSourceParams, needs_body=False, implicit=True)
class MetricsDataSource(DataLayerPlugin):
    """Scrapes each endpoint's /metrics."""


@register("core-metrics-extractor", "datalayer", CoreMetricsExtractorParams, needs_body=False, implicit=True)
class CoreMetricsExtractor(DataLayerPlugin):
    """Turns scraped vLLM / SGLang / TensorRT-LLM metrics into `Metrics`."""


@register("endpoint-notification-source", "datalayer")
class EndpointNotificationSource(DataLayerPlugin):
    """Endpoint add/remove notifications (per-pod KV-event subscriptions in llm-d v0.8)."""


@register("k8s-notification-source", "datalayer")
class K8sNotificationSource(DataLayerPlugin):
    """Kubernetes object notifications."""


@register("openai-parser", "parser", implicit=True)
class OpenAIParser(RequestParser):
    """OpenAI completions, chat, responses and embeddings bodies."""

    def parse_request(self, body: bytes, path: str) -> LLMRequestBody | None:
        return openai_parser.parse_request_body(body, path)


@register("passthrough-parser", "parser", needs_body=False, implicit=True)
class PassthroughParser(RequestParser):
    """Body not parsed; scheduling without prompt data, the model from `x-gateway-model-name` as for a body-less
    request (GIE's hermetic test: the passthrough parser routes to the lowest queue)."""

    def parse_request(self, body: bytes, path: str) -> LLMRequestBody | None:
        return None


@register("vllmgrpc-parser", "parser", implicit=True)
class VLLMGrpcParser(Plugin):
    """vLLM's gRPC request format. Registered so that configurations naming it load and validate with a precise
    answer, but it is not a `RequestParser`: the config loader rejects it as a parser (inferplane's EPP serves HTTP
    model servers only)."""


SERVED_ENDPOINT_HEADER = "x-conformance-test-served-endpoint"


@register("destination-endpoint-served-verifier", "producer")
class DestinationEndpointServedVerifier(RequestHooks):
    """GIE conformance helper: the response names the endpoint that served it."""

    def response_received(
        self, request: LLMRequest, endpoint: Endpoint | None, state: RequestState
    ) -> dict[str, str] | None:
        return {SERVED_ENDPOINT_HEADER: endpoint.hostport} if endpoint is not None else None
