"""Model-service values → `ModelService`, following what the llm-d-modelservice chart would render.

Command line (`modelCommand`), port rule (`vllmPort`), parallelism math, labels, accelerator count and injected
env follow ms v0.4.12 (reference/deployment.md §1.2); the flat pattern form maps as §1.5 describes.
"""

from __future__ import annotations

from pathlib import PurePath

from inferplane.api.diagnostics import Diagnostic, Path
from inferplane.api.k8s import EnvVar, EnvVarSource, KeySelector
from inferplane.api.modelservice import (
    ROLE_LABEL,
    SIM_IMAGE_HINT,
    Accelerator,
    ModelService,
    SecretRef,
    accelerator_of,
    arg_problems,
    env_secret_refs,
)
from inferplane.api.ms_values import (
    CHART_RESOURCES,
    V02_ROUTING_KEYS,
    ChartContainer,
    ChartValues,
    FlatValues,
    RoleValues,
    default_container,
)
from inferplane.api.source import Source
from inferplane.api.vllm_args import VllmArgs, parse_vllm_args, vllm_command_args

SERVING_LABEL = "llm-d.ai/inference-serving"
_TEMPLATE = "{{ .Values.modelArtifacts.name }}"


def model_path(values: ChartValues) -> str:
    """What the chart passes to `vllm serve`: the Hugging Face id for hf://, the mount path for PVCs."""
    art = values.model_artifacts
    uri = (art.uri or f"hf://{_TEMPLATE}").replace(_TEMPLATE, art.name).replace('"', "")
    scheme, _, rest = uri.partition("://")
    if scheme == "hf":
        return rest or art.name
    if scheme == "pvc":
        _claim, _, sub = rest.partition("/")
        return f"{art.mount_path.rstrip('/')}/{sub}" if sub else art.mount_path
    return art.name


def _pick_container(containers: list[ChartContainer]) -> int:
    for i, c in enumerate(containers):
        if c.model_command in ("vllmServe", "imageDefault"):
            return i
    for i, c in enumerate(containers):
        if vllm_command_args(c.command, c.args) is not None:
            return i
    return 0


CHART_NAME = "llm-d-modelservice"
# The chart truncates its fullname to 55 characters so that `-prefill` still fits a 63-character name.
_FULLNAME_MAX = 55


def chart_fullname(values: ChartValues, release: str) -> str:
    """The llm-d-modelservice `fullname` helper: fullnameOverride, else the release name when it contains the chart
    name, else `<release>-llm-d-modelservice`; truncated to 55 characters and trimmed of a trailing '-'."""
    if values.fullname_override:
        full = values.fullname_override
    else:
        chart = values.name_override or CHART_NAME
        full = release if chart in release else f"{release}-{chart}"
    return full[:_FULLNAME_MAX].rstrip("-")


def chart_model_services(
    values: ChartValues, name: str, source: Source, fullname: str | None = None
) -> tuple[list[ModelService], list[Diagnostic]]:
    diags: list[Diagnostic] = []
    routing = values.routing
    for key in V02_ROUTING_KEYS:
        if getattr(routing, _snake(key)) is not None:
            diags.append(
                source.diag(
                    ("routing", key),
                    f"routing.{key} is a llm-d-modelservice v0.2 key, ignored since chart v0.4 (PR #145 removed the "
                    "chart's InferencePool/HTTPRoute/EPP)",
                    hint=_V02_HINT.get(key, "write the HTTPRoute and InferencePool as manifests"),
                    severity="warning",
                    key=True,
                )
            )
    services = []
    for role in ("decode", "prefill"):
        rv = getattr(values, role)
        if rv is None:
            rv = RoleValues()
        replicas = rv.replicas if rv.replicas is not None else (1 if role == "decode" else 0)
        if not rv.create or (replicas == 0 and role == "prefill"):
            continue
        ms, problems = _role_service(values, role, rv, replicas, f"{name}-{role}", source)
        diags.extend(problems)
        if ms is not None:
            if fullname is not None and f"{fullname}-{role}" != ms.name:
                ms.workload_name = f"{fullname}-{role}"
            services.append(ms)
    return services, diags


_V02_HINT = {
    "modelName": "the served model name comes from modelArtifacts.name",
    "epp": "configure the endpoint picker with GIE inferencepool chart values or an EndpointPickerConfig",
}


def _snake(key: str) -> str:
    return "".join("_" + ch.lower() if ch.isupper() else ch for ch in key)


def _role_service(
    values: ChartValues, role: str, rv: RoleValues, replicas: int, name: str, source: Source
) -> tuple[ModelService | None, list[Diagnostic]]:
    diags: list[Diagnostic] = []
    try:
        tensor, data, data_local, workers = rv.parallelism.resolve()
    except ValueError as exc:
        return None, [source.diag((role, "parallelism"), str(exc))]
    containers = rv.containers if rv.containers else [default_container()]
    index = _pick_container(containers)
    c = containers[index]
    cpath: Path = (role, "containers", index)
    routing, art = values.routing, values.model_artifacts
    proxy = role == "decode" and routing.proxy.enabled
    vllm_port = routing.proxy.target_port if proxy else routing.service_port
    model = model_path(values)
    chart_args = [
        "--port",
        str(vllm_port),
        *(["--tensor-parallel-size", str(tensor)] if tensor != 1 else []),
        *(["--data-parallel-size", str(data)] if data != 1 else []),
        *(["--data-parallel-size-local", str(data_local)] if data_local != 1 else []),
        "--served-model-name",
        art.name,
    ]
    if c.model_command == "vllmServe":
        command, args = ["vllm", "serve"], [model, *chart_args, *c.args]
        port_origin = _chart_port_origin(proxy, routing.service_port, routing.proxy.target_port)
    elif c.model_command == "imageDefault":
        command, args = list(c.command), ["--model", model, *chart_args, *c.args]
        port_origin = _chart_port_origin(proxy, routing.service_port, routing.proxy.target_port)
    else:
        command, args = list(c.command), list(c.args)
        port_origin = ""
    argv = vllm_command_args(command, args)
    if argv is None:
        diags.append(
            source.diag(
                (*cpath, "command"),
                "no `vllm serve` found in the custom command; assuming vLLM's flags and port 8000",
                severity="warning",
            )
        )
        argv = []
    vllm, problems = parse_vllm_args(argv)
    if c.model_command == "custom":
        diags.extend(arg_problems(problems, c.as_container(), argv, source, (*cpath, "args")))
    else:
        # The user's args come last, after what the chart puts in front (model, --port, parallelism, name).
        offset = len(argv) - len(c.args)
        for index, message in problems:
            where: Path = (*cpath, "args", index - offset) if index >= offset else cpath
            diags.append(source.diag(where, message))
        user_port = _last_flag(c.args, "port")
        if user_port is not None and vllm.port_given:
            # vLLM takes the last --port, so the user's wins over the chart's routing port.
            if not proxy:
                at = source.pos((*cpath, "args", user_port))
                port_origin = f"its --port argument: {at.path}, {PurePath(at.file).name} line {at.line}"
            elif vllm.port != routing.proxy.target_port:
                diags.append(
                    source.diag(
                        (*cpath, "args", user_port),
                        f"--port {vllm.port} overrides the chart's --port {routing.proxy.target_port} "
                        "(routing.proxy.targetPort), where the routing sidecar forwards",
                        hint=f"drop --port and set routing.proxy.targetPort: {vllm.port}",
                    )
                )
    if c.model_command == "custom":
        port_origin = (
            f"routing.servicePort {routing.service_port} (the routing sidecar's port)"
            if proxy
            else (f"--port {vllm.port} in the custom command" if vllm.port_given else "vLLM's default port 8000")
        )
        if proxy and vllm.port != routing.proxy.target_port:
            diags.append(
                source.diag(
                    (*cpath, "args"),
                    f"vLLM listens on {vllm.port} but the routing sidecar forwards to routing.proxy.targetPort "
                    f"{routing.proxy.target_port}",
                    hint=f"use --port {routing.proxy.target_port} or set routing.proxy.targetPort: {vllm.port}",
                )
            )
    if vllm.model is None:
        vllm.model = model
    accel_type = (rv.accelerator.type if rv.accelerator and rv.accelerator.type else None) or values.accelerator.type
    image = c.image or ""
    resource = values.accelerator.resources.get(accel_type) or CHART_RESOURCES.get(accel_type)
    accel: Accelerator
    if accel_type == "cpu" or SIM_IMAGE_HINT in image:
        accel, count = "cpu", 0
    else:
        found_kind, found_count = accelerator_of(c.resources)
        accel = "tpu" if accel_type == "google" else "gpu"
        explicit = resource is not None and (resource in c.resources.limits or resource in c.resources.requests)
        count = found_count if explicit and found_kind != "cpu" else tensor * data_local
    env = _chart_env(values, accel_type, c, tensor, data, data_local)
    refs = env_secret_refs(c.env, (*cpath, "env"))
    if art.auth_secret_name:
        refs.append(SecretRef(art.auth_secret_name, "HF_TOKEN", ("modelArtifacts", "authSecretName"), "HF_TOKEN"))
    labels = {SERVING_LABEL: "true", **art.labels, ROLE_LABEL: role}
    return (
        ModelService(
            name=name,
            model=vllm.model,
            served_model_names=vllm.served_names,
            role="prefill" if role == "prefill" else "decode",
            replicas=replicas,
            image=c.image,
            command=command,
            args=args,
            vllm=vllm,
            port=routing.service_port if proxy else vllm.port,
            labels=labels,
            accelerator=accel,
            accelerator_count=count,
            env=env,
            source=source.pos((role,)),
            form="chart",
            group_size=workers if values.multinode else 1,
            port_origin=port_origin,
            resources=c.resources,
            secret_refs=refs,
            proxy_target_port=vllm.port if proxy else None,
            origin=source,
        ),
        diags,
    )


def _last_flag(args: list[str], name: str) -> int | None:
    """Index of the last `--name` / `--name=value` in `args`."""
    found = None
    for i, arg in enumerate(args):
        if arg == f"--{name}" or arg.startswith(f"--{name}="):
            found = i
    return found


def _chart_port_origin(proxy: bool, service_port: int, target_port: int) -> str:
    if proxy:
        return (
            f"routing.servicePort {service_port}: the routing sidecar listens there and forwards to vLLM on "
            f"routing.proxy.targetPort {target_port}"
        )
    return f"routing.servicePort {service_port}, which the chart passes to vLLM as --port"


def _chart_env(
    values: ChartValues, accel_type: str, c: ChartContainer, tensor: int, data: int, data_local: int
) -> list[EnvVar]:
    env = [*values.accelerator.env.get(accel_type, []), *c.env]
    names = {e.name for e in env}
    injected = {"DP_SIZE": data, "TP_SIZE": tensor, "DP_SIZE_LOCAL": data_local}
    env += [EnvVar(name=k, value=str(v)) for k, v in injected.items() if k not in names]
    art = values.model_artifacts
    if art.auth_secret_name and "HF_TOKEN" not in names:
        env.append(
            EnvVar(
                name="HF_TOKEN",
                value_from=EnvVarSource(secret_key_ref=KeySelector(name=art.auth_secret_name, key="HF_TOKEN")),
            )
        )
    return env


def flat_model_service(values: FlatValues, source: Source) -> tuple[ModelService, list[Diagnostic]]:
    ms = values.modelservice
    vllm, problems = parse_vllm_args(list(ms.args))
    diags = [source.diag(("modelservice", "args", i), message) for i, message in problems]
    diags.append(
        source.diag(
            ("modelservice",),
            "the flat `modelservice:` form is an inferplane convenience, not llm-d-modelservice chart values "
            "(the chart ignores unknown top-level keys)",
            hint=f"inferplane maps name → workload and pod label app={ms.name}, image → container image, "
            "model → modelArtifacts.name, replicas → decode.replicas, resources/env/args → the container",
            severity="warning",
            key=True,
        )
    )
    if vllm.model is None:
        vllm.model = ms.model
    accel, count = accelerator_of(ms.resources)
    return (
        ModelService(
            name=ms.name,
            model=ms.model,
            served_model_names=vllm.served_names,
            role="decode",
            replicas=ms.replicas,
            image=ms.image.ref,
            command=["vllm", "serve"],
            args=[ms.model, *ms.args],
            vllm=vllm,
            port=vllm.port,
            labels={"app": ms.name, **ms.labels},
            accelerator=accel,
            accelerator_count=count,
            env=list(ms.env),
            source=source.pos(("modelservice",)),
            form="pattern",
            port_origin=f"--port {vllm.port} in modelservice.args" if vllm.port_given else "vLLM's default 8000",
            resources=ms.resources,
            secret_refs=env_secret_refs(ms.env, ("modelservice", "env")),
            origin=source,
        ),
        diags,
    )


__all__ = ["VllmArgs", "chart_model_services", "flat_model_service", "model_path"]
