"""Gateway API hostname semantics: wildcard coverage, listener/route intersection, specificity.

A hostname is either exact (`api.example.com`) or a wildcard whose first label is `*` (`*.example.com`), which
covers any name with at least one more label in front (`a.example.com`, `a.b.example.com`, never `example.com`).
`None` stands for "no hostname": it covers everything.
"""

from __future__ import annotations

from collections.abc import Sequence

ANY = "*"


def is_wildcard(pattern: str) -> bool:
    return pattern.startswith("*.")


def covers(pattern: str | None, name: str) -> bool:
    """Whether every host matched by `name` (an exact name or a wildcard pattern) is matched by `pattern`."""
    if pattern is None or pattern == ANY:
        return True
    if name == ANY:
        return False
    pattern, name = pattern.lower(), name.lower()
    if not is_wildcard(pattern):
        return pattern == name
    # `*.s` covers `x.s`, `x.y.s` and `*.y.s`, and itself
    return name == pattern or (name.endswith(pattern[1:]) and len(name) > len(pattern) - 1)


def matches_host(pattern: str | None, host: str) -> bool:
    """Whether a request Host (port already stripped) is matched by `pattern`."""
    return covers(pattern, host.lower())


def intersect(listener: str | None, route: str) -> str | None:
    """The hostname served when a route hostname meets a listener hostname: the more specific side, or None."""
    if listener is None or covers(listener, route):
        return route
    if covers(route, listener):
        return listener
    return None


def effective_hostnames(listener: str | None, route_hostnames: Sequence[str]) -> tuple[str, ...] | None:
    """The hostnames a route serves through a listener: () means any host the listener takes; None means the route
    does not attach to that listener (no intersection, `NoMatchingListenerHostname`)."""
    if not route_hostnames:
        return () if listener is None else (listener,)
    found = [h for h in (intersect(listener, r) for r in route_hostnames) if h is not None]
    if not found:
        return None
    return tuple(dict.fromkeys(found))


def specificity(pattern: str | None) -> tuple[int, int]:
    """Sort key, larger = more specific: exact names before wildcards before none; among wildcards the longer
    suffix (more dots to the right of `*`) wins, as for Gateway listener selection and Envoy virtual hosts."""
    if pattern is None or pattern == ANY:
        return (0, 0)
    if is_wildcard(pattern):
        return (1, len(pattern))
    return (2, len(pattern))


def route_host_rank(hostnames: Sequence[str], domain: str) -> tuple[int, int]:
    """Precedence of a route's rules for requests of `domain`: the most characters in a matching non-wildcard
    hostname, then the most characters in any matching hostname (HTTPRoute `hostnames` doc)."""
    matching = [h for h in hostnames if covers(h, domain)]
    exact = [len(h) for h in matching if not is_wildcard(h)]
    return (max(exact, default=0), max((len(h) for h in matching), default=0))


def most_specific(patterns: Sequence[str | None], domain: str) -> str | None:
    """The most specific pattern covering `domain`, or None when none does (a `None` entry covers everything)."""
    candidates = [p for p in patterns if covers(p, domain)]
    if not candidates:
        raise LookupError(domain)
    return max(candidates, key=specificity)
