"""Peer routers, run in front of the same simulator replicas as inferplane for a side-by-side comparison.

Both are Rust routers shipped on PyPI (the optional extra `inferplane[peers]`), launched the way their docs show:
`python -m sglang_router.launch_router --worker-urls URL... --policy cache_aware` and the same for vllm_router. They
probe `/health`, and sglang-router reads `/model_info` and `/server_info`, which the simulator serves.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version


@dataclass(frozen=True)
class PeerRouter:
    name: str  # as given to --peers
    distribution: str  # PyPI name
    module: str  # python -m <module>
    policies: tuple[str, ...]  # the policies compared: cache-aware first, then round robin
    log_level: str

    def installed(self) -> bool:
        return importlib.util.find_spec(self.module.split(".")[0]) is not None

    def version(self) -> str:
        try:
            return version(self.distribution)
        except PackageNotFoundError:
            return "not installed"

    def argv(self, port: int, worker_urls: list[str], policy: str) -> list[str]:
        return [
            sys.executable, "-m", self.module,
            "--host", "127.0.0.1", "--port", str(port),
            "--worker-urls", *worker_urls,
            "--policy", policy,
            "--log-level", self.log_level,
        ]  # fmt: skip

    def label(self, policy: str) -> str:
        return f"{self.name} {self.version()} {policy}"


PEERS: dict[str, PeerRouter] = {
    p.name: p
    for p in (
        PeerRouter(
            "sglang-router", "sglang-router", "sglang_router.launch_router", ("cache_aware", "round_robin"), "warn"
        ),
        PeerRouter(
            "vllm-router", "vllm-router", "vllm_router.launch_router", ("cache_aware", "round_robin"), "warning"
        ),
    )
}


def resolve_peers(names: str) -> tuple[list[tuple[PeerRouter, tuple[str, ...]]], list[str]]:
    """The installed peers among `names` (`NAME` for all its compared policies, `NAME:POLICY` for one) with the
    policies to run, and a message for each one skipped."""
    chosen: dict[str, tuple[PeerRouter, list[str]]] = {}
    skipped = []
    for item in filter(None, (n.strip() for n in names.split(","))):
        name, _, policy = item.partition(":")
        peer = PEERS.get(name)
        if peer is None:
            skipped.append(f"unknown peer router {name!r} (known: {', '.join(PEERS)})")
        elif not peer.installed():
            skipped.append(f"skipping {name}: not installed (pip install 'inferplane[peers]' or {peer.distribution})")
        else:
            policies = chosen.setdefault(name, (peer, []))[1]
            policies.extend(p for p in ([policy] if policy else peer.policies) if p not in policies)
    return [(peer, tuple(policies)) for peer, policies in chosen.values()], skipped
