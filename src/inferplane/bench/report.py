"""Human-readable output: the summary table (rich), the comparison table with ratios, and the Markdown report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
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


def replica_order(results: Sequence[RunResult]) -> list[str]:
    """Every replica that served a request in any run, sorted: the positions of the per-replica column."""
    return sorted({name for r in results for s in [r.summary, *r.per_stage.values()] for name in s.replicas})


def _split(s: Summary, order: Sequence[str]) -> str:
    """Successful requests per replica, positionally in `order` (zeros kept, so columns line up across rows)."""
    if not sum(s.replicas.values()):
        return "–"
    return " / ".join(str(s.replicas.get(name, 0)) for name in order)


SPLIT_TITLE = "per replica"


def legend(results: Sequence[RunResult]) -> str:
    """What the label and per-replica columns hold, naming the replicas in column order."""
    order = replica_order(results)
    names = ", ".join(f"{i}={'(not reported)' if n == '?' else n}" for i, n in enumerate(order, 1)) or "none"
    return (
        "config: the run's label (--label; default the deployment directory or the model(s) requested). "
        "stage: N/s open loop at N requests/s, cN closed loop with N in flight. "
        f"{SPLIT_TITLE}: successful requests served by each replica, in this order: {names}"
    )


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
)


def _rows(result: RunResult) -> list[tuple[str, Summary]]:
    rows = [(s.name + (" (warm-up)" if s.warmup else ""), result.per_stage[s.name]) for s in result.stages]
    if len(result.measured_stages) > 1:
        rows.append(("all", result.summary))
    # A multi-model mix: the measured stages again, one row per model.
    rows += [(f"all, model {model}", summary) for model, summary in result.per_model.items()]
    return rows


def summary_table(results: Sequence[RunResult]) -> Table:
    table = Table(title="inferplane bench", show_lines=False, caption=legend(results), caption_justify="left")
    table.add_column("config")
    table.add_column("stage")
    for c in COLUMNS:
        table.add_column(c.title, justify="right")
    table.add_column(SPLIT_TITLE, justify="right")
    order = replica_order(results)
    for result in results:
        for stage, s in _rows(result):
            table.add_row(result.label, stage, *(c.value(s) for c in COLUMNS), _split(s, order))
    return table


def _error_kind(key: str) -> str:
    """Summary.errors keys are 'STATUS - message'; status 0 means no HTTP answer arrived."""
    status, _, message = key.partition(" - ")
    return f"{message} (no response)" if status == "0" else f"HTTP {status}: {message}"


def error_lines(results: Sequence[RunResult], limit: int = 5) -> list[str]:
    """Failed requests of every run (warm-up included), counted by status and message, most frequent first."""
    lines = []
    for r in results:
        failed = [x for x in r.records if not x.ok]
        if not failed:
            continue
        counts = Counter(f"{x.status} - {x.error or 'HTTP error'}" for x in failed)
        lines.append(f"{r.label}: {len(failed)} of {len(r.records)} requests failed")
        lines += [f"  {n} × {_error_kind(key)}" for key, n in counts.most_common(limit)]
        if len(counts) > limit:
            lines.append(f"  … and {len(counts) - limit} other kinds of error (see report.md)")
    return lines


# A Poisson stage with n arrivals has a count sd of √n: short stages miss the target rate by tens of percent.
RATE_TOLERANCE = 0.2


def rate_notes(results: Sequence[RunResult]) -> list[str]:
    """Open-loop stages whose achieved request rate is more than 20 % off the target, with the likely reason."""
    notes = []
    for r in results:
        for info in r.measured_stages:
            s = r.per_stage[info.name]
            if not info.rate or s.duration <= 0 or not s.requests:
                continue
            achieved = s.requests / s.duration
            off = achieved / info.rate - 1
            if abs(off) <= RATE_TOLERANCE:
                continue
            why = (
                f"with {s.requests} random (Poisson) arrivals the count varies by about "
                f"±{100 / s.requests**0.5:.0f} %; "
                "use longer stages (--duration 30s or more) or --arrivals constant"
                if info.mode == "poisson"
                else "the generator or the server could not keep up (see max-in-flight, E2E)"
            )
            if info.mode == "poisson" and off < 0:
                why += ", or the server could not keep up"
            notes.append(
                f"{r.label}, stage {info.name}: sent {achieved:.2f} req/s, {abs(off):.0%} "
                f"{'above' if off > 0 else 'below'} the target {info.rate:g}/s: {why}"
            )
    return notes


def files_line(files: Sequence[Path], directory: Path) -> str:
    """The closing line of a run: every file written, by path, so they can be opened or copied."""
    return f"wrote {len(files)} files to {directory}/:\n" + "\n".join(f"  {f}" for f in files)


def print_summary(console: Console, results: Sequence[RunResult]) -> None:
    """The summary table, then any rate notes and the error summary (on stdout, and on stderr when every request
    of a run failed, so the exit status 1 comes with its reason)."""
    console.print(summary_table(results))
    for note in rate_notes(results):
        console.print(f"note: {note}", markup=False)
    errors = error_lines(results)
    if errors:
        console.print("errors:", *errors, sep="\n", markup=False)
    failed = [r for r in results if r.records and not r.summary.successes]
    if failed:
        stderr = Console(stderr=True, width=console.width)
        stderr.print("error: every request failed:", *error_lines(failed, limit=3), sep="\n", markup=False)


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
    order = replica_order(results)
    rows = []
    for r in results:
        s = r.per_stage[stage] if stage else r.summary
        cells = [r.label]
        for ratio in RATIOS:
            v, b = ratio.value(s), ratio.value(base)
            rel = f" ({v / b:.2f}×)" if v is not None and b else ""
            cells.append(ratio.fmt(v) + rel)
        cells.append(_split(s, order))
        rows.append(cells)
    return rows


def comparison_table(results: Sequence[RunResult]) -> Table:
    stage = highest_common_stage(results)
    table = Table(
        title=f"comparison at stage {stage!r}, ratios against {results[0].label}",
        caption=legend(results),
        caption_justify="left",
    )
    table.add_column("config")
    for ratio in RATIOS:
        table.add_column(ratio.title, justify="right")
    table.add_column(SPLIT_TITLE, justify="right")
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
    order = replica_order(results)
    rows = [
        [r.label, stage, *(c.value(s) for c in COLUMNS), _split(s, order)] for r in results for stage, s in _rows(r)
    ]
    out += _md_table(["config", "stage", *(c.title for c in COLUMNS), SPLIT_TITLE], rows)
    out += ["", legend(results)]
    notes = rate_notes(results)
    if notes:
        out += ["", *(f"- note: {n}" for n in notes)]
    if len(results) > 1:
        stage = highest_common_stage(results)
        out += ["", f"## Comparison (stage `{stage}`, ratios against `{first.label}`)", ""]
        out += _md_table(["config", *(r.title for r in RATIOS), SPLIT_TITLE], comparison_rows(results, stage))
    for r in results:
        if r.summary.errors:
            out += ["", f"## Errors ({r.label})", ""]
            out += _md_table(["error", "count"], [[k, str(v)] for k, v in r.summary.errors.items()])
    if plots:
        out += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots]
    return "\n".join(out) + "\n"
