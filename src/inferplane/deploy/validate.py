"""Schema validation of rendered manifests, before they reach anyone's cluster.

Sources, in order of authority:
* built-in kinds: the Kubernetes OpenAPI schemas shipped by the `kubernetes-validate` package (strict: unknown fields
  are errors), at `KUBERNETES_VERSION`;
* custom resources: the upstream CRDs in ../shared/schemas (Gateway API v1.2.0 *and* v1.6.1, InferencePool v1,
  InferenceObjective, LeaderWorkerSet), converted by `inferplane.deploy.crd`;
* provider resources without a CRD at hand: the structural schemas in `inferplane.deploy.handschemas`.
Every object's metadata is also checked as ObjectMeta (name, label key and value syntax).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]

from inferplane.deploy.crd import CrdSchema, load_crd_dir
from inferplane.deploy.handschemas import METADATA, object_schema

# GKE's regular channel at the time of writing; the oldest minor the rendered objects must load on.
KUBERNETES_VERSION = "1.33"
SCHEMAS_ENV = "INFERPLANE_SCHEMAS"


@dataclass(frozen=True)
class SchemaProblem:
    obj: str
    schema: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return f"{self.obj}: {self.message}{where} (schema: {self.schema})"


def find_schemas_dir() -> Path | None:
    """$INFERPLANE_SCHEMAS, else the `shared/schemas` folder beside a source checkout."""
    env = os.environ.get(SCHEMAS_ENV)
    if env:
        return Path(env)
    candidate = Path(__file__).resolve().parents[3].parent / "shared" / "schemas"
    return candidate if candidate.is_dir() else None


def _ref(m: dict[str, Any]) -> str:
    return f"{m.get('kind', '?')}/{m.get('metadata', {}).get('name', '?')}"


def _path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path)


class ManifestValidator:
    """Validates objects; with `require_schema`, an object no schema covers is itself a problem."""

    def __init__(self, schemas_dir: Path | None, *, require_schema: bool = False) -> None:
        self.schemas_dir = schemas_dir
        self.require_schema = require_schema
        self.crds: dict[tuple[str, str], list[CrdSchema]] = {}
        if schemas_dir is not None:
            for crd in load_crd_dir(schemas_dir):
                self.crds.setdefault((crd.api_version, crd.kind), []).append(crd)
        self._crd_validators: dict[int, jsonschema.protocols.Validator] = {}
        self.metadata_validator = jsonschema.Draft7Validator(METADATA)

    @property
    def has_kubernetes_schemas(self) -> bool:
        return _kubernetes_validate() is not None

    def covered_by(self, m: dict[str, Any]) -> list[str]:
        """The schema labels that apply to an object (for tests that check coverage)."""
        key = (m["apiVersion"], m["kind"])
        labels = [f"crd {c.label}" for c in self.crds.get(key, [])]
        if object_schema(*key) is not None:
            labels.append("hand-written")
        if _kubernetes_schema(m["apiVersion"], m["kind"]) is not None:
            labels.append(f"kubernetes {KUBERNETES_VERSION}")
        return labels

    def validate(self, m: dict[str, Any]) -> list[SchemaProblem]:
        ref = _ref(m)
        problems = [
            SchemaProblem(ref, "ObjectMeta", f"metadata.{_path(e)}".rstrip("."), e.message)
            for e in self.metadata_validator.iter_errors(m.get("metadata", {}))
        ]
        checked = False
        key = (m.get("apiVersion", ""), m.get("kind", ""))
        k8s = _kubernetes_schema(*key)
        if k8s is not None:
            checked = True
            problems += [SchemaProblem(ref, f"kubernetes {KUBERNETES_VERSION}", _path(e), e.message)
                         for e in k8s.iter_errors(m)]  # fmt: skip
        for crd in self.crds.get(key, []):
            checked = True
            validator = self._crd_validators.get(id(crd))
            if validator is None:
                validator = self._crd_validators[id(crd)] = jsonschema.Draft4Validator(crd.schema)
            problems += [SchemaProblem(ref, f"CRD {crd.label}", _path(e), e.message) for e in validator.iter_errors(m)]
        hand = object_schema(*key)
        if hand is not None:
            checked = True
            problems += [SchemaProblem(ref, "hand-written", _path(e), e.message)
                         for e in _hand_validator(*key).iter_errors(m)]  # fmt: skip
        if not checked and self.require_schema:
            problems.append(SchemaProblem(ref, "none", "", f"no schema for {key[0]} {key[1]}"))
        return problems

    def validate_all(self, manifests: list[dict[str, Any]]) -> list[SchemaProblem]:
        return [p for m in manifests for p in self.validate(m)]


@cache
def _hand_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    schema = object_schema(api_version, kind)
    assert schema is not None
    return jsonschema.Draft7Validator(schema)


def _kubernetes_validate() -> Any:
    try:
        import kubernetes_validate.utils as kv
    except ImportError:  # a runtime install without the dev extra: built-in kinds go unchecked
        return None
    return kv


@cache
def _kubernetes_schema(api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
    """A cached validator for one built-in kind from kubernetes-validate's strict schemas.

    kubernetes_validate.validate() re-reads its 1.4 MB definitions file on every call; building the validator once
    per kind makes validating a whole render cheap enough to do on every `inferplane render`.
    """
    kv = _kubernetes_validate()
    if kv is None:
        return None
    from referencing import Registry, Resource

    version = [v for v in kv.all_versions() if kv.major_minor(v) <= KUBERNETES_VERSION][-1]
    schema_dir = f"kubernetes-json-schema/v{version}-local-strict"
    # The package's file naming: rbac.authorization.k8s.io/v1 → rbac-v1, v1 → v1.
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = kv.schema_contents(f"{schema_dir}/{kind.lower()}-{api}.json", version)
    except FileNotFoundError:
        return None
    definitions = _definitions(schema_dir, version)
    registry: Registry = Resource.from_contents(schema) @ Registry()
    registry = Resource.from_contents(definitions) @ registry
    return jsonschema.Draft202012Validator(schema, registry=registry)


@lru_cache(maxsize=4)
def _definitions(schema_dir: str, version: str) -> Any:
    return _kubernetes_validate().schema_contents(f"{schema_dir}/_definitions.json", version)
