"""Model rewrite (reference/epp.md §2 step 1, §6): the `x-gateway-model-name-rewrite` header, else weighted
InferenceModelRewrite rules. Pure: the incoming model name and headers in, the target model out."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

REWRITE_HEADER = "x-gateway-model-name-rewrite"


@dataclass(frozen=True, slots=True)
class RewriteTarget:
    model: str
    weight: int = 1


@dataclass(frozen=True, slots=True)
class RewriteRule:
    """`matches`: exact model names, ORed; empty matches every model."""

    targets: tuple[RewriteTarget, ...]
    matches: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelRewriteResource:
    """One InferenceModelRewrite; `created` orders resources (oldest wins)."""

    name: str
    rules: tuple[RewriteRule, ...]
    created: float = 0.0

    @classmethod
    def from_spec(cls, name: str, spec: Mapping[str, Any], created: float = 0.0) -> ModelRewriteResource:
        """From the upstream spec: `rules[].matches[].model.{type: Exact, value}`, `rules[].targets[].{modelRewrite,
        weight}`."""
        rules = []
        for r in spec.get("rules") or []:
            matches = tuple(str(m["model"]["value"]) for m in r.get("matches") or [] if m.get("model"))
            targets = tuple(
                RewriteTarget(str(t["modelRewrite"]), int(t.get("weight", 1))) for t in r.get("targets") or []
            )
            rules.append(RewriteRule(targets=targets, matches=matches))
        return cls(name=name, rules=tuple(rules), created=created)


@dataclass(frozen=True, slots=True)
class RewriteDecision:
    model: str  # the target model (unchanged when nothing applied)
    rewritten: bool
    source: str = ""  # "header" or the InferenceModelRewrite's name (for the decisions metric)


@dataclass
class ModelRewriter:
    resources: Sequence[ModelRewriteResource] = ()
    rng: random.Random = field(default_factory=random.Random)

    def rewrite(self, model: str, headers: Mapping[str, str] | None = None) -> RewriteDecision:
        if headers:
            forced = headers.get(REWRITE_HEADER)
            if forced:
                return RewriteDecision(forced, forced != model, "header")
        found = self._rule_for(model)
        if found is None:
            return RewriteDecision(model, False)
        name, rule = found
        target = select_weighted(rule.targets, self.rng)
        return RewriteDecision(target, target != model, name)

    def _rule_for(self, model: str) -> tuple[str, RewriteRule] | None:
        """Exact match over generic (empty matches), then the oldest resource, then list order."""
        ordered = sorted(self.resources, key=lambda r: r.created)
        for want_exact in (True, False):
            for res in ordered:
                for rule in res.rules:
                    if not rule.targets:
                        continue
                    if (want_exact and model in rule.matches) or (not want_exact and not rule.matches):
                        return res.name, rule
        return None


def select_weighted(targets: Sequence[RewriteTarget], rng: random.Random) -> str:
    """Uniform integer in [0, Σ weights) over the cumulative weights; all weights 0 → uniform choice."""
    total = sum(max(t.weight, 0) for t in targets)
    if total <= 0:
        return targets[rng.randrange(len(targets))].model
    x = rng.randrange(total)
    acc = 0
    for t in targets:
        acc += max(t.weight, 0)
        if x < acc:
            return t.model
    return targets[-1].model
