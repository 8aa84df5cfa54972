"""The user's `Deployment` (inferplane.api) + the command-line options → a `RenderPlan`.

Accelerator variants: a deployment may keep the same model service for another accelerator under
`variants/<tpu|gpu>/` (pattern 1 does). `--accelerator X` loads that folder and replaces the model services of the
same name; without a variant, a model service written for another accelerator is an error rather than a silent
conversion, because its image is built for one accelerator only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from inferplane.api.deployment import Deployment
from inferplane.api.gie_versions import written
from inferplane.api.modelservice import ModelService
from inferplane.deploy.plan import EnvVar, ModelServerPlan, PoolPlan, RenderOptions, RenderPlan
from inferplane.errors import ConfigError, UsageError

# Flags the multi-node launch scripts set themselves (the rest of the user's vLLM flags are passed through).
_LAUNCH_FLAGS = {
    "--port", "--tensor-parallel-size", "-tp", "--distributed-executor-backend", "--served-model-name",
    "--data-parallel-size", "-dp", "--data-parallel-size-local", "--data-parallel-address",
    "--data-parallel-rpc-port", "--data-parallel-start-rank", "--data-parallel-hybrid-lb", "--headless",
}  # fmt: skip
_NO_VALUE = {"--data-parallel-hybrid-lb", "--headless"}
# Env the chart injects for its own parallelism arithmetic, and per-accelerator settings that must follow the
# accelerator rather than the source file.
_ACCELERATOR_ENV = {"gpu": {"CUDA_VISIBLE_DEVICES"}, "tpu": {"PJRT_DEVICE"}}


def load_for_render(path: Path, accelerator: str | None) -> Deployment:
    from inferplane.api.loader import load_deployment

    deployment = load_deployment(path)
    variant = path / "variants" / accelerator if accelerator and path.is_dir() else None
    if variant is not None and variant.is_dir():
        replacements = {m.name: m for m in load_deployment(variant, check_references=False).model_services}
        deployment.model_services = [replacements.get(m.name, m) for m in deployment.model_services]
    return deployment


def _extra_vllm_args(raw: list[str], model: str) -> tuple[str, ...]:
    """The user's vLLM flags minus the model and the flags a multi-node launch script sets itself."""
    out: list[str] = []
    i = 0
    while i < len(raw):
        tok = raw[i]
        flag, eq, _ = tok.partition("=")
        i += 1
        if (i == 1 and tok == model) or (flag == "--model" and eq):
            continue
        if flag == "--model" or flag in _LAUNCH_FLAGS:
            if not eq and flag not in _NO_VALUE:
                # One value, or every following value for the list flag --served-model-name.
                while i < len(raw) and not raw[i].startswith("-"):
                    i += 1
                    if flag != "--served-model-name":
                        break
            continue
        out.append(tok)
    return tuple(out)


def _env(ms: ModelService, accelerator: str) -> tuple[EnvVar, ...]:
    foreign = set().union(*(names for kind, names in _ACCELERATOR_ENV.items() if kind != accelerator))
    out = []
    for e in ms.env:
        if e.name in foreign:
            continue
        ref = e.secret_ref
        if ref is not None:
            out.append(EnvVar(e.name, secret_name=ref.name, secret_key=ref.key))
        elif e.value_from is None:
            out.append(EnvVar(e.name, e.value or ""))
    return tuple(out)


def _node_selector(ms: ModelService, lws: Any) -> dict[str, str]:
    template = lws.leader_template if lws is not None else None
    if template is not None:
        return dict(template.spec.node_selector)
    origin = getattr(ms, "node_selector", None)
    return dict(origin) if isinstance(origin, dict) else {}


def _without_model(raw: list[str], model: str) -> list[str]:
    out, i = [], 0
    while i < len(raw):
        tok = raw[i]
        i += 1
        if (i == 1 and tok == model) or tok.startswith("--model="):
            continue
        if tok == "--model":
            i += 1
            continue
        out.append(tok)
    return out


def sim_server_plan(ms: ModelService, options: RenderOptions) -> ModelServerPlan:
    """`--backend sim`: the simulator from the inferplane image, with the same vLLM flags (it accepts them), on CPU.

    A multi-node group collapses into one simulator per group (the leader's labels), since a simulated server needs
    no peers; secrets are not referenced, so the render applies to a cluster without them.
    """
    args = ("sim", "serve", ms.model, *_without_model(list(ms.vllm.raw), ms.model))
    env = tuple(EnvVar(e.name, e.value or "") for e in ms.env if e.value_from is None)
    return ModelServerPlan(
        name=ms.name,
        workload_name=ms.workload_name,
        model=ms.model,
        image=options.image,
        port=ms.port,
        labels=dict(ms.labels),
        replicas=ms.replicas,
        role=ms.role,
        args=args,
        tensor_parallel_size=1,
        accelerator="cpu",
        accelerator_count=0,
        container_name="sim",
        env=tuple(e for e in env if e.name not in _ACCELERATOR_ENV["gpu"] | _ACCELERATOR_ENV["tpu"]),
    )


def model_server_plan(ms: ModelService, deployment: Deployment, options: RenderOptions) -> ModelServerPlan:
    if options.backend == "sim":
        return sim_server_plan(ms, options)
    if ms.proxy_target_port is not None:
        # The llm-d routing sidecar (prefill/decode disaggregation) is not rendered; a pod without it would leave
        # vLLM on the sidecar's target port and the pool's port unserved (llm-d-modelservice #150).
        raise UsageError(
            f"model service {ms.name!r} sits behind the llm-d routing sidecar (port {ms.port} → vLLM "
            f"{ms.proxy_target_port}), which inferplane render does not produce",
            hint="set routing.proxy.enabled: false in its values, or render it with --backend sim",
        )
    accelerator = ms.accelerator
    if options.accelerator and accelerator != "cpu" and accelerator != options.accelerator:
        # A deployment problem (it lacks a variant for the asked accelerator), not a misuse of the options: exit 1.
        raise ConfigError(
            f"model service {ms.name!r} is written for {accelerator} and has no variants/{options.accelerator}/ "
            f"values in {deployment.root}",
            hint=f"render with --accelerator {accelerator}, or add variants/{options.accelerator}/ with values "
            "for that accelerator (image and resources differ)",
        )
    if accelerator == "tpu" and options.target != "gke":
        raise UsageError(
            f"model service {ms.name!r} needs TPUs, which only GKE offers", hint="use --target gke, or a GPU variant"
        )
    lws = next((w for w in deployment.leader_worker_sets if w.name == ms.lws), None) if ms.lws else None
    image_pull_secrets = tuple(s.name for s in ms.secret_refs if s.purpose == "image pull")
    common: dict[str, Any] = {
        "name": ms.name,
        "workload_name": ms.workload_name,
        "selector": ms.selector,
        "model": ms.model,
        "image": ms.image or "vllm/vllm-openai:latest",
        "port": ms.port,
        "labels": dict(ms.labels),
        "replicas": ms.replicas,
        "role": ms.role,
        "tensor_parallel_size": ms.vllm.tensor_parallel_size,
        "accelerator": accelerator,
        "accelerator_count": max(ms.accelerator_count, 1) if accelerator != "cpu" else 0,
        "env": _env(ms, accelerator),
        "node_selector": _node_selector(ms, lws),
        "image_pull_secrets": image_pull_secrets,
    }
    if ms.group_size <= 1:
        return ModelServerPlan(**common, command=tuple(ms.command), args=tuple(ms.args))
    data_parallel = ms.vllm.data_parallel_size > 1 or ms.vllm.data_parallel_size_local is not None
    worker_labels = dict(lws.worker_template.metadata.labels) if lws is not None else None
    if lws is not None:
        common["restart_policy"] = lws.spec.leader_worker_template.restart_policy
        common["startup_policy"] = lws.spec.startup_policy
    return ModelServerPlan(
        **common,
        served_names=tuple(ms.served_model_names) if ms.vllm.served_model_name else (),
        args=_extra_vllm_args(list(ms.vllm.raw), ms.model),
        group_size=ms.group_size,
        multinode_style="data-parallel" if data_parallel else "ray",
        data_parallel_size_local=ms.vllm.data_parallel_size_local or 1,
        worker_labels=None if data_parallel else worker_labels,
    )


def _dump(model: Any) -> dict[str, Any]:
    out: dict[str, Any] = model.model_dump(by_alias=True, exclude_none=True, mode="json")
    out.pop("status", None)
    return out


def build_plan(deployment: Deployment, options: RenderOptions, name: str) -> RenderPlan:
    """The namespace: `--namespace`, else the one the deployment's objects name, else none at all. `default` counts
    as none (it is what an object without a namespace reads as), so that a deployment written without namespaces
    renders without them, for `kubectl apply -n`, Helm, kustomize or Argo CD to set; `--namespace default` pins it."""
    namespaces = {p.namespace for p in deployment.inference_pools} | {g.metadata.namespace for g in deployment.gateways}
    namespaces.discard("default")
    namespace: str | None
    if options.namespace:
        namespace = options.namespace
    elif len(namespaces) <= 1:
        namespace = next(iter(namespaces), None)
    else:
        raise UsageError(
            f"the deployment spans namespaces {', '.join(sorted(namespaces))}; inferplane renders into one",
            hint="pass --namespace",
        )
    pools = []
    for pool in deployment.inference_pools:
        config = deployment.epp_configs.get(pool.name)
        config_text = yaml.safe_dump(_dump(config), sort_keys=False) if config is not None else ""
        ref = pool.spec.endpoint_picker_ref
        pools.append(
            PoolPlan(
                name=pool.name,
                selector=dict(pool.match_labels),
                target_ports=tuple(pool.target_port_numbers),
                epp_config=config_text,
                failure_mode=pool.failure_mode,
                app_protocol=pool.spec.app_protocol,
                app_protocol_written=written(pool, ("spec", "appProtocol")),
                epp_service_port=ref.port.number if ref is not None and ref.port is not None else 9002,
                epp_ref_name=ref.name if ref is not None else "",
            )
        )
    warnings = [w.message for w in deployment.warnings if "Secret" not in w.message]
    return RenderPlan(
        name=name,
        namespace=namespace,
        gateways=tuple(_dump(g) for g in deployment.gateways),
        routes=tuple(_dump(r) for r in deployment.http_routes),
        pools=tuple(pools),
        model_servers=tuple(model_server_plan(ms, deployment, options) for ms in deployment.model_services),
        objectives=tuple(_dump(o) for o in deployment.objectives),
        rewrites=tuple(_dump(r) for r in deployment.rewrites),
        needs_bbr=deployment.needs_bbr,
        bbr_models=tuple(
            (ms.served_model_names[0], tuple(ms.lora_adapters))
            for ms in deployment.model_services
            if ms.served_model_names
        ),
        warnings=tuple(warnings),
    )
