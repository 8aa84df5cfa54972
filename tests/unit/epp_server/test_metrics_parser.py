"""The hand-written /metrics parser against prometheus_client's parser, on fixed and generated pages."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from inferplane.epp.datalayer.metrics_parser import parse_labels, parse_metrics

VLLM = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 4.0
vllm:num_requests_waiting_by_reason{engine="0",model_name="m",reason="capacity"} 99.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} 7.0
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
vllm:cache_config_info{block_size="32",cache_dtype="auto",num_cpu_blocks="0",num_gpu_blocks="4096"} 1.0
vllm:lora_requests_info{max_lora="2",running_lora_adapters="a1, a2",waiting_lora_adapters="a3"} 1.7e9
vllm:lora_requests_info{max_lora="2",running_lora_adapters="old",waiting_lora_adapters=""} 1.6e9
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.1",model_name="m"} 3.0
"""


def test_vllm_page() -> None:
    m = parse_metrics(VLLM)
    assert (m.waiting, m.running, m.kv) == (7.0, 4.0, 0.25)
    assert (m.block_size, m.num_blocks) == (32.0, 4096.0)
    # LoRA: the series with the largest value (the newest) wins; adapters are trimmed
    assert m.running_loras == ["a1", "a2"]
    assert m.waiting_loras == ["a3"]
    assert m.max_lora == 2


def test_old_vllm_kv_name() -> None:
    m = parse_metrics('vllm:gpu_cache_usage_perc{model_name="m"} 0.75\nvllm:num_requests_waiting 1\n')
    assert m.kv == 0.75
    assert m.waiting == 1.0
    assert m.running is None


def test_sglang_page() -> None:
    page = (
        'sglang:num_queue_reqs{model_name="m"} 3\nsglang:num_running_reqs{model_name="m"} 5\n'
        'sglang:token_usage{model_name="m"} 0.5\nsglang:cache_config_info{page_size="1",num_pages="900"} 1\n'
    )
    m = parse_metrics(page)
    assert (m.waiting, m.running, m.kv, m.block_size, m.num_blocks) == (3.0, 5.0, 0.5, 1.0, 900.0)


def test_trtllm_pages() -> None:
    m = parse_metrics(
        "trtllm_num_requests_waiting 2\ntrtllm_num_requests_running 6\ntrtllm_kv_cache_utilization 0.1\n"
        "trtllm_kv_cache_tokens_per_block 64\ntrtllm_kv_cache_max_blocks 512\n"
    )
    assert (m.waiting, m.running, m.kv, m.block_size, m.num_blocks) == (2.0, 6.0, 0.1, 64.0, 512.0)
    triton = (
        'nv_trt_llm_request_metrics{request_type="scheduled",model="m"} 8\n'
        'nv_trt_llm_request_metrics{request_type="waiting",model="m"} 1\n'
        'nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="fraction",model="m"} 0.3\n'
        'nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="tokens_per",model="m"} 128\n'
        'nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="max",model="m"} 77\n'
    )
    m = parse_metrics(triton)
    assert (m.waiting, m.running, m.kv, m.block_size, m.num_blocks) == (1.0, 8.0, 0.3, 128.0, 77.0)


def test_missing_families_are_none() -> None:
    m = parse_metrics("# nothing here\nother_metric 1\n")
    assert m.waiting is m.running is m.kv is None
    assert not m.seen


def test_label_escapes() -> None:
    assert parse_labels(r'a="x\"y",b="c\\d",e="f\ng"') == {"a": 'x"y', "b": "c\\d", "e": "f\ng"}


label_value = st.text(st.characters(codec="ascii", exclude_characters='"\\\n'), max_size=12)
value = st.one_of(st.integers(0, 10_000).map(float), st.floats(0, 1, allow_nan=False))


@settings(max_examples=150, deadline=None)
@given(
    waiting=value,
    running=value,
    kv=value,
    model=label_value,
    noise=st.lists(st.tuples(st.sampled_from(["vllm:other", "vllm:num_requests_waiting_x", "foo"]), value)),
    shuffle=st.randoms(use_true_random=False),
    kv_name=st.sampled_from(["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"]),
)
def test_agrees_with_prometheus_client(
    waiting: float, running: float, kv: float, model: str, noise: list[tuple[str, float]], shuffle: object,
    kv_name: str,
) -> None:  # fmt: skip
    lines = [
        f'vllm:num_requests_waiting{{model_name="{model}",engine="0"}} {waiting!r}',
        f'vllm:num_requests_running{{model_name="{model}"}} {running!r}',
        f"{kv_name} {kv!r}",
        *(f"{n}_{i} {v!r}" for i, (n, v) in enumerate(noise)),
    ]
    shuffle.shuffle(lines)  # type: ignore[attr-defined]
    page = "\n".join(lines) + "\n"
    ref = {f.name: f.samples[0].value for f in text_string_to_metric_families(page)}
    got = parse_metrics(page)
    assert got.waiting == ref["vllm:num_requests_waiting"]
    assert got.running == ref["vllm:num_requests_running"]
    assert got.kv == ref[kv_name]


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(text: str) -> None:
    parse_metrics(text)
