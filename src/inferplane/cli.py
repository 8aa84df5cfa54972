"""The `inferplane` command: one entry point, sub-commands registered by name.

Each sub-command lives in the package that owns it, as a module with two functions:

    def configure(parser: argparse.ArgumentParser) -> None   # adds the sub-command's flags
    def run(args: argparse.Namespace) -> int                  # does the work, returns the exit status

Modules are imported only when their sub-command runs, so `inferplane validate` does not pay for gRPC,
matplotlib or the Kubernetes client at start-up.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from inferplane import __version__
from inferplane.errors import InferplaneError


@dataclass(frozen=True)
class Command:
    name: str
    module: str
    help: str
    picker: bool = False  # loads or checks EndpointPickerConfigs: compose the endpoint picker's plugins first


COMMANDS: tuple[Command, ...] = (
    Command("validate", "inferplane.api.command", "check a deployment directory and summarise it", picker=True),
    Command(
        "up",
        "inferplane.runtime.cmd_up",
        "run a deployment locally: Envoy, endpoint pickers, model servers",
        picker=True,
    ),
    Command("down", "inferplane.runtime.cmd_down", "stop a deployment started with `up --detach`"),
    Command("status", "inferplane.runtime.cmd_status", "show a running deployment and its endpoints"),
    Command("logs", "inferplane.runtime.cmd_logs", "show the logs of a running deployment's components"),
    Command("sim", "inferplane.sim.command", "run the vLLM-compatible model-server simulator"),
    Command(
        "epp", "inferplane.epp.command", "run the endpoint picker (ext_proc server) for one InferencePool", picker=True
    ),
    Command("bbr", "inferplane.bbr.command", "run the body-based router (ext_proc server)"),
    Command(
        "bench", "inferplane.bench.command", "benchmark a deployment or compare routing configurations", picker=True
    ),
    Command("render", "inferplane.deploy.command", "render Kubernetes manifests for a deployment", picker=True),
    Command(
        "simulate", "inferplane.simulate.command", "plan capacity: pickers and replicas in virtual time", picker=True
    ),
)

_BY_NAME = {c.name: c for c in COMMANDS}


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inferplane",
        description="Validate, run, render and benchmark Gateway API Inference Extension / llm-d deployments.",
    )
    parser.add_argument("--version", action="version", version=f"inferplane {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    return parser


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The full parser; only the selected sub-command's module is imported (none for the top-level help)."""
    parser = _top_parser()
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        if command.name == selected:
            module = importlib.import_module(command.module)
            module.configure(p)
            p.set_defaults(_run=module.run)
            _add_verbose(p)
    return parser


def _add_verbose(parser: argparse.ArgumentParser) -> None:
    """Accept -v after the sub-command too (`inferplane up -v ...`), unless the sub-command has its own -v
    (the endpoint picker keeps upstream's `-v N` log verbosity). SUPPRESS keeps the top-level count when the
    sub-command's -v is not given."""
    if any(opt in parser._option_string_actions for opt in ("-v", "--verbose")):
        return
    parser.add_argument(
        "-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more logging (-vv for debug)"
    )


def _selected_command(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if arg in _BY_NAME:
            return arg
        if not arg.startswith("-"):
            return None
    return None


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    try:
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(show_path=False, rich_tracebacks=False)
        fmt = "%(name)s: %(message)s"
    except ImportError:  # pragma: no cover - rich is a dependency; kept for stripped installs
        handler = logging.StreamHandler()
        fmt = "%(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level, format=fmt, handlers=[handler])


def compose_picker() -> None:
    """The composition root of the endpoint picker: register the in-tree plugins with the kernel's registry and
    hand the picker's config check to the resource model's cross-checks (the model imports nothing above it)."""
    from inferplane.api.crosscheck import add_check
    from inferplane.epp.config_check import check_epp_configs
    from inferplane.epp.intree import register_in_tree_plugins

    register_in_tree_plugins()
    add_check(check_epp_configs)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    selected = _selected_command(argv)
    try:
        parser = build_parser(selected)
    except ImportError as exc:  # a sub-command whose optional dependency is missing
        print(f"inferplane: cannot load command {selected!r}: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 2
    _setup_logging(args.verbose)
    command = _BY_NAME.get(selected or "")
    if command is not None and command.picker:
        compose_picker()
    try:
        return int(args._run(args) or 0)
    except InferplaneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`inferplane validate -o json | head`): not an error to report. Point stdout at
        # /dev/null so the interpreter's final flush does not raise again (Python docs, "Note on SIGPIPE").
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
