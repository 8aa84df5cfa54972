"""`--backend vllm` against a stand-in `vllm` (tests/support/fake_vllm) that checks its arguments the way vLLM's
parser would and then serves with the simulator, and a stand-in `nvidia-smi` that lists GPUs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inferplane.errors import InferplaneError
from inferplane.runtime import Runtime
from inferplane.runtime.templates import flag_value
from tests.e2e.helpers import SUPERVISION, client, env_with_fake_vllm

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    record = tmp_path / "record"
    record.mkdir()
    monkeypatch.setenv("PATH", env_with_fake_vllm()["PATH"])
    monkeypatch.setenv("FAKE_VLLM_RECORD", str(record))
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    return record


def test_pattern3_runs_vllm_serve_with_the_values_args_and_one_gpu_per_replica(
    fake_vllm: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FAKE_GPUS", "4")
    rt = Runtime("pattern3-caching", backend="vllm", port=0, state_dir=tmp_path / "state", supervisor=SUPERVISION)
    with rt:
        raw = client(rt).completions.with_raw_response.create(model=MODEL, prompt="hello", max_tokens=3)
        assert raw.parse().choices[0].text
        assert raw.headers["x-inference-pod"].startswith("llm-d-pattern3-decode-")
        records = [json.loads(p.read_text()) for p in sorted(fake_vllm.glob("*.json"))]
        assert len(records) == 3
        devices = sorted(r["env"]["CUDA_VISIBLE_DEVICES"] for r in records)
        assert devices == ["0", "1", "2"]
        for r in records:
            argv = r["argv"][1:]
            assert argv[:2] == ["serve", MODEL]
            assert flag_value(argv, "--host") == "127.0.0.1"
            assert "--enable-prefix-caching" in argv
            assert flag_value(argv, "--max-model-len") == "16384"
            assert flag_value(argv, "--served-model-name") == MODEL
            assert r["env"]["HF_TOKEN"] == "hf_test_token"  # the secret-backed env, from the caller's environment
        ports = {int(flag_value(r["argv"][1:], "--port") or 0) for r in records}
        assert ports == {c.ports["http"] for c in rt.running_plan.servers()}


def test_missing_accelerators_are_a_clear_error(
    fake_vllm: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FAKE_GPUS", "2")
    with pytest.raises(InferplaneError, match=r"need 3 NVIDIA GPUs \(nvidia-smi -L\), this machine has 2"):
        Runtime("pattern3-caching", backend="vllm", port=0, state_dir=tmp_path).start()
    # pattern 1 asks for a TPU chip, and this machine has none
    with pytest.raises(InferplaneError, match=r"need 1 TPU chips .* this machine has 0"):
        Runtime("pattern1-baseline", backend="vllm", port=0, state_dir=tmp_path).start()
