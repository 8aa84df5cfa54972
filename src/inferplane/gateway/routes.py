"""One HTTPRoute match + its rule → Envoy route entries (`envoy.config.route.v3.Route` as dicts).

Path matches map to Envoy's own matchers: Exact → `path`, PathPrefix → `path_separated_prefix` (which compares on
`/` boundaries exactly as the spec asks) or `prefix: /` for the root, RegularExpression → `safe_regex` (RE2, full
match). Backends: one → `cluster`; several valid Services → `weighted_clusters`; anything involving an
InferencePool or an invalid backend → a cascade of routes with the same match and cumulative `runtime_fraction`s.
Envoy draws one random value per request (the stream id) and tests every route's fraction against it, so route k
of the cascade fires for exactly its weighted share; that lets each share carry its own action (the pool's
ext_proc, or a 500 for an invalid backend), which `weighted_clusters` cannot.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from inferplane.api.gateway_api import (
    SUPPORTED_FILTERS,
    HTTPHeaderFilter,
    HTTPPathModifier,
    HTTPRequestRedirectFilter,
    HTTPRouteFilter,
    HTTPRouteMatch,
    parse_duration,
)
from inferplane.errors import ConfigError
from inferplane.gateway.attach import InvalidTarget, PoolTarget, ServiceTarget, Target, resolve_backend
from inferplane.gateway.plan import GatewayPlan
from inferplane.gateway.precedence import RouteEntry

FRACTION_DENOMINATOR = 1_000_000
_PREVIOUS_HOSTS = "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
_REDIRECT_CODES = {
    301: "MOVED_PERMANENTLY", 302: "FOUND", 303: "SEE_OTHER", 307: "TEMPORARY_REDIRECT", 308: "PERMANENT_REDIRECT",
}  # fmt: skip
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Errors the gateway itself answers, in the OpenAI shape clients of an inference gateway expect.
INVALID_BACKEND_BODY = json.dumps(
    {"error": {"message": "the route's backend is invalid", "type": "InternalServerError", "param": None, "code": 500}}
)
NOT_FOUND_BODY = json.dumps(
    {
        "error": {
            "message": "no route matches this request (path, host, headers or model)",
            "type": "NotFoundError",
            "param": None,
            "code": 404,
        }
    }
)
NO_BACKEND_BODY = json.dumps(
    {"error": {"message": "the route has no backend", "type": "InternalServerError", "param": None, "code": 500}}
)


@dataclass(frozen=True)
class RouteOptions:
    """Knobs of the generated routes that are not in the Gateway API."""

    default_timeout: str = "0s"  # no timeouts in the rule: LLM responses can stream for minutes; 0s = none
    # Retried only when no response came back (connect failure, refused, reset before headers). override_host tries
    # the picker's list (read from its metadata and again from its header, so each pick appears twice) before the
    # round-robin fallback; the previous-hosts predicate skips repeats. Four leaves room for a primary and two
    # fallbacks that all died; a refused connection costs microseconds. The clusters' max_retries circuit breaker
    # (gateway.eds) must be far above Envoy's default of 3 concurrent retries, or the 4th request meeting a
    # just-killed replica fails without a retry (upstream_rq_retry_overflow, seen in CI).
    retries: int = 4


def path_matcher(match: HTTPRouteMatch) -> dict[str, Any]:
    path = match.path
    if path.type == "Exact":
        return {"path": path.value}
    if path.type == "RegularExpression":
        return {"safe_regex": {"regex": path.value}}
    trimmed = path.value.rstrip("/")
    return {"prefix": "/"} if not trimmed else {"path_separated_prefix": trimmed}


def _string_match(kind: str, value: str) -> dict[str, Any]:
    return {"exact": value} if kind == "Exact" else {"safe_regex": {"regex": value}}


def route_match(match: HTTPRouteMatch) -> dict[str, Any]:
    out = path_matcher(match)
    headers = [
        {"name": h.name.lower(), "string_match": _string_match(h.type, h.value)} for h in match.effective_headers()
    ]
    if match.method:
        headers.append({"name": ":method", "string_match": {"exact": match.method}})
    if headers:
        out["headers"] = headers
    query = [{"name": q.name, "string_match": _string_match(q.type, q.value)} for q in match.effective_query_params()]
    if query:
        out["query_parameters"] = query
    return out


def prefix_rewrite(prefix: str, replacement: str) -> dict[str, Any]:
    """ReplacePrefixMatch on path elements (`/foo` → `/xyz`: `/foo/bar` → `/xyz/bar`, `/foo` → `/xyz`; an empty
    replacement gives `/bar` and `/`). Envoy's plain `prefix_rewrite` works on characters and would produce `//`,
    hence a regex rewrite."""
    base = re.escape(prefix.rstrip("/"))
    repl = replacement.rstrip("/")
    if not repl:
        return {"pattern": {"regex": f"^{base}/*(.*)$"}, "substitution": "/\\1"}
    return {"pattern": {"regex": f"^{base}(/.*)?$"}, "substitution": f"{repl}\\1"}


def _path_rewrite(mod: HTTPPathModifier, match: HTTPRouteMatch) -> dict[str, Any]:
    if mod.type == "ReplaceFullPath":
        assert mod.replace_full_path is not None
        return {"regex_rewrite": {"pattern": {"regex": "^.*$"}, "substitution": mod.replace_full_path}}
    assert mod.replace_prefix_match is not None
    return {"regex_rewrite": prefix_rewrite(match.path.value, mod.replace_prefix_match)}


def _header_ops(mod: HTTPHeaderFilter, direction: str) -> dict[str, Any]:
    add = [
        {"header": {"key": h.name, "value": h.value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"} for h in mod.set
    ] + [{"header": {"key": h.name, "value": h.value}, "append_action": "APPEND_IF_EXISTS_OR_ADD"} for h in mod.add]
    out: dict[str, Any] = {}
    if add:
        out[f"{direction}_headers_to_add"] = add
    if mod.remove:
        out[f"{direction}_headers_to_remove"] = [n.lower() for n in mod.remove]
    return out


def _header_filters(filters: list[HTTPRouteFilter]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in filters:
        if f.request_header_modifier is not None:
            out.update(_header_ops(f.request_header_modifier, "request"))
        if f.response_header_modifier is not None:
            out.update(_header_ops(f.response_header_modifier, "response"))
    return out


def _redirect(f: HTTPRequestRedirectFilter, match: HTTPRouteMatch) -> dict[str, Any]:
    out: dict[str, Any] = {"response_code": _REDIRECT_CODES[f.status_code]}
    if f.scheme:
        out["scheme_redirect"] = f.scheme
    if f.hostname:
        out["host_redirect"] = f.hostname
    if f.port is not None:
        if f.port == _DEFAULT_PORTS[f.scheme or "http"]:
            # Envoy drops the port from Location only when it rewrites the scheme; the spec leaves default ports out
            out["scheme_redirect"] = f.scheme or "http"
        else:
            out["port_redirect"] = f.port
    if f.path is not None:
        if f.path.type == "ReplaceFullPath":
            out["path_redirect"] = f.path.replace_full_path
        else:
            assert f.path.replace_prefix_match is not None
            out["regex_rewrite"] = prefix_rewrite(match.path.value, f.path.replace_prefix_match)
    return out


def _timeout(entry: RouteEntry, options: RouteOptions) -> str:
    t = entry.rule.timeouts
    values = [parse_duration(v) for v in (t.request, t.backend_request) if v is not None] if t else []
    nonzero = [v for v in values if v > 0]
    if nonzero:
        return f"{min(nonzero):g}s"
    return "0s" if values else options.default_timeout


def _check_filters(entry: RouteEntry) -> None:
    where = f"HTTPRoute {entry.attachment.route.key} rule {entry.rule.name or entry.rule_index}"
    for f in entry.rule.filters:
        if f.type not in SUPPORTED_FILTERS:
            raise ConfigError(
                f"{where}: filter {f.type} is not supported by the local gateway",
                hint=f"supported filters: {', '.join(sorted(SUPPORTED_FILTERS))}",
            )
    for ref in entry.rule.backend_refs:
        for f in ref.filters:
            if f.type not in ("RequestHeaderModifier", "ResponseHeaderModifier"):
                raise ConfigError(
                    f"{where}: backendRef filter {f.type} is not supported by the local gateway",
                    hint="backendRefs[].filters supports RequestHeaderModifier and ResponseHeaderModifier",
                )
    for unsupported in ("retry", "session_persistence"):
        if getattr(entry.rule, unsupported) is not None:
            raise ConfigError(f"{where}: `{unsupported}` (experimental channel) is not supported locally")


def _direct_500(body: str) -> dict[str, Any]:
    return {
        "direct_response": {"status": 500, "body": {"inline_string": body}},
        "response_headers_to_add": [
            {
                "header": {"key": "content-type", "value": "application/json"},
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
            }
        ],
    }


class Clusters:
    """What route generation needs from the bootstrap builder: the cluster name of each backend."""

    def __init__(self, service: Callable[[ServiceTarget], str], pool: Callable[[PoolTarget], str]) -> None:
        self.service = service
        self.pool = pool


def build_routes(
    entry: RouteEntry, plan: GatewayPlan, clusters: Clusters, options: RouteOptions
) -> list[dict[str, Any]]:
    """The Envoy routes for one RouteEntry (more than one for a weighted cascade), in order."""
    _check_filters(entry)
    match = route_match(entry.match)
    rule = entry.rule
    base: dict[str, Any] = {"name": entry.name, **_header_filters(rule.filters)}
    redirect = next((f.request_redirect for f in rule.filters if f.request_redirect is not None), None)
    if redirect is not None:
        return [{**base, "match": match, "redirect": _redirect(redirect, entry.match)}]

    refs = [(ref, resolve_backend(plan, entry.attachment.route, ref)) for ref in rule.backend_refs]
    weighted = [(ref, t) for ref, t in refs if ref.weight > 0]
    if not weighted:
        body = INVALID_BACKEND_BODY if refs else NO_BACKEND_BODY
        return [{**base, "match": match, **_direct_500(body)}]

    action: dict[str, Any] = {"timeout": _timeout(entry, options)}
    rewrite = next((f.url_rewrite for f in rule.filters if f.url_rewrite is not None), None)
    if rewrite is not None:
        if rewrite.hostname:
            action["host_rewrite_literal"] = rewrite.hostname
        if rewrite.path is not None:
            action.update(_path_rewrite(rewrite.path, entry.match))
    if options.retries > 0:
        # `reset` as well as the connect failures: a replica killed a moment ago can still have a pooled keep-alive
        # connection that Envoy reuses before it has read the close, so the request is written and then reset
        # without a byte of response. No response headers means the client has seen nothing and the dead server's
        # work is lost anyway, so a retry elsewhere loses nothing; once headers (a stream) have started, Envoy never
        # retries. Without it, a request sent just after a replica died could get a 503 (seen in CI).
        action["retry_policy"] = {
            "retry_on": "connect-failure,refused-stream,reset-before-request,reset",
            "num_retries": options.retries,
            "retry_host_predicate": [
                {
                    "name": "envoy.retry_host_predicates.previous_hosts",
                    "typed_config": {"@type": _PREVIOUS_HOSTS},
                }
            ],
            "host_selection_retry_max_attempts": 3,
        }

    def target_route(target: Target, ref_filters: list[HTTPRouteFilter]) -> dict[str, Any]:
        out = {**base, **_header_filters(ref_filters)}
        if isinstance(target, InvalidTarget):
            return {**out, **_direct_500(INVALID_BACKEND_BODY)}
        if isinstance(target, ServiceTarget):
            return {**out, "route": {**action, "cluster": clusters.service(target)}}
        # which picker runs is decided per route by the bootstrap builder (see envoy_config._scope_pickers)
        return {**out, "route": {**action, "cluster": clusters.pool(target)}}

    if len(weighted) == 1:
        ref, target = weighted[0]
        return [{"match": match, **target_route(target, ref.filters)}]

    if all(isinstance(t, ServiceTarget) for _, t in weighted):
        entries = []
        for ref, target in weighted:
            assert isinstance(target, ServiceTarget)
            entries.append({"name": clusters.service(target), "weight": ref.weight, **_header_filters(ref.filters)})
        return [{**base, "match": match, "route": {**action, "weighted_clusters": {"clusters": entries}}}]

    total = sum(ref.weight for ref, _ in weighted)
    routes = []
    cumulative = 0
    for i, (ref, target) in enumerate(weighted):
        cumulative += ref.weight
        share = dict(match)
        if i < len(weighted) - 1:
            share["runtime_fraction"] = {
                "default_value": {
                    "numerator": round(cumulative * FRACTION_DENOMINATOR / total),
                    "denominator": "MILLION",
                },
                "runtime_key": f"inferplane.weights.{entry.name}.{i}",
            }
        routes.append({"match": share, **target_route(target, ref.filters)})
    return routes
