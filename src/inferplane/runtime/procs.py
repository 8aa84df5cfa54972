"""Child processes that can never outlive `inferplane up`.

Three layers, because each covers a hole in the others:

* every child leads its own process group (`start_new_session`), so one `killpg` also reaches whatever it forked
  (a `sh -c` wrapper, vLLM's engine processes);
* every child asks the kernel for SIGKILL when its parent dies (`prctl(PR_SET_PDEATHSIG)`), which covers a
  SIGKILL of `up` itself, where no Python handler runs;
* a guardian process holds the read end of a pipe from `up`; when `up` dies for any reason the pipe closes and the
  guardian kills every process group `up` told it about, grandchildren included (PDEATHSIG only reaches direct
  children).

The kernel sends PDEATHSIG when the *thread* that forked the child exits, so children must be spawned from a
thread that lives as long as the supervisor (the supervisor's own monitor thread does all spawning).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

PR_SET_PDEATHSIG = 1

_libc: ctypes.CDLL | None = None


def _prctl_pdeathsig() -> None:
    """preexec_fn: die with SIGKILL when the parent goes away (Linux only; a no-op elsewhere)."""
    global _libc
    if not sys.platform.startswith("linux"):
        return
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _load_libc_early() -> None:
    # Loading libc inside preexec_fn (after fork, before exec) is not async-signal-safe; do it once up front.
    global _libc
    if _libc is None and sys.platform.startswith("linux"):
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def spawn(
    argv: list[str],
    env: dict[str, str],
    log: IO[bytes],
    cwd: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start `argv` in its own process group, output appended to `log`, tied to this process's life."""
    _load_libc_early()
    return subprocess.Popen(
        argv,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_prctl_pdeathsig,  # the supervisor spawns from one long-lived thread (see module doc)
    )


def signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to a process group; False when it no longer exists."""
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return False


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (a zombie is dead for every purpose here)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def terminate_group(popen: subprocess.Popen[bytes], grace: float = 5.0) -> int | None:
    """SIGTERM the child's group, SIGKILL whatever is left after `grace` seconds, reap the child."""
    pgid = popen.pid
    signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if popen.poll() is not None and not group_alive(pgid):
            return popen.returncode
        time.sleep(0.02)
    signal_group(pgid, signal.SIGKILL)
    try:
        return popen.wait(timeout=5)
    except subprocess.TimeoutExpired:
        return None


class Guardian:
    """A watchdog process that kills our children's process groups if this process dies without doing so."""

    def __init__(self) -> None:
        read_fd, write_fd = os.pipe()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "inferplane.runtime.guardian", str(os.getpid())],
            stdin=read_fd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # not in the terminal's group: Ctrl-C must not kill it before `up` cleans up
            close_fds=True,
        )
        os.close(read_fd)
        self._pipe = os.fdopen(write_fd, "w", buffering=1)
        # The write end must not leak into children, or the pipe would stay open after our death.
        os.set_inheritable(write_fd, False)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def watch(self, pgid: int) -> None:
        self._send(f"+{pgid}")

    def forget(self, pgid: int) -> None:
        self._send(f"-{pgid}")

    def _send(self, line: str) -> None:
        try:
            self._pipe.write(line + "\n")
        except (BrokenPipeError, ValueError):
            pass

    def close(self) -> None:
        """A clean exit: tell the guardian there is nothing left to kill, then let it go."""
        self._send("done")
        try:
            self._pipe.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
