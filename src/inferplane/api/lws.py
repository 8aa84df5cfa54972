"""LeaderWorkerSet (leaderworkerset.x-k8s.io/v1) as users write it for multi-node models (schemas/lws/NOTES.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from inferplane.api.base import Resource
from inferplane.api.k8s import K8sModel, PodTemplateSpec

RestartPolicy = Literal["RecreateGroupOnPodRestart", "RecreateGroupAfterStart", "None", "Default"]


class SubGroupPolicy(K8sModel):
    sub_group_size: int = Field(ge=1)
    sub_group_policy_type: Literal["LeaderWorker", "LeaderExcluded"] = "LeaderWorker"


class LeaderWorkerTemplate(K8sModel):
    size: int = Field(default=1, ge=1)
    leader_template: PodTemplateSpec | None = None
    worker_template: PodTemplateSpec
    restart_policy: RestartPolicy = "RecreateGroupOnPodRestart"
    sub_group_policy: SubGroupPolicy | None = None
    volume_claim_templates: list[dict[str, Any]] | None = None
    persistent_volume_claim_retention_policy: dict[str, Any] | None = None


class NetworkConfig(K8sModel):
    subdomain_policy: Literal["Shared", "UniquePerReplica"] = "Shared"


class RolloutStrategy(K8sModel):
    type: Literal["RollingUpdate"] = "RollingUpdate"
    rolling_update_configuration: dict[str, Any] | None = None


class LeaderWorkerSetSpec(K8sModel):
    replicas: int = Field(default=1, ge=0, le=1_000_000)
    leader_worker_template: LeaderWorkerTemplate
    startup_policy: Literal["LeaderCreated", "LeaderReady"] = "LeaderCreated"
    network_config: NetworkConfig | None = None
    rollout_strategy: RolloutStrategy | None = None


class LeaderWorkerSet(Resource):
    model_config = ConfigDict(strict=True)

    api_version: Literal["leaderworkerset.x-k8s.io/v1"]
    kind: Literal["LeaderWorkerSet"]
    spec: LeaderWorkerSetSpec
    status: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def size(self) -> int:
        return self.spec.leader_worker_template.size

    @property
    def restart_policy(self) -> RestartPolicy:
        """The effective policy: the deprecated `Default` means `None` (the webhook rewrites it)."""
        policy = self.spec.leader_worker_template.restart_policy
        return "None" if policy == "Default" else policy

    @property
    def leader_template(self) -> PodTemplateSpec:
        """The leader's pod template: `leaderTemplate`, or `workerTemplate` when there is none."""
        t = self.spec.leader_worker_template
        return t.leader_template or t.worker_template

    @property
    def worker_template(self) -> PodTemplateSpec:
        return self.spec.leader_worker_template.worker_template
