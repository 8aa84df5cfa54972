"""Loopback port helpers and readiness waits."""

from __future__ import annotations

import socket
import time

import pytest

from inferplane.net import free_consecutive_ports, free_ports, http_status, port_open, wait_until


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(8)
    assert len(set(ports)) == 8
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_consecutive_ports_are_all_free() -> None:
    base = free_consecutive_ports(4)
    socks = []
    try:
        for port in range(base, base + 4):
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", port))
    finally:
        for s in socks:
            s.close()


def test_port_open_and_http_status_on_a_closed_port() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert port_open("127.0.0.1", port)
    assert not port_open("127.0.0.1", port)
    assert http_status(f"http://127.0.0.1:{port}/") is None


def test_wait_until_returns_once_true_and_names_what_timed_out() -> None:
    calls = []
    wait_until(lambda: calls.append(1) or len(calls) >= 3, timeout=5)
    assert len(calls) == 3
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="the moon"):
        wait_until(lambda: False, timeout=0.2, what="the moon")
    assert time.monotonic() - started < 2
