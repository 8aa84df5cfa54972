"""The runtime's view of the user's resources: only what it takes to start processes.

`inferplane.runtime.resources` fills these from a loaded `Deployment`; the plan and the backends read nothing else,
so they stay testable with hand-made values.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

# Shell operators that end a `vllm serve ...` command inside a `sh -c` string.
_SHELL_OPERATORS = {"&&", "||", ";", "|", "&"}


@dataclass
class LwsShape:
    """A LeaderWorkerSet group as processes: one leader (serves) and size-1 workers."""

    name: str
    size: int
    restart_policy: str = "RecreateGroupOnPodRestart"
    startup_policy: str = "LeaderCreated"
    namespace: str = "default"
    worker_command: list[str] = field(default_factory=list)
    worker_env: dict[str, str] = field(default_factory=dict)
    worker_labels: dict[str, str] = field(default_factory=dict)

    def leader_address(self, group: int) -> str:
        """The in-cluster DNS name of a group's leader (subdomainPolicy Shared), kept for reference."""
        return f"{self.name}-{group}.{self.name}.{self.namespace}"


@dataclass
class ServerTemplate:
    """One model service: what every replica (or LWS group leader) runs."""

    name: str
    model: str
    served_names: list[str]
    replicas: int = 1
    port: int = 8000  # the in-cluster port (`--port`); locally each replica gets its own
    vllm_args: list[str] = field(default_factory=list)  # after `vllm serve MODEL`
    command: list[str] = field(default_factory=list)  # a custom entry point (e.g. sh -c "...vllm serve...")
    env: dict[str, str] = field(default_factory=dict)
    secret_env: dict[str, tuple[str, str]] = field(default_factory=dict)  # NAME → (secret, key)
    labels: dict[str, str] = field(default_factory=dict)
    accelerator: str = "cpu"  # nvidia | tpu | cpu
    accelerator_count: int = 0
    role: str = "decode"
    adapters: list[str] = field(default_factory=list)  # LoRA adapters served beside the base model
    lws: LwsShape | None = None
    namespace: str = "default"


@dataclass
class PoolTemplate:
    name: str
    namespace: str = "default"
    target_ports: list[int] = field(default_factory=lambda: [8000])
    failure_mode: str = "FailClose"
    members: list[str] = field(default_factory=list)  # ServerTemplate names whose pods the selector matches
    epp_config: Any = None  # an EndpointPickerConfig, or None for the picker's defaults


@dataclass
class ServiceTemplate:
    """A plain Kubernetes Service: which pods it selects and on which container ports.

    target_ports: each Service port's targetPort (its `port` when targetPort is unset); a name (`http`) stands
    for the model server's serving port, since that is the only port a local replica listens on."""

    name: str
    namespace: str = "default"
    selector: dict[str, str] = field(default_factory=dict)
    target_ports: list[int | str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def selects(self, server: ServerTemplate) -> bool:
        """Kubernetes semantics: an empty selector selects nothing (the Service's endpoints are managed by hand),
        otherwise every selector label must be on the pod; and some Service port must reach the serving port."""
        if not self.selector or any(server.labels.get(k) != v for k, v in self.selector.items()):
            return False
        return any(isinstance(p, str) or p == server.port for p in self.target_ports)


def split_vllm_serve(words: list[str]) -> tuple[str | None, list[str]]:
    """Find `vllm serve MODEL args...` in an argv or a shell command line; return (MODEL, args).

    Shell strings (`sh -c "ray start ... && vllm serve M --port 8000 ..."`) are split with shlex; the command ends
    at the next shell operator. Returns (None, []) when no `vllm serve` is found.
    """
    tokens: list[str] = []
    for w in words:
        if any(op in w for op in ("&&", ";", " ")):
            try:
                tokens.extend(shlex.split(w.replace("&&", " && ").replace(";", " ; ")))
            except ValueError:
                tokens.extend(w.split())
        else:
            tokens.append(w)
    for i, tok in enumerate(tokens):
        if tok.rsplit("/", 1)[-1] == "vllm" and i + 1 < len(tokens) and tokens[i + 1] == "serve":
            rest: list[str] = []
            for t in tokens[i + 2 :]:
                if t in _SHELL_OPERATORS:
                    break
                rest.append(t)
            if rest and not rest[0].startswith("-"):
                return rest[0], rest[1:]
            return None, rest
    return None, []


def flag_value(args: list[str], flag: str) -> str | None:
    """The value of `--flag V` or `--flag=V` (the last one wins, as with argparse)."""
    found: str | None = None
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            found = args[i + 1]
        elif a.startswith(flag + "="):
            found = a.split("=", 1)[1]
    return found


def drop_flags(args: list[str], flags: set[str]) -> list[str]:
    """`args` without the given value-taking flags (both `--f V` and `--f=V` spellings)."""
    out: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a in flags:
            skip = True
            continue
        if a.split("=", 1)[0] in flags and "=" in a:
            continue
        out.append(a)
    return out


def replace_port(words: list[str], old: int, new: int) -> list[str]:
    """Rewrite `--port OLD` / `--port=OLD` to the local port, also inside shell strings."""
    out = []
    for w in words:
        if " " in w:
            w = w.replace(f"--port {old}", f"--port {new}").replace(f"--port={old}", f"--port={new}")
        elif w == f"--port={old}":
            w = f"--port={new}"
        out.append(w)
    for i in range(len(out) - 1):
        if out[i] == "--port" and out[i + 1] == str(old):
            out[i + 1] = str(new)
    return out
