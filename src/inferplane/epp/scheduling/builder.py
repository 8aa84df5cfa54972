"""EndpointPickerConfig → plugins → Scheduler: the kernel's config loader builds the plugins
(`epp.framework.config.build_plugins`); this assembles the profiles and checks the rules the upstream loader checks
for scheduling (one profile handler, one picker per profile, profiles that exist)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from inferplane.api.epp_config import EndpointPickerConfig, PluginSpec
from inferplane.epp.framework.capabilities import DecodeProfileOwner
from inferplane.epp.framework.config import build_plugins
from inferplane.epp.framework.interfaces import Filter, Observer, Picker, ProfileHandler, SchedulerProfile, Scorer
from inferplane.epp.framework.registry import Plugin, PluginHandle, plugin_has_role
from inferplane.epp.scheduling.scheduler import Scheduler
from inferplane.errors import ConfigError


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
    if isinstance(handler, DecodeProfileOwner) and handler.decode_profile not in profiles:
        raise ConfigError(
            f"{handler.type_name}: profile {handler.decode_profile!r} does not exist; profiles: {', '.join(profiles)}"
        )
    return Scheduler(
        handler=handler,
        profiles=profiles,
        plugins=plugins,
        clock=handle.clock,
        observer=observer,
        warnings=warnings,
        handle=handle,
    )
