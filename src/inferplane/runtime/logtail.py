"""What to show of a component's log when it fails to start: its own error, not the lines around it.

A process that rejects its arguments prints argparse's whole usage block before the one line that matters, and a
Python crash prints a traceback whose last line is the reason; both end in a line that names the error, so the
excerpt starts at the last such line (with what follows it, e.g. a hint) and falls back to the plain tail.
"""

from __future__ import annotations

import os
import re

# `prog: error: ...` (argparse, inferplane's CLI), `error: ...`, `SomeError: ...` (a traceback's last line),
# `[error]`/`ERROR` (Envoy, logging)
ERROR_LINE = re.compile(r"(^|[\s:\[])(error|critical|fatal)\b|^\w*(Error|Exception)\b", re.IGNORECASE)
SUPERVISOR_MARK = "--- "  # the supervisor's own lines (`--- <time> starting X`)


def error_excerpt(lines: list[str], limit: int = 15) -> list[str]:
    """The failing part of `lines`: from the last error line on (at most `limit` lines), else the last `limit`."""
    own = [ln for ln in lines if not ln.startswith(SUPERVISOR_MARK)]
    for i in range(len(own) - 1, max(-1, len(own) - 1 - 4 * limit), -1):
        if ERROR_LINE.search(own[i]):
            return own[i : i + limit]
    return own[-limit:]


def log_excerpt(path: os.PathLike[str] | str, limit: int = 15) -> str:
    try:
        with open(path, errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return f"(no log at {path})"
    # the last run only: the supervisor marks each start
    starts = [i for i, ln in enumerate(lines) if ln.startswith(SUPERVISOR_MARK) and " starting " in ln]
    if starts:
        lines = lines[starts[-1] + 1 :]
    return f"from {path}:\n    " + "\n    ".join(error_excerpt(lines, limit))
