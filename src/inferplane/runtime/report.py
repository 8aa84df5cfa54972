"""Terminal output of `up` and `status`: kubectl-style tables with rich, and the curl line that works."""

from __future__ import annotations

import time
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from inferplane.runtime.plan import RuntimePlan


def make_console() -> Console:
    """A console for tables: the terminal's width, or wide enough for every column when output is piped (so
    `inferplane status | grep` and logs of a detached run see whole names, not ellipses)."""
    probe = Console()
    return Console(highlight=False, width=None if probe.is_terminal else 220)


def _table(title: str, *columns: str) -> Table:
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, title_style="bold")
    for c in columns:
        t.add_column(c, no_wrap=True)
    return t


def _address(ports: dict[str, int]) -> str:
    return ", ".join(f"{k} :{v}" for k, v in ports.items())


def print_plan(console: Console, plan: RuntimePlan, live: dict[str, Any]) -> None:
    """What runs where, right after `up` (live = Supervisor.snapshot())."""
    comps = live.get("components", {})
    t = _table(f"{plan.name} ({plan.backend} backend)", "COMPONENT", "KIND", "POOL", "PORTS", "PID", "STATUS")
    for c in plan.components:
        info = comps.get(c.name, {})
        status = "ready" if info.get("ready") else info.get("phase", "")
        t.add_row(c.name, c.kind.value, ",".join(c.pools), _address(c.ports), str(info.get("pid", "")), status)
    console.print(t)
    mapped = ", ".join(f"{k}→{v}" for k, v in plan.port_map.items())
    console.print(f"[bold]Gateway[/] {plan.base_url}  (listener ports {mapped}; Envoy admin :{plan.admin_port})")
    console.print(f"[bold]Models[/]  {', '.join(plan.models)}")
    for warning in plan.warnings:
        console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)


def print_curl(plan: RuntimePlan) -> None:
    # plain print: a terminal-width wrap would break copy and paste
    print(f"Try it:\n  {plan.curl()}", flush=True)


def _fmt(value: float | None, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value * 100:.0f}%" if pct else f"{value:g}"


def print_stopped(console: Console, status: dict[str, Any]) -> None:
    """A deployment that is not running: what it was and why it stopped, no tables of stale ports."""
    console.print(
        f"[bold]{status['name']}[/] stopped (not running): {status['stop_reason']}", soft_wrap=True, markup=True
    )
    console.print(f"  last run: {status['source']}, {status['backend']} backend, gateway was {status['base_url']}")
    for e in status.get("last_events", []):
        when = time.strftime("%H:%M:%S", time.localtime(e["time"]))
        console.print(f"  {when} {e['component']}: {e['message']}", soft_wrap=True, markup=False, highlight=False)
    console.print(f"  start it again with `inferplane up {status['source']}`", soft_wrap=True, markup=False)


def print_status(console: Console, status: dict[str, Any]) -> None:
    if not status["up_pid"]:
        print_stopped(console, status)
        return
    console.print(
        f"[bold]{status['name']}[/] {status['status']} (pid {status['up_pid']}) — {status['source']}, "
        f"{status['backend']}"
    )
    t = _table("GATEWAYS", "NAME", "CLASS", "ADDRESS", "LISTENERS")
    for g in status["gateways"]:
        ports = {str(k): v for k, v in g["port_map"].items()}
        listeners = ", ".join(
            f"{lst['name']}/{lst['protocol']}:{lst['port']}→{ports.get(str(lst['port']), '?')}"
            for lst in g["listeners"]
        )
        t.add_row(g["name"], g.get("class", ""), g["address"], listeners)
    console.print(t)
    t = _table("HTTPROUTES", "NAME", "PARENTS", "HOSTNAMES", "MATCHES", "BACKENDS")
    for r in status["routes"]:
        t.add_row(
            r["name"], ",".join(r["parents"]), ",".join(r["hostnames"]) or "*", "; ".join(r["matches"]),
            ",".join(r["backends"]),
        )  # fmt: skip
    console.print(t)
    t = _table("INFERENCEPOOLS", "NAME", "ENDPOINT PICKER", "FAILURE MODE", "TARGET PORTS", "READY")
    for p in status["pools"]:
        t.add_row(
            p["name"], f"{p['endpoint_picker']} ({p['epp_address']})", p["failure_mode"],
            ",".join(str(x) for x in p["target_ports"]), f"{p['ready']}/{p['endpoints']}",
        )  # fmt: skip
    console.print(t)
    if status.get("services"):
        t = _table("SERVICES", "NAME", "READY")
        for svc in status["services"]:
            t.add_row(svc["name"], f"{svc['ready']}/{svc['endpoints']}")
        console.print(t)
    t = _table(
        "ENDPOINTS", "NAME", "POOL", "ADDRESS", "READY", "RESTARTS", "RUNNING", "WAITING", "KV USE", "PREFIX HIT",
        "SERVED",
    )  # fmt: skip
    for e in status["endpoints"]:
        m = e["metrics"] or {}
        t.add_row(
            e["name"], ",".join(e["pools"]), e["address"], "yes" if e["ready"] else e["phase"], str(e["restarts"]),
            _fmt(m.get("running")), _fmt(m.get("waiting")), _fmt(m.get("kv_usage"), pct=True),
            _fmt(m.get("prefix_hit_rate"), pct=True), _fmt(m.get("requests_served")),
        )  # fmt: skip
    console.print(t)
    t = _table("COMPONENTS", "NAME", "KIND", "PID", "STATUS", "RESTARTS", "PORTS")
    for c in status["components"]:
        t.add_row(c["name"], c["kind"], str(c["pid"] or "-"), c["phase"], str(c["restarts"]), _address(c["ports"]))
    console.print(t)
    if status.get("curl"):
        print(f"Try it:\n  {status['curl']}", flush=True)  # plain print, as at `up`: whole for copy and paste
