"""Pattern 1 (one replica behind the gateway, FailClose picker) end to end with the official OpenAI client, plus
the request faults: bad JSON, a 10 MB body, invalid UTF-8, a wrong content type, and the picker killed."""

from __future__ import annotations

import json
import time

import openai
import pytest

from inferplane.net import wait_until
from inferplane.runtime import Runtime
from tests.e2e.helpers import assert_openai_error, client, completion, post, send_curl_line

PATTERN = "pattern1-baseline"
MODEL = "google/gemma-2b-it"


def test_the_printed_curl_line_answers_200(deployment: Runtime) -> None:
    """What `inferplane up` and `inferplane status` print under "Try it", sent as the HTTP request it makes."""
    reply = send_curl_line(deployment.running_plan.curl())
    assert reply.status == 200, reply.body[:300]
    assert reply.json()["choices"][0]["text"]


def test_completion_through_the_gateway(deployment: Runtime) -> None:
    raw = client(deployment).completions.with_raw_response.create(
        model=MODEL, prompt="Say hello", max_tokens=8, extra_body={"ignore_eos": True}
    )
    resp = raw.parse()
    assert raw.headers["x-inference-pod"] == "vllm-gemma-0"
    assert resp.choices[0].text
    assert resp.model == MODEL
    assert resp.usage is not None
    assert resp.usage.completion_tokens == 8
    assert resp.usage.prompt_tokens > 0


def test_streaming_completion_and_chat(deployment: Runtime) -> None:
    c = client(deployment)
    chunks = list(
        c.completions.create(
            model=MODEL,
            prompt="Count",
            max_tokens=6,
            stream=True,
            stream_options={"include_usage": True},
            # vLLM's own flag: without it a model (and the simulator) may stop early at an end-of-sequence token
            extra_body={"ignore_eos": True},
        )
    )
    text = "".join(ch.choices[0].text for ch in chunks if ch.choices)
    assert text
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 6
    chat = c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=5)
    assert chat.choices[0].message.content
    streamed = list(
        c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=5, stream=True)
    )
    assert any(s.choices and s.choices[0].delta.content for s in streamed)


def test_unroutable_path_gets_404(deployment: Runtime) -> None:
    # the route only matches /v1...; everything else is the gateway's own 404
    reply = post(deployment.base_url + "/admin/anything", b"{}")
    assert reply.status == 404


def test_bad_requests_get_the_right_status_and_break_nothing(deployment: Runtime) -> None:
    url = deployment.base_url + "/v1/completions"
    malformed = post(url, b'{"model": "google/gemma-2b-it", "prompt": ')
    assert_openai_error(malformed, 400)
    huge = json.dumps({"model": MODEL, "prompt": "x" * (10 * 1024 * 1024), "max_tokens": 1}).encode()
    too_big = post(url, huge)
    assert too_big.status == 413, too_big.body[:300]
    invalid_utf8 = post(url, b'{"model": "google/gemma-2b-it", "prompt": "\xff\xfe bad", "max_tokens": 2}')
    assert_openai_error(invalid_utf8, 400)
    # and the deployment still serves
    ok = completion(deployment, MODEL)
    assert ok.status == 200, ok.body[:300]
    assert all(deployment.supervisor.unit(c.name).restarts == 0 for c in deployment.running_plan.components)


def test_wrong_content_type_is_refused(deployment: Runtime) -> None:
    # vLLM's OpenAI server only accepts application/json bodies (validate_json_request)
    url = deployment.base_url + "/v1/completions"
    wrong_type = post(url, json.dumps({"model": MODEL, "prompt": "hi"}).encode(), {"Content-Type": "text/plain"})
    assert wrong_type.status in (400, 415), wrong_type.body[:300]
    assert "error" in wrong_type.json()
    assert completion(deployment, MODEL).status == 200


def test_failclose_pool_answers_503_fast_while_the_picker_is_down(deployment: Runtime) -> None:
    epp = "gemma-pool-epp"
    old = deployment.kill(epp)
    wait_until(lambda: deployment.supervisor.unit(epp).phase.value != "ready", 5, what="picker seen down")
    reply = completion(deployment, MODEL)
    assert deployment.supervisor.unit(epp).restarts == 0, "the picker came back before the request was sent"
    err = assert_openai_error(reply, 503)
    assert (err["type"], err["code"]) == ("ServiceUnavailableError", 503)
    assert reply.headers["content-type"] == "application/json"
    assert reply.seconds < 2.0
    deployment.wait_ready(epp, timeout=30)
    assert deployment.pid(epp) != old
    deadline = time.monotonic() + 10
    while (reply := completion(deployment, MODEL)).status != 200 and time.monotonic() < deadline:
        time.sleep(0.1)  # Envoy reconnects to the restarted picker on its next request
    assert reply.status == 200
    assert deployment.supervisor.unit(epp).restarts == 1


def test_openai_client_sees_an_openai_error_for_a_missing_prompt(deployment: Runtime) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client(deployment).completions.create(model=MODEL, prompt=None, max_tokens=2)  # type: ignore[arg-type]
    assert info.value.status_code == 400
