"""Pattern 2 (two models, one pool and picker each, the body-based router in front) end to end."""

from __future__ import annotations

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
