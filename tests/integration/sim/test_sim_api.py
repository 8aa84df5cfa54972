"""The simulator's OpenAI/vLLM API through the official `openai` client and raw HTTP, against a real process."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import openai
import pytest

from inferplane.net import http_status, wait_until
from tests.integration.sim.conftest import StartSim


def post(url: str, body: bytes | dict, headers: dict[str, str] | None = None) -> tuple[int, dict, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            return resp.status, dict(resp.headers), json.loads(raw) if raw.startswith(b"{") else {"text": raw}
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def test_openai_client_completions_chat_streaming(start_sim: StartSim) -> None:
    sim = start_sim("--zero-latency", "--served-model-name", "llama", "base")
    client = openai.OpenAI(base_url=f"{sim.url}/v1", api_key="x", max_retries=0)
    c = client.completions.create(model="llama", prompt="Say something", max_tokens=7, extra_body={"ignore_eos": True})
    assert c.object == "text_completion"
    assert c.choices[0].finish_reason == "length"
    assert c.usage.completion_tokens == 7
    assert c.usage.prompt_tokens > 0
    assert c.choices[0].text
    assert c.usage.total_tokens == c.usage.prompt_tokens + 7
    chat = client.chat.completions.create(
        model="base",
        messages=[{"role": "user", "content": "hi"}],
        max_completion_tokens=4,
        extra_body={"ignore_eos": True},
    )
    assert chat.choices[0].message.role == "assistant"
    assert chat.usage.completion_tokens == 4
    assert chat.usage.prompt_tokens_details.cached_tokens == 0
    chunks = list(
        client.chat.completions.create(
            model="llama",
            messages=[{"role": "user", "content": "stream please"}],
            max_tokens=5,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"ignore_eos": True},
        )
    )
    content = [ch for ch in chunks if ch.choices and ch.choices[0].delta.content]
    assert len(content) == 5  # one event per token
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "length"
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 5
    plain = list(client.completions.create(model="llama", prompt="x", max_tokens=3, stream=True))
    assert all(ch.usage is None for ch in plain)  # usage only with include_usage
    raw = client.completions.with_raw_response.create(
        model="llama", prompt="x", max_tokens=1, extra_headers={"X-Request-Id": "req-42"}
    )
    assert raw.headers["x-inference-port"] == str(sim.port)
    assert raw.headers["x-inference-pod"]
    assert raw.headers["x-request-id"] == "req-42"


def test_echo_mode_and_token_id_prompts(start_sim: StartSim) -> None:
    sim = start_sim("--zero-latency", "--mode", "echo")
    status, _, body = post(f"{sim.url}/v1/completions", {"prompt": "the cache is warm", "max_tokens": 50})
    assert status == 200
    assert body["choices"][0]["text"] == "the cache is warm"
    assert body["choices"][0]["finish_reason"] == "stop"
    ids = post(f"{sim.url}/tokenize", {"prompt": "hello world"})[2]["tokens"]
    status, _, body = post(f"{sim.url}/v1/completions", {"prompt": [ids, ids], "max_tokens": 1})
    assert status == 200
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["prompt_tokens"] == 2 * len(ids)


def test_errors_have_vllm_shapes(start_sim: StartSim) -> None:
    sim = start_sim("--zero-latency", "--max-model-len", "64", "--max-request-body-size-mb", "1")
    url = f"{sim.url}/v1/completions"
    cases = [
        (b"{not json", 400, "Invalid JSON"),
        ({"model": sim.model}, 400, "prompt"),
        ({"model": "gpt-5", "prompt": "x"}, 404, "The model `gpt-5` does not exist."),
        ({"prompt": "x", "max_tokens": 100}, 400, "maximum context length is 64 tokens"),
        ({"prompt": "x " * 200}, 400, "However, your request has"),
        ({"prompt": "x", "max_tokens": 0}, 400, "max_tokens"),
        ({"prompt": "x", "stream": False, "stream_options": {"include_usage": True}}, 400, "stream=True"),
        ({"prompt": ""}, 400, "The decoder prompt cannot be empty"),
        ({"prompt": "x", "temperature": "hot"}, 400, "temperature: Input should be a valid number"),
    ]
    for body, status, message in cases:
        got, headers, err = post(url, body)
        assert got == status, (body, err)
        assert set(err["error"]) == {"message", "type", "param", "code"}
        assert err["error"]["code"] == status
        assert message in err["error"]["message"]
        assert headers["x-inference-port"] == str(sim.port)
    got, _, err = post(f"{sim.url}/v1/chat/completions", {"messages": []})
    assert got == 400
    assert "messages" in err["error"]["message"]
    got, _, err = post(f"{sim.url}/v1/chat/completions", {"messages": "hi"})
    assert got == 400
    assert err["error"]["message"] == "messages: Input should be a valid list"
    got, _, err = post(url, {"prompt": "x" * (1024 * 1024 + 10)})
    assert got == 413
    assert err["error"]["code"] == 413
    got, _, err = post(url, {"prompt": "x"}, {"X-Return-Error": "503"})
    assert got == 503
    for media_type in ("text/plain", "application/x-www-form-urlencoded"):
        got, _, err = post(url, {"prompt": "x"}, {"Content-Type": media_type})
        assert got == 400, media_type
        assert "Only 'application/json' is allowed" in err["error"]["message"]
    got, _, _ = post(url, {"prompt": "x", "max_tokens": 2}, {"Content-Type": "application/json; charset=utf-8"})
    assert got == 200
    assert http_status(f"{sim.url}/v1/nothing-here") == 404


def test_failure_injection(start_sim: StartSim) -> None:
    sim = start_sim("--zero-latency", "--failure-rate", "100", "--failure-types", "rate_limit")
    got, _, err = post(f"{sim.url}/v1/completions", {"prompt": "x"})
    assert got == 429
    assert err["error"]["type"] == "RateLimitError"
    client = openai.OpenAI(base_url=f"{sim.url}/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.RateLimitError):
        client.completions.create(model=sim.model, prompt="x")


def test_readiness_waits_for_startup_delay(start_sim: StartSim) -> None:
    sim = start_sim("--zero-latency", "--startup-delay", "1.5")
    assert http_status(f"{sim.url}/health/ready") == 503  # /health already answered 200
    wait_until(lambda: http_status(f"{sim.url}/health/ready") == 200, timeout=10, what="ready")


def test_models_tokenize_render_lora_info(start_sim: StartSim) -> None:
    sim = start_sim("--zero-latency", "--enable-lora", "--lora-modules", "sql=/adapters/sql", "--max-loras", "2")
    ids = [m["id"] for m in get(f"{sim.url}/v1/models")["data"]]
    assert ids == [sim.model, "sql"]
    tok = post(f"{sim.url}/tokenize", {"prompt": "Hello, KV cache!"})[2]
    assert tok["count"] == len(tok["tokens"])
    assert tok["max_model_len"] == 8192
    assert post(f"{sim.url}/detokenize", {"tokens": tok["tokens"]})[2]["prompt"] == "Hello, KV cache!"
    rendered = post(f"{sim.url}/v1/completions/render", {"model": sim.model, "prompt": "Hello, KV cache!"})[2]
    assert rendered["token_ids"] == tok["tokens"]
    chat = post(f"{sim.url}/v1/chat/completions/render", {"messages": [{"role": "user", "content": "hi"}]})[2]
    assert chat["token_ids"]
    assert all(isinstance(t, int) for t in chat["token_ids"])
    assert post(f"{sim.url}/v1/load_lora_adapter", {"lora_name": "chat", "lora_path": "/a/chat"})[0] == 200
    assert post(f"{sim.url}/v1/load_lora_adapter", {"lora_name": "chat", "lora_path": "/a/chat"})[0] == 400
    assert "chat" in [m["id"] for m in get(f"{sim.url}/v1/models")["data"]]
    assert post(f"{sim.url}/v1/completions", {"model": "chat", "prompt": "x", "max_tokens": 2})[0] == 200
    assert post(f"{sim.url}/v1/unload_lora_adapter", {"lora_name": "chat"})[0] == 200
    assert post(f"{sim.url}/v1/unload_lora_adapter", {"lora_name": "chat"})[0] == 404
    assert post(f"{sim.url}/v1/completions", {"model": "chat", "prompt": "x"})[0] == 404
    info = get(f"{sim.url}/server_info")
    assert info["model_path"] == sim.model
    assert info["dp_size"] == 1
    assert get(f"{sim.url}/model_info")["tokenizer_path"] == sim.model


def test_replicas_and_data_parallel_ranks_on_consecutive_ports(start_sim: StartSim) -> None:
    sim = start_sim("--zero-latency", "--replicas", "2", "--data-parallel-size", "2", ports=4)
    pods = set()
    for i in range(4):
        _, headers, _body = post(f"http://127.0.0.1:{sim.port + i}/v1/completions", {"prompt": "x", "max_tokens": 1})
        assert headers["x-inference-port"] == str(sim.port + i)
        pods.add(headers["x-inference-pod"])
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{sim.port + i}/metrics").read().decode()
        assert f'vllm:num_requests_running{{engine="{i % 2}"' in metrics
    assert len(pods) == 4


def test_cli_rejects_unknown_flags_and_accepts_vllm_serve_style() -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "inferplane", "sim", "--model", "m", "--bogus-flag"], capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert "--bogus-flag" in bad.stderr
    short = subprocess.run(
        [sys.executable, "-m", "inferplane", "sim", "serve", "m", "--num-gpu-blocks-override", "1"],
        capture_output=True,
        text=True,
    )
    assert short.returncode == 2
    assert "needs 512 KV blocks" in short.stderr
    assert "Traceback" not in short.stderr


def test_client_disconnect_mid_stream_frees_the_sequence(start_sim: StartSim) -> None:
    sim = start_sim("--profile", "h100-llama-8b", "--time-scale", "1")
    body = json.dumps({"prompt": "long answer please", "max_tokens": 2000, "ignore_eos": True, "stream": True})
    req = urllib.request.Request(f"{sim.url}/v1/completions", body.encode(), {"Content-Type": "application/json"})
    resp = urllib.request.urlopen(req, timeout=10)
    assert resp.readline().startswith(b"data: {")

    def running() -> float:
        text = urllib.request.urlopen(f"{sim.url}/metrics", timeout=5).read().decode()
        line = next(ln for ln in text.splitlines() if ln.startswith("vllm:num_requests_running{"))
        return float(line.rsplit(" ", 1)[1])

    assert running() == 1
    resp.close()
    wait_until(lambda: running() == 0, timeout=10, what="the aborted stream to leave the batch")
    out = sim.proc.output()
    assert "Traceback" not in out


def test_prefill_decode_disaggregation_legs(start_sim: StartSim) -> None:
    sim = start_sim("--zero-latency")
    kv = {"do_remote_decode": True, "do_remote_prefill": False}
    status, _, body = post(
        f"{sim.url}/v1/completions", {"prompt": "p/d " * 50, "max_tokens": 9, "kv_transfer_params": kv}
    )
    assert status == 200
    assert body["choices"][0]["finish_reason"] == "remote_decode"
    assert body["usage"]["completion_tokens"] == 1
    params = body["kv_transfer_params"]
    assert params["do_remote_prefill"] is True
    decode = {"prompt": "p/d " * 50, "max_tokens": 4, "ignore_eos": True, "kv_transfer_params": params}
    status, _, body = post(f"{sim.url}/v1/completions", decode)
    assert status == 200
    assert body["usage"]["completion_tokens"] == 4
    got, _, _err = post(f"{sim.url}/v1/completions", {"prompt": "x", "stream": True, "kv_transfer_params": kv})
    assert got == 400
