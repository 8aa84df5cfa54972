"""Loopback ports and readiness waits shared by the runtime, the benchmarks and the tests."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that was free a moment ago (the kernel picks it, so parallel callers do not collide)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_ports(n: int, host: str = LOOPBACK) -> list[int]:
    """n distinct free ports, all held open until every one is chosen so none is handed out twice."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def free_consecutive_ports(n: int, host: str = LOOPBACK, start: int = 20000, end: int = 60000) -> int:
    """The first port of a run of n consecutive free ports (vLLM's data-parallel ranks and the simulator's
    --replicas listen on consecutive ports)."""
    import random

    for _ in range(200):
        base = random.randrange(start, end - n)
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind((host, p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise OSError(f"no run of {n} consecutive free ports found")


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_status(url: str, timeout: float = 1.0) -> int | None:
    """The HTTP status of a GET, or None when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError, TimeoutError):
        return None


def wait_until(predicate: object, timeout: float, interval: float = 0.02, what: str = "condition") -> None:
    """Poll `predicate()` until it is truthy; raise TimeoutError naming `what` otherwise."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    delay = interval
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)


def wait_http_ok(url: str, timeout: float = 30.0) -> None:
    wait_until(lambda: http_status(url) == 200, timeout, what=f"HTTP 200 from {url}")
