"""Checks an EndpointPickerConfig against inferplane's scheduler before anything starts: plugin types it knows,
parameters they take, and the profile/handler/picker rules the upstream loader enforces at EPP start-up."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from inferplane.api.deployment import Deployment
from inferplane.api.diagnostics import Diagnostic, did_you_mean
from inferplane.api.epp_config import normalize_plugin_type
from inferplane.api.validation import field_names
from inferplane.errors import ConfigError


def check_epp_configs(dep: Deployment) -> Iterator[Diagnostic]:
    # Imported here: the scheduler's plugin modules are only needed once a config is actually checked.
    from inferplane.epp.scheduling.builder import build_scheduler
    from inferplane.epp.scheduling.registry import parse_params, registered_types

    types = registered_types()
    for cfg, doc in dep.epp_config_docs:
        ok = True
        for i, spec in enumerate(cfg.plugins):
            kind = normalize_plugin_type(spec).type
            if kind not in types:
                ok = False
                hint = did_you_mean(kind, types) or "see reference/epp.md §3 for the plugin catalogue"
                yield doc.diag(("plugins", i, "type"), f"unknown plugin type {spec.type!r}", hint=hint)
                continue
            try:
                params, _ = parse_params(kind, normalize_plugin_type(spec).parameters)
            except ConfigError as exc:
                ok = False
                yield doc.diag(("plugins", i, "parameters"), exc.message, hint=exc.hint)
                continue
            known = field_names(types[kind].params)
            for key in params.unknown_keys():
                yield doc.diag(
                    ("plugins", i, "parameters", key),
                    f"plugin {kind!r} does not take parameter {key!r}; it is ignored",
                    hint=did_you_mean(key, known),
                    severity="warning",
                    key=True,
                )
        if not ok:
            continue
        # The builder logs ignored parameters; they are reported above with their positions, so mute it here.
        registry_log = logging.getLogger("inferplane.epp.scheduling.registry")
        muted, registry_log.disabled = registry_log.disabled, True
        try:
            build_scheduler(cfg)
        except ConfigError as exc:
            yield doc.diag(("schedulingProfiles",), exc.message, hint=exc.hint)
        finally:
            registry_log.disabled = muted
