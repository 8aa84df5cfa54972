"""The EPP's config loader (GIE `config/loader`): older type names mapped, system defaults filled in, references
checked, and every plugin of a configuration built — from the registry's facts, so the resource model
(`inferplane.api.epp_config`) stays plain data that knows no plugin.

Errors are `ConfigError`s; warnings (parameters a plugin does not take) are returned, never logged: the EPP logs them
once, `validate` reports them at their line.
"""

from __future__ import annotations

from typing import Any

from inferplane.api.epp_config import (
    DataLayerConfig,
    DataLayerSource,
    EndpointPickerConfig,
    PluginRef,
    PluginSpec,
    ProfilePluginRef,
    SchedulingProfile,
)
from inferplane.epp.framework.capabilities import ProducerConsumer
from inferplane.epp.framework.interfaces import RequestParser
from inferplane.epp.framework.registry import Plugin, PluginHandle, build_plugin, canonical_type, lookup, plugin_role
from inferplane.errors import ConfigError

DEFAULT_SATURATION_DETECTOR = "utilization-detector"
DEFAULT_PARSER = "openai-parser"


def normalize_plugin_type(spec: PluginSpec) -> PluginSpec:
    """Map older type names onto today's (`kv-cache-scorer`, `prefix-cache-scorer` in `cache_tracking` mode, ...)."""
    params = dict(spec.parameters or {})
    new_type = canonical_type(spec.type)
    if spec.type == "prefix-cache-scorer" and params.get("mode") == "cache_tracking":
        new_type = "precise-prefix-cache-scorer"
        params.pop("mode")
    if new_type == spec.type and params == (spec.parameters or {}):
        return spec
    # The instance keeps the name users reference it by (`pluginRef: kv-cache-scorer` keeps working).
    return PluginSpec(name=spec.plugin_name, type=new_type, parameters=params or None)


ConfigPath = tuple[str | int, ...]


def reference_problems(cfg: EndpointPickerConfig) -> list[tuple[ConfigPath, str]]:
    """`saturationDetector` and `parser` must name a plugin of the configuration or a type the loader creates on its
    own (`implicit` on its registration); every profile's pluginRef must name a plugin (the model lets one pass when
    a misspelt type explains it). Returns (path, message) pairs; empty when all is well."""
    names = {p.plugin_name for p in cfg.plugins}
    problems: list[tuple[ConfigPath, str]] = []
    for i, prof in enumerate(cfg.scheduling_profiles):
        for j, pref in enumerate(prof.plugins):
            if pref.plugin_ref not in names:
                problems.append(
                    (
                        ("schedulingProfiles", i, "plugins", j, "pluginRef"),
                        f"{pref.plugin_ref!r} names no plugin; defined plugins: {', '.join(sorted(names)) or '(none)'}",
                    )
                )
    for field, ref in (("saturationDetector", cfg.saturation_detector), ("parser", cfg.parser)):
        if ref is None or ref.plugin_ref in names:
            continue
        pt = lookup(ref.plugin_ref)
        if pt is None or not pt.implicit:
            problems.append(
                ((field, "pluginRef"), f"{ref.plugin_ref!r} names no plugin; add `- type: {ref.plugin_ref}` to plugins")
            )
    return problems


def format_path(path: ConfigPath) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def apply_system_defaults(cfg: EndpointPickerConfig) -> EndpointPickerConfig:
    """Return a copy with what the upstream loader fills in after building the plugins (reference/epp.md §1):

    names default to types and older type names are mapped; no profile → `default` holding every filter, scorer and
    picker; one profile and no handler → `single-profile-handler`; a profile without a picker → `max-score-picker`;
    scorer weights default to 1.0; saturation detector `utilization-detector`; parser `openai-parser`; data layer
    `metrics-data-source` + `core-metrics-extractor` unless explicit or `enableLegacyMetrics` is set.
    """
    plugins = [normalize_plugin_type(p) for p in cfg.plugins]
    plugins = [p if p.name else PluginSpec(name=p.type, type=p.type, parameters=p.parameters) for p in plugins]
    roles = {p.plugin_name: plugin_role(p.type) for p in plugins}
    names = [p.plugin_name for p in plugins]

    def add_plugin(type_name: str) -> str:
        name = type_name
        if name in names:
            if roles.get(name) == plugin_role(type_name):
                return name
            suffix = 2
            while f"{type_name}-{suffix}" in names:
                suffix += 1
            name = f"{type_name}-{suffix}"
        plugins.append(PluginSpec(name=name, type=type_name))
        names.append(name)
        roles[name] = plugin_role(type_name)
        return name

    profiles = [prof.model_copy(deep=True) for prof in cfg.scheduling_profiles]
    if not profiles:
        profiles = [
            SchedulingProfile(
                name="default",
                plugins=[ProfilePluginRef(plugin_ref=n) for n in names if roles[n] in ("filter", "scorer", "picker")],
            )
        ]
    if not any(role == "profile-handler" for role in roles.values()) and len(profiles) == 1:
        add_plugin("single-profile-handler")
    for prof in profiles:
        if not any(roles.get(r.plugin_ref) == "picker" for r in prof.plugins):
            prof.plugins.append(ProfilePluginRef(plugin_ref=add_plugin("max-score-picker")))
        for ref in prof.plugins:
            if roles.get(ref.plugin_ref) == "scorer" and ref.weight is None:
                ref.weight = 1.0
    data_layer = cfg.data_layer
    if data_layer is None and not cfg.has_gate("enableLegacyMetrics"):
        data_layer = DataLayerConfig(
            sources=[
                DataLayerSource(
                    plugin_ref="metrics-data-source", extractors=[PluginRef(plugin_ref="core-metrics-extractor")]
                )
            ]
        )
    return cfg.model_copy(
        update={
            "plugins": plugins,
            "scheduling_profiles": profiles,
            "saturation_detector": cfg.saturation_detector or PluginRef(plugin_ref=DEFAULT_SATURATION_DETECTOR),
            "parser": cfg.parser or PluginRef(plugin_ref=DEFAULT_PARSER),
            "data_layer": data_layer,
        }
    )


def needs_body(config: EndpointPickerConfig) -> bool:
    """Whether some plugin of the configuration reads request bodies (`needs_body` on its registration; a type
    inferplane does not know is assumed to). The local gateway uses this to choose the ext_proc body mode."""
    for p in config.plugins:
        pt = lookup(normalize_plugin_type(p).type)
        if pt is None or pt.needs_body:
            return True
    return False


def build_plugins(
    config: EndpointPickerConfig, handle: PluginHandle
) -> tuple[EndpointPickerConfig, dict[str, Plugin], list[str]]:
    """Apply the system defaults and build every plugin (plus auto-created producers). Returns the completed
    config, the plugins by name and the warnings (parameters a plugin does not take, ...)."""
    for path, message in reference_problems(config):
        raise ConfigError(f"{format_path(path)}: {message}")
    cfg = apply_system_defaults(config)
    warnings: list[str] = []
    plugins = handle.plugins
    for i, spec in enumerate(cfg.plugins):
        # Unknown types are errors, like upstream; the registry's message carries the near-miss hint.
        plugin, w = build_plugin(spec.type, spec.plugin_name, spec.parameters, handle, where=f"plugins[{i}]: ")
        plugins[spec.plugin_name] = plugin
        warnings += w
    _add_default_producers(cfg, plugins, handle, warnings)
    for ref, what in ((cfg.saturation_detector, "saturation-detector"), (cfg.parser, "parser")):
        if ref is not None and ref.plugin_ref not in plugins:
            plugin, w = build_plugin(ref.plugin_ref, ref.plugin_ref, None, handle, where=f"{what}: ")
            plugins[ref.plugin_ref] = plugin
            warnings += w
    if cfg.parser is not None and not isinstance(plugins[cfg.parser.plugin_ref], RequestParser):
        raise ConfigError(f"parser.pluginRef: {_not_a_parser(cfg.parser.plugin_ref)}", hint=PARSER_HINT)
    return cfg, plugins, warnings


PARSER_HINT = (
    "inferplane's EPP parses HTTP (OpenAI API) bodies: use openai-parser, or passthrough-parser to schedule without "
    "reading bodies"
)


def _not_a_parser(ref: str) -> str:
    return f"{ref!r} is not a request parser inferplane can run"


def parser_problem(cfg: EndpointPickerConfig) -> tuple[ConfigPath, str, str] | None:
    """(path, message, hint) when `parser` names a known type that is not a `RequestParser` (`vllmgrpc-parser`:
    accepted upstream, not runnable here), so `validate` says so at the line instead of accepting it."""
    if cfg.parser is None:
        return None
    spec = cfg.plugin(cfg.parser.plugin_ref)
    pt = lookup(normalize_plugin_type(spec).type if spec is not None else cfg.parser.plugin_ref)
    if pt is None or (isinstance(pt.factory, type) and issubclass(pt.factory, RequestParser)):
        return None
    return ("parser", "pluginRef"), _not_a_parser(cfg.parser.plugin_ref), PARSER_HINT


def _add_default_producers(
    cfg: EndpointPickerConfig, plugins: dict[str, Plugin], handle: PluginHandle, warnings: list[str]
) -> None:
    """Upstream's `RegisterAsDefaultProducer`: a consumer whose producer is not configured gets one; the prefix
    producer takes the prefix scorer's parameters (where older configs put them)."""
    for consumer in list(plugins.values()):
        if not isinstance(consumer, ProducerConsumer):
            continue
        ptype = consumer.producer_type
        if any(p.type_name == ptype for p in plugins.values()):
            continue
        params: dict[str, Any] | None = None
        spec = cfg.plugin(consumer.name)
        if spec is not None and consumer.type_name == "prefix-cache-scorer":
            params = spec.parameters
        name = ptype if ptype not in plugins else f"{ptype}-auto"
        plugin, w = build_plugin(ptype, name, params, handle, where=f"{consumer.name} (its producer): ")
        plugins[name] = plugin
        warnings += w


def parser_of(config: EndpointPickerConfig, plugins: dict[str, Plugin]) -> RequestParser:
    """The configured request parser among the built plugins (`build_plugins` checked that it is one)."""
    parser = plugins[(config.parser.plugin_ref if config.parser else None) or DEFAULT_PARSER]
    assert isinstance(parser, RequestParser)
    return parser
