"""InferenceObjective, InferenceModelRewrite and the legacy InferenceModel (reference/epp.md §6).

A legacy InferenceModel becomes an InferenceObjective (criticality → priority) plus, when it lists targetModels,
an InferenceModelRewrite that sends its modelName to those targets with their weights.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from inferplane.api.base import ObjectMeta, Resource
from inferplane.api.k8s import K8sModel

OBJECTIVE_API = "inference.networking.x-k8s.io/v1alpha2"
# Sheddable is the only negative level (priority < 0 ⇒ sheddable); Standard is the unset default 0.
CRITICALITY_PRIORITY = {"Critical": 1, "Standard": 0, "Sheddable": -1}


class _StrictResource(Resource):
    model_config = ConfigDict(strict=True)


class PoolRef(K8sModel):
    group: str = "inference.networking.k8s.io"
    kind: str = "InferencePool"
    name: str = Field(min_length=1)


class InferenceObjectiveSpec(K8sModel):
    priority: int | None = None
    pool_ref: PoolRef


class InferenceObjective(_StrictResource):
    api_version: Literal["inference.networking.x-k8s.io/v1alpha2"] = "inference.networking.x-k8s.io/v1alpha2"
    kind: Literal["InferenceObjective"] = "InferenceObjective"
    spec: InferenceObjectiveSpec
    status: dict[str, Any] | None = None

    @property
    def priority(self) -> int:
        return self.spec.priority if self.spec.priority is not None else 0

    @property
    def sheddable(self) -> bool:
        return self.priority < 0


class ModelMatch(K8sModel):
    type: Literal["Exact"] = "Exact"
    value: str


class RewriteMatch(K8sModel):
    model: ModelMatch


class RewriteTarget(K8sModel):
    model_rewrite: str
    weight: int | None = Field(default=None, ge=1, le=1_000_000)


class RewriteRule(K8sModel):
    matches: list[RewriteMatch] = Field(default_factory=list)
    targets: list[RewriteTarget] = Field(default_factory=list)


class InferenceModelRewriteSpec(K8sModel):
    pool_ref: PoolRef
    rules: list[RewriteRule]


class InferenceModelRewrite(_StrictResource):
    api_version: Literal["inference.networking.x-k8s.io/v1alpha2"] = "inference.networking.x-k8s.io/v1alpha2"
    kind: Literal["InferenceModelRewrite"] = "InferenceModelRewrite"
    spec: InferenceModelRewriteSpec
    status: dict[str, Any] | None = None

    def matched_models(self) -> set[str]:
        """Client-facing model names this rewrite accepts (an empty match list matches every model)."""
        return {m.model.value for rule in self.spec.rules for m in rule.matches}


class TargetModel(K8sModel):
    name: str = Field(min_length=1, max_length=253)
    weight: int | None = Field(default=None, ge=1, le=1_000_000)


class LegacyPoolRef(PoolRef):
    group: str = "inference.networking.x-k8s.io"


class InferenceModelSpec(K8sModel):
    model_name: str = Field(min_length=1, max_length=256)
    criticality: Literal["Critical", "Standard", "Sheddable"] | None = None
    target_models: list[TargetModel] = Field(default_factory=list, max_length=10)
    pool_ref: LegacyPoolRef

    @model_validator(mode="after")
    def _weights(self) -> InferenceModelSpec:
        weighted = [t.weight is not None for t in self.target_models]
        if any(weighted) and not all(weighted):
            raise ValueError("targetModels: give every target a weight, or none (then they share equally)")
        return self


class InferenceModel(_StrictResource):
    """The legacy API that InferenceObjective replaced (GIE ≤ v0.5)."""

    api_version: Literal["inference.networking.x-k8s.io/v1alpha2"]
    kind: Literal["InferenceModel"]
    spec: InferenceModelSpec
    status: dict[str, Any] | None = None

    def to_objective(self) -> InferenceObjective:
        crit = self.spec.criticality or "Standard"
        return InferenceObjective(
            metadata=self.metadata,
            spec=InferenceObjectiveSpec(priority=CRITICALITY_PRIORITY[crit], pool_ref=self.spec.pool_ref),
        )

    def to_rewrite(self) -> InferenceModelRewrite | None:
        if not self.spec.target_models:
            return None
        targets = [RewriteTarget(model_rewrite=t.name, weight=t.weight or 1) for t in self.spec.target_models]
        return InferenceModelRewrite(
            metadata=ObjectMeta(name=self.metadata.name, namespace=self.metadata.namespace),
            spec=InferenceModelRewriteSpec(
                pool_ref=self.spec.pool_ref,
                rules=[
                    RewriteRule(matches=[RewriteMatch(model=ModelMatch(value=self.spec.model_name))], targets=targets)
                ],
            ),
        )
