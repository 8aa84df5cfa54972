"""Pattern 2 (two models, one pool and picker each, the body-based router in front) end to end."""

from __future__ import annotations

import re

import pytest

from inferplane.net import wait_until
from inferplane.runtime import Runtime
from tests.e2e.helpers import assert_openai_error, client, completion, send_curl_line

PATTERN = "pattern2-multimodel"
GEMMA = "google/gemma-2b-it"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


def test_the_printed_curl_line_answers_200(deployment: Runtime) -> None:
    """What `inferplane up` and `inferplane status` print under "Try it", sent as the HTTP request it makes."""
    reply = send_curl_line(deployment.running_plan.curl())
    assert reply.status == 200, reply.body[:300]
    assert reply.json()["choices"][0]["text"]


def test_the_plan_has_a_body_based_router_and_a_picker_per_pool(deployment: Runtime) -> None:
    plan = deployment.running_plan
    names = {c.name for c in plan.components}
    assert {"body-based-router", "gemma-2b-pool-epp", "llama-8b-pool-epp"} <= names
    assert plan.bbr_address is not None


def test_each_model_reaches_its_own_pool(deployment: Runtime) -> None:
    c = client(deployment)
    for model, pod in ((GEMMA, "llm-d-gemma-decode-0"), (LLAMA, "llm-d-llama-decode-0")):
        for _ in range(3):
            raw = c.completions.with_raw_response.create(model=model, prompt="hello", max_tokens=3)
            assert raw.headers["x-inference-pod"] == pod
            assert raw.parse().model == model
        chat = c.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=3
        )
        assert chat.headers["x-inference-pod"] == pod


def test_unknown_model_gets_an_openai_404(deployment: Runtime) -> None:
    reply = completion(deployment, "no-such/model")
    err = assert_openai_error(reply, 404)
    assert err["code"] in (404, "404", "model_not_found", None) or err["type"]


def test_unknown_model_404_names_the_model_and_the_routed_ones(deployment: Runtime) -> None:
    err = assert_openai_error(completion(deployment, "gpt-4"), 404)
    assert err["message"] == f"no route serves model `gpt-4` (models routed here: {GEMMA}, {LLAMA})"
    assert err["type"] == "NotFoundError"


def test_get_models_404_says_why_no_route_matches(deployment: Runtime) -> None:
    """GET /v1/models has no body, so the router sets no model header; the 404 says so (README: add a route)."""
    import openai

    with pytest.raises(openai.NotFoundError) as info:
        client(deployment).models.list()
    assert "match on the `model` of the JSON body, and this request has none" in str(info.value)


def test_the_gateway_access_log_has_one_line_per_request(deployment: Runtime) -> None:
    completion(deployment, GEMMA, prompt="access-log probe")
    assert deployment.state is not None
    path = deployment.state.log_file("envoy-access")
    line = re.compile(r"^\S+Z POST /v1/completions 200 127\.0\.0\.1:\d+ \d+ms model=google/gemma-2b-it ")
    wait_until(
        lambda: path.exists() and any(line.match(x) for x in path.read_text().splitlines()),
        10,
        what="the completion in Envoy's access log",
    )


def test_a_spoofed_model_header_is_overwritten(deployment: Runtime) -> None:
    reply = completion(deployment, GEMMA, headers={"X-Gateway-Model-Name": LLAMA})
    assert reply.status == 200, reply.body[:300]
    assert reply.headers["x-inference-pod"] == "llm-d-gemma-decode-0"
    assert reply.json()["model"] == GEMMA
    # a spoofed header cannot route a request without a model anywhere either
    missing = completion(deployment, "", headers={"X-Gateway-Model-Name": LLAMA})
    assert missing.status == 400


def test_bad_bodies_are_refused_by_the_router(deployment: Runtime) -> None:
    from tests.e2e.helpers import post

    url = deployment.base_url + "/v1/completions"
    assert_openai_error(post(url, b"{not json"), 400)
    assert_openai_error(post(url, b'{"prompt": "no model"}'), 400)
    assert completion(deployment, LLAMA).status == 200
