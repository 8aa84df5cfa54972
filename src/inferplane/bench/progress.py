"""The live progress view: a small rich panel redrawn a few times a second from the generator's counters."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from rich.console import Console
from rich.live import Live
from rich.table import Table

from inferplane.bench.loadgen import Progress


def _render(p: Progress, label: str, t0: float) -> Table:
    elapsed = time.perf_counter() - t0
    stage_elapsed = elapsed - p.stage_started
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    total = f" / {p.stage_duration:.0f} s" if p.stage_duration else ""
    table.add_row("config", label)
    table.add_row("stage", f"{p.stage_index + 1}/{p.stages} {p.stage}  {stage_elapsed:.0f} s{total}")
    table.add_row("requests", f"sent {p.sent}  done {p.done}  failed {p.failed}  in flight {p.in_flight}")
    rate = p.output_tokens / elapsed if elapsed > 0 else 0.0
    ttft = f"{np.median(p.last_ttft) * 1000:.0f} ms" if p.last_ttft else "–"
    table.add_row("throughput", f"{rate:.0f} output tok/s (run average)   TTFT p50 (last 200) {ttft}")
    return table


@contextmanager
def live_progress(progress: Progress, label: str, enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    t0 = time.perf_counter()
    console = Console(stderr=True)
    with Live(
        get_renderable=lambda: _render(progress, label, t0), console=console, refresh_per_second=4, transient=True
    ):
        yield
