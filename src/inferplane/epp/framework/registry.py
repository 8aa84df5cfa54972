"""Plugin registry: plugin types register by their upstream type name; configuration instantiates them by name.

Mirrors GIE's `plugin.Register(type, factory)`: each type declares its role (filter, scorer, picker, ...), a
parameters model whose defaults apply before the user's parameters are decoded, and the facts the rest of the EPP
needs about it (whether it reads the request body, whether the loader creates it on its own, older names). Facts
live on the decorator, next to the plugin, so that renaming or adding a plugin cannot leave a list elsewhere stale.
Parameters a plugin does not declare are reported as warnings, not errors, because upstream configs in the wild
carry copy errors (reference/epp.md §3.6).

This module imports no plugin: the composition roots call `inferplane.epp.intree.register_in_tree_plugins()`.
"""

from __future__ import annotations

import difflib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from inferplane.errors import ConfigError

Role = Literal[
    "filter",
    "scorer",
    "picker",
    "profile-handler",
    "producer",  # PrepareData / PreRequest / response hooks only
    "saturation-detector",
    "datalayer",  # sources and extractors: consumed by the data layer, not the scheduler
    "parser",
    "flow-control-policy",
    "pd-decider",
]


class PluginParams(BaseModel):
    """Base of every plugin's parameters: upstream camelCase names, unknown keys kept for a warning."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    def unknown_keys(self) -> list[str]:
        return sorted((self.model_extra or {}).keys())


class NoParams(PluginParams):
    pass


T = TypeVar("T")


@dataclass
class PluginHandle:
    """What a plugin may use from its host: the RNG, the clock, the other plugins (by name), and the tokenizer
    factory. Injected so tests and virtual-time simulation control randomness and time."""

    rng: random.Random
    clock: Callable[[], float]
    plugins: dict[str, Any] = field(default_factory=dict)
    tokenizer_factory: Callable[[], Any] | None = None

    def first(self, kind: type[T]) -> T:
        """The first plugin that is a `kind` (a plugin class or a runtime-checkable capability Protocol), typed as
        one. The builder creates the producer a consumer names, so a consumer's lookup of its producer succeeds."""
        for p in self.plugins.values():
            if isinstance(p, kind):
                return p
        raise KeyError(f"no plugin of kind {kind.__name__}")


class Plugin:
    """Base class: every plugin knows its type and instance name (GIE `TypedName()`)."""

    type_name: str = ""
    role: Role = "producer"

    def __init__(self, name: str, params: PluginParams, handle: PluginHandle) -> None:
        self.name = name
        self.params = params
        self.handle = handle

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.type_name}/{self.name})"


@dataclass(frozen=True)
class PluginType:
    """A registered type and its facts."""

    type_name: str
    role: Role
    params: type[PluginParams]
    factory: Callable[[str, Any, PluginHandle], Plugin]
    also: tuple[Role, ...] = ()  # extra roles (the saturation detectors also act as filters)
    needs_body: bool = True  # False: decides from headers and scraped metrics alone (ext_proc may skip the body)
    implicit: bool = False  # the loader creates it when referenced without a plugins[] entry
    aliases: tuple[str, ...] = ()  # older type names still found in configs (reference/epp.md §1)

    def has_role(self, role: Role) -> bool:
        return self.role == role or role in self.also


_REGISTRY: dict[str, PluginType] = {}
_ALIASES: dict[str, str] = {}

P = TypeVar("P", bound=type[Plugin])


def register(
    type_name: str,
    role: Role,
    params: type[PluginParams] = NoParams,
    *,
    also: tuple[Role, ...] = (),
    needs_body: bool = True,
    implicit: bool = False,
    aliases: tuple[str, ...] = (),
) -> Callable[[P], P]:
    """Class decorator: register a plugin class under its upstream type name, with its facts."""

    def deco(cls: P) -> P:
        for name in (type_name, *aliases):
            if name in _REGISTRY or name in _ALIASES:
                raise RuntimeError(f"plugin type {name!r} registered twice")
        cls.type_name = type_name
        cls.role = role
        _REGISTRY[type_name] = PluginType(type_name, role, params, cls, also, needs_body, implicit, aliases)
        for alias in aliases:
            _ALIASES[alias] = type_name
        return cls

    return deco


def registered_types() -> dict[str, PluginType]:
    """Every registered type by its current name (aliases not included)."""
    return dict(_REGISTRY)


def canonical_type(type_name: str) -> str:
    """Today's name of a type: an older alias maps onto it, any other name is returned as it is."""
    return _ALIASES.get(type_name, type_name)


def lookup(type_name: str) -> PluginType | None:
    """The registered type of a name or alias; None for a type inferplane does not know."""
    return _REGISTRY.get(canonical_type(type_name))


def plugin_role(type_name: str) -> Role | None:
    """The role of a registered type, or None for a type inferplane does not know."""
    pt = lookup(type_name)
    return pt.role if pt else None


def plugin_has_role(type_name: str, role: Role) -> bool:
    pt = lookup(type_name)
    return pt is not None and pt.has_role(role)


def parse_params(type_name: str, parameters: dict[str, Any] | None, *, where: str = "") -> tuple[Any, list[str]]:
    """Decode a plugin's parameters with defaults applied; returns (params, warnings)."""
    pt = lookup(type_name)
    if pt is None:
        raise ConfigError(f"{where}unknown plugin type {type_name!r}", hint=near_miss(type_name))
    try:
        params = pt.params.model_validate(parameters or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"parameters.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise ConfigError(f"{where}plugin {type_name!r}: {problems}") from None
    warnings = [
        f"{where}plugin {type_name!r} does not take parameter {k!r}; it is ignored" for k in params.unknown_keys()
    ]
    return params, warnings


def build_plugin(
    type_name: str, name: str, parameters: dict[str, Any] | None, handle: PluginHandle, *, where: str = ""
) -> tuple[Plugin, list[str]]:
    """Instantiate one plugin. Warnings are returned, never logged: the caller decides whether they are printed
    (`validate` reports them at their line, the EPP logs them once)."""
    params, warnings = parse_params(type_name, parameters, where=where)
    plugin = _REGISTRY[canonical_type(type_name)].factory(name, params, handle)
    return plugin, warnings


def near_miss(type_name: str) -> str:
    close = difflib.get_close_matches(type_name, list(_REGISTRY), n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]}?"
    return f"known types: {', '.join(sorted(_REGISTRY))}" if _REGISTRY else "no plugin types are registered"
