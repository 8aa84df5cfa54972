"""`Deployment`: everything one deployment directory declares, in the shapes the rest of inferplane uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from inferplane.api.diagnostics import Diagnostic
from inferplane.api.epp_config import EndpointPickerConfig
from inferplane.api.gaie_values import BbrValues
from inferplane.api.gateway_api import Gateway, HTTPRoute
from inferplane.api.k8s import Secret, Service, Workload
from inferplane.api.lws import LeaderWorkerSet
from inferplane.api.modelservice import ModelService
from inferplane.api.objective import InferenceModelRewrite, InferenceObjective
from inferplane.api.pool import InferencePool
from inferplane.api.positions import YamlDoc
from inferplane.api.source import Source

MODEL_HEADER = "x-gateway-model-name"
BASE_MODEL_HEADER = "x-gateway-base-model-name"


# the kind recorded for a document whose kind is unknown (a typo): it may be any kind
_ANY_KIND = "*"


@dataclass
class Deployment:
    root: Path
    gateways: list[Gateway] = field(default_factory=list)
    http_routes: list[HTTPRoute] = field(default_factory=list)
    inference_pools: list[InferencePool] = field(default_factory=list)
    objectives: list[InferenceObjective] = field(default_factory=list)
    rewrites: list[InferenceModelRewrite] = field(default_factory=list)
    model_services: list[ModelService] = field(default_factory=list)
    leader_worker_sets: list[LeaderWorkerSet] = field(default_factory=list)
    workloads: list[Workload] = field(default_factory=list)
    # pool name → the EndpointPickerConfig its endpoint picker runs, and where that came from
    epp_configs: dict[str, EndpointPickerConfig] = field(default_factory=dict)
    epp_config_origins: dict[str, str] = field(default_factory=dict)
    # every standalone EndpointPickerConfig document, by file (relative to the deployment root)
    standalone_epp_configs: dict[str, list[EndpointPickerConfig]] = field(default_factory=dict)
    # every EndpointPickerConfig written in the deployment (standalone or in chart values), with its document
    epp_config_docs: list[tuple[EndpointPickerConfig, YamlDoc]] = field(default_factory=list, repr=False)
    services: list[Service] = field(default_factory=list)
    secrets: list[Secret] = field(default_factory=list)
    others: list[BaseModel] = field(default_factory=list)
    bbr: BbrValues | None = None
    warnings: list[Diagnostic] = field(default_factory=list)
    # (kind, namespace, name) → where the object was written
    sources: dict[tuple[str, str, str], Source] = field(default_factory=dict, repr=False)
    # pool (namespace, name) → the API group the user wrote it in (v1, legacy v1alpha2, loose)
    pool_api_groups: dict[tuple[str, str], str] = field(default_factory=dict)
    # Loaded from a single file: references to kinds the file does not contain at all are not checked.
    partial: bool = False
    # Objects (kind, namespace, name) that failed validation, so references to them are not reported again;
    # and whether some values document failed (its model services are unknown).
    failed: set[tuple[str, str, str]] = field(default_factory=set)
    incomplete: bool = False
    # Some YAML could not be parsed: any object may have been defined there, so no reference is reported as
    # undefined (the syntax error is the one to fix first; the next run checks the references).
    unreadable: bool = False
    _members_key: tuple[tuple[int, ...], tuple[int, ...]] | None = field(default=None, repr=False, compare=False)
    _members_cache: tuple[dict[int, list[ModelService]], dict[int, list[InferencePool]]] = field(
        default_factory=lambda: ({}, {}), repr=False, compare=False
    )

    def note_failure(self, data: object) -> None:
        """Remember what a document that failed validation would have defined."""
        if isinstance(data, dict) and isinstance(data.get("kind"), str):
            kind = data["kind"]
            meta = data.get("metadata")
            if isinstance(meta, dict) and isinstance(meta.get("name"), str):
                ns = meta.get("namespace") if isinstance(meta.get("namespace"), str) else "default"
                self.failed.add((kind, str(ns), meta["name"]))
            if kind not in ("LeaderWorkerSet", "Deployment", "StatefulSet"):
                return
        self.incomplete = True

    def note_unknown_kind(self, data: dict[str, object]) -> None:
        """A document of a misspelt kind: whatever its name is may be what a reference means."""
        self.note_failure({**data, "kind": _ANY_KIND})
        self.incomplete = True

    def is_failed(self, kind: str, name: str, namespace: str = "default") -> bool:
        return self.unreadable or (kind, namespace, name) in self.failed or (_ANY_KIND, namespace, name) in self.failed

    # ------------------------------------------------------------------------------------------- lookups

    def pool(self, name: str, namespace: str = "default") -> InferencePool | None:
        return next((p for p in self.inference_pools if p.name == name and p.namespace == namespace), None)

    def gateway(self, name: str, namespace: str = "default") -> Gateway | None:
        return next((g for g in self.gateways if g.metadata.name == name and g.metadata.namespace == namespace), None)

    def service(self, name: str, namespace: str = "default") -> Service | None:
        return next((s for s in self.services if s.metadata.name == name and s.metadata.namespace == namespace), None)

    def secret(self, name: str, namespace: str = "default") -> Secret | None:
        return next((s for s in self.secrets if s.metadata.name == name and s.metadata.namespace == namespace), None)

    def model_service(self, name: str) -> ModelService | None:
        return next((m for m in self.model_services if m.name == name), None)

    def pool_members(self, pool: InferencePool) -> list[ModelService]:
        """Model services whose pod labels contain every label of the pool's selector."""
        return list(self._membership()[0].get(id(pool), []))

    def pools_for(self, service: ModelService) -> list[InferencePool]:
        return list(self._membership()[1].get(id(service), []))

    def _membership(self) -> tuple[dict[int, list[ModelService]], dict[int, list[InferencePool]]]:
        """Pool ↔ service selection, computed once through a label index (the checks ask for it per pool and per
        service; pairwise matching was the slowest part of loading 200-service deployments). Recomputed when the
        lists change."""
        key = (tuple(map(id, self.inference_pools)), tuple(map(id, self.model_services)))
        if self._members_key != key:
            by_label: dict[tuple[str, str], set[int]] = {}
            for i, m in enumerate(self.model_services):
                for label in m.labels.items():
                    by_label.setdefault(label, set()).add(i)
            members: dict[int, list[ModelService]] = {}
            pools: dict[int, list[InferencePool]] = {}
            for p in self.inference_pools:
                sets = [by_label.get(label, set()) for label in p.match_labels.items()]
                chosen = sorted(set.intersection(*sets)) if sets else []
                members[id(p)] = [self.model_services[i] for i in chosen]
                for i in chosen:
                    pools.setdefault(id(self.model_services[i]), []).append(p)
            self._members_cache = (members, pools)
            self._members_key = key
        return self._members_cache

    def model_names_for_pool(self, pool: InferencePool) -> list[str]:
        """Names a request's `model` may carry to be served by this pool: served names, LoRA adapters, and the
        client-facing names of InferenceModelRewrites (and legacy InferenceModels) on the pool."""
        names: list[str] = []
        for m in self.pool_members(pool):
            names.extend(m.model_names)
        for rw in self.rewrites:
            if rw.spec.pool_ref.name == pool.name and rw.metadata.namespace == pool.namespace:
                names.extend(sorted(rw.matched_models()))
        return list(dict.fromkeys(names))

    def objectives_for(self, pool: InferencePool) -> list[InferenceObjective]:
        return [
            o for o in self.objectives if o.spec.pool_ref.name == pool.name and o.metadata.namespace == pool.namespace
        ]

    def routes_to(self, pool: InferencePool) -> list[HTTPRoute]:
        out = []
        for route in self.http_routes:
            ns = route.metadata.namespace
            for rule in route.spec.rules:
                if any(
                    b.is_inference_pool and b.name == pool.name and (b.namespace or ns) == pool.namespace
                    for b in rule.backend_refs
                ):
                    out.append(route)
                    break
        return out

    @property
    def needs_bbr(self) -> bool:
        """Whether any route matches on the model headers that the body-based router sets."""
        return any(
            h.name.lower() in (MODEL_HEADER, BASE_MODEL_HEADER)
            for route in self.http_routes
            for rule in route.spec.rules
            for match in rule.matches
            for h in match.headers
        )

    def source(self, kind: str, name: str, namespace: str = "default") -> Source | None:
        return self.sources.get((kind, namespace, name))
