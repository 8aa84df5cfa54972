"""Values files (documents without `kind`): which chart they are for, and what they add to the Deployment.

Recognised by their top-level keys: the flat pattern form (`modelservice:`), GIE `inferencepool` chart values
(`inferenceExtension`, `inferencePool`), GIE `body-based-routing` values (`bbr`), llm-d-modelservice values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from inferplane.api.diagnostics import did_you_mean
from inferplane.api.epp_config import EndpointPickerConfig, default_epp_config
from inferplane.api.gaie_values import BUILTIN_CONFIGS, GIE_TOP_LEVEL, BbrValues, GieValues
from inferplane.api.kinds import LoadContext
from inferplane.api.ms_convert import chart_fullname, chart_model_services, flat_model_service
from inferplane.api.ms_values import CHART_TOP_LEVEL, ChartValues, FlatValues
from inferplane.api.pool import EndpointPickerRef, Port, make_pool
from inferplane.api.positions import YamlDoc, parse_yaml
from inferplane.api.source import Source

ValuesHandler = Callable[[LoadContext, YamlDoc, dict[str, Any]], None]


def _flat(ctx: LoadContext, doc: YamlDoc, data: dict[str, Any]) -> None:
    values = ctx.validate(FlatValues, data, doc)
    if values is None:
        return
    source = Source(doc)
    ms, problems = flat_model_service(values, source)
    ctx.diags.extend(problems)
    ctx.add_model_service(ms, source, ("modelservice", "name"))


def _chart(ctx: LoadContext, doc: YamlDoc, data: dict[str, Any]) -> None:
    values = ctx.validate(ChartValues, data, doc)
    if values is None:
        return
    source = Source(doc)
    services, problems = chart_model_services(
        values, values.fullname_override or ctx.release, source, chart_fullname(values, ctx.release)
    )
    ctx.diags.extend(problems)
    for ms in services:
        ctx.add_model_service(ms, source, ("fullnameOverride",) if values.fullname_override else ())


def _gie(ctx: LoadContext, doc: YamlDoc, data: dict[str, Any]) -> None:
    values = ctx.validate(GieValues, data, doc)
    if values is None:
        return
    name = ctx.release
    ext = values.inference_extension
    pool = make_pool(
        name, "default", dict(values.inference_pool.model_servers.match_labels), values.inference_pool.ports()
    )
    pool.spec.endpoint_picker_ref = EndpointPickerRef(
        name=f"{name}-epp", port=Port(number=ext.ext_proc_port), failure_mode=ext.failure_mode or "FailClose"
    )
    port_key = "targetPorts" if values.inference_pool.target_ports else "targetPortNumber"
    aliases: dict[tuple[str | int, ...], tuple[str | int, ...]] = {
        ("metadata",): (),
        ("spec", "selector", "matchLabels"): ("inferencePool", "modelServers", "matchLabels"),
        ("spec", "targetPorts"): ("inferencePool", port_key),
        ("spec", "endpointPickerRef"): ("inferenceExtension",),
    }
    if not ctx.register("InferencePool", pool.metadata, Source(doc, aliases=aliases)):
        return
    ctx.dep.inference_pools.append(pool)
    ctx.dep.pool_api_groups[(pool.namespace, pool.name)] = "inference.networking.k8s.io"
    cfg = _plugins_config(ctx, doc, values)
    if cfg is not None:
        ctx.values_epp[(pool.namespace, pool.name)] = cfg


def _plugins_config(ctx: LoadContext, doc: YamlDoc, values: GieValues) -> tuple[EndpointPickerConfig, str] | None:
    file, custom, where = values.plugins_source()
    if file is None:
        if custom:
            ctx.diags.add(
                doc.diag(
                    (*where, "pluginsCustomConfig"),
                    "pluginsCustomConfig is set but pluginsConfigFile is not: the chart runs default-plugins.yaml",
                    hint="set pluginsConfigFile to one of its keys",
                    severity="warning",
                    key=True,
                )
            )
        return default_epp_config(), f"{ctx.rel}: chart default (default-plugins.yaml)"
    if file in custom:
        path = (*where, "pluginsCustomConfig", file)
        cfg = _embedded_config(ctx, doc, path, custom[file])
        return (cfg, f"{ctx.rel}: {'.'.join(where)}.pluginsCustomConfig[{file!r}]") if cfg else None
    if file in BUILTIN_CONFIGS:
        return default_epp_config(), f"{ctx.rel}: built-in {file} (GIE default scorers)"
    hint = did_you_mean(file, [*custom, *BUILTIN_CONFIGS]) or (
        f"add it under pluginsCustomConfig, or use a built-in: {', '.join(BUILTIN_CONFIGS)}"
    )
    ctx.diags.add(
        doc.diag(
            (*where, "pluginsConfigFile"),
            f"pluginsConfigFile {file!r} is neither a key of "
            "pluginsCustomConfig nor a config built into the endpoint picker image",
            hint=hint,
        )
    )
    return None


def _embedded_config(
    ctx: LoadContext, doc: YamlDoc, path: tuple[str | int, ...], text: str
) -> EndpointPickerConfig | None:
    line, col = doc.pos(path)
    offset = doc.blocks.get(path, (line - 1, col - 1))
    docs, problems = parse_yaml(text, doc.file, offset=offset)
    ctx.diags.extend(problems)
    found = [d for d in docs if d.data is not None]
    if problems:
        return None
    if len(found) != 1 or not isinstance(found[0].data, dict):
        ctx.diags.add(doc.diag(path, "expected exactly one EndpointPickerConfig document"))
        return None
    sub = found[0]
    assert isinstance(sub.data, dict)
    if sub.data.get("kind") != "EndpointPickerConfig":
        ctx.diags.add(sub.diag(("kind",), f"expected kind: EndpointPickerConfig, found {sub.data.get('kind')!r}"))
        return None
    cfg = ctx.validate(EndpointPickerConfig, sub.data, sub)
    if cfg is not None:
        ctx.dep.epp_config_docs.append((cfg, sub))
    return cfg


def _bbr(ctx: LoadContext, doc: YamlDoc, data: dict[str, Any]) -> None:
    values = ctx.validate(BbrValues, data, doc)
    if values is not None:
        ctx.dep.bbr = values


# Order matters: the first form whose keys appear wins.
VALUES_FORMS: list[tuple[frozenset[str], ValuesHandler]] = [
    (frozenset({"modelservice"}), _flat),
    (frozenset({"inferenceExtension", "inferencePool"}), _gie),
    (frozenset({"bbr"}), _bbr),
    (CHART_TOP_LEVEL, _chart),
]
ALL_VALUES_KEYS = frozenset({"modelservice", "bbr", "apiVersion", "kind"} | GIE_TOP_LEVEL | CHART_TOP_LEVEL)


def dispatch_values(ctx: LoadContext, doc: YamlDoc, data: dict[str, Any]) -> None:
    if not data:
        return
    for keys, handler in VALUES_FORMS:
        if keys & set(data):
            handler(ctx, doc, data)
            return
    first = next(iter(data))
    hint = did_you_mean(first, ALL_VALUES_KEYS) or (
        "expected a Kubernetes object (apiVersion, kind), llm-d-modelservice values (modelArtifacts, decode, ...), "
        "inferencepool chart values (inferenceExtension, inferencePool) or the pattern form (modelservice:)"
    )
    ctx.diags.add(doc.diag((first,), "cannot tell what this document is", hint=hint, key=True))
