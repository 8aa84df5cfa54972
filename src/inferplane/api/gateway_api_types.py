"""Gateway API building blocks shared by the resources in `gateway_api.py`: references, matches, filters, and the
validators for hostnames, header names, regular expressions and durations. Split from `gateway_api.py` only to keep
each module readable; import from either.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from inferplane.api.base import ApiModel

GATEWAY_GROUP = "gateway.networking.k8s.io"
# InferencePool is served under both groups: v1 (GA) and the v1alpha2 experimental group.
INFERENCE_GROUPS = ("inference.networking.k8s.io", "inference.networking.x-k8s.io")
GATEWAY_API_VERSIONS = (f"{GATEWAY_GROUP}/v1", f"{GATEWAY_GROUP}/v1beta1")

_DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_HOSTNAME_RE = re.compile(rf"^(\*\.)?{_DNS_SUBDOMAIN}$")
_SECTION_NAME_RE = re.compile(rf"^{_DNS_SUBDOMAIN}$")
_HEADER_NAME_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$")
_PATH_CHARS_RE = re.compile(r"^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+$")
_DURATION_RE = re.compile(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")
_DURATION_PART_RE = re.compile(r"([0-9]{1,5})(h|ms|m|s)")
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


class GatewayModel(ApiModel):
    """Strict like the API server decoding the CRD's OpenAPI schema: `port: "8080"` or `weight: "50"` is rejected
    there (a string where an integer is required), so it is an error here too, never silently coerced. Durations
    (`timeouts.request: 10s`) are strings upstream and stay strings."""

    model_config = ConfigDict(**ApiModel.model_config, strict=True)


HTTPMethod = Literal["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]
FilterType = Literal[
    "RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror", "RequestRedirect", "URLRewrite",
    "ExtensionRef", "CORS",
]  # fmt: skip
# Filters the local gateway implements; the others load but the translator refuses them.
SUPPORTED_FILTERS = frozenset({"RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite"})


def parse_duration(value: str) -> float:
    """A GEP-2257 duration (`500ms`, `1h30m`, `0s`) in seconds."""
    if not _DURATION_RE.match(value):
        raise ValueError(f"invalid duration {value!r}: use 1-4 parts of <digits><h|m|s|ms>, e.g. '500ms' or '1h30m'")
    return sum(int(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_PART_RE.findall(value))


def _check_hostname(value: str, *, what: str) -> str:
    if not _HOSTNAME_RE.match(value):
        raise ValueError(
            f"{what} {value!r} is not a valid hostname: lower-case RFC 1123 labels, optionally "
            "starting with '*.' (IP addresses and ports are not allowed)"
        )
    return value


def _check_header_name(value: str) -> str:
    if not _HEADER_NAME_RE.match(value):
        raise ValueError(f"invalid header/parameter name {value!r}: use RFC 7230 token characters only")
    return value


def _check_regex(value: str, what: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"{what} {value!r} is not a valid regular expression: {exc}") from None
    return value


# ----------------------------------------------------------------------------------------------- references


class ParentReference(GatewayModel):
    group: str = GATEWAY_GROUP
    kind: str = "Gateway"
    namespace: str | None = None
    name: str = Field(min_length=1, max_length=253)
    section_name: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)

    @field_validator("section_name")
    @classmethod
    def _section(cls, v: str | None) -> str | None:
        if v is not None and not _SECTION_NAME_RE.match(v):
            raise ValueError(f"sectionName {v!r} must be a listener name (lower-case DNS subdomain)")
        return v


class LocalObjectReference(GatewayModel):
    group: str
    kind: str
    name: str


class BackendObjectReference(GatewayModel):
    group: str = ""
    kind: str = "Service"
    name: str = Field(min_length=1, max_length=253)
    namespace: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)

    @property
    def is_service(self) -> bool:
        return self.group in ("", "core") and self.kind == "Service"

    @property
    def is_inference_pool(self) -> bool:
        return self.group in INFERENCE_GROUPS and self.kind == "InferencePool"

    @model_validator(mode="after")
    def _service_needs_port(self) -> BackendObjectReference:
        if self.is_service and self.port is None:
            raise ValueError(
                f"backendRef to Service {self.name!r} needs a port: add `port: <service port>` "
                "(the Service's port, not its targetPort)"
            )
        return self


# -------------------------------------------------------------------------------------------------- matches


class HTTPPathMatch(GatewayModel):
    type: Literal["Exact", "PathPrefix", "RegularExpression"] = "PathPrefix"
    value: str = Field(default="/", max_length=1024)

    @model_validator(mode="after")
    def _valid_value(self) -> HTTPPathMatch:
        if self.type == "RegularExpression":
            _check_regex(self.value, "path regular expression")
            return self
        v = self.value
        if not v.startswith("/"):
            raise ValueError(f"{self.type} path {v!r} must start with '/'")
        for bad in ("//", "/./", "/../", "%2f", "%2F", "#"):
            if bad in v:
                raise ValueError(f"{self.type} path {v!r} must not contain {bad!r}")
        if v.endswith("/..") or v.endswith("/."):
            raise ValueError(f"{self.type} path {v!r} must not end with '/.' or '/..'")
        if not _PATH_CHARS_RE.match(v):
            raise ValueError(f"{self.type} path {v!r} contains characters that must be percent-encoded")
        return self


class HTTPHeaderMatch(GatewayModel):
    type: Literal["Exact", "RegularExpression"] = "Exact"
    name: str = Field(min_length=1, max_length=256)
    value: str = Field(max_length=4096)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_header_name(v)

    @model_validator(mode="after")
    def _regex(self) -> HTTPHeaderMatch:
        if self.type == "RegularExpression":
            _check_regex(self.value, f"header {self.name!r} regular expression")
        return self


class HTTPQueryParamMatch(GatewayModel):
    type: Literal["Exact", "RegularExpression"] = "Exact"
    name: str = Field(min_length=1, max_length=256)
    value: str = Field(min_length=1, max_length=1024)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_header_name(v)

    @model_validator(mode="after")
    def _regex(self) -> HTTPQueryParamMatch:
        if self.type == "RegularExpression":
            _check_regex(self.value, f"query parameter {self.name!r} regular expression")
        return self


class HTTPRouteMatch(GatewayModel):
    path: HTTPPathMatch = Field(default_factory=HTTPPathMatch)
    headers: list[HTTPHeaderMatch] = Field(default_factory=list, max_length=16)
    query_params: list[HTTPQueryParamMatch] = Field(default_factory=list, max_length=16)
    method: HTTPMethod | None = None

    def effective_headers(self) -> list[HTTPHeaderMatch]:
        """Headers with duplicates dropped: only the first entry of a (case-insensitive) name counts."""
        seen: set[str] = set()
        out = []
        for h in self.headers:
            if h.name.lower() not in seen:
                seen.add(h.name.lower())
                out.append(h)
        return out

    def effective_query_params(self) -> list[HTTPQueryParamMatch]:
        """Query matches with duplicates dropped: only the first entry of a (case-sensitive) name counts."""
        seen: set[str] = set()
        out = []
        for q in self.query_params:
            if q.name not in seen:
                seen.add(q.name)
                out.append(q)
        return out


# -------------------------------------------------------------------------------------------------- filters


class HTTPHeader(GatewayModel):
    name: str = Field(min_length=1, max_length=256)
    value: str = Field(max_length=4096)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_header_name(v)


class HTTPHeaderFilter(GatewayModel):
    set: list[HTTPHeader] = Field(default_factory=list, max_length=16)
    add: list[HTTPHeader] = Field(default_factory=list, max_length=16)
    remove: list[str] = Field(default_factory=list, max_length=16)

    @model_validator(mode="after")
    def _one_action_per_name(self) -> HTTPHeaderFilter:
        names = [h.name.lower() for h in self.set] + [h.name.lower() for h in self.add]
        names += [n.lower() for n in self.remove]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"header(s) {', '.join(dup)} appear more than once: give each header one action")
        return self


class HTTPPathModifier(GatewayModel):
    type: Literal["ReplaceFullPath", "ReplacePrefixMatch"]
    replace_full_path: str | None = Field(default=None, max_length=1024)
    replace_prefix_match: str | None = Field(default=None, max_length=1024)

    @model_validator(mode="after")
    def _matches_type(self) -> HTTPPathModifier:
        if self.type == "ReplaceFullPath" and (self.replace_full_path is None or self.replace_prefix_match):
            raise ValueError("type ReplaceFullPath needs replaceFullPath (and no replacePrefixMatch)")
        if self.type == "ReplacePrefixMatch" and (self.replace_prefix_match is None or self.replace_full_path):
            raise ValueError("type ReplacePrefixMatch needs replacePrefixMatch (and no replaceFullPath)")
        return self


class HTTPURLRewriteFilter(GatewayModel):
    hostname: str | None = None
    path: HTTPPathModifier | None = None

    @field_validator("hostname")
    @classmethod
    def _host(cls, v: str | None) -> str | None:
        return None if v is None else _check_hostname(v, what="urlRewrite.hostname")


class HTTPRequestRedirectFilter(GatewayModel):
    scheme: Literal["http", "https"] | None = None
    hostname: str | None = None
    path: HTTPPathModifier | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    status_code: Literal[301, 302, 303, 307, 308] = 302

    @field_validator("hostname")
    @classmethod
    def _host(cls, v: str | None) -> str | None:
        return None if v is None else _check_hostname(v, what="requestRedirect.hostname")


class HTTPRequestMirrorFilter(GatewayModel):
    backend_ref: BackendObjectReference
    percent: int | None = Field(default=None, ge=0, le=100)
    fraction: dict[str, int] | None = None


_FILTER_FIELD = {
    "RequestHeaderModifier": "request_header_modifier",
    "ResponseHeaderModifier": "response_header_modifier",
    "RequestMirror": "request_mirror",
    "RequestRedirect": "request_redirect",
    "URLRewrite": "url_rewrite",
    "ExtensionRef": "extension_ref",
    "CORS": "cors",
}


class HTTPRouteFilter(GatewayModel):
    type: FilterType
    request_header_modifier: HTTPHeaderFilter | None = None
    response_header_modifier: HTTPHeaderFilter | None = None
    request_mirror: HTTPRequestMirrorFilter | None = None
    request_redirect: HTTPRequestRedirectFilter | None = None
    url_rewrite: HTTPURLRewriteFilter | None = Field(default=None, alias="urlRewrite")
    extension_ref: LocalObjectReference | None = None
    cors: dict[str, Any] | None = Field(default=None, alias="cors")

    @model_validator(mode="after")
    def _config_matches_type(self) -> HTTPRouteFilter:
        wanted = _FILTER_FIELD[self.type]
        for ftype, attr in _FILTER_FIELD.items():
            present = getattr(self, attr) is not None
            alias = type(self).model_fields[attr].alias or attr
            if attr == wanted and not present:
                raise ValueError(f"filter type {self.type} needs its `{alias}` field")
            if attr != wanted and present:
                raise ValueError(f"filter type {self.type} must not set `{alias}` (that belongs to type {ftype})")
        return self
