"""Shared base for the resource models users keep in git.

Every model decodes strictly (unknown fields are errors, like the upstream CRDs and EPP config loader) and uses the
upstream camelCase field names as aliases, while Python code uses snake_case attributes.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """Strict, camelCase-aliased model. Construct from YAML with `Model.model_validate(data)`;
    dump back to the user's spelling with `model_dump(by_alias=True, exclude_none=True)`."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        alias_generator=to_camel,
        validate_default=False,
    )


class ObjectMeta(ApiModel):
    """The part of Kubernetes metadata that inferplane reads; other well-known keys are accepted."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, alias_generator=to_camel)

    name: str
    namespace: str = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Resource(ApiModel):
    """A Kubernetes-style object: apiVersion, kind, metadata, spec."""

    api_version: str
    kind: str
    metadata: ObjectMeta
