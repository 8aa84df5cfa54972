"""`inferplane validate PATH [--output text|json] [--gie-version vX.Y]`: load, check and summarise a deployment.

`--gie-version` names the GIE release whose CRDs the cluster runs: a field those CRDs lack is a warning.

Exit status: 0 when it loads (warnings allowed), 1 when it has problems, 2 for usage errors (no such path).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console

from inferplane.api import gie_versions
from inferplane.api.diagnostics import Diagnostic, DiagnosticsError
from inferplane.api.loader import load_deployment
from inferplane.api.summary import print_summary, summarize
from inferplane.errors import InferplaneError, UsageError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="a deployment directory (values files + manifests/) or one YAML file")
    parser.add_argument("--output", "-o", choices=("text", "json"), default="text", help="output format")
    parser.add_argument(
        "--gie-version",
        default=gie_versions.DEFAULT,
        help=f"the GIE release of the cluster's CRDs ({', '.join(gie_versions.SUPPORTED)}; default "
        f"{gie_versions.DEFAULT}): fields it lacks are warnings",
    )


def _print_diagnostics(diagnostics: list[Diagnostic]) -> None:
    for d in diagnostics:
        print(d.format())


def _counts(diagnostics: list[Diagnostic]) -> str:
    errors = sum(d.severity == "error" for d in diagnostics)
    warnings = len(diagnostics) - errors
    return f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"


def resolve_path(arg: str) -> Path:
    """What the user typed → a path, exactly as `inferplane up` reads it: a path, or a pattern name (`pattern3`).
    Not finding it is a usage error (exit 2) here, as for any other command-line argument."""
    # Imported here: the runtime's resolver is side-effect free, but validate should not load the runtime otherwise.
    from inferplane.runtime.resources import resolve_source

    try:
        return resolve_source(arg)
    except UsageError:
        raise
    except InferplaneError as exc:
        raise UsageError(f"{arg}: no such file, directory or pattern", hint=exc.hint) from None


def _json_usage_error(args: argparse.Namespace, exc: InferplaneError) -> int:
    """`-o json` promises JSON on stdout, also when the path itself is wrong (no position: line and column 0)."""
    diag = Diagnostic("error", str(args.path), 0, 0, "", exc.message, exc.hint)
    json.dump({"ok": False, "path": args.path, "diagnostics": [diag.to_dict()], "summary": None}, sys.stdout, indent=2)
    print()
    print(f"error: {exc}", file=sys.stderr)
    return exc.exit_code


def run(args: argparse.Namespace) -> int:
    try:
        version = gie_versions.normalise(getattr(args, "gie_version", gie_versions.DEFAULT))
        path = resolve_path(args.path)
        shown = str(path)  # a pattern name shows as the directory it names
        dep = load_deployment(path)
    except UsageError as exc:
        if args.output == "json":
            return _json_usage_error(args, exc)
        raise
    except DiagnosticsError as exc:
        if args.output == "json":
            report = {
                "ok": False,
                "path": shown,
                "diagnostics": [d.to_dict() for d in exc.diagnostics],
                "summary": None,
            }
            json.dump(report, sys.stdout, indent=2)
            print()
        else:
            _print_diagnostics(exc.diagnostics)
            print(f"{shown}: {_counts(exc.diagnostics)}")
        return 1
    dep.warnings.extend(gie_versions.version_warnings(dep, version))
    summary = summarize(dep)
    if args.output == "json":
        json.dump(
            {"ok": True, "path": shown, "diagnostics": [d.to_dict() for d in dep.warnings], "summary": summary},
            sys.stdout,
            indent=2,
        )
        print()
        return 0
    console = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 140)
    console.print(f"ok: {shown}", markup=False)
    print_summary(console, summary)
    if dep.warnings:
        print()
        _print_diagnostics(dep.warnings)
        print(_counts(dep.warnings))
    return 0
