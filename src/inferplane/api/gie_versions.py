"""Which GIE (Gateway API Inference Extension) release a deployment targets, and the CRD fields each one lacks.

The InferencePool v1 CRD (`inference.networking.k8s.io`) has kept its shape since GIE v1.0 except for additions; an
API server with an older CRD rejects a field it does not know under `kubectl apply`'s strict field validation.
The table is read off the CRDs of each release tag (`config/crd/bases/inference.networking.k8s.io_inferencepools.yaml`):
v1.0–v1.3 have no `spec.appProtocol`, v1.4 added it (v1.5 is unchanged).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from inferplane.api.base import Resource
from inferplane.api.deployment import Deployment
from inferplane.api.diagnostics import Diagnostic
from inferplane.errors import UsageError

SUPPORTED: tuple[str, ...] = ("v1.0", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5")
DEFAULT = SUPPORTED[-1]


@dataclass(frozen=True)
class VersionedField:
    kind: str
    path: tuple[str, ...]  # the spec path as written in YAML
    since: str
    without: str  # what the object means without the field, for the warning's hint

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


FIELDS: tuple[VersionedField, ...] = (
    VersionedField("InferencePool", ("spec", "appProtocol"), "v1.4", "HTTP/1.1 to the model servers"),
)
# kind → the deployment's objects of that kind
_OBJECTS: dict[str, Callable[[Deployment], Sequence[Resource]]] = {"InferencePool": lambda dep: dep.inference_pools}


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.lstrip("v").split("."))


def normalise(version: str) -> str:
    """`1.4`, `v1.4` and `v1.4.2` all name the v1.4 line; anything else is a usage error naming the choices."""
    text = version.strip()
    parts = text.lstrip("v").split(".")
    if len(parts) >= 2 and all(p.isdigit() for p in parts):
        line = f"v{int(parts[0])}.{int(parts[1])}"
        if line in SUPPORTED:
            return line
    raise UsageError(
        f"--gie-version: {version!r} is not a supported GIE release",
        hint=f"use one of {', '.join(SUPPORTED)} (default {DEFAULT}); patch releases share their line's CRDs",
    )


def has_field(version: str, kind: str, path: tuple[str, ...]) -> bool:
    for f in FIELDS:
        if f.kind == kind and f.path == path:
            return _key(version) >= _key(f.since)
    return True


def lacking(version: str) -> tuple[VersionedField, ...]:
    """The fields the target release's CRDs do not have."""
    return tuple(f for f in FIELDS if _key(version) < _key(f.since))


def _snake(key: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in key)


def written(model: BaseModel, path: tuple[str, ...]) -> bool:
    """Whether the user wrote the field at `path` (set explicitly, not filled in by a default)."""
    node: object = model
    for key in path:
        if not isinstance(node, BaseModel) or _snake(key) not in node.model_fields_set:
            return False
        node = getattr(node, _snake(key))
    return True


def version_warnings(dep: Deployment, version: str) -> list[Diagnostic]:
    """A warning for every field the deployment writes that the target release's CRDs lack (file, line, fix)."""
    out: list[Diagnostic] = []
    for f in lacking(version):
        for obj in _OBJECTS[f.kind](dep):
            if not written(obj, f.path):
                continue
            meta = obj.metadata
            message = (
                f"{f.kind} {meta.name!r} sets {f.dotted}, which the GIE {version} CRDs do not have "
                f"(added in {f.since}); the API server would reject it"
            )
            hint = f"upgrade the cluster's GIE CRDs to {f.since} or later, or drop {f.dotted} (without it: {f.without})"
            source = dep.sources.get((f.kind, meta.namespace, meta.name))
            if source is not None:
                out.append(source.diag(f.path, message, hint=hint, severity="warning"))
            else:
                out.append(Diagnostic("warning", str(dep.root), 0, 0, f.dotted, message, hint))
    return out
