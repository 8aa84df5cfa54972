"""The guardian: kills `inferplane up`'s process groups once `up` is gone, however it went.

Reads lines from stdin (the read end of a pipe whose only writer is `up`): `+PGID` to watch a group, `-PGID` to
forget it, `done` after a clean shutdown. End of file without `done` means `up` died: every watched group gets
SIGTERM, then SIGKILL a moment later. Imports only the standard library so it starts in milliseconds.
"""

from __future__ import annotations

import os
import signal
import sys
import time


def _kill_all(groups: set[int], grace: float = 2.0) -> None:
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        alive = False
        for pgid in groups:
            try:
                os.killpg(pgid, 0)
                alive = True
            except OSError:
                pass
        if not alive:
            return
        time.sleep(0.05)
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for `up`; we act only when it is gone
    groups: set[int] = set()
    clean = False
    for raw in sys.stdin:
        line = raw.strip()
        if line == "done":
            clean = True
            continue
        if len(line) > 1 and line[1:].isdigit():
            pgid = int(line[1:])
            if line[0] == "+":
                groups.add(pgid)
            elif line[0] == "-":
                groups.discard(pgid)
    if not clean or groups:
        _kill_all(groups)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
