"""Plugin registry: plugin types register by their upstream type name; configuration instantiates them by name.

Mirrors GIE's `plugin.Register(type, factory)`: each type declares its role (filter, scorer, picker, ...) and a
parameters model whose defaults apply before the user's parameters are decoded. Parameters a plugin does not declare
are reported as warnings, not errors, because upstream configs in the wild carry copy errors (reference/epp.md §3.6).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from inferplane.errors import ConfigError

log = logging.getLogger(__name__)

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

SCHEDULING_ROLES = frozenset({"filter", "scorer", "picker", "profile-handler"})


class PluginParams(BaseModel):
    """Base of every plugin's parameters: upstream camelCase names, unknown keys kept for a warning."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    def unknown_keys(self) -> list[str]:
        return sorted((self.model_extra or {}).keys())


class NoParams(PluginParams):
    pass


@dataclass
class PluginHandle:
    """What a plugin may use from its host: the RNG, the clock, the other plugins (by name), and the tokenizer
    factory. Injected so tests and virtual-time simulation control randomness and time."""

    rng: random.Random
    clock: Callable[[], float]
    plugins: dict[str, Any] = field(default_factory=dict)
    tokenizer_factory: Callable[[], Any] | None = None

    def first_of_type(self, type_name: str) -> Any:
        """The plugin instance of a type (the builder guarantees that a consumer's producer exists)."""
        for p in self.plugins.values():
            if getattr(p, "type_name", None) == type_name:
                return p
        raise KeyError(f"no plugin of type {type_name!r}")


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
    type_name: str
    role: Role
    params: type[PluginParams]
    factory: Callable[[str, Any, PluginHandle], Plugin]
    also: tuple[Role, ...] = ()  # extra roles (the saturation detectors also act as filters)


_REGISTRY: dict[str, PluginType] = {}

P = TypeVar("P", bound=type[Plugin])


def register(
    type_name: str, role: Role, params: type[PluginParams] = NoParams, *, also: tuple[Role, ...] = ()
) -> Callable[[P], P]:
    """Class decorator: register a plugin class under its upstream type name."""

    def deco(cls: P) -> P:
        if type_name in _REGISTRY:
            raise RuntimeError(f"plugin type {type_name!r} registered twice")
        cls.type_name = type_name
        cls.role = role
        _REGISTRY[type_name] = PluginType(type_name, role, params, cls, also)
        return cls

    return deco


def _ensure_loaded() -> None:
    # Importing the plugin modules runs their @register decorators.
    from inferplane.epp.flowcontrol import policies, saturation  # noqa: F401
    from inferplane.epp.scheduling import plugins  # noqa: F401


def registered_types() -> dict[str, PluginType]:
    _ensure_loaded()
    return dict(_REGISTRY)


def plugin_role(type_name: str) -> Role | None:
    """The role of a registered type, or None for a type inferplane does not know."""
    _ensure_loaded()
    pt = _REGISTRY.get(type_name)
    return pt.role if pt else None


def plugin_has_role(type_name: str, role: Role) -> bool:
    _ensure_loaded()
    pt = _REGISTRY.get(type_name)
    return pt is not None and (pt.role == role or role in pt.also)


def parse_params(type_name: str, parameters: dict[str, Any] | None, *, where: str = "") -> tuple[Any, list[str]]:
    """Decode a plugin's parameters with defaults applied; returns (params, warnings)."""
    _ensure_loaded()
    pt = _REGISTRY.get(type_name)
    if pt is None:
        raise ConfigError(f"{where}unknown plugin type {type_name!r}", hint=_near_miss(type_name))
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
    params, warnings = parse_params(type_name, parameters, where=where)
    plugin = _REGISTRY[type_name].factory(name, params, handle)
    for w in warnings:
        log.warning("%s", w)
    return plugin, warnings


def _near_miss(type_name: str) -> str | None:
    import difflib

    close = difflib.get_close_matches(type_name, list(_REGISTRY), n=1, cutoff=0.6)
    return f"did you mean {close[0]}?" if close else f"known types: {', '.join(sorted(_REGISTRY))}"
