"""The loaded `Deployment` → the runtime's templates: the only module of the runtime that reads the resource model.

Also resolves what the user typed after `inferplane up` (a path, or a pattern name such as `pattern3`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from inferplane.errors import InferplaneError, UsageError
from inferplane.runtime.templates import LwsShape, PoolTemplate, ServerTemplate, ServiceTemplate, drop_flags

log = logging.getLogger(__name__)

PATTERNS_DIR = "deployments"


def _pattern_roots() -> list[Path]:
    roots = [Path.cwd() / PATTERNS_DIR]
    here = Path(__file__).resolve()
    # a source checkout: src/inferplane/runtime/resources.py → the repository's deployments/
    roots.append(here.parents[3] / PATTERNS_DIR)
    return [r for r in dict.fromkeys(roots) if r.is_dir()]


def available_patterns() -> list[str]:
    return sorted({p.name for root in _pattern_roots() for p in root.iterdir() if p.is_dir()})


def resolve_source(arg: str) -> Path:
    """A deployment directory or file; or a pattern by name (`pattern3-caching`) or prefix (`pattern3`)."""
    path = Path(arg).expanduser()
    if path.exists():
        return path
    for root in _pattern_roots():
        exact = root / arg
        if exact.is_dir():
            return exact
        prefixed = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(arg + "-"))
        if len(prefixed) == 1:
            return prefixed[0]
    raise InferplaneError(
        f"no deployment at {arg!r}",
        hint=f"give a directory, a file, or a pattern name: {', '.join(available_patterns()) or 'none found'}",
    )


def deployment_name(source: Path) -> str:
    return source.resolve().name if source.is_dir() else source.stem


def load(source: Path) -> Any:
    """Load and validate; problems raise the validate-style DiagnosticsError (exit 1, file:line messages)."""
    from inferplane.api.loader import load_deployment

    return load_deployment(source)


@dataclass
class RuntimeView:
    servers: list[ServerTemplate]
    pools: list[PoolTemplate]
    listener_ports: list[int]
    use_bbr: bool
    summary: dict[str, Any]
    curl_host: str | None = None
    pool_extras: dict[str, dict[str, Any]] = field(default_factory=dict)
    services: list[ServiceTemplate] = field(default_factory=list)


ACCELERATOR_KIND = {"gpu": "nvidia", "tpu": "tpu", "cpu": "cpu"}


def _env_dict(env: list[Any]) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    plain: dict[str, str] = {}
    secrets: dict[str, tuple[str, str]] = {}
    for var in env:
        if var.value is not None:
            plain[var.name] = var.value
        elif var.value_from is not None and var.value_from.secret_key_ref is not None:
            ref = var.value_from.secret_key_ref
            secrets[var.name] = (ref.name, ref.key)
    return plain, secrets


def _vllm_args(ms: Any) -> list[str]:
    raw = list(ms.vllm.raw)
    if raw and not raw[0].startswith("-"):
        raw = raw[1:]  # the positional model; the runtime passes the model itself
    # flags whose values only a shell would fill in (`--tensor-parallel-size $TP_SIZE`) mean nothing here
    unresolved = {f if f.startswith("--") else f"--{f}" for f in ms.vllm.unresolved}
    return drop_flags(raw, unresolved)


def _lws_shape(ms: Any, deployment: Any) -> LwsShape | None:
    if not ms.lws:
        return None
    lws = next((x for x in deployment.leader_worker_sets if x.name == ms.lws), None)
    if lws is None:
        return LwsShape(name=ms.lws, size=ms.group_size)
    worker = lws.worker_template
    container = worker.spec.containers[0]
    plain, _ = _env_dict(list(container.env))
    return LwsShape(
        name=lws.name,
        size=lws.size,
        restart_policy=lws.restart_policy,
        startup_policy=lws.spec.startup_policy,
        namespace=lws.metadata.namespace,
        worker_command=[*container.command, *container.args],
        worker_env=plain,
        worker_labels=dict(worker.metadata.labels),
    )


def server_template(ms: Any, deployment: Any) -> ServerTemplate:
    plain, secrets = _env_dict(list(ms.env))
    custom = bool(ms.command) and Path(ms.command[0]).name in {"sh", "bash", "env"}
    return ServerTemplate(
        name=ms.name,
        model=ms.model,
        served_names=list(ms.served_model_names),
        replicas=ms.replicas,
        port=ms.port,
        vllm_args=_vllm_args(ms),
        command=[*ms.command, *ms.args] if custom else [],
        env=plain,
        secret_env=secrets,
        labels=dict(ms.labels),
        accelerator=ACCELERATOR_KIND.get(ms.accelerator, "cpu"),
        accelerator_count=ms.accelerator_count,
        role=ms.role,
        adapters=list(ms.lora_adapters),
        lws=_lws_shape(ms, deployment),
    )


def _epp_config_for(pool: str, deployment: Any, override: Any) -> Any:
    if override is None:
        return deployment.epp_configs.get(pool)
    if isinstance(override, Mapping) and not _looks_like_config(override):
        chosen = override.get(pool)
        return _read_config(chosen) if chosen is not None else deployment.epp_configs.get(pool)
    return _read_config(override)


def _looks_like_config(data: Mapping[str, Any]) -> bool:
    return "kind" in data or "plugins" in data or "schedulingProfiles" in data


def _read_config(value: Any) -> Any:
    """An EndpointPickerConfig given as an object, a mapping, or a path to a YAML file."""
    from inferplane.api.epp_config import EndpointPickerConfig

    if isinstance(value, EndpointPickerConfig):
        return value
    if isinstance(value, str | os.PathLike):
        return _load_config_file(Path(value))
    try:
        return EndpointPickerConfig.model_validate(value)
    except Exception as exc:  # pydantic's ValidationError, reworded for a command line
        raise InferplaneError(f"the EndpointPickerConfig override is invalid: {exc}") from None


def check_epp_override(value: Any) -> None:
    """Fail now, with file:line, when `--epp-config` names a file that is not one valid EndpointPickerConfig."""
    if isinstance(value, str | os.PathLike):
        _read_config(value)
    elif isinstance(value, Mapping) and not _looks_like_config(value):
        for chosen in value.values():
            _read_config(chosen)
    else:
        _read_config(value)


def _load_config_file(path: Path) -> Any:
    """One EndpointPickerConfig from a file, checked by the validate loader (so errors carry file:line)."""
    from inferplane.api.loader import load_deployment

    if not path.is_file():
        raise UsageError(f"--epp-config {path}: no such file")
    found = [cfg for cfgs in load_deployment(path).standalone_epp_configs.values() for cfg in cfgs]
    if len(found) != 1:
        raise UsageError(
            f"--epp-config {path}: holds {len(found)} EndpointPickerConfig documents, expected one",
            hint="a file with `kind: EndpointPickerConfig`, as `inferplane epp --config-file` takes",
        )
    return found[0]


def config_yaml(config: Any) -> str:
    data = config.model_dump(by_alias=True, exclude_none=True, mode="json")
    return yaml.safe_dump(data, sort_keys=False)


def runtime_view(deployment: Any, epp_config_override: Any = None) -> RuntimeView:
    from inferplane.runtime.plan import needs_bbr

    servers = [server_template(ms, deployment) for ms in deployment.model_services]
    pools: list[PoolTemplate] = []
    for pool in deployment.inference_pools:
        ref = pool.spec.endpoint_picker_ref
        pools.append(
            PoolTemplate(
                name=pool.metadata.name,
                namespace=pool.metadata.namespace,
                target_ports=[p.number for p in pool.spec.target_ports],
                failure_mode=ref.failure_mode if ref is not None else "FailClose",
                members=[ms.name for ms in deployment.pool_members(pool)],
                epp_config=_epp_config_for(pool.metadata.name, deployment, epp_config_override),
            )
        )
    listener_ports = [lst.port for gw in deployment.gateways for lst in gw.spec.listeners]
    return RuntimeView(
        servers=servers,
        pools=pools,
        listener_ports=listener_ports,
        use_bbr=needs_bbr(deployment.http_routes),
        summary=summarize(deployment),
        curl_host=curl_host(deployment),
        pool_extras={p.metadata.name: _picker_extras(deployment, p) for p in deployment.inference_pools},
        services=[service_template(s) for s in getattr(deployment, "services", ())],
    )


def service_template(svc: Any) -> ServiceTemplate:
    return ServiceTemplate(
        name=svc.metadata.name,
        namespace=svc.metadata.namespace,
        selector=dict(svc.spec.selector),
        target_ports=[p.target_port if p.target_port is not None else p.port for p in svc.spec.ports],
    )


def _picker_extras(deployment: Any, pool: Any) -> dict[str, Any]:
    """InferenceObjectives and InferenceModelRewrites of a pool, in the endpoints-file shape the picker reads
    (in a cluster it would watch them)."""
    extras: dict[str, Any] = {}
    objectives = deployment.objectives_for(pool)
    if objectives:
        extras["objectives"] = [{"name": o.metadata.name, "priority": o.priority} for o in objectives]
    # one InferenceModelRewrite spec each, as upstream's picker reads them from the API server
    rewrites = [
        {
            "name": rw.metadata.name,
            "rules": [
                {
                    "matches": [{"model": {"type": "Exact", "value": m.model.value}} for m in rule.matches],
                    "targets": [{"modelRewrite": t.model_rewrite, "weight": t.weight or 1} for t in rule.targets],
                }
                for rule in rw.spec.rules
            ],
        }
        for rw in deployment.rewrites
        if rw.spec.pool_ref.name == pool.metadata.name and rw.metadata.namespace == pool.metadata.namespace
    ]
    if rewrites:
        extras["modelRewrites"] = rewrites
    return extras


def summarize(deployment: Any) -> dict[str, Any]:
    """What `inferplane status` shows about the user's resources (kept in plan.json; no re-loading needed)."""
    gateways = [
        {
            "name": gw.metadata.name,
            "class": gw.spec.gateway_class_name,
            "listeners": [{"name": lst.name, "port": lst.port, "protocol": lst.protocol} for lst in gw.spec.listeners],
        }
        for gw in deployment.gateways
    ]
    routes = []
    for r in deployment.http_routes:
        backends = sorted({b.name for rule in r.spec.rules or () for b in rule.backend_refs or ()})
        matches = []
        for rule in r.spec.rules or ():
            for m in rule.matches or ():
                desc = f"{m.path.type} {m.path.value}" if m.path is not None else "PathPrefix /"
                for h in m.headers or ():
                    desc += f" {h.name}={h.value}"
                matches.append(desc)
        routes.append(
            {
                "name": r.metadata.name,
                "parents": [p.name for p in r.spec.parent_refs or ()],
                "hostnames": list(r.spec.hostnames or []),
                "matches": matches,
                "backends": backends,
            }
        )
    return {"gateways": gateways, "routes": routes}


def secret_env(servers: list[ServerTemplate]) -> dict[str, str]:
    """Secret-backed env (HF_TOKEN...) comes from the same variable in the caller's environment, if set.

    There is no Secret store locally; model servers that need a token (real vLLM downloading a gated model) get
    it from the environment `inferplane up` runs in. Missing ones are reported once, not fatal: the simulator
    needs none."""
    out: dict[str, str] = {}
    for s in servers:
        for var, (secret, key) in s.secret_env.items():
            if var in os.environ:
                out[var] = os.environ[var]
            else:
                log.info("%s: env %s comes from Secret %s/%s; not set here, left unset", s.name, var, secret, key)
    return out


# A concrete name for a wildcard hostname in the printed curl line (`*.example.com` → `llm.example.com`).
WILDCARD_LABEL = "llm"


def curl_host(deployment: Any) -> str | None:
    """The Host header the printed curl line needs, or None when a pool route accepts any host.

    Routes to InferencePools are preferred (the curl line posts a completion); a route whose hostnames (intersected
    with its listeners' hostnames) are empty takes every host, so no header is needed."""
    from inferplane.gateway.hostnames import effective_hostnames, is_wildcard

    # parentRefs name Gateways by name (the patterns keep one namespace)
    listeners = {gw.metadata.name: list(gw.spec.listeners) for gw in deployment.gateways}
    routes = list(deployment.http_routes)
    pooled = [r for r in routes if any(b.is_inference_pool for rule in r.spec.rules for b in rule.backend_refs)]
    for route in pooled or routes:
        for ref in route.spec.parent_refs:
            for lst in listeners.get(ref.name, []):
                if ref.section_name not in (None, lst.name) or ref.port not in (None, lst.port):
                    continue
                hosts = effective_hostnames(lst.hostname, route.spec.hostnames)
                if hosts is None:
                    continue
                if not hosts:
                    return None
                host = hosts[0]
                return WILDCARD_LABEL + host[1:] if is_wildcard(host) else host
    return None
