"""Helpers of the end-to-end tests: bringing a pattern up, raw requests, OpenAI-error checks, process checks."""

from __future__ import annotations

import json
import os
import shlex
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai

from inferplane.runtime import Runtime
from inferplane.runtime.supervisor import SupervisorOptions

DEPLOYMENTS = Path(__file__).resolve().parents[2] / "deployments"
# The simulator's zero-latency profile: routing is what these tests check, not model speed.
FAST: dict[str, Any] = {"profile": "zero"}
SUPERVISION = SupervisorOptions(startup_timeout=90, backoff_base=1.0, backoff_max=4.0, stop_grace=3)


def bring_up(pattern: str, state_dir: Path, **options: Any) -> Runtime:
    return Runtime(DEPLOYMENTS / pattern, port=0, state_dir=state_dir, supervisor=SUPERVISION, **{**FAST, **options})


def client(rt: Runtime, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=rt.base_url + "/v1", api_key="unused", max_retries=0, timeout=30, **kw)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


def post(url: str, body: bytes, headers: dict[str, str] | None = None, timeout: float = 30) -> Reply:
    """A raw POST, for what the OpenAI client would refuse to send (bad JSON, wrong content type...)."""
    req = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **(headers or {})}
    )
    start = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, hdrs, data = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        status, hdrs, data = exc.code, exc.headers, exc.read()
    return Reply(status, {k.lower(): v for k, v in hdrs.items()}, data, time.monotonic() - start)


def send_curl_line(line: str, timeout: float = 30) -> Reply:
    """The request a printed `curl ... -H ... -d ...` line makes, sent as HTTP (no shell, no curl binary)."""
    words = shlex.split(line)
    assert words[0] == "curl", line
    url = next(w for w in words[1:] if w.startswith("http://"))
    headers = dict(
        (k.strip(), v.strip()) for k, _, v in (words[i + 1].partition(":") for i, w in enumerate(words) if w == "-H")
    )
    data = words[words.index("-d") + 1].encode()
    return post(url, data, headers, timeout)


def completion(rt: Runtime, model: str, prompt: str = "Hello", headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": 4}).encode()
    return post(rt.base_url + "/v1/completions", body, headers)


def assert_openai_error(reply: Reply, status: int) -> dict[str, Any]:
    assert reply.status == status, reply.body[:500]
    err = reply.json()["error"]
    assert set(err) >= {"message", "type", "param", "code"}, err
    assert err["message"]
    return dict(err)


def pids_alive(pids: list[int]) -> list[str]:
    """The pids still alive, each with its command line (for the failure message)."""
    from inferplane.runtime.procs import pid_alive

    alive = []
    for p in pids:
        if pid_alive(p):
            try:
                cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                cmd = "?"
            alive.append(f"{p} {cmd[:120]}")
    return alive


def env_with_fake_vllm() -> dict[str, str]:
    fake = Path(__file__).resolve().parent.parent / "support" / "fake_vllm"
    return {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ.get('PATH', '')}"}
