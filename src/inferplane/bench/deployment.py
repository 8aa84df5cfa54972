"""`inferplane bench PATH`: bring a deployment up for the run (free gateway port, simulated replicas), benchmark it
through its gateway, and take it down again, even on failure."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rich.console import Console

from inferplane.bench.command import bench_url
from inferplane.bench.compare import deployment, served_model
from inferplane.errors import UsageError


def bench_deployment(args: argparse.Namespace, path: Path, console: Console) -> int:
    if not path.exists():
        raise UsageError(f"{path} does not exist", hint="give a deployment directory or --url of a running endpoint")
    with tempfile.TemporaryDirectory(prefix="inferplane-bench-") as tmp, deployment(path, args, Path(tmp), None) as rt:
        console.print(f"deployment {path} up at {rt.base_url}")
        # The deployment knows what it serves: no need to ask a gateway that may not answer GET /v1/models.
        return bench_url(args, rt.base_url, console, label=path.name, model=served_model(rt))
