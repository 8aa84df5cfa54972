"""Human-readable output: the summary table (rich), the comparison table with ratios, and the Markdown report."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from inferplane.bench.metrics import Dist, Summary
from inferplane.bench.results import RunResult


def fmt_s(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.2f} s"


def fmt_pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _p(d: Dist | None, attr: str) -> float | None:
    return None if d is None else float(getattr(d, attr))


def _load(s: Summary) -> str:
    if s.rate is not None:
        return f"{s.rate:g}/s"
    return f"c={s.concurrency}" if s.concurrency is not None else "–"


def _split(s: Summary) -> str:
    total = sum(s.replicas.values())
    if not total:
        return "–"
    return " / ".join(f"{n}" for n in s.replicas.values())


@dataclass(frozen=True)
class Column:
    title: str
    value: Callable[[Summary], str]


COLUMNS = (
    Column("load", _load),
    Column("ok/total", lambda s: f"{s.successes}/{s.requests}"),
    Column("req/s", lambda s: f"{s.requests_per_s:.2f}"),
    Column("out tok/s", lambda s: f"{s.output_tokens_per_s:.0f}"),
    Column("TTFT p50", lambda s: fmt_s(_p(s.ttft, "p50"))),
    Column("TTFT p90", lambda s: fmt_s(_p(s.ttft, "p90"))),
    Column("TTFT p99", lambda s: fmt_s(_p(s.ttft, "p99"))),
    Column("TPOT p50", lambda s: fmt_s(_p(s.tpot, "p50"))),
    Column("TPOT p90", lambda s: fmt_s(_p(s.tpot, "p90"))),
    Column("ITL p90", lambda s: fmt_s(_p(s.itl, "p90"))),
    Column("E2E p90", lambda s: fmt_s(_p(s.e2e, "p90"))),
    Column("cache hit", lambda s: fmt_pct(s.cache_hit_rate)),
    Column("goodput", lambda s: "–" if s.goodput_per_s is None else f"{s.goodput_per_s:.2f}/s"),
    Column("split", _split),
)


def _rows(result: RunResult) -> list[tuple[str, Summary]]:
    rows = [(s.name + (" (warm-up)" if s.warmup else ""), result.per_stage[s.name]) for s in result.stages]
    if len(result.measured_stages) > 1:
        rows.append(("all", result.summary))
    return rows


def summary_table(results: Sequence[RunResult]) -> Table:
    table = Table(title="inferplane bench", show_lines=False)
    table.add_column("config")
    table.add_column("stage")
    for c in COLUMNS:
        table.add_column(c.title, justify="right")
    for result in results:
        for stage, s in _rows(result):
            table.add_row(result.label, stage, *(c.value(s) for c in COLUMNS))
    return table


@dataclass(frozen=True)
class Ratio:
    title: str
    value: Callable[[Summary], float | None]
    fmt: Callable[[float | None], str]


RATIOS = (
    Ratio("TTFT p90", lambda s: _p(s.ttft, "p90"), fmt_s),
    Ratio("TTFT mean", lambda s: _p(s.ttft, "mean"), fmt_s),
    Ratio("TPOT p90", lambda s: _p(s.tpot, "p90"), fmt_s),
    Ratio("E2E p90", lambda s: _p(s.e2e, "p90"), fmt_s),
    Ratio("req/s", lambda s: s.requests_per_s, lambda x: "–" if x is None else f"{x:.2f}"),
    Ratio("out tok/s", lambda s: s.output_tokens_per_s, lambda x: "–" if x is None else f"{x:.0f}"),
    Ratio("cache hit", lambda s: s.cache_hit_rate, fmt_pct),
)


def highest_common_stage(results: Sequence[RunResult]) -> str | None:
    """The last measured stage every run completed (ladders: the highest common rate)."""
    names = [s.name for s in results[0].measured_stages]
    common = [n for n in names if all(n in r.per_stage for r in results)]
    return common[-1] if common else None


def comparison_rows(results: Sequence[RunResult], stage: str | None) -> list[list[str]]:
    """One row per configuration: each metric with its ratio against the first configuration."""
    base = results[0].per_stage[stage] if stage else results[0].summary
    rows = []
    for r in results:
        s = r.per_stage[stage] if stage else r.summary
        cells = [r.label]
        for ratio in RATIOS:
            v, b = ratio.value(s), ratio.value(base)
            rel = f" ({v / b:.2f}×)" if v is not None and b else ""
            cells.append(ratio.fmt(v) + rel)
        cells.append(_split(s))
        rows.append(cells)
    return rows


def comparison_table(results: Sequence[RunResult]) -> Table:
    stage = highest_common_stage(results)
    table = Table(title=f"comparison at stage {stage!r}, ratios against {results[0].label}")
    table.add_column("config")
    for ratio in RATIOS:
        table.add_column(ratio.title, justify="right")
    table.add_column("split", justify="right")
    for row in comparison_rows(results, stage):
        table.add_row(*row)
    return table


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def markdown_report(results: Sequence[RunResult], plots: Sequence[Path], command: str) -> str:
    first = results[0]
    out = [
        "# inferplane bench report",
        "",
        f"- inferplane {first.version}, {first.created}, seed {first.seed}"
        + (f", SLO {first.slo}" if first.slo else ""),
        f"- command: `{command}`",
        f"- workload: `{first.configuration.get('workload')}`",
        f"- target: `{first.configuration.get('target')}`",
        "",
        "## Results",
        "",
    ]
    rows = [[r.label, stage, *(c.value(s) for c in COLUMNS)] for r in results for stage, s in _rows(r)]
    out += _md_table(["config", "stage", *(c.title for c in COLUMNS)], rows)
    if len(results) > 1:
        stage = highest_common_stage(results)
        out += ["", f"## Comparison (stage `{stage}`, ratios against `{first.label}`)", ""]
        out += _md_table(["config", *(r.title for r in RATIOS), "split"], comparison_rows(results, stage))
    for r in results:
        if r.summary.errors:
            out += ["", f"## Errors ({r.label})", ""]
            out += _md_table(["error", "count"], [[k, str(v)] for k, v in r.summary.errors.items()])
    if plots:
        out += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots]
    return "\n".join(out) + "\n"
