"""HTTPRoute precedence: which (route, rule, match) wins when several match one request.

Envoy takes the first matching route of a virtual host, so the translator emits matches in precedence order, and
the Python reference router (`reference.py`) walks the same order. Order, per the HTTPRoute `matches` doc:
hostname (most characters in a matching exact hostname, then in any matching hostname), an Exact path, the longest
PathPrefix, a method match, the most header matches, the most query-param matches, then the oldest route (creation
order = file order), `namespace/name`, and finally rule and match order within a route.

RegularExpression paths have implementation-specific precedence; like Envoy Gateway, inferplane ranks them after
Exact and before PathPrefix, longer expressions first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from inferplane.api.gateway_api import HTTPRouteMatch, HTTPRouteRule, Listener
from inferplane.gateway import hostnames as hn
from inferplane.gateway.attach import Attachment

_PATH_RANK = {"Exact": 0, "RegularExpression": 1, "PathPrefix": 2}


@dataclass(frozen=True)
class RouteEntry:
    """One match of one rule of an attached route: the unit Envoy sees as a route."""

    attachment: Attachment
    rule_index: int
    rule: HTTPRouteRule
    match_index: int
    match: HTTPRouteMatch

    @property
    def name(self) -> str:
        rule = self.rule.name or str(self.rule_index)
        return f"{self.attachment.route.key}/rule/{rule}/match/{self.match_index}"


def match_key(match: HTTPRouteMatch) -> tuple[int, int, int, int, int]:
    """The path/method/header/query part of the precedence key (smaller sorts first)."""
    return (
        _PATH_RANK[match.path.type],
        -len(match.path.value),
        0 if match.method else 1,
        -len(match.effective_headers()),
        -len(match.effective_query_params()),
    )


def precedence_key(entry: RouteEntry, domain: str) -> tuple[object, ...]:
    exact_len, any_len = hn.route_host_rank(entry.attachment.hostnames, domain)
    route = entry.attachment.route
    return (
        -exact_len,
        -any_len,
        *match_key(entry.match),
        entry.attachment.route_index,
        route.key,
        entry.rule_index,
        entry.match_index,
    )


def entries_for(attachment: Attachment) -> list[RouteEntry]:
    return [
        RouteEntry(attachment, ri, rule, mi, match)
        for ri, rule in enumerate(attachment.route.spec.rules)
        for mi, match in enumerate(rule.matches)
    ]


def ordered_entries(attachments: Sequence[Attachment], domain: str) -> list[RouteEntry]:
    """Entries of the routes that serve `domain`, in the order Envoy must try them."""
    entries = [
        e
        for a in attachments
        if not a.hostnames or any(hn.covers(h, domain) for h in a.hostnames)
        for e in entries_for(a)
    ]
    return sorted(entries, key=lambda e: precedence_key(e, domain))


@dataclass(frozen=True)
class VirtualHost:
    """One Envoy virtual host: a domain, the Gateway listener that requests for it select, and its entries."""

    domain: str
    listener: Listener
    entries: list[RouteEntry]


def virtual_hosts(listeners: Sequence[Listener], attachments: Sequence[Attachment]) -> list[VirtualHost]:
    """The virtual hosts of one local port, most specific domain first.

    One per hostname that any listener or attached route names, plus `*`. For each, the listener a request of
    that domain selects (exact, then the longest wildcard, then no hostname: Envoy's own domain order gives the
    same answer), and that listener's routes for the domain — including wildcard routes that also cover an exact
    host, after the exact ones, since route hostnames order rules rather than exclude them."""
    domains = {x.hostname for x in listeners if x.hostname} | {h for a in attachments for h in a.hostnames}
    out = []
    for domain in [*sorted(domains, key=lambda d: (hn.specificity(d), d), reverse=True), hn.ANY]:
        candidates = [x for x in listeners if hn.covers(x.hostname, domain)]
        if not candidates:
            continue  # e.g. "*" when every listener has a hostname: Envoy answers 404
        listener = max(candidates, key=lambda x: hn.specificity(x.hostname))
        mine = [a for a in attachments if a.listener is listener]
        out.append(VirtualHost(domain, listener, ordered_entries(mine, domain)))
    return out


def select_virtual_host(hosts: Sequence[VirtualHost], host: str) -> VirtualHost | None:
    """The virtual host Envoy picks for a request Host (port stripped): exact, longest wildcard suffix, `*`."""
    matching = [v for v in hosts if v.domain == hn.ANY or hn.matches_host(v.domain, host)]
    return max(matching, key=lambda v: hn.specificity(v.domain), default=None)
