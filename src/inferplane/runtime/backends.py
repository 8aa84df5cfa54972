"""Model-server backends: what process stands in for a model-server pod locally.

* `sim`: inferplane's vLLM-compatible simulator, one process per replica, with the model service's vLLM args.
* `vllm`: the real `vllm serve`, with the accelerators the values ask for (CUDA_VISIBLE_DEVICES / TPU chips).

Backends register by name; `inferplane up --backend NAME` picks one.
"""

from __future__ import annotations

import abc
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from inferplane.errors import InferplaneError
from inferplane.runtime.templates import ServerTemplate, drop_flags, replace_port, split_vllm_serve

# Flags the runtime sets itself for every local replica; the user's values for them describe the cluster.
_RUNTIME_FLAGS = {"--port", "--host", "--model", "--served-model-name"}
_K8S_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand_k8s_vars(text: str, env: dict[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion in command and args (`$$` escapes; unknown names stay as written)."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _K8S_VAR.sub(sub, text)


@dataclass
class ReplicaContext:
    """One replica (or one LWS group member) as the backend should start it."""

    name: str  # pod name, e.g. vllm-gemma-0 or mixtral-8x7b-0-1
    port: int  # local port for the model-server API
    index: int  # replica or group index, for accelerator assignment
    env: dict[str, str]  # already merged: user env, secrets, LWS variables


@dataclass
class BackendOptions:
    python: str = sys.executable
    profile: str | None = None
    time_scale: float | None = None
    startup_delay: float | None = None
    sim_args: tuple[str, ...] = ()


class Backend(abc.ABC):
    name: ClassVar[str]
    ready_path: ClassVar[str]

    def check(self, servers: list[ServerTemplate]) -> None:  # noqa: B027 - most backends run anywhere
        """Raise InferplaneError when this machine cannot run these model servers."""

    @abc.abstractmethod
    def leader_argv(self, server: ServerTemplate, ctx: ReplicaContext, opts: BackendOptions) -> list[str]:
        """argv of a replica (or an LWS group leader): the process that serves the OpenAI API."""

    @abc.abstractmethod
    def worker_argv(
        self, server: ServerTemplate, ctx: ReplicaContext, leader: str, opts: BackendOptions
    ) -> tuple[list[str], str | None]:
        """argv of an LWS worker and the HTTP path that says it is ready (None: ready once started)."""

    def accelerator_env(self, server: ServerTemplate, ctx: ReplicaContext) -> dict[str, str]:
        return {}


BACKENDS: dict[str, Callable[[], Backend]] = {}


def register(cls: type[Backend]) -> type[Backend]:
    BACKENDS[cls.name] = cls
    return cls


def get_backend(name: str) -> Backend:
    try:
        return BACKENDS[name]()
    except KeyError:
        raise InferplaneError(
            f"unknown backend {name!r}", hint=f"choose one of: {', '.join(sorted(BACKENDS))}"
        ) from None


def _vllm_args(server: ServerTemplate) -> list[str]:
    if server.vllm_args:
        return list(server.vllm_args)
    _, args = split_vllm_serve(server.command)
    return args


SIM_ACCELERATORS = {"tpu": "tpu-v5e", "nvidia": "h100"}


@register
class SimBackend(Backend):
    name = "sim"
    ready_path = "/health/ready"

    def leader_argv(self, server: ServerTemplate, ctx: ReplicaContext, opts: BackendOptions) -> list[str]:
        argv = [opts.python, "-m", "inferplane", "sim", "--model", server.model]
        if server.served_names:
            argv += ["--served-model-name", *server.served_names]
        argv += ["--host", "127.0.0.1", "--port", str(ctx.port)]
        argv += drop_flags(_vllm_args(server), _RUNTIME_FLAGS)
        argv += ["--pod-name", ctx.name]
        if opts.profile:
            argv += ["--profile", opts.profile]
        elif server.accelerator in SIM_ACCELERATORS:
            # the latency profile follows the hardware the values ask for (pattern 1 runs on a TPU v5e)
            argv += ["--accelerator", SIM_ACCELERATORS[server.accelerator]]
        if opts.time_scale is not None:
            argv += ["--time-scale", str(opts.time_scale)]
        if opts.startup_delay is not None:
            argv += ["--startup-delay", str(opts.startup_delay)]
        return argv + list(opts.sim_args)

    def worker_argv(
        self, server: ServerTemplate, ctx: ReplicaContext, leader: str, opts: BackendOptions
    ) -> tuple[list[str], str | None]:
        argv = [opts.python, "-m", "inferplane.runtime.lws_worker", "--leader", leader, "--port", str(ctx.port)]
        return [*argv, "--name", ctx.name], "/health"


def detect_nvidia_gpus() -> int:
    """How many NVIDIA GPUs `nvidia-smi -L` lists (0 when the tool is missing or fails)."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return 0
    try:
        out = subprocess.run([tool, "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


def detect_tpu_chips() -> int:
    """TPU chips visible to this host (/dev/accel* on v4+/v5e, /dev/vfio/N on newer runtimes)."""
    accel = list(Path("/dev").glob("accel[0-9]*"))
    vfio = [p for p in Path("/dev/vfio").glob("[0-9]*")] if Path("/dev/vfio").is_dir() else []
    return len(accel) or len(vfio)


DETECTORS: dict[str, Callable[[], int]] = {"nvidia": detect_nvidia_gpus, "tpu": detect_tpu_chips}
VISIBLE_ENV = {"nvidia": "CUDA_VISIBLE_DEVICES", "tpu": "TPU_VISIBLE_CHIPS"}


@register
class VllmBackend(Backend):
    name = "vllm"
    ready_path = "/health"

    def check(self, servers: list[ServerTemplate]) -> None:
        if shutil.which("vllm") is None:
            raise InferplaneError(
                "--backend vllm: vLLM is not installed here (no `vllm` on PATH)",
                hint="install it (pip install vllm) on a machine with accelerators, or run the simulator: "
                "--backend sim",
            )
        need: dict[str, int] = {}
        for s in servers:
            if s.accelerator in DETECTORS and s.accelerator_count:
                pods = s.replicas * (s.lws.size if s.lws else 1)
                need[s.accelerator] = need.get(s.accelerator, 0) + s.accelerator_count * pods
        for kind, count in need.items():
            have = DETECTORS[kind]()
            if have < count:
                what = {"nvidia": "NVIDIA GPUs (nvidia-smi -L)", "tpu": "TPU chips (/dev/accel*)"}[kind]
                raise InferplaneError(
                    f"--backend vllm: the model services need {count} {what}, this machine has {have}",
                    hint="lower the replicas, run where the accelerators are, or use --backend sim",
                )

    def accelerator_env(self, server: ServerTemplate, ctx: ReplicaContext) -> dict[str, str]:
        var = VISIBLE_ENV.get(server.accelerator)
        if var is None or not server.accelerator_count or var in ctx.env:
            return {}  # the values already pin the devices, or there is nothing to pin
        first = ctx.index * server.accelerator_count
        return {var: ",".join(str(i) for i in range(first, first + server.accelerator_count))}

    def leader_argv(self, server: ServerTemplate, ctx: ReplicaContext, opts: BackendOptions) -> list[str]:
        if server.command:
            # a custom entry point (sh -c "... vllm serve ..."): run it as written, on the local port
            words = [expand_k8s_vars(w, ctx.env) for w in server.command]
            return replace_port(words, server.port, ctx.port)
        argv = ["vllm", "serve", server.model, "--host", "127.0.0.1", "--port", str(ctx.port)]
        if server.served_names:
            argv += ["--served-model-name", *server.served_names]
        return argv + [expand_k8s_vars(a, ctx.env) for a in drop_flags(_vllm_args(server), _RUNTIME_FLAGS)]

    def worker_argv(
        self, server: ServerTemplate, ctx: ReplicaContext, leader: str, opts: BackendOptions
    ) -> tuple[list[str], str | None]:
        lws = server.lws
        assert lws is not None
        if not lws.worker_command:
            raise InferplaneError(f"{lws.name}: the worker template has no command to run")
        return [expand_k8s_vars(w, ctx.env) for w in lws.worker_command], None


def python_env_path() -> dict[str, str]:
    """PATH with this interpreter's bin directory first, so children find the same `inferplane` and Envoy."""
    bindir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    return {"PATH": bindir + os.pathsep + path if bindir not in path.split(os.pathsep) else path}
