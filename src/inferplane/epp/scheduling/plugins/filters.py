"""Filters (llm-d `decode-filter`, `prefill-filter`, `by-label`, `label-selector-filter`; GIE
`header-based-testing-filter`), reference/epp.md §3.3, §3.5."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from inferplane.epp.framework.interfaces import CycleState, Filter
from inferplane.epp.framework.registry import PluginParams, register
from inferplane.epp.framework.types import Endpoint, LLMRequest

ROLE_LABEL = "llm-d.ai/role"
TEST_SELECTION_HEADER = "test-epp-endpoint-selection"


@register("decode-filter", "filter", needs_body=False)
class DecodeFilter(Filter):
    """Keeps endpoints labelled `llm-d.ai/role` decode or both, or not labelled at all."""

    def filter(self, cycle: CycleState, request: LLMRequest, endpoints: list[Endpoint]) -> list[Endpoint]:
        return [e for e in endpoints if e.labels.get(ROLE_LABEL, "both") in ("decode", "both")]


@register("prefill-filter", "filter", needs_body=False)
class PrefillFilter(Filter):
    """Keeps endpoints labelled `llm-d.ai/role: prefill`."""

    def filter(self, cycle: CycleState, request: LLMRequest, endpoints: list[Endpoint]) -> list[Endpoint]:
        return [e for e in endpoints if e.labels.get(ROLE_LABEL) == "prefill"]


class ByLabelParams(PluginParams):
    label: str = Field(min_length=1)
    valid_values: list[str] = Field(default_factory=list, alias="validValues")
    allows_no_label: bool = Field(default=False, alias="allowsNoLabel")


@register("by-label", "filter", ByLabelParams, needs_body=False)
class ByLabelFilter(Filter):
    """Keeps endpoints whose `label` has one of `validValues` (or no such label, when `allowsNoLabel`)."""

    params: ByLabelParams

    def filter(self, cycle: CycleState, request: LLMRequest, endpoints: list[Endpoint]) -> list[Endpoint]:
        p = self.params
        valid = set(p.valid_values)
        out = []
        for e in endpoints:
            v = e.labels.get(p.label)
            if (v is None and p.allows_no_label) or (v is not None and v in valid):
                out.append(e)
        return out


class LabelSelectorRequirement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = Field(default_factory=list)

    def matches(self, labels: dict[str, str]) -> bool:
        if self.operator == "Exists":
            return self.key in labels
        if self.operator == "DoesNotExist":
            return self.key not in labels
        if self.operator == "In":
            return labels.get(self.key) in self.values
        return labels.get(self.key) not in self.values


class LabelSelectorParams(PluginParams):
    match_labels: dict[str, str] = Field(default_factory=dict, alias="matchLabels")
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list, alias="matchExpressions")


@register("label-selector-filter", "filter", LabelSelectorParams, needs_body=False, aliases=("by-label-selector",))
class LabelSelectorFilter(Filter):
    """A Kubernetes label selector over the endpoints' labels (`matchLabels`, `matchExpressions`)."""

    params: LabelSelectorParams

    def filter(self, cycle: CycleState, request: LLMRequest, endpoints: list[Endpoint]) -> list[Endpoint]:
        want = self.params.match_labels.items()
        exprs = self.params.match_expressions
        return [
            e
            for e in endpoints
            if all(e.labels.get(k) == v for k, v in want) and all(x.matches(e.labels) for x in exprs)
        ]


@register("header-based-testing-filter", "filter", needs_body=False)
class HeaderBasedTestingFilter(Filter):
    """Conformance helper: `test-epp-endpoint-selection: ip[:port],...` keeps only those endpoints.
    Without the header every endpoint stays."""

    def filter(self, cycle: CycleState, request: LLMRequest, endpoints: list[Endpoint]) -> list[Endpoint]:
        value = request.headers.get(TEST_SELECTION_HEADER)
        if value is None:
            return endpoints
        wanted = {v.strip() for v in value.split(",") if v.strip()}
        return [e for e in endpoints if e.hostport in wanted or e.key.address in wanted]
