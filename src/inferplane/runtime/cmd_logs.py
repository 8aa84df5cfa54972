"""`inferplane logs [NAME] [COMPONENT] [-f]`: the output of a deployment's components.

Each component's log holds its own output with the supervisor's events about it in between (`--- <time> <event>`:
exits with their status, back-offs, restarts), and `envoy-access` is the gateway's access log, one line a request.
`-f` follows while the deployment runs and ends when it stops, as `kubectl logs -f` does for a finished pod.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from inferplane.errors import InferplaneError
from inferplane.runtime.state import StateDir, find_state, list_deployments


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "names", nargs="*", metavar="[NAME] [COMPONENT]", help="deployment (optional) and component (optional)"
    )
    parser.add_argument("--state-dir", help="state directory root (default .inferplane/ or $INFERPLANE_STATE_DIR)")
    parser.add_argument("--follow", "-f", action="store_true", help="keep printing new lines")
    parser.add_argument("--tail", "-n", type=int, default=50, help="lines per component to start with (0 = all)")


def _resolve(args: argparse.Namespace) -> tuple[StateDir, str | None]:
    names = list(args.names)
    if len(names) > 2:
        raise InferplaneError("give at most a deployment name and a component name")
    deployments = list_deployments(args.state_dir)
    deployment = names.pop(0) if names and (names[0] in deployments or len(names) == 2) else None
    component = names[0] if names else None
    return find_state(deployment, args.state_dir), component


def _files(state: StateDir, component: str | None) -> list[Path]:
    files = sorted(state.logs.glob("*.log"))
    if component is None:
        return files
    chosen = [f for f in files if f.stem == component] or [f for f in files if f.stem.startswith(component)]
    if not chosen:
        raise InferplaneError(
            f"no component {component!r} in {state.path.name}",
            hint=f"components: {', '.join(f.stem for f in files)}",
        )
    return chosen


def _tail(path: Path, n: int) -> tuple[list[str], int]:
    data = path.read_bytes()
    lines = data.decode(errors="replace").splitlines()
    return (lines[-n:] if n else lines), len(data)


def run(args: argparse.Namespace) -> int:
    state, component = _resolve(args)
    files = _files(state, component)
    prefix = len(files) > 1
    offsets: dict[Path, int] = {}
    for f in files:
        lines, offsets[f] = _tail(f, args.tail)
        for line in lines:
            print(f"{f.stem} | {line}" if prefix else line)
    if not args.follow:
        return 0
    if not state.running():
        print(f"({state.path.name} is not running: nothing more will be written; not following)", file=sys.stderr)
        return 0
    try:
        while True:
            alive = state.running()  # read before the files, so the last lines of a stopping run are printed
            for f in _files(state, component):
                size = f.stat().st_size
                start = offsets.get(f, 0)
                if size < start:
                    start = 0  # truncated: a new run
                if size > start:
                    with f.open("rb") as fh:
                        fh.seek(start)
                        chunk = fh.read()
                    complete = chunk.rfind(b"\n") + 1
                    for line in chunk[:complete].decode(errors="replace").splitlines():
                        print(f"{f.stem} | {line}" if prefix else line)
                    offsets[f] = start + complete
            sys.stdout.flush()
            if not alive:
                print(f"({state.path.name} stopped; no longer following)", file=sys.stderr)
                return 0
            time.sleep(0.2)
    except KeyboardInterrupt:
        return 0
