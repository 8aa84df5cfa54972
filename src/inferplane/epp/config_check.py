"""Checks an EndpointPickerConfig against inferplane's scheduler before anything starts: plugin types it knows,
parameters they take, references to built-in plugins, and the profile/handler/picker rules the upstream loader
enforces at EPP start-up.

`validate` receives this check by injection (`inferplane.api.crosscheck.add_check`, called by the composition roots
after `register_in_tree_plugins()`), so the resource model never imports the picker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ValidationError

from inferplane.api.deployment import Deployment
from inferplane.api.diagnostics import Diagnostic, Path, did_you_mean, format_path
from inferplane.api.positions import YamlDoc
from inferplane.api.validation import field_names, translate
from inferplane.epp.framework.config import normalize_plugin_type, parser_problem, reference_problems
from inferplane.epp.framework.registry import registered_types
from inferplane.epp.scheduling.builder import build_scheduler
from inferplane.errors import ConfigError


def check_epp_configs(dep: Deployment) -> Iterator[Diagnostic]:
    """Every EndpointPickerConfig of the deployment, each problem at its own line."""
    types = registered_types()
    for cfg, doc in dep.epp_config_docs:
        ok = True
        for i, spec in enumerate(cfg.plugins):
            normalized = normalize_plugin_type(spec)
            kind = normalized.type
            if kind not in types:
                ok = False
                hint = did_you_mean(kind, types) or "see reference/epp.md §3 for the plugin catalogue"
                yield doc.diag(("plugins", i, "type"), f"unknown plugin type {spec.type!r}", hint=hint)
                continue
            problems = list(_parameter_problems(types[kind].params, kind, normalized.parameters or {}, doc, i))
            ok = ok and not any(d.severity == "error" for d in problems)
            yield from problems
        if not ok:
            continue
        refs = reference_problems(cfg)
        for path, message in refs:
            yield doc.diag(path, message)
        parser = parser_problem(cfg)
        if parser is not None:
            yield doc.diag(parser[0], parser[1], hint=parser[2])
        if refs or parser is not None:
            continue
        # The builder returns its warnings (ignored parameters); they are reported above with their positions.
        try:
            build_scheduler(cfg)
        except ConfigError as exc:
            yield doc.diag(("schedulingProfiles",), exc.message, hint=exc.hint)


def _parameter_problems(
    model: type[BaseModel], kind: str, params: dict[str, Any], doc: YamlDoc, i: int
) -> Iterator[Diagnostic]:
    """Each bad parameter at its own line, in validate's words (not pydantic's), and every key the plugin does not
    declare. Upstream decodes parameters with Go's json.Unmarshal, which ignores unknown keys, so those are warnings
    (reference/epp.md §3 asks for exactly that) — with a suggestion, since a misspelt key silently keeps its default."""
    base: Path = ("plugins", i, "parameters")
    known = field_names(model)
    python_names = set(model.model_fields)  # accepted too (populate_by_name), though nobody writes them
    try:
        # strict: Go's json.Unmarshal rejects "2" for an int field, whatever the EPP here would coerce
        model.model_validate(params, strict=True)
    except ValidationError as exc:
        for d in translate(exc, model, doc, base):
            # A check across fields reports at `parameters`; its message starts with the key it is about.
            first = d.message.split(" ", 1)[0].rstrip(":")
            if d.path == format_path(base) and first in params:
                d = doc.diag((*base, first), d.message, hint=d.hint)
            yield d
    for key in params:
        if key not in known and key not in python_names:
            yield doc.diag(
                (*base, key),
                f"plugin {kind!r} does not take parameter {key!r}; it is ignored",
                hint=did_you_mean(key, known)
                or (f"it takes: {', '.join(sorted(known))}" if known else "it takes no parameters"),
                severity="warning",
                key=True,
            )
