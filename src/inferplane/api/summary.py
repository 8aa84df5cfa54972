"""A one-screen summary of a loaded deployment: as plain data (for `--output json`) and as rich tables."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from inferplane.api.deployment import Deployment
from inferplane.api.epp_config import EndpointPickerConfig


def _scorers(cfg: EndpointPickerConfig) -> list[str]:
    types = {p.plugin_name: p.type for p in cfg.plugins}
    out = []
    for prof in cfg.scheduling_profiles:
        for ref in prof.plugins:
            t = types.get(ref.plugin_ref, ref.plugin_ref)
            weight = "" if ref.weight is None else f"×{ref.weight:g}"
            out.append(f"{t}{weight}")
    return list(dict.fromkeys(out))


def summarize(dep: Deployment) -> dict[str, Any]:
    gateways = [
        {
            "name": g.metadata.name,
            "namespace": g.metadata.namespace,
            "class": g.spec.gateway_class_name,
            "listeners": [
                {"name": x.name, "port": x.port, "protocol": x.protocol, "hostname": x.hostname}
                for x in g.spec.listeners
            ],
        }
        for g in dep.gateways
    ]
    routes = []
    for r in dep.http_routes:
        rules = []
        for rule in r.spec.rules:
            matches = []
            for m in rule.matches:
                text = f"{m.path.type} {m.path.value}"
                text += "".join(f" {h.name}={h.value}" for h in m.headers)
                matches.append(text)
            backends = [
                f"{b.kind}/{b.name}" + (f" weight {b.weight}" if len(rule.backend_refs) > 1 else "")
                for b in rule.backend_refs
            ]
            rules.append({"matches": matches, "backends": backends})
        routes.append(
            {
                "name": r.metadata.name,
                "parents": [p.name + (f"/{p.section_name}" if p.section_name else "") for p in r.spec.parent_refs],
                "hostnames": list(r.spec.hostnames),
                "rules": rules,
            }
        )
    pools = []
    for p in dep.inference_pools:
        cfg = dep.epp_configs.get(p.name)
        pools.append(
            {
                "name": p.name,
                "namespace": p.namespace,
                "selector": dict(p.match_labels),
                "targetPorts": p.target_port_numbers,
                "failureMode": p.failure_mode,
                "eppConfig": dep.epp_config_origins.get(p.name),
                "scorers": _scorers(cfg) if cfg else [],
                "members": [m.name for m in dep.pool_members(p)],
                "models": dep.model_names_for_pool(p),
            }
        )
    services = [
        {
            "name": m.name,
            "form": m.form,
            "role": m.role,
            "model": m.model,
            "servedModelNames": m.served_model_names,
            "replicas": m.replicas,
            "groupSize": m.group_size,
            "port": m.port,
            "proxyTargetPort": m.proxy_target_port,
            "lws": m.lws,
            "accelerator": m.accelerator,
            "acceleratorCount": m.accelerator_count,
            "image": m.image,
            "source": str(m.source),
        }
        for m in dep.model_services
    ]
    return {
        "gateways": gateways,
        "httpRoutes": routes,
        "inferencePools": pools,
        "modelServices": services,
        "objectives": [
            {"name": o.metadata.name, "priority": o.priority, "pool": o.spec.pool_ref.name} for o in dep.objectives
        ],
        "bodyBasedRouting": dep.needs_bbr,
    }


def print_summary(console: Console, summary: dict[str, Any]) -> None:
    if summary["gateways"]:
        t = Table(title="Gateways", title_justify="left", show_edge=False)
        for col in ("name", "class", "listeners"):
            t.add_column(col)
        for g in summary["gateways"]:
            listeners = ", ".join(
                f"{x['name']} :{x['port']}/{x['protocol']}" + (f" {x['hostname']}" if x["hostname"] else "")
                for x in g["listeners"]
            )
            t.add_row(g["name"], g["class"], listeners)
        console.print(t)
    if summary["httpRoutes"]:
        t = Table(title="HTTPRoutes", title_justify="left", show_edge=False)
        for col in ("name", "parents", "matches → backends"):
            t.add_column(col)
        for r in summary["httpRoutes"]:
            rules = "\n".join(
                f"{' | '.join(rule['matches'])} → {', '.join(rule['backends']) or '(none)'}" for rule in r["rules"]
            )
            t.add_row(r["name"], ", ".join(r["parents"]), rules)
        console.print(t)
    if summary["inferencePools"]:
        t = Table(title="InferencePools", title_justify="left", show_edge=False)
        for col in ("name", "targetPorts", "failureMode", "members", "models", "endpoint picker"):
            t.add_column(col)
        for p in summary["inferencePools"]:
            epp = f"{p['eppConfig']}\n{', '.join(p['scorers'])}" if p["scorers"] else str(p["eppConfig"])
            t.add_row(
                p["name"],
                ", ".join(map(str, p["targetPorts"])),
                p["failureMode"],
                "\n".join(p["members"]) or "(none)",
                "\n".join(p["models"]),
                epp,
            )
        console.print(t)
    if summary["modelServices"]:
        t = Table(title="Model services", title_justify="left", show_edge=False)
        for col in ("name", "model", "replicas", "port", "accelerator", "form"):
            t.add_column(col)
        for m in summary["modelServices"]:
            reps = f"{m['replicas']}" + (f" × group of {m['groupSize']}" if m["groupSize"] > 1 else "")
            accel = f"{m['accelerator']} × {m['acceleratorCount']}" if m["acceleratorCount"] else m["accelerator"]
            names = (
                m["model"]
                if m["servedModelNames"] == [m["model"]]
                else (f"{m['model']} (as {', '.join(m['servedModelNames'])})")
            )
            t.add_row(m["name"], names, reps, str(m["port"]), accel, f"{m['form']} {m['role']}")
        console.print(t)
    if summary["bodyBasedRouting"]:
        console.print("body-based routing: on (routes match X-Gateway-Model-Name)")
