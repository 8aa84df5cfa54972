"""EndpointPickerConfig → plugins → Scheduler (GIE `config/loader`): instantiate every plugin by type, create the
producers that consumers need, assemble the profiles and check the rules the upstream loader checks."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from inferplane.api.epp_config import EndpointPickerConfig, PluginSpec, apply_system_defaults
from inferplane.epp.scheduling.framework import Filter, Observer, Picker, ProfileHandler, SchedulerProfile, Scorer
from inferplane.epp.scheduling.registry import Plugin, PluginHandle, build_plugin, plugin_has_role
from inferplane.epp.scheduling.scheduler import Scheduler
from inferplane.errors import ConfigError


def build_plugins(
    config: EndpointPickerConfig, handle: PluginHandle
) -> tuple[EndpointPickerConfig, dict[str, Plugin], list[str]]:
    """Apply the system defaults and build every plugin (plus auto-created producers). Returns the completed
    config, the plugins by name and the warnings (parameters a plugin does not take, ...)."""
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
    return cfg, plugins, warnings


def _add_default_producers(
    cfg: EndpointPickerConfig, plugins: dict[str, Plugin], handle: PluginHandle, warnings: list[str]
) -> None:
    """Upstream's `RegisterAsDefaultProducer`: a consumer whose producer is not configured gets one; the prefix
    producer takes the prefix scorer's parameters (where older configs put them)."""
    for consumer in list(plugins.values()):
        ptype = getattr(consumer, "producer_type", None)
        if not ptype or any(p.type_name == ptype for p in plugins.values()):
            continue
        params: dict[str, Any] | None = None
        spec = cfg.plugin(consumer.name)
        if spec is not None and consumer.type_name == "prefix-cache-scorer":
            params = spec.parameters
        name = ptype if ptype not in plugins else f"{ptype}-auto"
        plugin, w = build_plugin(ptype, name, params, handle, where=f"{consumer.name} (its producer): ")
        plugins[name] = plugin
        warnings += w


def _profile(cfg: EndpointPickerConfig, name: str, refs: list[Any], plugins: dict[str, Plugin]) -> SchedulerProfile:
    prof = SchedulerProfile(name=name)
    for ref in refs:
        p = plugins[ref.plugin_ref]
        spec: PluginSpec | None = cfg.plugin(ref.plugin_ref)
        type_name = spec.type if spec else p.type_name
        if isinstance(p, Scorer):
            prof.scorers.append((p, 1.0 if ref.weight is None else float(ref.weight)))
        elif isinstance(p, Picker):
            if prof.picker is not None:
                raise ConfigError(
                    f"schedulingProfiles {name!r}: more than one picker ({prof.picker.name}, {p.name}); "
                    "a profile has exactly one"
                )
            prof.picker = p
        elif isinstance(p, Filter) and plugin_has_role(type_name, "filter"):
            prof.filters.append(p)
        # Other plugins listed in a profile (producers such as `tokenizer`) run as request hooks.
    if prof.picker is None:
        raise ConfigError(f"schedulingProfiles {name!r} has no picker")
    return prof


def build_scheduler(
    config: EndpointPickerConfig,
    *,
    rng: random.Random | None = None,
    clock: Callable[[], float] | None = None,
    observer: Observer | None = None,
    tokenizer_factory: Callable[[], Any] | None = None,
) -> Scheduler:
    """Build the scheduler for one pool. `rng` (seeded in tests) breaks ties and drives random pickers; `clock`
    (default `time.monotonic`, the clock `Metrics.update_time` uses) drives staleness and TTLs; `observer` receives
    per-plugin durations. Raises `ConfigError` for configurations the upstream loader rejects."""
    handle = PluginHandle(
        rng=rng or random.Random(), clock=clock or time.monotonic, tokenizer_factory=tokenizer_factory
    )
    cfg, plugins, warnings = build_plugins(config, handle)
    handlers = [p for p in plugins.values() if isinstance(p, ProfileHandler)]
    if len(handlers) != 1:
        names = ", ".join(p.name for p in handlers) or "none"
        raise ConfigError(
            f"exactly one profile handler is allowed, found {len(handlers)} ({names})",
            hint="use single-profile-handler with one profile, pd-profile-handler for prefill/decode",
        )
    handler = handlers[0]
    profiles = {prof.name: _profile(cfg, prof.name, prof.plugins, plugins) for prof in cfg.scheduling_profiles}
    if handler.type_name == "single-profile-handler" and len(profiles) != 1:
        raise ConfigError(
            f"single-profile-handler runs exactly one profile, the config has {len(profiles)}",
            hint="use pd-profile-handler for prefill/decode profiles, or keep one profile",
        )
    decode = getattr(handler, "decode_profile", None)
    if decode is not None and decode not in profiles:
        raise ConfigError(f"{handler.type_name}: profile {decode!r} does not exist; profiles: {', '.join(profiles)}")
    return Scheduler(
        handler=handler,
        profiles=profiles,
        plugins=plugins,
        clock=handle.clock,
        observer=observer,
        warnings=warnings,
        handle=handle,
    )
