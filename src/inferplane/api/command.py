"""`inferplane validate PATH [--output text|json]`: load, check and summarise a deployment.

Exit status: 0 when it loads (warnings allowed), 1 when it has problems, 2 for usage errors (no such path).
"""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console

from inferplane.api.diagnostics import Diagnostic, DiagnosticsError
from inferplane.api.loader import load_deployment
from inferplane.api.summary import print_summary, summarize
from inferplane.errors import UsageError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="a deployment directory (values files + manifests/) or one YAML file")
    parser.add_argument("--output", "-o", choices=("text", "json"), default="text", help="output format")


def _print_diagnostics(diagnostics: list[Diagnostic]) -> None:
    for d in diagnostics:
        print(d.format())


def _counts(diagnostics: list[Diagnostic]) -> str:
    errors = sum(d.severity == "error" for d in diagnostics)
    warnings = len(diagnostics) - errors
    return f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"


def run(args: argparse.Namespace) -> int:
    try:
        dep = load_deployment(args.path)
    except DiagnosticsError as exc:
        if args.output == "json":
            json.dump(
                {
                    "ok": False,
                    "path": args.path,
                    "diagnostics": [d.to_dict() for d in exc.diagnostics],
                    "summary": None,
                },
                sys.stdout,
                indent=2,
            )
            print()
        else:
            _print_diagnostics(exc.diagnostics)
            print(f"{args.path}: {_counts(exc.diagnostics)}")
        return 1
    except UsageError:
        raise
    summary = summarize(dep)
    if args.output == "json":
        json.dump(
            {"ok": True, "path": args.path, "diagnostics": [d.to_dict() for d in dep.warnings], "summary": summary},
            sys.stdout,
            indent=2,
        )
        print()
        return 0
    console = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 140)
    console.print(f"ok: {args.path}", markup=False)
    print_summary(console, summary)
    if dep.warnings:
        print()
        _print_diagnostics(dep.warnings)
        print(_counts(dep.warnings))
    return 0
