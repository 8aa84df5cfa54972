"""The top-level command: lazy sub-command loading, verbosity in either position, errors without tracebacks."""

from __future__ import annotations

import argparse
import sys
import types

import pytest

from inferplane import cli
from inferplane.errors import InferplaneError, UsageError


def test_every_registered_module_exposes_configure_and_run() -> None:
    for command in cli.COMMANDS:
        cli.build_parser(command.name)
        module = sys.modules[command.module]
        assert callable(module.configure), command.name
        assert callable(module.run), command.name


def test_top_level_help_imports_no_sub_command(capsys: pytest.CaptureFixture[str]) -> None:
    before = set(sys.modules)
    assert cli.main([]) == 2
    out = capsys.readouterr().out
    for command in cli.COMMANDS:
        assert command.name in out
    loaded = {m for m in set(sys.modules) - before if m.startswith("inferplane.")}
    assert not loaded & {c.module for c in cli.COMMANDS}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["validate", "x"], 0),
        (["-v", "validate", "x"], 1),
        (["validate", "x", "-vv"], 2),
        (["validate", "-v", "x"], 1),
    ],
)
def test_verbose_before_or_after_the_sub_command(argv: list[str], expected: int) -> None:
    assert cli.build_parser("validate").parse_args(argv).verbose == expected


def test_a_sub_command_with_its_own_v_keeps_it() -> None:
    args = cli.build_parser("epp").parse_args(["epp", "--pool-name", "p", "-v", "4"])
    assert args.verbose == 0
    assert args.log_verbosity == 4


def _fake_command(monkeypatch: pytest.MonkeyPatch, run: object) -> None:
    module = types.ModuleType("inferplane_fake_cmd")
    module.configure = lambda parser: parser.add_argument("--x")  # type: ignore[attr-defined]
    module.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "inferplane_fake_cmd", module)
    monkeypatch.setattr(cli, "COMMANDS", (cli.Command("fake", "inferplane_fake_cmd", "a test command"),))
    monkeypatch.setattr(cli, "_BY_NAME", {"fake": cli.COMMANDS[0]})


@pytest.mark.parametrize(("error", "code"), [(InferplaneError("bad input"), 1), (UsageError("bad flag"), 2)])
def test_project_errors_print_a_message_and_exit_code_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: InferplaneError, code: int
) -> None:
    def run(args: argparse.Namespace) -> int:
        raise error

    _fake_command(monkeypatch, run)
    assert cli.main(["fake"]) == code
    err = capsys.readouterr().err
    assert err.strip() == f"error: {error.message}"
    assert "Traceback" not in err


def test_hint_is_printed_under_the_message(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def run(args: argparse.Namespace) -> int:
        raise InferplaneError("no such pattern", hint="try pattern3")

    _fake_command(monkeypatch, run)
    assert cli.main(["fake"]) == 1
    assert capsys.readouterr().err.splitlines() == ["error: no such pattern", "  hint: try pattern3"]


def test_exit_status_of_the_sub_command_is_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_command(monkeypatch, lambda args: 3)
    assert cli.main(["fake", "--x", "1"]) == 3


def test_a_sub_command_that_cannot_load_is_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "COMMANDS", (cli.Command("ghost", "inferplane.no_such_module", "missing"),))
    monkeypatch.setattr(cli, "_BY_NAME", {"ghost": cli.COMMANDS[0]})
    assert cli.main(["ghost"]) == 2
    assert "cannot load command 'ghost'" in capsys.readouterr().err


def test_a_closed_pipe_ends_quietly() -> None:
    """`inferplane render ... -o - | head -c 0`: the reader is gone before the first write; no traceback."""
    import os
    import subprocess

    read_end, write_end = os.pipe()
    os.close(read_end)  # every write now fails with EPIPE
    argv = ["render", "deployments/pattern2-multimodel", "--target", "gke", "-o", "-"]
    script = f"import sys; from inferplane.cli import main; sys.exit(main({argv!r}))"
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=write_end, stderr=subprocess.PIPE)
    os.close(write_end)
    _, err = proc.communicate(timeout=60)
    assert b"Traceback" not in err, err.decode()[-2000:]
    assert b"BrokenPipeError" not in err
    assert proc.returncode == 1
