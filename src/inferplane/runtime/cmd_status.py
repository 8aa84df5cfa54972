"""`inferplane status [NAME]`: gateways, routes, pools and endpoints of a running deployment, with live state."""

from __future__ import annotations

import argparse
import json

from inferplane.runtime.report import make_console, print_status
from inferplane.runtime.state import find_state
from inferplane.runtime.status import collect


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="deployment name (default: the only one running)")
    parser.add_argument("--state-dir", help="state directory root (default .inferplane/ or $INFERPLANE_STATE_DIR)")
    parser.add_argument("--output", "-o", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    status = collect(find_state(args.name, args.state_dir))
    if args.output == "json":
        print(json.dumps(status, indent=2))
    else:
        print_status(make_console(), status)
    return 0 if status["status"] == "ready" else 1
