"""CustomResourceDefinition openAPIV3Schema → JSON Schema, so rendered custom resources are checked like the API
server would check them.

The conversion handles what structural schemas add to JSON Schema: `nullable`, `x-kubernetes-int-or-string`, and
`x-kubernetes-preserve-unknown-fields`. Objects with declared properties reject unknown fields, as the API server
does under `kubectl apply`'s default strict field validation. CEL rules (`x-kubernetes-validations`) are not
evaluated here; the ones that matter for rendering are cross-checks in `inferplane.deploy.crosscheck`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

# The LeaderWorkerSet CRD is 1.3 MB; libyaml parses it ~10x faster than the pure-Python loader.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class CrdSchema:
    api_version: str
    kind: str
    label: str  # which CRD file (and release) the schema came from, for messages
    schema: dict[str, Any]


def to_json_schema(node: Any) -> Any:
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "description" or key.startswith("x-kubernetes-") or key == "nullable":
            continue
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {k: to_json_schema(v) for k, v in value.items()}
        else:
            out[key] = to_json_schema(value)
    if node.get("x-kubernetes-int-or-string") and "type" not in node and "anyOf" not in node:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
    preserve = node.get("x-kubernetes-preserve-unknown-fields") or node.get("x-kubernetes-embedded-resource")
    if "properties" in node and "additionalProperties" not in node and not preserve:
        out["additionalProperties"] = False
    if node.get("x-kubernetes-embedded-resource"):
        props = out.setdefault("properties", {})
        for k in ("apiVersion", "kind"):
            props.setdefault(k, {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
    return out


def crd_schemas(path: Path, label: str) -> Iterator[CrdSchema]:
    for doc in yaml.load_all(path.read_text(), Loader=_Loader):
        if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc["spec"]
        for version in spec["versions"]:
            if not version.get("served", True) or "schema" not in version:
                continue
            schema = to_json_schema(version["schema"]["openAPIV3Schema"])
            # The root metadata is `type: object` in CRDs; the API server checks it as ObjectMeta.
            schema.setdefault("properties", {})["metadata"] = {"type": "object"}
            yield CrdSchema(f"{spec['group']}/{version['name']}", spec["names"]["kind"], label, schema)


@cache
def load_crd_dir(schemas_dir: Path) -> list[CrdSchema]:
    """Every CRD under the shared schemas folder; the label names the folder (e.g. `gateway-api/v1.6.1`)."""
    out: list[CrdSchema] = []
    for path in sorted(schemas_dir.rglob("*.yaml")):
        text_head = path.read_text()[:4000]
        if "CustomResourceDefinition" not in text_head:
            continue
        out.extend(crd_schemas(path, str(path.parent.relative_to(schemas_dir))))
    return out
