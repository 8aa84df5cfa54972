"""Deployment → RenderPlan: accelerator variants, multi-node plans, and the vLLM flags a launch script owns."""

from __future__ import annotations

import shutil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferplane.deploy.plan import RenderOptions
from inferplane.deploy.source import _LAUNCH_FLAGS, _extra_vllm_args, build_plan, load_for_render
from tests.conftest import DEPLOYMENTS


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["m", "--port", "8000", "--max-model-len", "8192"], ["--max-model-len", "8192"]),
        (["m", "--tensor-parallel-size=8", "--enable-prefix-caching"], ["--enable-prefix-caching"]),
        (["--model", "m", "-tp", "4", "--dtype", "half"], ["--dtype", "half"]),
        (["m", "--served-model-name", "a", "b", "--data-parallel-hybrid-lb", "--kv-cache-dtype", "fp8"],
         ["--kv-cache-dtype", "fp8"]),
        (["m", "--distributed-executor-backend", "ray", "--headless"], []),
    ],
)  # fmt: skip
def test_extra_vllm_args(raw: list[str], expected: list[str]) -> None:
    assert list(_extra_vllm_args(raw, "m")) == expected


KEPT = st.sampled_from(["--max-model-len", "--dtype", "--block-size", "--kv-cache-dtype", "--seed"])
VALUES = st.sampled_from(["1", "half", "fp8", "16"])


@given(
    st.lists(
        st.one_of(
            st.tuples(KEPT, VALUES),
            st.tuples(st.sampled_from(sorted(_LAUNCH_FLAGS - {"--data-parallel-hybrid-lb", "--headless"})), VALUES),
            st.tuples(st.sampled_from(["--enable-prefix-caching", "--data-parallel-hybrid-lb"]), st.none()),
        ),
        max_size=12,
    )
)
def test_extra_args_keep_the_users_flags_in_order_and_drop_launch_flags(pairs) -> None:
    raw = ["model"]
    for flag, value in pairs:
        raw += [flag] if value is None else [flag, value]
    expected = []
    for flag, value in pairs:
        if flag not in _LAUNCH_FLAGS:
            expected += [flag] if value is None else [flag, value]
    assert list(_extra_vllm_args(raw, "model")) == expected


def test_pattern1_gpu_variant_replaces_the_tpu_model_service() -> None:
    tpu = load_for_render(DEPLOYMENTS / "pattern1-baseline", "tpu")
    gpu = load_for_render(DEPLOYMENTS / "pattern1-baseline", "gpu")
    assert [m.accelerator for m in tpu.model_services] == ["tpu"]
    assert [m.accelerator for m in gpu.model_services] == ["gpu"]
    assert [m.name for m in gpu.model_services] == [m.name for m in tpu.model_services]
    plan = build_plan(gpu, RenderOptions("gke", "img", accelerator="gpu"), "p1")
    (ms,) = plan.model_servers
    assert "vllm-cuda-rhel9" in ms.image
    assert ms.accelerator == "gpu"
    # The TPU variant's PJRT_DEVICE does not leak into the GPU pod, nor CUDA_VISIBLE_DEVICES into a TPU pod.
    assert "PJRT_DEVICE" not in {e.name for e in ms.env}
    (tpu_ms,) = build_plan(tpu, RenderOptions("gke", "img"), "p1").model_servers
    assert "CUDA_VISIBLE_DEVICES" not in {e.name for e in tpu_ms.env}


def test_pattern4_plan_is_a_ray_group() -> None:
    dep = load_for_render(DEPLOYMENTS / "pattern4-moe", None)
    plan = build_plan(dep, RenderOptions("gke", "img"), "p4")
    (ms,) = plan.model_servers
    assert ms.group_size == 2
    assert ms.multinode_style == "ray"
    assert ms.tensor_parallel_size == 8
    assert ms.worker_labels is not None
    assert ms.worker_labels["role"] == "worker"
    assert ms.labels["role"] == "leader"
    assert "--max-model-len" in ms.args
    assert "--port" not in ms.args
    assert ms.model not in ms.args


def test_pattern2_plan_needs_the_body_based_router() -> None:
    plan = build_plan(load_for_render(DEPLOYMENTS / "pattern2-multimodel", None), RenderOptions("gke", "img"), "p2")
    assert plan.needs_bbr
    assert [p.name for p in plan.pools] == ["gemma-2b-pool", "llama-8b-pool"]
    assert all("EndpointPickerConfig" in p.epp_config for p in plan.pools)


def test_user_lws_group_semantics_are_kept(tmp_path) -> None:
    root = tmp_path / "p4"
    shutil.copytree(DEPLOYMENTS / "pattern4-moe", root)
    lws = root / "manifests" / "pattern4-poc-lws.yaml"
    text = lws.read_text().replace("startupPolicy: LeaderCreated", "startupPolicy: LeaderReady")
    lws.write_text(text.replace("restartPolicy: RecreateGroupOnPodRestart", "restartPolicy: RecreateGroupAfterStart"))
    (ms,) = build_plan(load_for_render(root, None), RenderOptions("gke", "img"), "p4").model_servers
    assert (ms.startup_policy, ms.restart_policy) == ("LeaderReady", "RecreateGroupAfterStart")
