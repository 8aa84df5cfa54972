"""What the terminal shows after a run: the error summary, notes on missed target rates, the column legend, the
per-model split of a mix, the files written; and the self-test's files."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from inferplane.bench.command import make_target, run_label, workload_from_args
from inferplane.bench.records import RequestRecord, StageInfo
from inferplane.bench.report import (
    error_lines,
    files_line,
    markdown_report,
    print_summary,
    rate_notes,
    summary_table,
)
from inferplane.bench.results import RunResult
from inferplane.bench.runner import write_outputs
from inferplane.bench.selftest import Ceiling, write_self_test
from inferplane.cli import build_parser
from inferplane.errors import ConfigError
from inferplane.net import free_port

REFUSED = "cannot connect: connection refused at 127.0.0.1:1"


def ok(i: float, stage: str = "c4", replica: str = "r0", model: str = "m") -> RequestRecord:
    return RequestRecord(
        start=i * 0.1, stage=stage, status=200, ttft=0.01, e2e=0.05, itl=[0.01] * 3, input_tokens=10,
        output_tokens=4, replica=replica, model=model,
    )  # fmt: skip


def run_of(records: list[RequestRecord], stages: list[StageInfo], label: str = "m") -> RunResult:
    return RunResult(label, records, stages, {"workload": {}, "target": {}}, seed=0)


CLOSED = [StageInfo("c4", "closed", concurrency=4, started=0.0, ended=2.0)]


def render(console_output: object) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=250).print(console_output)
    return buffer.getvalue()


def test_every_request_failed_says_why_on_stdout_and_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    records = [RequestRecord(start=0.1 * i, stage="c4", status=0, error=REFUSED, e2e=0.001) for i in range(20)]
    result = run_of(records, CLOSED)
    out = io.StringIO()
    print_summary(Console(file=out, width=250), [result])
    stdout, stderr = out.getvalue(), capsys.readouterr().err
    assert "0/20" in stdout
    assert "errors:\nm: 20 of 20 requests failed\n  20 × " + REFUSED + " (no response)" in stdout
    assert stderr.startswith("error: every request failed:\nm: 20 of 20 requests failed\n")
    assert REFUSED in stderr


def test_errors_are_counted_by_status_and_message_most_frequent_first(capsys: pytest.CaptureFixture[str]) -> None:
    records = [ok(i) for i in range(5)]
    records += [RequestRecord(start=1.0, stage="c4", status=503, error="no healthy upstream") for _ in range(3)]
    records += [RequestRecord(start=1.0, stage="c4", status=400, error=f"bad {i}") for i in range(7)]
    result = run_of(records, CLOSED)
    lines = error_lines([result], limit=3)
    assert lines[0] == "m: 10 of 15 requests failed"
    assert lines[1] == "  3 × HTTP 503: no healthy upstream"
    assert lines[2:4] == ["  1 × HTTP 400: bad 0", "  1 × HTTP 400: bad 1"]
    assert lines[4] == "  … and 5 other kinds of error (see report.md)"
    out = io.StringIO()
    print_summary(Console(file=out, width=250), [result])
    assert "3 × HTTP 503: no healthy upstream" in out.getvalue()
    assert capsys.readouterr().err == ""  # some requests succeeded: the run did not fail
    assert error_lines([run_of([ok(1)], CLOSED)]) == []


def test_a_short_poisson_stage_far_from_its_target_rate_gets_a_note() -> None:
    stages = [
        StageInfo("4/s", "poisson", rate=4.0, started=0.0, ended=5.0),
        StageInfo("8/s", "poisson", rate=8.0, started=5.0, ended=10.0),
    ]
    records = [ok(i * 0.14, "4/s") for i in range(34)] + [ok(50 + i * 0.1, "8/s") for i in range(42)]
    result = run_of(records, stages)
    notes = rate_notes([result])
    assert len(notes) == 1  # 8/s: 42 in 5 s = 8.4/s, within 20 %
    assert notes[0].startswith("m, stage 4/s: sent 6.80 req/s, 70% above the target 4/s: with 34 random (Poisson)")
    assert "--duration 30s or more" in notes[0]
    assert "note: " + notes[0] in markdown_report([result], [], "inferplane bench")
    slow = run_of([ok(i, "4/s") for i in range(10)], stages[:1])
    assert "below the target 4/s" in rate_notes([slow])[0]
    assert rate_notes([run_of([ok(i) for i in range(3)], CLOSED)]) == []  # closed loop: no target rate


def test_columns_are_explained_and_replicas_named_in_column_order() -> None:
    a = run_of([ok(i, replica="pod-a") for i in range(3)] + [ok(i, replica="pod-c") for i in range(2)], CLOSED, "x")
    b = run_of([ok(i, replica="pod-b") for i in range(4)], CLOSED, "y")
    text = render(summary_table([a, b]))
    assert "per replica" in text
    assert "split" not in text
    assert "config: the run's label" in text
    assert "1=pod-a, 2=pod-b, 3=pod-c" in text
    assert "3 / 0 / 2" in text  # zeros kept: each position is one replica in every row
    assert "0 / 4 / 0" in text


def test_a_model_mix_is_split_per_model(tmp_path: Path) -> None:
    records = [ok(i, model="gemma") for i in range(6)] + [ok(i, model="llama") for i in range(2)]
    result = run_of(records, CLOSED, "gemma + llama")
    assert set(result.per_model) == {"gemma", "llama"}
    assert result.per_model["gemma"].successes == 6
    write_outputs([result], tmp_path, "inferplane bench", plots=False)
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["per_model"]["llama"]["successes"] == 2
    report = (tmp_path / "report.md").read_text()
    assert "| gemma + llama | all, model gemma | – | 6/6 |" in report
    assert run_of([ok(1)], CLOSED).per_model == {}


def test_a_mix_needs_no_model_list_and_labels_every_model() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens: asking it for /v1/models would fail
    parser = build_parser("bench")
    args = parser.parse_args(["bench", "--url", url, "--models", "gemma=0.5,llama=0.5", "--workload", "random"])
    spec, _ = workload_from_args(args)
    target = make_target(args, url, spec)
    assert target.model == "gemma"
    assert run_label(args, spec, target) == "gemma + llama"
    assert run_label(args, spec, target, "pattern2-multimodel") == "pattern2-multimodel: gemma + llama"
    plain = parser.parse_args(["bench", "--url", url, "--workload", "random"])
    spec, _ = workload_from_args(plain)
    with pytest.raises(ConfigError, match=rf"cannot reach {url}: connection refused at 127\.0\.0\.1:") as info:
        make_target(plain, url, spec)
    assert "is the server running?" in str(info.value)
    assert "pass --model" not in str(info.value)


def test_files_line_lists_every_path(tmp_path: Path) -> None:
    files = [tmp_path / "results.json", tmp_path / "report.md"]
    assert files_line(files, tmp_path) == f"wrote 2 files to {tmp_path}/:\n  {files[0]}\n  {files[1]}"


def test_self_test_results_are_written(tmp_path: Path) -> None:
    row = Ceiling(64, 128, True, 900, 0, 5.0, 180.0, 23040.0, 4.0, 0.8, 225.0, 28800.0)
    files = write_self_test([row], tmp_path / "st", "inferplane bench --self-test -o st")
    assert [f.name for f in files] == ["selftest.json", "report.md"]
    data = json.loads(files[0].read_text())
    assert data["ceilings"][0]["requests_per_cpu_s"] == 225.0
    assert "| 64 | 128 | yes | 180 | 23040 | 80 % | 225 | 28800 | 0 |" in files[1].read_text()
