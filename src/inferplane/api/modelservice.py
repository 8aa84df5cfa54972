"""`ModelService`: one set of identical model-server pods, whatever form the user wrote it in.

The pattern form (`modelservice:`), llm-d-modelservice chart values (one per role: decode, prefill), a raw
LeaderWorkerSet and an apps/v1 Deployment all become this one shape, which the runtime, renderer and checks use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from inferplane.api.diagnostics import Diagnostic, Path, format_path
from inferplane.api.k8s import Container, EnvVar, PodTemplateSpec, ResourceRequirements
from inferplane.api.source import Source, SourcePos
from inferplane.api.vllm_args import SHELLS, VllmArgs, parse_vllm_args, vllm_command_args

Accelerator = Literal["tpu", "gpu", "cpu"]
Role = Literal["decode", "prefill"]
ROLE_LABEL = "llm-d.ai/role"

# Extended resource name → accelerator kind (llm-d-modelservice `accelerator.resources`).
ACCELERATOR_RESOURCES: dict[str, Accelerator] = {
    "google.com/tpu": "tpu",
    "nvidia.com/gpu": "gpu",
    "amd.com/gpu": "gpu",
    "gpu.intel.com/i915": "gpu",
    "gpu.intel.com/xe": "gpu",
    "habana.ai/gaudi": "gpu",
    "rebellions.ai/ATOM": "gpu",
}
SIDECAR_IMAGE_HINT = "llm-d-routing-sidecar"
SIM_IMAGE_HINT = "llm-d-inference-sim"


@dataclass(frozen=True)
class SecretRef:
    """A Secret a model service needs: env `secretKeyRef`, `imagePullSecrets`, or the chart's `authSecretName`."""

    name: str
    key: str | None
    path: Path
    purpose: str


@dataclass
class ModelService:
    name: str
    model: str
    served_model_names: list[str]
    role: Role
    replicas: int
    image: str | None
    command: list[str]
    args: list[str]
    vllm: VllmArgs
    port: int
    labels: dict[str, str]
    accelerator: Accelerator
    accelerator_count: int
    env: list[EnvVar]
    source: SourcePos
    form: Literal["pattern", "chart", "leaderworkerset", "deployment"]
    group_size: int = 1
    port_origin: str = "vLLM's default port 8000"
    resources: ResourceRequirements = field(default_factory=ResourceRequirements)
    secret_refs: list[SecretRef] = field(default_factory=list)
    lws: str | None = None
    # With the llm-d routing sidecar in front, `port` is the sidecar's and vLLM listens on this one.
    proxy_target_port: int | None = None
    # The name the upstream chart gives the workload (llm-d-modelservice: `<fullname>-<role>`), where it differs
    # from `name`; the renderer uses it so that `kubectl apply` updates a Helm-installed release in place.
    workload_name: str | None = None
    # A user's apps/v1 Deployment: its own `spec.selector.matchLabels` (immutable in the cluster), kept for the render.
    selector: dict[str, str] | None = None
    origin: Source | None = field(default=None, repr=False, compare=False)

    @property
    def lora_adapters(self) -> list[str]:
        return self.vllm.lora_names

    @property
    def model_names(self) -> list[str]:
        """Every name a request's `model` may carry to reach this service: served names and LoRA adapters."""
        return [*self.served_model_names, *self.lora_adapters]

    def serving_ports(self) -> list[int]:
        """Ports a pool may target: the serving port, plus one per extra data-parallel rank on consecutive ports."""
        if self.proxy_target_port is not None:
            return [self.port]
        ranks = self.vllm.data_parallel_size_local or self.vllm.data_parallel_size
        return [self.port + i for i in range(max(1, ranks))]


def accelerator_of(resources: ResourceRequirements) -> tuple[Accelerator, int]:
    for source in (resources.limits, resources.requests):
        for name, value in source.items():
            kind = ACCELERATOR_RESOURCES.get(name)
            if kind is not None:
                try:
                    return kind, int(str(value))
                except ValueError:
                    return kind, 1
    return "cpu", 0


def env_secret_refs(env: list[EnvVar], base: Path) -> list[SecretRef]:
    refs = []
    for i, var in enumerate(env):
        ref = var.secret_ref
        if ref is not None:
            refs.append(
                SecretRef(ref.name, ref.key, (*base, i, "valueFrom", "secretKeyRef", "name"), f"env {var.name}")
            )
    return refs


def _sidecar_ports(template: PodTemplateSpec) -> tuple[int, int] | None:
    """(listen port, vLLM port) of an llm-d routing sidecar in the pod, if there is one."""
    for c in [*template.spec.init_containers, *template.spec.containers]:
        if c.name == "routing-proxy" or SIDECAR_IMAGE_HINT in (c.image or ""):
            flags = dict(a.lstrip("-").split("=", 1) for a in c.args if a.startswith("--") and "=" in a)
            try:
                return int(flags.get("port", "8000")), int(flags.get("vllm-port", "8200"))
            except ValueError:
                return None
    return None


def find_server_container(template: PodTemplateSpec) -> tuple[int, Container, list[str]] | None:
    """The container that runs vLLM (or the simulator) and the arguments after `vllm serve`."""
    for i, c in enumerate(template.spec.containers):
        rest = vllm_command_args(c.command, c.args)
        if rest is not None and (c.command or "vllm" in (c.image or "") or SIM_IMAGE_HINT in (c.image or "")):
            return i, c, rest
    return None


def from_pod_template(
    *,
    name: str,
    template: PodTemplateSpec,
    replicas: int,
    source: Source,
    template_path: Path,
    form: Literal["leaderworkerset", "deployment"],
    group_size: int = 1,
    lws: str | None = None,
) -> tuple[ModelService | None, list[Diagnostic]]:
    """A ModelService for a workload whose pods run vLLM; None (no problem) when they run something else."""
    found = find_server_container(template)
    if found is None:
        return None, []
    index, container, vllm_argv = found
    cpath = (*template_path, "spec", "containers", index)
    vllm, problems = parse_vllm_args(vllm_argv)
    diags = arg_problems(problems, container, vllm_argv, source, (*cpath, "args"))
    accel, count = accelerator_of(container.resources)
    sidecar = _sidecar_ports(template)
    port, origin, target = vllm.port, _port_origin(vllm, cpath), None
    if sidecar is not None:
        port, target = sidecar
        origin = f"the routing sidecar's --port={port}"
    refs = env_secret_refs(container.env, (*cpath, "env"))
    for j, s in enumerate(template.spec.image_pull_secrets):
        refs.append(SecretRef(s.name, None, (*template_path, "spec", "imagePullSecrets", j, "name"), "image pull"))
    model = vllm.model or "unknown"
    labels = dict(template.metadata.labels)
    return (
        ModelService(
            name=name,
            model=model,
            served_model_names=vllm.served_names or [model],
            role="prefill" if labels.get(ROLE_LABEL) == "prefill" else "decode",
            replicas=replicas,
            image=container.image,
            command=list(container.command),
            args=list(container.args),
            vllm=vllm,
            port=port,
            labels=labels,
            accelerator=accel if SIM_IMAGE_HINT not in (container.image or "") else "cpu",
            accelerator_count=count,
            env=list(container.env),
            source=source.pos(template_path),
            form=form,
            group_size=group_size,
            port_origin=origin,
            resources=container.resources,
            secret_refs=refs,
            lws=lws,
            proxy_target_port=target,
            origin=source,
        ),
        diags,
    )


def _port_origin(vllm: VllmArgs, cpath: Path) -> str:
    if vllm.port_given:
        return f"--port {vllm.port} in {format_path((*cpath, 'args'))}"
    return "vLLM's default port 8000 (no --port in the args)"


def arg_problems(
    problems: list[tuple[int, str]], container: Container, vllm_argv: list[str], source: Source, args_path: Path
) -> list[Diagnostic]:
    """Bad vLLM flag values, positioned at the container arg they came from (the script, for `sh -c`)."""
    shell = bool(container.command) and container.command[0] in SHELLS
    offset = len(container.args) - len(vllm_argv)
    out = []
    for index, message in problems:
        item = 0 if shell or offset < 0 else index + offset
        out.append(source.diag((*args_path, item), message))
    return out
