"""`inferplane bench` when things go wrong or are unusual, end to end: nothing listening, a server whose
/v1/models is not a model list, a multi-model mix, and `--self-test -o`."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from inferplane.bench.runner import discover_model
from inferplane.errors import ConfigError
from inferplane.net import free_port, http_status
from tests.support.procs import INFERPLANE, Proc


def bench(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*INFERPLANE, "bench", *args, "--progress", "off", "--no-plots"], capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def test_unreachable_endpoint_says_so(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = bench("--url", url, "--workload", "random", "--concurrency", "4", "--num-requests", "20")
    assert done.returncode == 1
    assert f"error: cannot reach {url}: connection refused at 127.0.0.1:" in done.stderr
    assert "is the server running?" in done.stderr
    assert "pass --model" not in done.stderr
    assert "Traceback" not in done.stderr


def test_a_run_where_every_request_fails_prints_the_reason(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "b1"
    done = bench("--url", f"http://127.0.0.1:{port}", "--model", "m", "--workload", "random", "--concurrency", "4",
                 "--num-requests", "20", "-o", str(out))  # fmt: skip
    assert done.returncode == 1
    reason = f"20 × cannot connect: connection refused at 127.0.0.1:{port} (no response)"
    assert "0/20" in done.stdout
    assert f"errors:\nm: 20 of 20 requests failed\n  {reason}" in done.stdout
    assert "error: every request failed:" in done.stderr
    assert reason in done.stderr
    assert "## Errors (m)" in (out / "report.md").read_text()
    assert f"  {out / 'results.json'}" in done.stdout  # the files, by path


@pytest.fixture
async def no_model_route() -> AsyncIterator[str]:
    """A gateway that routes on the body's model only, like pattern 2's: GET /v1/models matches no route."""

    async def models(request: web.Request) -> web.Response:
        body = {"error": {"message": "no route matches this request", "type": "NotFoundError", "code": 404}}
        return web.json_response(body, status=404)

    async def odd(request: web.Request) -> web.Response:  # 200, but not an OpenAI list
        return web.json_response({"object": "error", "detail": "nope"})

    app = web.Application()
    app.router.add_get("/v1/models", models)
    app.router.add_get("/odd/v1/models", odd)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_model_list_that_is_not_one_names_the_status_and_suggests_flags(no_model_route: str) -> None:
    with pytest.raises(ConfigError) as info:
        await discover_model(no_model_route)
    text = str(info.value)
    assert f"GET {no_model_route}/v1/models returned 404: no route matches this request" in text
    assert "'data'" not in text
    assert "--model NAME (or --models a=0.5,b=0.5" in text
    with pytest.raises(ConfigError, match="did not answer an OpenAI model list"):
        await discover_model(no_model_route + "/odd")


def test_model_mix_and_self_test_output(procs: list[Proc], tmp_path: Path) -> None:
    port = free_port()
    sim = Proc([*INFERPLANE, "sim", "--model", "gemma", "--served-model-name", "gemma", "llama", "--port", str(port),
                "--host", "127.0.0.1", "--profile", "zero"], env={"POD_NAME": "r0"})  # fmt: skip
    procs.append(sim)
    url = f"http://127.0.0.1:{port}"
    sim.wait_ready(lambda: http_status(url + "/health/ready") == 200, timeout=60, what="sim ready")
    out = tmp_path / "mix"
    done = bench("--url", url, "--models", "gemma=0.5,llama=0.5", "--workload", "random:input_len=16,output_len=4",
                 "--concurrency", "2", "--num-requests", "16", "-o", str(out))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads((out / "results.json").read_text())
    assert data["label"] == "gemma + llama"
    assert data["configuration"]["target"]["models"] == ["gemma", "llama"]
    assert {r["model"] for r in data["records"]} == {"gemma", "llama"}
    assert sum(m["successes"] for m in data["per_model"].values()) == 16
    assert "all, model llama" in done.stdout
    st = tmp_path / "st"
    done = bench("--self-test", "--duration", "1s", "-o", str(st))
    assert done.returncode == 0, done.stdout + done.stderr
    assert [c["concurrency"] for c in json.loads((st / "selftest.json").read_text())["ceilings"]] == [64, 64]
    assert "# inferplane bench self-test" in (st / "report.md").read_text()
    assert str(st / "selftest.json") in done.stdout
