"""An InferenceModelRewrite through `inferplane up`: the picker sends the alias to the real model and the client
gets its own model name back, streamed or not (the gateway sends this pool's response phases to the picker)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferplane.runtime import Runtime
from tests.e2e.helpers import DEPLOYMENTS, FAST, SUPERVISION, assert_openai_error, client, completion

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
REWRITE = f"""apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModelRewrite
metadata:
  name: llama-alias
spec:
  poolRef:
    name: llama-8b-pool
  rules:
    - matches:
        - model: {{value: llama}}
      targets:
        - modelRewrite: {MODEL}
"""


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    root = tmp_path_factory.mktemp("rewrite") / "pattern3-with-alias"
    shutil.copytree(DEPLOYMENTS / "pattern3-caching", root)
    (root / "manifests" / "rewrite.yaml").write_text(REWRITE)
    rt = Runtime(root, port=0, state_dir=Path(root.parent / "state"), supervisor=SUPERVISION, **FAST)
    rt.start()
    try:
        yield rt
    finally:
        rt.stop()


def test_alias_is_served_by_the_real_model_and_answered_under_the_alias(deployment: Runtime) -> None:
    api = client(deployment)
    done = api.completions.create(model="llama", prompt="hello there", max_tokens=3, extra_body={"ignore_eos": True})
    assert done.model == "llama"
    assert done.usage is not None
    assert done.usage.completion_tokens == 3
    chunks = list(
        api.chat.completions.create(
            model="llama", messages=[{"role": "user", "content": "hi"}], max_tokens=4, stream=True
        )
    )
    assert chunks
    assert {c.model for c in chunks} == {"llama"}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_the_real_name_still_works_and_an_unknown_one_is_a_404(deployment: Runtime) -> None:
    assert client(deployment).completions.create(model=MODEL, prompt="hi", max_tokens=2).model == MODEL
    assert_openai_error(completion(deployment, "no-such-model"), 404)
