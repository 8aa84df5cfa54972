"""Pydantic validation with positions: any ApiModel's ValidationError becomes positioned, readable diagnostics.

This is generic on purpose: the Gateway API and EndpointPickerConfig models get file:line errors and near-miss
suggestions without knowing about YAML. Models that accept a known set of Kubernetes fields without modelling them
(pod specs, containers) declare `known_fields`; other keys there are reported as unknown fields afterwards.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator
from typing import Any, TypeVar, Union

from pydantic import AliasChoices, BaseModel, ValidationError

from inferplane.api.diagnostics import Diagnostic, Path, describe, did_you_mean
from inferplane.api.positions import YamlDoc

M = TypeVar("M", bound=BaseModel)

_EXPECTED = {
    "string_type": "a string",
    "string_sub_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "a boolean (true or false)",
    "bool_parsing": "a boolean (true or false)",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
}
# "schedulingProfiles[0].plugins[1].pluginRef: ..." at the start of a validator's message names a sub-path.
_LEADING_PATH = re.compile(r"^([A-Za-z_][\w-]*(?:\[\d+\])*(?:\.[A-Za-z_][\w-]*(?:\[\d+\])*)*):\s+(.*)$", re.S)
_PATH_PART = re.compile(r"([A-Za-z_][\w-]*)|\[(\d+)\]")


def field_names(model: type[BaseModel]) -> set[str]:
    """The spellings a model accepts: aliases, validation alias choices and its declared `known_fields`."""
    names: set[str] = set(getattr(model, "known_fields", ()) or ())
    for name, info in model.model_fields.items():
        names.add(info.alias or name)
        va = info.validation_alias
        if isinstance(va, str):
            names.add(va)
        elif isinstance(va, AliasChoices):
            names.update(c for c in va.choices if isinstance(c, str))
    return names


def _field_by_alias(model: type[BaseModel], key: str) -> Any:
    for name, info in model.model_fields.items():
        aliases = {info.alias or name, name}
        va = info.validation_alias
        if isinstance(va, str):
            aliases.add(va)
        elif isinstance(va, AliasChoices):
            aliases.update(c for c in va.choices if isinstance(c, str))
        if key in aliases:
            return info.annotation
    return None


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
            continue
        if origin in (Union, types.UnionType):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(members) == 1:
                tp = members[0]
                continue
        return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def clean_loc(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[Path, type[BaseModel] | None]:
    """Drop pydantic's union tags from an error location; return the document path and the model owning its end."""
    path: list[str | int] = []
    owner: type[BaseModel] | None = model
    cur: Any = model
    for part in loc:
        cur = _unwrap(cur)
        origin = typing.get_origin(cur)
        if origin in (Union, types.UnionType):
            members = [a for a in typing.get_args(cur) if a is not type(None)]
            named = [m for m in members if getattr(m, "__name__", None) == part]
            if isinstance(part, str) and named:
                cur = named[0]
                continue
            if isinstance(part, str) and ("[" in part or part in {"str", "int", "float", "bool", "none"}):
                cur = Any
                continue
        if _is_model(cur):
            owner = cur
            path.append(part)
            cur = _field_by_alias(cur, part) if isinstance(part, str) else Any
            continue
        if origin in (list, tuple, set, frozenset) and isinstance(part, int):
            path.append(part)
            args = typing.get_args(cur)
            cur = args[0] if args else Any
            owner = None
            continue
        if origin is dict:
            args = typing.get_args(cur)
            if part == "[key]":  # the error is about the key itself; the path already ends at it
                continue
            path.append(part)
            cur = args[1] if len(args) == 2 else Any
            owner = None
            continue
        if isinstance(part, str) and "[" in part:  # a validator or type tag such as function-after[...]
            continue
        path.append(part)
        cur = Any
        owner = None
    return tuple(path), owner


def _expected(err: Any) -> str:
    etype = err["type"]
    if etype in _EXPECTED:
        return _EXPECTED[etype]
    ctx = err.get("ctx") or {}
    if etype == "literal_error":
        return f"one of {ctx.get('expected', '')}"
    if etype == "enum":
        return f"one of {ctx.get('expected', '')}"
    bounds = {"greater_than_equal": ("≥", "ge"), "less_than_equal": ("≤", "le"), "greater_than": (">", "gt"),
              "less_than": ("<", "lt")}  # fmt: skip
    if etype in bounds:
        sign, key = bounds[etype]
        bound = ctx.get(key)
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)  # `ge=0` on a float field: say "≥ 0", as the user would write it
        return f"a value {sign} {bound}"
    if etype == "too_short":
        return f"at least {ctx.get('min_length')} item(s)"
    if etype == "too_long":
        return f"at most {ctx.get('max_length')} item(s)"
    msg: str = err.get("msg", "")
    if msg.startswith("Input should be "):
        return msg[len("Input should be ") :]
    return msg[:1].lower() + msg[1:]


def _sub_path(text: str) -> tuple[Path, str]:
    m = _LEADING_PATH.match(text)
    if not m:
        return (), text
    parts: list[str | int] = []
    for name, index in _PATH_PART.findall(m.group(1)):
        parts.append(int(index) if index else name)
    return tuple(parts), m.group(2)


def translate(exc: ValidationError, model: type[BaseModel], doc: YamlDoc, base: Path = ()) -> list[Diagnostic]:
    """Positioned diagnostics for every error of a pydantic ValidationError."""
    groups: dict[Path, list[tuple[Any, type[BaseModel] | None]]] = {}
    for err in exc.errors(include_url=False):
        path, owner = clean_loc(model, tuple(err["loc"]))
        groups.setdefault(path, []).append((err, owner))
    out: list[Diagnostic] = []
    for path, errs in groups.items():
        full = (*base, *path)
        type_errors = [e for e, _ in errs if e["type"] in _EXPECTED or e["type"] == "literal_error"]
        if len(errs) > 1 and len(type_errors) == len(errs):
            wanted = " or ".join(dict.fromkeys(_expected(e) for e in type_errors))
            out.append(doc.diag(full, f"expected {wanted}, found {describe(errs[0][0].get('input'))}"))
            continue
        for err, owner in errs:
            out.append(_one(err, owner, full, doc))
    return _drop_explained_missing(out)


def _drop_explained_missing(diags: list[Diagnostic]) -> list[Diagnostic]:
    """`targetPort` given where `targetPorts` is required: the unknown-field error (with its suggestion) explains
    the missing field, so the second message is noise."""
    suggested = {(d.path.rsplit(".", 1)[0], d.hint) for d in diags if d.message.startswith("unknown field")}
    out = []
    for d in diags:
        if d.message.startswith("required field"):
            parent, _, name = d.path.rpartition(".")
            if (parent, f"did you mean {name}?") in suggested:
                continue
        out.append(d)
    return out


def _one(err: Any, owner: type[BaseModel] | None, full: Path, doc: YamlDoc) -> Diagnostic:
    etype = err["type"]
    last = full[-1] if full else ""
    if etype == "missing":
        return doc.diag(full, f"required field {last!r} is missing", at=full[:-1])
    if etype == "extra_forbidden":
        hint = did_you_mean(str(last), field_names(owner)) if owner is not None else None
        return doc.diag(full, f"unknown field {last!r}", hint=hint, key=True)
    if etype in ("value_error", "assertion_error"):
        text = str((err.get("ctx") or {}).get("error", err.get("msg", "")))
        sub, rest = _sub_path(text)
        if sub and doc.has((*full, *sub)):
            return doc.diag((*full, *sub), rest)
        return doc.diag(full, text)
    return doc.diag(full, f"expected {_expected(err)}, found {describe(err.get('input'))}")


def _walk_models(obj: Any, path: Path) -> Iterator[tuple[BaseModel, Path]]:
    if isinstance(obj, BaseModel):
        yield obj, path
        for name, info in type(obj).model_fields.items():
            value = getattr(obj, name, None)
            if value is not None:
                yield from _walk_models(value, (*path, info.alias or name))
    elif isinstance(obj, list | tuple):
        for i, item in enumerate(obj):
            yield from _walk_models(item, (*path, i))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk_models(v, (*path, str(k)))


def unknown_extras(obj: BaseModel, doc: YamlDoc, base: Path = ()) -> list[Diagnostic]:
    """Unknown keys in models that allow extras but list the Kubernetes fields they know (`known_fields`)."""
    out: list[Diagnostic] = []
    for model, path in _walk_models(obj, base):
        known = getattr(type(model), "known_fields", None)
        if known is None or not model.model_extra:
            continue
        allowed = field_names(type(model))
        severity = getattr(type(model), "unknown_severity", "error")
        note = getattr(type(model), "unknown_note", "")
        for key in model.model_extra:
            if key not in allowed:
                out.append(
                    doc.diag(
                        (*path, key),
                        f"unknown field {key!r}{note}",
                        hint=did_you_mean(key, allowed),
                        key=True,
                        severity=severity,
                    )
                )
    return out


def validate(model: type[M], data: Any, doc: YamlDoc, base: Path = ()) -> tuple[M | None, list[Diagnostic]]:
    """Validate `data` (found at `base` in `doc`) as `model`; never raises for bad input."""
    try:
        obj = model.model_validate(data)
    except ValidationError as exc:
        return None, translate(exc, model, doc, base)
    except (ValueError, TypeError) as exc:  # a validator that raised outside pydantic's wrapping
        return None, [doc.diag(base, str(exc))]
    return obj, unknown_extras(obj, doc, base)
