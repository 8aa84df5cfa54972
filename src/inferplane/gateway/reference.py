"""A Python model of the routing decision, written from the Gateway API text rather than from Envoy's matchers.

`route_request` answers "which backend (or status) would this request get through this Gateway?" without running
Envoy. Tests use it as the oracle for the generated Envoy configuration (the same request must get the same
answer from both), and tools can use it to explain a routing decision. Paths are taken as Envoy sees them after
its own normalisation (`merge_slashes`, no dot segments).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from inferplane.api.gateway_api import HTTPPathMatch, HTTPRouteMatch
from inferplane.gateway.attach import InvalidTarget, PoolTarget, ServiceTarget, attach_routes, resolve_backend
from inferplane.gateway.plan import GatewayPlan
from inferplane.gateway.precedence import RouteEntry, select_virtual_host, virtual_hosts


@dataclass(frozen=True)
class Request:
    host: str | None = None  # None: the gateway's address, which no hostname matches
    method: str = "GET"
    path: str = "/"
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Sequence[tuple[str, str]] = ()


@dataclass(frozen=True)
class Outcome:
    """status: what the gateway answers itself (404, 500, a redirect code), or 200 when a backend answers.
    backends: the plan keys (`services`/`pools`) that may serve it, with their weights; `invalid` is the weight
    that gets 500 instead. entry: the matching route entry's name."""

    status: int
    backends: tuple[tuple[str, int], ...] = ()
    invalid_weight: int = 0
    entry: str | None = None

    @property
    def backend(self) -> str | None:
        """The one backend, when exactly one can serve."""
        return self.backends[0][0] if len(self.backends) == 1 and not self.invalid_weight else None


def path_matches(match: HTTPPathMatch, path: str) -> bool:
    value = match.value
    if match.type == "Exact":
        return path == value
    if match.type == "RegularExpression":
        return re.fullmatch(value, path) is not None
    prefix = value.rstrip("/")  # element-wise: `/abc` and `/abc/` both cover `/abc`, `/abc/`, `/abc/x`, not `/abcd`
    return not prefix or path == prefix or path.startswith(prefix + "/")


def _value_matches(kind: str, expected: str, actual: str | None) -> bool:
    if actual is None:
        return False
    return actual == expected if kind == "Exact" else re.fullmatch(expected, actual) is not None


def match_matches(match: HTTPRouteMatch, request: Request) -> bool:
    if not path_matches(match.path, request.path):
        return False
    if match.method is not None and match.method != request.method:
        return False
    headers = {k.lower(): v for k, v in request.headers.items()}
    for h in match.effective_headers():
        if not _value_matches(h.type, h.value, headers.get(h.name.lower())):
            return False
    for q in match.effective_query_params():
        first = next((v for k, v in request.query if k == q.name), None)  # a repeated param: the first value counts
        if not _value_matches(q.type, q.value, first):
            return False
    return True


def normalize_host(host: str | None) -> str:
    if host is None:
        return "127.0.0.1"
    name, sep, port = host.rpartition(":")
    return (name if sep and port.isdigit() else host).lower()


def normalize_path(path: str) -> str:
    return re.sub("/{2,}", "/", path.split("?", 1)[0]) or "/"


def _outcome(entry: RouteEntry, plan: GatewayPlan) -> Outcome:
    rule = entry.rule
    redirect = next((f.request_redirect for f in rule.filters if f.request_redirect is not None), None)
    if redirect is not None:
        return Outcome(redirect.status_code, entry=entry.name)
    backends: list[tuple[str, int]] = []
    invalid = 0
    for ref in rule.backend_refs:
        if ref.weight == 0:
            continue
        target = resolve_backend(plan, entry.attachment.route, ref)
        if isinstance(target, InvalidTarget):
            invalid += ref.weight
        elif isinstance(target, ServiceTarget | PoolTarget):
            backends.append((target.key, ref.weight))
    if not backends:
        return Outcome(500, invalid_weight=invalid, entry=entry.name)
    return Outcome(200, tuple(backends), invalid, entry.name)


def route_request(plan: GatewayPlan, gateway: str, port: int, request: Request) -> Outcome:
    """The decision for `request` sent to listener port `port` of Gateway `gateway` (`namespace/name`)."""
    local = plan.local_port(gateway, port)
    listeners = [
        x for g in plan.gateways for x in g.spec.listeners if plan.local_port(g.key, x.port) == local
    ]  # fmt: skip
    attachments, _ = attach_routes(plan)
    mine = [a for a in attachments if any(a.listener is x for x in listeners)]
    vhost = select_virtual_host(virtual_hosts(listeners, mine), normalize_host(request.host))
    if vhost is None:
        return Outcome(404)
    normalized = Request(request.host, request.method, normalize_path(request.path), request.headers, request.query)
    for entry in vhost.entries:
        if match_matches(entry.match, normalized):
            return _outcome(entry, plan)
    return Outcome(404)
