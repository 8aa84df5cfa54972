"""PNG plots with matplotlib's Agg backend (no display needed). Every plot takes a list of runs and draws each
configuration as one line, so a single run and a side-by-side comparison share one code path."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from inferplane.bench.metrics import Summary
from inferplane.bench.results import RunResult


def _measured(result: RunResult) -> list[Summary]:
    return [result.per_stage[s.name] for s in result.measured_stages]


def _x(s: Summary) -> float:
    """Offered rate when the stage had one, else the achieved request rate (closed loop)."""
    return s.rate if s.rate is not None else s.requests_per_s


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def ttft_cdf(results: Sequence[RunResult], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results:
        measured = {s.name for s in r.measured_stages}
        values = np.sort([x.ttft for x in r.records if x.ok and x.ttft is not None and x.stage in measured])
        if values.size:
            ax.plot(values, np.arange(1, values.size + 1) / values.size, label=r.label)
    ax.set_xscale("log")
    ax.set_xlabel("time to first token (s, log)")
    ax.set_ylabel("fraction of requests")
    ax.set_title("TTFT CDF")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _save(fig, path)


def latency_vs_rate(results: Sequence[RunResult], path: Path) -> Path:
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(13, 4.2))
    for r in results:
        stages = _measured(r)
        xs = [_x(s) for s in stages]
        a1.plot(xs, [s.ttft.p90 if s.ttft else np.nan for s in stages], marker="o", label=r.label)
        a2.plot(xs, [s.tpot.p90 if s.tpot else np.nan for s in stages], marker="o", label=r.label)
        a3.plot(xs, [s.e2e.p90 if s.e2e else np.nan for s in stages], marker="o", label=r.label)
    for ax, title in ((a1, "TTFT p90 (s)"), (a2, "TPOT p90 (s)"), (a3, "E2E latency p90 (s)")):
        ax.set_xlabel("request rate (req/s)")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    a1.set_yscale("log")
    a1.legend()
    return _save(fig, path)


def throughput_vs_rate(results: Sequence[RunResult], path: Path) -> Path:
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.2))
    for r in results:
        stages = _measured(r)
        xs = [_x(s) for s in stages]
        a1.plot(xs, [s.output_tokens_per_s for s in stages], marker="o", label=r.label)
        a2.plot(xs, [s.requests_per_s for s in stages], marker="o", label=r.label)
    a1.set_title("output tokens/s")
    a2.set_title("completed requests/s")
    for ax in (a1, a2):
        ax.set_xlabel("request rate (req/s)")
        ax.grid(True, alpha=0.3)
    a1.legend()
    return _save(fig, path)


def replicas_over_time(results: Sequence[RunResult], path: Path, bins: int = 40) -> Path:
    fig, axes = plt.subplots(len(results), 1, figsize=(8, 2.6 * len(results) + 0.6), squeeze=False)
    for ax, r in zip(axes[:, 0], results, strict=True):
        ok = [x for x in r.records if x.ok]
        if ok:
            end = max(x.start for x in ok) or 1.0
            edges = np.linspace(0.0, end, bins + 1)
            width = edges[1] - edges[0] or 1.0
            for replica in sorted({x.replica or "?" for x in ok}):
                counts, _ = np.histogram([x.start for x in ok if (x.replica or "?") == replica], bins=edges)
                ax.plot(edges[:-1], counts / width, label=replica)
            for s in r.stages[1:]:
                ax.axvline(s.started, color="grey", alpha=0.3, linewidth=0.8)
        ax.set_title(f"requests per replica over time — {r.label}")
        ax.set_ylabel("req/s")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small", ncol=4)
    axes[-1, 0].set_xlabel("time since start (s)")
    return _save(fig, path)


PLOTS = {
    "ttft_cdf": ttft_cdf,
    "latency_vs_rate": latency_vs_rate,
    "throughput_vs_rate": throughput_vs_rate,
    "replicas_over_time": replicas_over_time,
}


def write_plots(results: Sequence[RunResult], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    return [fn(results, directory / f"{name}.png") for name, fn in PLOTS.items()]
