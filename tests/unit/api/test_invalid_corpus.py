"""The broken-input corpus: each case under tests/data/invalid/ reports exactly its listed errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from inferplane.api import DiagnosticsError, load_deployment
from tests.conftest import REPO

CORPUS = REPO / "tests" / "data" / "invalid"
CASES: dict[str, list[dict[str, Any]]] = yaml.safe_load((CORPUS / "cases.yaml").read_text())


def test_corpus_is_large_and_fully_indexed() -> None:
    on_disk = {p.name for p in CORPUS.iterdir() if p.name != "cases.yaml"}
    assert on_disk == set(CASES), "every case on disk needs an entry in cases.yaml and vice versa"
    assert len(CASES) >= 40


def _expected(case: str, item: dict[str, Any]) -> tuple[str, int, int, str, str, str | None]:
    case_path = CORPUS / case
    file = str(case_path / item["file"]) if "file" in item else str(case_path)
    hint = item.get("hint")
    if hint is not None:
        hint = hint.replace("{case}", str(case_path))
    return (file, item["line"], item["column"], item.get("path", ""), item["message"], hint)


@pytest.mark.parametrize("case", sorted(CASES))
def test_case_reports_exactly_its_errors(case: str) -> None:
    with pytest.raises(DiagnosticsError) as info:
        load_deployment(CORPUS / case)
    got = sorted((d.file, d.line, d.column, d.path, d.message, d.hint) for d in info.value.errors)
    want = sorted(_expected(case, item) for item in CASES[case])
    assert got == want


def test_error_text_names_file_line_column_and_path() -> None:
    case = CORPUS / "pool-unknown-field-targetport.yaml"
    with pytest.raises(DiagnosticsError) as info:
        load_deployment(case)
    text = str(info.value)
    assert f"{case}:9:3: error: spec.targetPort: unknown field 'targetPort'" in text
    assert "hint: did you mean targetPorts?" in text
    assert text.startswith("1 error found")


def test_all_files_of_a_directory_are_reported_together() -> None:
    with pytest.raises(DiagnosticsError) as info:
        load_deployment(CORPUS / "xc-errors-across-files")
    files = {Path(d.file).name for d in info.value.errors}
    assert files == {"pool.yaml", "route.yaml", "ms.yaml"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_cli_prints_each_error_and_exits_1(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The command's own code path (in-process; tests/integration runs the real subprocess)."""
    from inferplane.cli import main

    assert main(["validate", str(CORPUS / case)]) == 1
    out = capsys.readouterr().out
    for item in CASES[case]:
        file, line, column, path, message, _ = _expected(case, item)
        head = f"{file}:{line}:{column}: error: " + (f"{path}: " if path else "")
        assert head + message in out
    assert out.rstrip().splitlines()[-1].startswith(f"{CORPUS / case}: {len(CASES[case])} error")
