"""Gateway API resources (gateway.networking.k8s.io): GatewayClass, Gateway and HTTPRoute.

Field names, defaults and enums follow the upstream v1 CRDs (v1.2.0 and v1.6.1 agree on everything here).
The CEL and OpenAPI validation rules the API server would enforce become pydantic validators, so a file the
cluster would reject is rejected here too, with a message that says what to change. Semantics (matching,
precedence, hostname intersection) live in `inferplane.gateway`, not here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from inferplane.api.base import Resource
from inferplane.api.gateway_api_types import (
    _SECTION_NAME_RE,
    GATEWAY_API_VERSIONS,
    GATEWAY_GROUP,
    INFERENCE_GROUPS,
    SUPPORTED_FILTERS,
    BackendObjectReference,
    FilterType,
    GatewayModel,
    HTTPHeader,
    HTTPHeaderFilter,
    HTTPHeaderMatch,
    HTTPMethod,
    HTTPPathMatch,
    HTTPPathModifier,
    HTTPQueryParamMatch,
    HTTPRequestMirrorFilter,
    HTTPRequestRedirectFilter,
    HTTPRouteFilter,
    HTTPRouteMatch,
    HTTPURLRewriteFilter,
    LocalObjectReference,
    ParentReference,
    _check_hostname,
    parse_duration,
)

# ---------------------------------------------------------------------------------------------------- rules


class HTTPBackendRef(BackendObjectReference):
    weight: int = Field(default=1, ge=0, le=1_000_000)
    filters: list[HTTPRouteFilter] = Field(default_factory=list, max_length=16)


class HTTPRouteTimeouts(GatewayModel):
    request: str | None = None
    backend_request: str | None = None

    @field_validator("request", "backend_request")
    @classmethod
    def _duration(cls, v: str | None) -> str | None:
        if v is not None:
            parse_duration(v)
        return v

    @model_validator(mode="after")
    def _backend_within_request(self) -> HTTPRouteTimeouts:
        if self.request is not None and self.backend_request is not None:
            req, be = parse_duration(self.request), parse_duration(self.backend_request)
            if req != 0 and (be == 0 or be > req):
                raise ValueError(
                    f"timeouts.backendRequest ({self.backend_request}) must not exceed timeouts.request "
                    f"({self.request})"
                )
        return self


def _default_matches() -> list[HTTPRouteMatch]:
    return [HTTPRouteMatch()]


_ONCE_PER_RULE = ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite", "CORS")


class HTTPRouteRule(GatewayModel):
    name: str | None = None
    matches: list[HTTPRouteMatch] = Field(default_factory=_default_matches, max_length=64)
    filters: list[HTTPRouteFilter] = Field(default_factory=list, max_length=16)
    backend_refs: list[HTTPBackendRef] = Field(default_factory=list, max_length=16)
    timeouts: HTTPRouteTimeouts | None = None
    # experimental-channel fields: such files load, and the translator says they are not supported
    retry: dict[str, Any] | None = None
    session_persistence: dict[str, Any] | None = None

    @field_validator("matches", mode="before")
    @classmethod
    def _empty_matches_default(cls, v: Any) -> Any:
        return _default_matches() if v is None or v == [] else v

    @model_validator(mode="after")
    def _filter_rules(self) -> HTTPRouteRule:
        types: list[str] = [f.type for f in self.filters]
        for t in _ONCE_PER_RULE:
            if types.count(t) > 1:
                raise ValueError(f"filter {t} may appear only once per rule")
        if "RequestRedirect" in types and "URLRewrite" in types:
            raise ValueError("a rule cannot have both RequestRedirect and URLRewrite filters: keep one")
        if "RequestRedirect" in types and self.backend_refs:
            raise ValueError("a rule with a RequestRedirect filter must not have backendRefs: remove one of them")
        for f in self.filters:
            for mod in (f.url_rewrite, f.request_redirect):
                if mod is not None and mod.path is not None and mod.path.type == "ReplacePrefixMatch":
                    prefix_matches = [m for m in self.matches if m.path.type == "PathPrefix"]
                    if len(self.matches) != 1 or len(prefix_matches) != 1:
                        raise ValueError(
                            "ReplacePrefixMatch needs the rule to have exactly one match, of type PathPrefix"
                        )
        return self


def _default_rules() -> list[HTTPRouteRule]:
    return [HTTPRouteRule()]


class HTTPRouteSpec(GatewayModel):
    parent_refs: list[ParentReference] = Field(default_factory=list, max_length=32)
    hostnames: list[str] = Field(default_factory=list, max_length=16)
    rules: list[HTTPRouteRule] = Field(default_factory=_default_rules, max_length=16)

    @field_validator("hostnames")
    @classmethod
    def _hosts(cls, v: list[str]) -> list[str]:
        return [_check_hostname(h, what="hostname") for h in v]

    @field_validator("rules", mode="before")
    @classmethod
    def _empty_rules_default(cls, v: Any) -> Any:
        return _default_rules() if v is None or v == [] else v

    @model_validator(mode="after")
    def _limits(self) -> HTTPRouteSpec:
        total = sum(len(r.matches) for r in self.rules)
        if total > 128:
            raise ValueError(f"an HTTPRoute may have at most 128 matches over all rules (this one has {total})")
        names = [r.name for r in self.rules if r.name]
        if len(names) != len(set(names)):
            raise ValueError("rule names must be unique within an HTTPRoute")
        return self


class HTTPRoute(Resource):
    model_config = GatewayModel.model_config

    api_version: Literal["gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1"]
    kind: Literal["HTTPRoute"]
    spec: HTTPRouteSpec = Field(default_factory=HTTPRouteSpec)
    status: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        """`namespace/name`, the tie-breaker of the precedence rules."""
        return f"{self.metadata.namespace}/{self.metadata.name}"


# -------------------------------------------------------------------------------------------------- gateway


class LabelSelector(GatewayModel):
    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[dict[str, Any]] = Field(default_factory=list)


class RouteNamespaces(GatewayModel):
    from_: Literal["All", "Selector", "Same"] = Field(default="Same", alias="from")
    selector: LabelSelector | None = None

    @model_validator(mode="after")
    def _selector(self) -> RouteNamespaces:
        if self.from_ == "Selector" and self.selector is None:
            raise ValueError("namespaces.from: Selector needs a `selector`")
        return self


class RouteGroupKind(GatewayModel):
    group: str = GATEWAY_GROUP
    kind: str


class AllowedRoutes(GatewayModel):
    namespaces: RouteNamespaces = Field(default_factory=RouteNamespaces)
    kinds: list[RouteGroupKind] = Field(default_factory=list, max_length=8)


class Listener(GatewayModel):
    name: str
    hostname: str | None = None
    port: int = Field(ge=1, le=65535)
    protocol: str
    tls: dict[str, Any] | None = None
    allowed_routes: AllowedRoutes = Field(default_factory=AllowedRoutes)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _SECTION_NAME_RE.match(v):
            raise ValueError(f"listener name {v!r} must be a lower-case DNS subdomain")
        return v

    @field_validator("hostname")
    @classmethod
    def _host(cls, v: str | None) -> str | None:
        return None if v is None else _check_hostname(v, what="listener hostname")

    def allows_kind(self, group: str, kind: str) -> bool:
        if self.allowed_routes.kinds:
            return any(k.group == group and k.kind == kind for k in self.allowed_routes.kinds)
        return self.protocol in ("HTTP", "HTTPS") and (group, kind) == (GATEWAY_GROUP, "HTTPRoute")


class GatewayAddress(GatewayModel):
    type: str = "IPAddress"
    value: str = Field(max_length=253)


class GatewaySpec(GatewayModel):
    gateway_class_name: str = Field(min_length=1, max_length=253)
    listeners: list[Listener] = Field(min_length=1, max_length=64)
    addresses: list[GatewayAddress] = Field(default_factory=list, max_length=16)
    infrastructure: dict[str, Any] | None = None
    allowed_listeners: dict[str, Any] | None = None
    tls: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _unique_listeners(self) -> GatewaySpec:
        names = [listener.name for listener in self.listeners]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"listener names must be unique; repeated: {', '.join(dup)}")
        combos = [(x.port, x.hostname or "", x.protocol) for x in self.listeners]
        if len(combos) != len(set(combos)):
            raise ValueError("two listeners share port, protocol and hostname: give them different hostnames")
        return self


class Gateway(Resource):
    model_config = GatewayModel.model_config

    api_version: Literal["gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1"]
    kind: Literal["Gateway"]
    spec: GatewaySpec
    status: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        return f"{self.metadata.namespace}/{self.metadata.name}"


class GatewayClassSpec(GatewayModel):
    controller_name: str = Field(min_length=1, max_length=253)
    parameters_ref: dict[str, Any] | None = None
    description: str | None = Field(default=None, max_length=64)


class GatewayClass(Resource):
    model_config = GatewayModel.model_config

    api_version: Literal["gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1"]
    kind: Literal["GatewayClass"]
    spec: GatewayClassSpec
    status: dict[str, Any] | None = None


class ReferenceGrantFrom(GatewayModel):
    group: str
    kind: str
    namespace: str


class ReferenceGrantTo(GatewayModel):
    group: str
    kind: str
    name: str | None = None


class ReferenceGrantSpec(GatewayModel):
    from_: list[ReferenceGrantFrom] = Field(alias="from", min_length=1, max_length=16)
    to: list[ReferenceGrantTo] = Field(min_length=1, max_length=16)


class ReferenceGrant(Resource):
    model_config = GatewayModel.model_config

    """Lives in the target namespace and lets objects `from` other namespaces refer to objects `to` in it."""

    api_version: Literal["gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1"]
    kind: Literal["ReferenceGrant"]
    spec: ReferenceGrantSpec

    def permits(self, *, from_group: str, from_kind: str, from_namespace: str, to: BackendObjectReference) -> bool:
        """Whether this grant lets a `from_kind` in `from_namespace` reference `to` (in this grant's namespace)."""
        to_group = "" if to.group == "core" else to.group
        return any(
            f.group == from_group and f.kind == from_kind and f.namespace == from_namespace for f in self.spec.from_
        ) and any(t.group == to_group and t.kind == to.kind and t.name in (None, to.name) for t in self.spec.to)


# the shared building blocks are re-exported: import any Gateway API model from this module
__all__ = [
    "GATEWAY_API_VERSIONS",
    "GATEWAY_GROUP",
    "INFERENCE_GROUPS",
    "SUPPORTED_FILTERS",
    "AllowedRoutes",
    "BackendObjectReference",
    "FilterType",
    "Gateway",
    "GatewayAddress",
    "GatewayClass",
    "GatewayClassSpec",
    "GatewaySpec",
    "HTTPBackendRef",
    "HTTPHeader",
    "HTTPHeaderFilter",
    "HTTPHeaderMatch",
    "HTTPMethod",
    "HTTPPathMatch",
    "HTTPPathModifier",
    "HTTPQueryParamMatch",
    "HTTPRequestMirrorFilter",
    "HTTPRequestRedirectFilter",
    "HTTPRoute",
    "HTTPRouteFilter",
    "HTTPRouteMatch",
    "HTTPRouteRule",
    "HTTPRouteSpec",
    "HTTPRouteTimeouts",
    "HTTPURLRewriteFilter",
    "LabelSelector",
    "Listener",
    "LocalObjectReference",
    "ParentReference",
    "ReferenceGrant",
    "ReferenceGrantFrom",
    "ReferenceGrantSpec",
    "ReferenceGrantTo",
    "RouteGroupKind",
    "RouteNamespaces",
    "parse_duration",
]
